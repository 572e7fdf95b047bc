//! PyTorch formats: what `data.pkl` references in a zip checkpoint, legacy
//! (`_use_new_zipfile_serialization=False`) stream layout, TorchScript recognition.

use crate::pickle::graph::{Graph, Kind, ValueId};

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

/// A persistent id of the shape torch writes: `('storage', <storage class>, key: str,
/// location: str, numel: int[, view metadata])` (the sixth element in legacy files).
pub fn storage_pid(g: &Graph, pid: ValueId, data: &[u8]) -> Option<(String, String, i64)> {
    let Kind::Tuple(items) = g.value(pid).kind else {
        return None;
    };
    let it = g.items(items);
    if !(it.len() == 5 || it.len() == 6) || g.as_str(it[0], data).is_none_or(|s| s != "storage") {
        return None;
    }
    let class = match g.value(it[1]).kind {
        Kind::Global(gi) => g.globals[gi as usize].qualified(),
        _ => return None,
    };
    let key = g.as_str(it[2], data)?.into_owned();
    g.as_str(it[3], data)?;
    let Kind::Int(numel) = g.value(it[4]).kind else {
        return None;
    };
    Some((class, key, numel))
}

/// Every storage the pickle's persistent ids ask the loader for.
pub fn storage_refs(g: &Graph, data: &[u8]) -> Vec<StorageRef> {
    g.persids
        .iter()
        .filter_map(|&p| {
            let Kind::PersId(pid) = g.value(p).kind else {
                return None;
            };
            let (class, key, numel) = storage_pid(g, pid, data)?;
            Some(StorageRef {
                offset: g.value(p).offset,
                key,
                class,
                numel: Some(numel),
            })
        })
        .collect()
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
