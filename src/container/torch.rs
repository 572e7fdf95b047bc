//! PyTorch formats: what `data.pkl` references in a zip checkpoint, legacy
//! (`_use_new_zipfile_serialization=False`) stream layout, TorchScript recognition.

use crate::pickle::graph::{Graph, Kind};

/// The legacy format's first pickle is this LONG.
pub const LEGACY_MAGIC: &str = "119547037146038801333356";

/// A storage that a persistent id asks the loader for.
#[derive(Debug, Clone)]
pub struct StorageRef {
    pub offset: u64,
    pub key: String,
    pub class: String,
    pub numel: Option<i64>,
}

/// Bytes per element of torch's typed storage classes (`torch.FloatStorage` ...).
pub fn element_size(class: &str) -> Option<u64> {
    let name = class.rsplit('.').next().unwrap_or(class);
    Some(match name {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "ShortStorage" | "BFloat16Storage" => 2,
        "ComplexDoubleStorage" => 16,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QInt8Storage" | "QUInt8Storage"
        | "QUInt4x2Storage" | "QUInt2x4Storage" | "UntypedStorage" => 1,
        n if n.starts_with("Float8") => 1,
        _ => return None,
    })
}

/// Storage persistent ids of the shape torch writes: `('storage', cls, key, location, numel, ...)`.
pub fn storage_refs(g: &Graph, data: &[u8]) -> Vec<StorageRef> {
    let mut out = Vec::new();
    for &p in &g.persids {
        let Kind::PersId(pid) = g.value(p).kind else {
            continue;
        };
        let Kind::Tuple(items) = g.value(pid).kind else {
            continue;
        };
        let it = g.items(items);
        if it.len() < 5 || g.as_str(it[0], data).is_none_or(|s| s != "storage") {
            continue;
        }
        let class = match g.value(it[1]).kind {
            Kind::Global(gi) => g.globals[gi as usize].qualified(),
            _ => continue,
        };
        let Some(key) = g.as_str(it[2], data) else {
            continue;
        };
        let numel = match g.value(it[4]).kind {
            Kind::Int(n) => Some(n),
            _ => None,
        };
        out.push(StorageRef {
            offset: g.value(p).offset,
            key: key.into_owned(),
            class,
            numel,
        });
    }
    out
}

/// Whether the first pickle of a stream is the legacy magic number, a literal.
pub fn legacy_magic(g: &Graph) -> Option<bool> {
    let s = g.streams.first()?;
    let root = s.root?;
    match g.value(root).kind {
        Kind::BigInt(i) => Some(g.bigints[i as usize] == LEGACY_MAGIC),
        Kind::Call(_) => Some(false),
        _ => None,
    }
}
