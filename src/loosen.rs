//! What a change to the configuration loosens. A range scan takes its policy from the
//! base revision, so a pull request cannot configure its own gate; what its edit of
//! `.picklegate.yaml` would allow once merged is listed here, each item at its line in the
//! new file, for a reviewer to approve explicitly (`policy-loosened`).
//!
//! The comparison is of the files as written (names, modes, levels, globs), not of the
//! resolved policies: a change is reported when it could widen what passes, so a rule or
//! default that points at another policy is listed even when that policy is as strict.

use crate::config::{self, ConfigFile, ExceptionDef, Level, LevelEntry};
use crate::diag::Diag;
use crate::finding::Rule;
use crate::policy::{AllowEntry, Mode, PolicyDef};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One way the new configuration lets more through than the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loosening {
    /// 1-based line in the new file (0: the file as a whole).
    pub line: u64,
    /// Byte offset of that place in the new file.
    pub offset: u64,
    pub what: String,
}

/// What `head` (the change's configuration, `None` when it deletes the file) loosens
/// compared with `base` (`None` when the base has none: the built-in default applied).
/// An unparsable `head` is an error: the gate would refuse every later scan with it.
pub fn loosenings(base: Option<&str>, head: Option<(&str, &str)>) -> Result<Vec<Loosening>, Diag> {
    let base = match base.map(|t| config::parse("base", t)) {
        Some(Ok(b)) => Some(b),
        // A broken base configuration already stopped the scan (exit 2) before this runs.
        Some(Err(_)) | None => None,
    };
    let Some((display, text)) = head else {
        return Ok(match base {
            Some(_) => vec![Loosening {
                line: 0,
                offset: 0,
                what: "deletes the configuration: the built-in default policy applies instead"
                    .into(),
            }],
            None => Vec::new(),
        });
    };
    let head = config::parse(display, text)?;
    let empty = ConfigFile {
        version: 1,
        policies: BTreeMap::new(),
        rules: Vec::new(),
        default: None,
        exclude: Vec::new(),
        exceptions: Vec::new(),
        levels: BTreeMap::new(),
        budgets: None,
    };
    let base = base.as_ref().unwrap_or(&empty);
    let mut out = Vec::new();
    policies(base, &head, &mut out);
    rules(base, &head, &mut out);
    exclusions(base, &head, &mut out);
    exceptions(base, &head, &mut out);
    levels(base, &head, &mut out);
    budgets(base, &head, text, &mut out);
    out.sort_by_key(|l| l.offset);
    Ok(out)
}

fn at<T>(s: &Spanned<T>, what: String) -> Loosening {
    let (line, _, span) = crate::policy::place(&s.referenced);
    Loosening {
        line,
        offset: span.map(|(o, _)| o as u64).unwrap_or(0),
        what,
    }
}

/// `(name, mode, accepts code execution)` of an allow entry.
fn allow_key(e: &AllowEntry) -> (&str, Mode, bool) {
    match e {
        AllowEntry::Name(n) => (n, Mode::Call, false),
        AllowEntry::Detailed(d) => (&d.name, d.mode, d.accept_code_execution),
    }
}

fn policies(base: &ConfigFile, head: &ConfigFile, out: &mut Vec<Loosening>) {
    let none = PolicyDef::default();
    for (name, new) in &head.policies {
        let old = base.policies.get(name).map(|p| &p.value).unwrap_or(&none);
        let new_def = &new.value;
        let old_allow: HashMap<&str, (Mode, bool)> = old
            .allow
            .iter()
            .map(|e| {
                let (n, m, a) = allow_key(&e.value);
                (n, (m, a))
            })
            .collect();
        for e in &new_def.allow {
            let (n, mode, accept) = allow_key(&e.value);
            match old_allow.get(n) {
                None => out.push(at(
                    e,
                    format!(
                        "policy `{name}` allows `{n}` (mode {}){}",
                        mode.as_str(),
                        if accept {
                            ", accepting code execution"
                        } else {
                            ""
                        }
                    ),
                )),
                Some((m, a)) if mode > *m || (accept && !a) => out.push(at(
                    e,
                    format!(
                        "policy `{name}` widens `{n}` from mode {} to {}{}",
                        m.as_str(),
                        mode.as_str(),
                        if accept && !a {
                            ", accepting code execution"
                        } else {
                            ""
                        }
                    ),
                )),
                Some(_) => {}
            }
        }
        let old_extends: HashSet<&str> = old.extends.iter().map(|e| e.value.as_str()).collect();
        for e in &new_def.extends {
            if !old_extends.contains(e.value.as_str()) {
                out.push(at(
                    e,
                    format!("policy `{name}` extends `{}` (all it allows)", e.value),
                ));
            }
        }
        let new_deny: HashSet<&str> = new_def.deny.iter().map(|d| d.value.as_str()).collect();
        for d in &old.deny {
            if !new_deny.contains(d.value.as_str()) {
                out.push(at(
                    new,
                    format!("policy `{name}` no longer denies `{}`", d.value),
                ));
            }
        }
        let old_containers: HashSet<&str> =
            old.containers.iter().map(|c| c.value.as_str()).collect();
        for c in &new_def.containers {
            if !old_containers.contains(c.value.as_str()) {
                out.push(at(
                    c,
                    format!(
                        "policy `{name}` lets `{}` receive item/append calls",
                        c.value
                    ),
                ));
            }
        }
        // `None` inherits from `extends`, which may be wider than what was written.
        let build = (
            new_def.build.map(|b| b.as_str()),
            old.build.map(|b| b.as_str()),
        );
        if widened(new_def.build, old.build) {
            out.push(at(new, setting(name, "build", build)));
        }
        let pids = (
            new_def.persistent_ids.map(|p| p.as_str()),
            old.persistent_ids.map(|p| p.as_str()),
        );
        if widened(new_def.persistent_ids, old.persistent_ids) {
            out.push(at(new, setting(name, "persistent_ids", pids)));
        }
        let old_subs: HashSet<String> = old
            .substitutes
            .iter()
            .map(|s| format!("{:?}", s.value))
            .collect();
        for s in &new_def.substitutes {
            if !old_subs.contains(&format!("{:?}", s.value)) {
                out.push(at(
                    s,
                    format!(
                        "policy `{name}` lets the sanitizer substitute `{}`",
                        s.value.with
                    ),
                ));
            }
        }
    }
}

/// An ordered setting (`build`, `persistent_ids`) that is wider now, or no longer written
/// (then inherited from `extends`, possibly wider).
fn widened<T: Copy + Ord>(new: Option<T>, old: Option<T>) -> bool {
    match (new, old) {
        (Some(n), Some(o)) => n > o,
        (Some(_), None) | (None, Some(_)) => true,
        (None, None) => false,
    }
}

fn setting(policy: &str, key: &str, (new, old): (Option<&str>, Option<&str>)) -> String {
    format!(
        "policy `{policy}` sets `{key}` to {} (was {})",
        new.unwrap_or("inherited"),
        old.unwrap_or("inherited")
    )
}

fn rules(base: &ConfigFile, head: &ConfigFile, out: &mut Vec<Loosening>) {
    let key = |r: &config::PathRule| {
        (
            r.paths.iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
            r.policy.value.clone(),
        )
    };
    let old: Vec<_> = base.rules.iter().map(|r| key(&r.value)).collect();
    let new: Vec<_> = head.rules.iter().map(|r| key(&r.value)).collect();
    // Order matters (the first match wins): compare position by position.
    for (i, r) in head.rules.iter().enumerate() {
        if old.get(i) != new.get(i) {
            out.push(at(
                r,
                format!(
                    "path rule {} sends {} to policy `{}`",
                    i + 1,
                    r.value
                        .paths
                        .iter()
                        .map(|p| format!("`{}`", p.value))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.value.policy.value
                ),
            ));
        }
    }
    for (i, (paths, policy)) in old.iter().enumerate().skip(new.len()) {
        out.push(Loosening {
            line: 0,
            offset: 0,
            what: format!(
                "path rule {} (`{}` → `{policy}`) is removed; those paths get the default policy",
                i + 1,
                paths.join("`, `")
            ),
        });
    }
    let old_default = base
        .default
        .as_ref()
        .map_or("default", |d| d.value.as_str());
    if let Some(d) = &head.default {
        if d.value != old_default {
            out.push(at(
                d,
                format!("the default policy is `{}` (was `{old_default}`)", d.value),
            ));
        }
    } else if old_default != "default" {
        out.push(Loosening {
            line: 0,
            offset: 0,
            what: format!("the default policy is the built-in `default` (was `{old_default}`)"),
        });
    }
}

fn exclusions(base: &ConfigFile, head: &ConfigFile, out: &mut Vec<Loosening>) {
    let old: HashSet<&str> = base.exclude.iter().map(|e| e.value.as_str()).collect();
    for e in &head.exclude {
        if !old.contains(e.value.as_str()) {
            out.push(at(e, format!("excludes `{}` from scanning", e.value)));
        }
    }
}

fn rule_list(e: &ExceptionDef) -> String {
    if e.rules.is_empty() {
        "all rules".into()
    } else {
        e.rules
            .iter()
            .map(|r| r.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn exceptions(base: &ConfigFile, head: &ConfigFile, out: &mut Vec<Loosening>) {
    let old: HashMap<&str, &ExceptionDef> = base
        .exceptions
        .iter()
        .map(|e| (e.value.path.value.as_str(), &e.value))
        .collect();
    for e in &head.exceptions {
        let new = &e.value;
        let path = new.path.value.as_str();
        let Some(was) = old.get(path) else {
            out.push(at(
                e,
                format!(
                    "adds an exception for `{path}` ({}){}: {}",
                    rule_list(new),
                    if new.sha256.is_none() {
                        ", unpinned"
                    } else {
                        ""
                    },
                    new.reason.value
                ),
            ));
            continue;
        };
        let mut how = Vec::new();
        let old_rules: HashSet<&str> = was.rules.iter().map(|r| r.value.as_str()).collect();
        if !was.rules.is_empty()
            && (new.rules.is_empty()
                || new
                    .rules
                    .iter()
                    .any(|r| !old_rules.contains(r.value.as_str())))
        {
            how.push(format!(
                "covers {} (was {})",
                rule_list(new),
                rule_list(was)
            ));
        }
        let digest = |x: &ExceptionDef| x.sha256.as_ref().map(|s| s.value.to_ascii_lowercase());
        match (digest(was), digest(new)) {
            (Some(_), None) => how.push("drops its sha256 pin".into()),
            (Some(a), Some(b)) if a != b => how.push("pins different content".into()),
            _ => {}
        }
        let expiry = |x: &ExceptionDef| x.expires.as_ref().map(|s| s.value.clone());
        match (expiry(was), expiry(new)) {
            (Some(_), None) => how.push("no longer expires".into()),
            (Some(a), Some(b)) if b > a => how.push(format!("expires later ({b}, was {a})")),
            _ => {}
        }
        if !how.is_empty() {
            out.push(at(
                e,
                format!("widens the exception for `{path}`: {}", how.join(", ")),
            ));
        }
    }
}

fn rank(l: Level) -> u8 {
    match l {
        Level::Allow => 0,
        Level::Warn => 1,
        Level::Deny => 2,
    }
}

fn levels(base: &ConfigFile, head: &ConfigFile, out: &mut Vec<Loosening>) {
    // Without an entry a rule has its own level: deny, except the note-level LFS pointer.
    let default = |id: &str| match Rule::from_id(id) {
        Some(Rule::LfsPointer) => Level::Warn,
        _ => Level::Deny,
    };
    for (id, new) in &head.levels {
        let new_level = new.value.level();
        let old_level = base
            .levels
            .get(id)
            .map(|l| l.value.level())
            .unwrap_or_else(|| default(id));
        if rank(new_level) < rank(old_level) {
            let accepted = match &new.value {
                LevelEntry::Detailed(d) if d.accept_code_execution => ", accepting code execution",
                _ => "",
            };
            out.push(at(
                new,
                format!(
                    "lowers `{id}` to {} (was {}){accepted}",
                    new_level.as_str(),
                    old_level.as_str()
                ),
            ));
        }
    }
}

fn budgets(base: &ConfigFile, head: &ConfigFile, text: &str, out: &mut Vec<Loosening>) {
    let effective = |c: &ConfigFile| match &c.budgets {
        Some(d) => crate::budget::Budget::default().with(d),
        None => crate::budget::Budget::default(),
    };
    let (a, b) = (effective(base), effective(head));
    let no_limit = u128::MAX;
    let secs = |t: Option<std::time::Duration>| t.map_or(no_limit, |d| d.as_millis());
    let pairs: [(&str, u128, u128); 9] = [
        ("memory", a.vm.max_memory.into(), b.vm.max_memory.into()),
        ("opcodes", a.vm.max_ops.into(), b.vm.max_ops.into()),
        ("values", a.vm.max_values as u128, b.vm.max_values as u128),
        (
            "decompressed",
            a.limits.max_total_decompressed.into(),
            b.limits.max_total_decompressed.into(),
        ),
        (
            "members",
            a.limits.max_members as u128,
            b.limits.max_members as u128,
        ),
        (
            "depth",
            a.limits.max_depth as u128,
            b.limits.max_depth as u128,
        ),
        (
            "findings",
            a.limits.max_findings as u128,
            b.limits.max_findings as u128,
        ),
        (
            "findings-per-run",
            a.limits.max_run_findings as u128,
            b.limits.max_run_findings as u128,
        ),
        ("timeout", secs(a.limits.timeout), secs(b.limits.timeout)),
    ];
    let raised: Vec<&str> = pairs
        .iter()
        .filter(|(_, old, new)| new > old)
        .map(|(n, _, _)| *n)
        .collect();
    if raised.is_empty() {
        return;
    }
    // `budgets:` carries no spans of its own; its line is found in the text.
    let (line, offset) = text
        .lines()
        .scan(0u64, |off, l| {
            let here = *off;
            *off += l.len() as u64 + 1;
            Some((here, l))
        })
        .enumerate()
        .find(|(_, (_, l))| l.starts_with("budgets:"))
        .map_or((0, 0), |(i, (o, _))| (i as u64 + 1, o));
    out.push(Loosening {
        line,
        offset,
        what: format!("raises budgets: {}", raised.join(", ")),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(base: Option<&str>, head: &str) -> Vec<String> {
        loosenings(base, Some(("head", head)))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|l| format!("{}: {}", l.line, l.what))
            .collect()
    }

    #[test]
    fn an_unchanged_or_tightened_configuration_loosens_nothing() {
        let base = "version: 1\npolicies:\n  p:\n    extends: [torch]\n    allow: [a.B]\nlevels:\n  trailing-data: warn\n";
        assert!(whats(Some(base), base).is_empty());
        let tighter = "version: 1\npolicies:\n  p:\n    extends: [torch]\n    allow: [{name: a.B, mode: reference}]\n    deny: [x.Y]\nlevels:\n  trailing-data: deny\n";
        assert!(
            whats(Some(base), tighter).is_empty(),
            "{:?}",
            whats(Some(base), tighter)
        );
    }

    #[test]
    fn every_kind_of_loosening_is_listed_at_its_line() {
        let base = "version: 1\npolicies:\n  p:\n    extends: [numpy]\n    allow: [{name: a.B, mode: reference}]\n    deny: [x.Y]\nexceptions:\n  - path: m.pkl\n    reason: r\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    rules: [trailing-data]\n    expires: 2027-01-01\n";
        let head = "version: 1\npolicies:\n  p:\n    extends: [numpy, torch]\n    allow: [a.B, c.D]\n    containers: [c.D]\n    build: instances\nrules:\n  - paths: ['m/**']\n    policy: p\ndefault: p\nexclude: ['vendor/**']\nexceptions:\n  - path: m.pkl\n    reason: r\n    rules: []\n  - path: n.pkl\n    reason: trust me\nlevels:\n  code-execution: {level: allow, accept-code-execution: true, reason: x}\n  lfs-pointer: warn\nbudgets:\n  opcodes: 900000000\n";
        let got = whats(Some(base), head);
        let want = [
            "4: policy `p` extends `torch` (all it allows)",
            "5: policy `p` widens `a.B` from mode reference to call",
            "5: policy `p` allows `c.D` (mode call)",
            "4: policy `p` no longer denies `x.Y`",
            "6: policy `p` lets `c.D` receive item/append calls",
            "4: policy `p` sets `build` to instances (was inherited)",
            "9: path rule 1 sends `m/**` to policy `p`",
            "11: the default policy is `p` (was `default`)",
            "12: excludes `vendor/**` from scanning",
            "14: widens the exception for `m.pkl`: covers all rules (was trailing-data), drops its sha256 pin, no longer expires",
            "17: adds an exception for `n.pkl` (all rules), unpinned: trust me",
            "20: lowers `code-execution` to allow (was deny), accepting code execution",
            "22: raises budgets: opcodes",
        ];
        for w in want {
            assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn a_first_configuration_is_compared_with_the_builtin_default() {
        let got = whats(None, "version: 1\nlevels:\n  trailing-data: allow\n");
        assert_eq!(got, ["3: lowers `trailing-data` to allow (was deny)"]);
        let deleted = loosenings(Some("version: 1\n"), None).unwrap_or_default();
        assert_eq!(deleted.len(), 1);
        assert!(loosenings(None, Some(("head", "version: ["))).is_err());
    }
}
