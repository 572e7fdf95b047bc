//! Legacy (pre-1.6) `torch.save` files: five pickles — magic number, protocol version,
//! system info, the object, the storage key list — then each storage as an 8-byte element
//! count and its raw bytes. torch reads every pickle with a fresh unpickler, so each is
//! rebuilt on its own; storages the rebuilt object no longer references are dropped with
//! their keys, the rest copied byte for byte.

use super::emit::Emitter;
use super::{rebuild, refuse, Change, Rewritten, SanitizeError};
use crate::container::{legacy_keys, torch};
use crate::pickle::graph::Graph;
use crate::pickle::vm::{self, Budgets};
use crate::policy::Policy;
use std::collections::HashSet;

/// torch.serialization.MAGIC_NUMBER.
const MAGIC: &str = "0x1950a86a20f9469cfc6c";

const NAMES: [&str; 5] = [
    "magic number",
    "protocol version",
    "system info",
    "object",
    "storage key list",
];

fn magic_pickle() -> Result<Vec<u8>, String> {
    let mut e = Emitter::new(2);
    let decimal = u128::from_str_radix(MAGIC.trim_start_matches("0x"), 16)
        .map_err(|e| e.to_string())?
        .to_string();
    e.bigint(&decimal)?;
    e.stop();
    Ok(e.out)
}

pub(super) fn sanitize(
    data: &[u8],
    g: &Graph,
    end: u64,
    policy: &Policy,
) -> Result<Rewritten, SanitizeError> {
    let streams: Vec<_> = g.streams.iter().filter(|s| !s.nested).take(5).collect();
    if streams.len() < 5 {
        return refuse("a legacy torch file needs five pickles");
    }
    let mut changes = Vec::new();
    let mut pickles: Vec<Vec<u8>> = Vec::new();
    let mut graphs: Vec<Graph> = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let slice = data
            .get(s.start as usize..s.end as usize)
            .ok_or_else(|| SanitizeError::Refused("legacy pickle out of range".into()))?;
        let sg = vm::analyze(slice, s.start, Budgets::default());
        match rebuild::rebuild(&sg, slice, policy) {
            Ok(r) => {
                changes.extend(r.changes);
                pickles.push(r.bytes);
            }
            // The magic number is a constant of the format: whatever computed it, torch
            // only goes on when it equals this literal.
            Err(_) if i == 0 => {
                changes.push(Change {
                    offset: s.start,
                    action: "substituted",
                    what: format!(
                        "the computed magic number (pickle 1) replaced by torch's literal {MAGIC}"
                    ),
                });
                pickles.push(magic_pickle().map_err(SanitizeError::Refused)?);
            }
            Err(why) => {
                return refuse(format!("legacy pickle {} ({}): {why}", i + 1, NAMES[i]));
            }
        }
        graphs.push(sg);
    }
    // Storage records, in key-list order, sized by the element type the original object names.
    let original_refs = torch::storage_refs(&graphs[3], data_of(data, streams[3])?);
    let rebuilt = vm::analyze(&pickles[3], 0, Budgets::default());
    let kept: HashSet<String> = torch::storage_refs(&rebuilt, &pickles[3])
        .into_iter()
        .map(|r| r.key)
        .collect();
    let keys = legacy_keys(g, data);
    let mut records: Vec<u8> = Vec::new();
    let mut kept_keys: Vec<&str> = Vec::new();
    let mut pos = end;
    for key in &keys {
        let at = pos as usize;
        let hdr: [u8; 8] = data
            .get(at..at + 8)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| {
                SanitizeError::Refused(format!("storage `{key}` is missing its size header"))
            })?;
        let numel = u64::from_le_bytes(hdr);
        let elem = original_refs
            .iter()
            .find(|r| &r.key == key)
            .and_then(|r| torch::element_size(&r.class))
            .ok_or_else(|| {
                SanitizeError::Refused(format!(
                    "storage `{key}` is listed but the object does not say its element type"
                ))
            })?;
        let len = numel
            .checked_mul(elem)
            .and_then(|n| n.checked_add(8))
            .filter(|&n| pos.saturating_add(n) <= data.len() as u64)
            .ok_or_else(|| {
                SanitizeError::Refused(format!("storage `{key}` runs past the end of the file"))
            })?;
        if kept.contains(key) {
            records.extend_from_slice(&data[at..at + len as usize]);
            kept_keys.push(key);
        } else {
            changes.push(Change {
                offset: pos,
                action: "removed",
                what: format!("storage `{key}`, which the sanitized object does not reference"),
            });
        }
        pos += len;
    }
    if let Some(missing) = kept.iter().find(|k| !keys.contains(k)) {
        return refuse(format!(
            "the object references storage `{missing}`, which the storage key list does not contain"
        ));
    }
    if pos < data.len() as u64 {
        changes.push(Change {
            offset: pos,
            action: "removed",
            what: format!("{} bytes after the last storage", data.len() as u64 - pos),
        });
    }
    // The key list, written the way torch.save writes it: a list of strings.
    let mut e = Emitter::new(2);
    e.op(b']');
    if !kept_keys.is_empty() {
        e.op(b'(');
        for k in &kept_keys {
            e.str_utf8(k.as_bytes());
        }
        e.op(b'e');
    }
    e.stop();
    pickles[4] = e.out;
    let mut out = pickles.concat();
    out.extend_from_slice(&records);
    Ok((out, changes))
}

fn data_of<'d>(
    data: &'d [u8],
    s: &crate::pickle::graph::Stream,
) -> Result<&'d [u8], SanitizeError> {
    data.get(s.start as usize..s.end as usize)
        .ok_or_else(|| SanitizeError::Refused("legacy pickle out of range".into()))
}
