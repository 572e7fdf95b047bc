//! Stable finding identities for SARIF `partialFingerprints` and GitLab `fingerprint`:
//! the same finding in the same place hashes the same across runs and machines.

use crate::finding::Finding;
use sha2::Digest;

pub fn of(path: &str, f: &Finding) -> String {
    let mut h = sha2::Sha256::new();
    for part in [
        f.rule.id(),
        path,
        f.member.as_deref().unwrap_or(""),
        f.global.as_deref().unwrap_or(""),
        &f.offset.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    crate::digest::hex(&h.finalize())
}

/// A path as a relative URI (`./` dropped, `\` as `/`, reserved characters escaped).
pub fn uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.trim_start_matches("./");
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
