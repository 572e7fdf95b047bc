//! Known code-execution sinks (`policies/sinks.yaml`, embedded).
//!
//! The list never grants anything: policies are allow-lists. It sharpens messages
//! ("this executes code") and stops policies from allowing a sink by accident.

use super::Mode;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

pub const SINKS_YAML: &str = include_str!("../../policies/sinks.yaml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    #[allow(dead_code)]
    version: u32,
    modules: Vec<String>,
    names: Vec<String>,
    #[serde(default)]
    inert: Vec<Inert>,
    #[serde(default)]
    does: BTreeMap<String, String>,
    #[serde(default)]
    rebuilders: BTreeMap<String, Vec<String>>,
}

/// An exact name inside a sink module that is data, not code, when used at most as `mode`
/// says: the carve-out is per name and per use, never per module.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inert {
    name: String,
    mode: Mode,
    #[allow(dead_code)] // read by people; required so that no carve-out is unexplained
    reason: String,
}

struct Sinks {
    modules: HashSet<String>,
    names: HashSet<String>,
    /// Carve-outs: exact `module.qualname` → the widest use that keeps it inert.
    inert: HashMap<String, Mode>,
    does: BTreeMap<String, String>,
    /// Allowed rebuilders that use their arguments: `module.qualname` → the mode of each
    /// positional argument (`None`: only stored).
    rebuilders: HashMap<String, Vec<Option<Mode>>>,
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
            inert: Vec::new(),
            does: BTreeMap::new(),
            rebuilders: BTreeMap::new(),
        });
        let longest = f
            .modules
            .iter()
            .chain(&f.names)
            .map(String::len)
            .chain(f.inert.iter().map(|i| i.name.len()))
            .chain(f.rebuilders.keys().map(String::len))
            .max()
            .unwrap_or(0);
        Sinks {
            modules: f.modules.into_iter().collect(),
            names: f.names.into_iter().collect(),
            inert: f.inert.into_iter().map(|i| (i.name, i.mode)).collect(),
            does: f.does,
            rebuilders: f
                .rebuilders
                .into_iter()
                .map(|(k, v)| (k, v.iter().map(|m| parse_mode(m)).collect()))
                .collect(),
            longest,
        }
    })
}

fn is_dunder(s: &str) -> bool {
    s.len() > 4 && s.starts_with("__") && s.ends_with("__")
}

fn parse_mode(m: &str) -> Option<Mode> {
    match m {
        "reference" => Some(Mode::Reference),
        "new" => Some(Mode::New),
        "call" => Some(Mode::Call),
        _ => None,
    }
}

/// How the allowed rebuilder `module.name` uses its positional arguments, if it uses any
/// (`sinks.yaml` `rebuilders:`); `None` at a position: only stored.
pub fn rebuilder_args(module: &str, name: &str) -> Option<&'static [Option<Mode>]> {
    let s = sinks();
    if module.len() + name.len() + 1 > s.longest {
        return None;
    }
    s.rebuilders
        .get(&format!("{module}.{name}"))
        .map(Vec::as_slice)
}

/// What the sink entry `key` (a module or a name) does, for messages.
fn does(s: &Sinks, key: &str, fallback: &str) -> String {
    match s.does.get(key) {
        Some(d) => format!("`{key}` {d}"),
        None => format!("`{key}` {fallback}"),
    }
}

/// The widest use of the exact name `module.name` that its carve-out keeps inert.
pub fn inert_up_to(module: &str, name: &str) -> Option<Mode> {
    let s = sinks();
    if module.len() + name.len() + 1 > s.longest {
        return None;
    }
    s.inert.get(&format!("{module}.{name}")).copied()
}

/// Why `module.name`, used as `mode` says (called, instantiated, or only referenced), is a
/// code-execution sink, or `None`. An `inert` carve-out of `sinks.yaml` applies only to its
/// exact name and only up to its mode.
pub fn sink_reason_as(module: &str, name: &str, mode: Mode) -> Option<String> {
    if inert_up_to(module, name).is_some_and(|m| mode <= m) {
        return None;
    }
    sink_reason(module, name)
}

/// Why `module.name` is a code-execution sink when called, or `None`.
pub fn sink_reason(module: &str, name: &str) -> Option<String> {
    let s = sinks();
    let mut prefix = module;
    loop {
        if s.modules.contains(prefix) {
            return Some(does(s, prefix, "can run commands or code"));
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
            return Some(does(s, &qual, "executes code or reaches arbitrary objects"));
        }
        if i > 0 && is_dunder(part) {
            return Some(format!(
                "the attribute chain `{name}` walks through `{part}`, which reaches interpreter internals"
            ));
        }
        if short && s.modules.contains(qual.as_str()) {
            return Some(does(s, &qual, "can run commands or code"));
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

    #[test]
    fn carve_outs_are_exact_names_up_to_their_mode() {
        // Inert as written, within its mode.
        assert!(sink_reason_as("pathlib", "PosixPath", Mode::Call).is_none());
        assert!(sink_reason_as("typing", "Any", Mode::Reference).is_none());
        assert!(sink_reason_as("numpy", "memmap", Mode::Reference).is_none());
        assert!(sink_reason_as("functools", "partial", Mode::Call).is_none());
        // Beyond its mode, or any other name of the module, or an attribute of it: a sink.
        assert!(sink_reason_as("numpy", "memmap", Mode::Call).is_some());
        assert!(sink_reason_as("typing", "Any", Mode::Call).is_some());
        assert!(sink_reason_as("pathlib", "PosixPath.open", Mode::Reference).is_some());
        assert!(sink_reason_as("pathlib", "os", Mode::Reference).is_some());
        assert!(sink_reason_as("functools", "reduce", Mode::Reference).is_some());
        assert!(sink_reason_as("types", "FunctionType", Mode::Reference).is_some());
    }

    #[test]
    fn findings_say_what_a_sink_does() {
        let r = sink_reason("os", "system").unwrap_or_default();
        assert!(r.contains("runs shell commands"), "{r}");
        let r = sink_reason("builtins", "eval").unwrap_or_default();
        assert!(r.contains("evaluates a string as Python code"), "{r}");
        let r = sink_reason("spacy.tokens.doc", "unpickle_doc").unwrap_or_default();
        assert!(r.contains("nested bytes"), "{r}");
        // Every `does` key is a listed module or name, and every carve-out sits in a sink.
        let f: SinkFile = serde_saphyr::from_str(SINKS_YAML).unwrap_or_else(|e| panic!("{e}"));
        for k in f.does.keys() {
            assert!(
                f.modules.contains(k) || f.names.contains(k),
                "does: {k} is not a sink"
            );
        }
        for (k, modes) in &f.rebuilders {
            assert!(k.contains('.') && !modes.is_empty(), "rebuilders: {k}");
            for m in modes {
                assert!(
                    m == "-" || parse_mode(m).is_some(),
                    "rebuilders: {k}: `{m}`"
                );
            }
        }
        assert_eq!(
            rebuilder_args("torch._tensor", "_rebuild_from_type_v2"),
            Some(&[Some(Mode::Call), Some(Mode::New)][..])
        );
        for i in &f.inert {
            let (m, n) = i.name.rsplit_once('.').unwrap_or_default();
            assert!(
                sink_reason(m, n).is_some(),
                "inert: {} is not in a sink",
                i.name
            );
            assert!(!i.reason.is_empty());
        }
    }
}
