//! Known code-execution sinks (`policies/sinks.yaml`, embedded).
//!
//! The list never grants anything: policies are allow-lists. It sharpens messages
//! ("this executes code") and stops policies from allowing a sink by accident.

use serde::Deserialize;
use std::collections::HashSet;
use std::sync::OnceLock;

pub const SINKS_YAML: &str = include_str!("../../policies/sinks.yaml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    #[allow(dead_code)]
    version: u32,
    modules: Vec<String>,
    names: Vec<String>,
}

struct Sinks {
    modules: HashSet<String>,
    names: HashSet<String>,
    /// The longest entry: a longer dotted name cannot be one, so it is not hashed
    /// (attribute chains of megabytes stay linear).
    longest: usize,
}

fn sinks() -> &'static Sinks {
    static S: OnceLock<Sinks> = OnceLock::new();
    S.get_or_init(|| {
        // The file is embedded and checked by a unit test; a parse failure here would be
        // a build defect, so fall back to an empty table rather than panic at runtime.
        let f: SinkFile = serde_saphyr::from_str(SINKS_YAML).unwrap_or(SinkFile {
            version: 1,
            modules: Vec::new(),
            names: Vec::new(),
        });
        let longest = f
            .modules
            .iter()
            .chain(&f.names)
            .map(String::len)
            .max()
            .unwrap_or(0);
        Sinks {
            modules: f.modules.into_iter().collect(),
            names: f.names.into_iter().collect(),
            longest,
        }
    })
}

fn is_dunder(s: &str) -> bool {
    s.len() > 4 && s.starts_with("__") && s.ends_with("__")
}

/// Why `module.name` is a code-execution sink, or `None`.
pub fn sink_reason(module: &str, name: &str) -> Option<String> {
    let s = sinks();
    let mut prefix = module;
    loop {
        if s.modules.contains(prefix) {
            return Some(format!("`{prefix}` can run commands or code"));
        }
        match prefix.rfind('.') {
            Some(i) => prefix = &prefix[..i],
            None => break,
        }
    }
    // A dotted name is a getattr chain: check each prefix of it as well.
    let mut qual = String::with_capacity(module.len() + name.len() + 1);
    qual.push_str(module);
    for (i, part) in name.split('.').enumerate() {
        qual.push('.');
        qual.push_str(part);
        let short = qual.len() <= s.longest;
        if short && s.names.contains(qual.as_str()) {
            return Some(format!(
                "`{qual}` executes code or reaches arbitrary objects"
            ));
        }
        if i > 0 && is_dunder(part) {
            return Some(format!(
                "the attribute chain `{name}` walks through `{part}`, which reaches interpreter internals"
            ));
        }
        if short && s.modules.contains(qual.as_str()) {
            return Some(format!("`{qual}` can run commands or code"));
        }
    }
    // `pathlib` + `os.system`: an attribute chain can reach a sink module through any
    // module that imported it, so every tail of a dotted name is checked on its own.
    // Tails are slices of the name, looked up only when short enough to be an entry.
    let mut start = 0usize;
    while let Some(dot) = name[start..].find('.') {
        let tail = &name[start..];
        let m = &tail[..dot];
        let hit = dot + 1 < tail.len()
            && ((m.len() <= s.longest && s.modules.contains(m))
                || (tail.len() <= s.longest && s.names.contains(tail)));
        if hit {
            return Some(format!("the attribute chain `{name}` reaches `{tail}`"));
        }
        start += dot + 1;
    }
    if is_dunder(name) && name != "__newobj__" && name != "__newobj_ex__" && module == "builtins" {
        return Some(format!("`builtins.{name}` reaches interpreter internals"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_list_parses() {
        let f: Result<SinkFile, _> = serde_saphyr::from_str(SINKS_YAML);
        assert!(f.is_ok_and(|f| f.modules.len() > 50 && f.names.len() > 20));
    }

    #[test]
    fn classifies_sinks() {
        assert!(sink_reason("os", "system").is_some());
        assert!(sink_reason("os.path", "join").is_some());
        assert!(sink_reason("builtins", "eval").is_some());
        assert!(sink_reason("builtins", "getattr").is_some());
        assert!(sink_reason("pathlib", "os.system").is_some());
        assert!(sink_reason("numpy", "prod.__globals__").is_some());
        assert!(sink_reason("torch", "load").is_some());
        assert!(sink_reason("collections", "OrderedDict").is_none());
        assert!(sink_reason("torch._utils", "_rebuild_tensor_v2").is_none());
        assert!(sink_reason("copyreg", "__newobj__").is_none());
        assert!(sink_reason("osx", "thing").is_none());
        assert!(sink_reason("torch.serialization", "os.system").is_some());
        assert!(sink_reason("torch.serialization", "_get_layout").is_none());
    }
}
