//! Allow-list policies: definitions, embedded presets, flattening and matching.

pub mod sinks;

use crate::diag::Diag;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// Embedded presets, by name: (name, file name, YAML text).
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "default",
        "policies/default.yaml",
        include_str!("../../policies/default.yaml"),
    ),
    (
        "python-data",
        "policies/python-data.yaml",
        include_str!("../../policies/python-data.yaml"),
    ),
    (
        "torch",
        "policies/torch.yaml",
        include_str!("../../policies/torch.yaml"),
    ),
    (
        "numpy",
        "policies/numpy.yaml",
        include_str!("../../policies/numpy.yaml"),
    ),
    (
        "sklearn",
        "policies/sklearn.yaml",
        include_str!("../../policies/sklearn.yaml"),
    ),
    (
        "pandas",
        "policies/pandas.yaml",
        include_str!("../../policies/pandas.yaml"),
    ),
    (
        "transformers",
        "policies/transformers.yaml",
        include_str!("../../policies/transformers.yaml"),
    ),
    (
        "joblib",
        "policies/joblib.yaml",
        include_str!("../../policies/joblib.yaml"),
    ),
    (
        "omegaconf",
        "policies/omegaconf.yaml",
        include_str!("../../policies/omegaconf.yaml"),
    ),
    (
        "boosting",
        "policies/boosting.yaml",
        include_str!("../../policies/boosting.yaml"),
    ),
];

/// How BUILD (`__setstate__`) is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildMode {
    /// BUILD is refused everywhere.
    None,
    /// BUILD is allowed on objects made by allowed callables.
    Instances,
}

/// Which persistent ids may reach the loader's `persistent_load`.
impl BuildMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildMode::None => "none",
            BuildMode::Instances => "instances",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PersistentIds {
    None,
    /// `('storage', <storage class>, key, location, numel[, view])` as torch.save writes them.
    TorchStorage,
    Any,
}

impl PersistentIds {
    pub fn as_str(self) -> &'static str {
        match self {
            PersistentIds::None => "none",
            PersistentIds::TorchStorage => "torch-storage",
            PersistentIds::Any => "any",
        }
    }
}

/// How a pickle may use an allowed global, narrowest first. Each mode includes the ones
/// before it; when several policies of an `extends` chain list a name, the widest wins.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Appears as a value (an argument of an allowed call, BUILD state, an item) and is
    /// never called by the pickle: e.g. a function stored in a `functools.partial`, the
    /// subtype handed to numpy's `_reconstruct`.
    Reference,
    /// Also instantiated without running `__init__`: the class of NEWOBJ/NEWOBJ_EX, of
    /// `copyreg.__newobj__`/`__newobj_ex__`, or of `copyreg._reconstructor(cls, object, …)`,
    /// followed by BUILD of its state (dataclasses such as `TrainingArguments`).
    New,
    /// Also called (REDUCE, INST, OBJ): its constructor or body runs with the pickle's
    /// arguments. What a plain string entry means.
    #[default]
    Call,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Reference => "reference",
            Mode::New => "new",
            Mode::Call => "call",
        }
    }

    /// What a use in this mode does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Reference => "referenced as a value (never called)",
            Mode::New => "instantiated without __init__ (NEWOBJ or a copyreg reconstructor)",
            Mode::Call => "called",
        }
    }
}

/// An allow entry: `module.qualname`, or a mapping that can accept a known sink.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AllowEntry {
    Name(String),
    Detailed(DetailedAllow),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DetailedAllow {
    /// Exact `module.qualname` (a `*` only within the last component).
    pub name: String,
    /// Required to allow a known code-execution sink: loading such a file runs code.
    #[serde(default)]
    pub accept_code_execution: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// How the pickle may use it (default `call`).
    #[serde(default)]
    pub mode: Mode,
}

impl AllowEntry {
    pub fn name(&self) -> &str {
        match self {
            AllowEntry::Name(n) => n,
            AllowEntry::Detailed(d) => &d.name,
        }
    }

    fn accepts_code_execution(&self) -> bool {
        matches!(self, AllowEntry::Detailed(d) if d.accept_code_execution)
    }

    pub fn mode(&self) -> Mode {
        match self {
            AllowEntry::Name(_) => Mode::Call,
            AllowEntry::Detailed(d) => d.mode,
        }
    }
}

/// One named policy as written in YAML.
#[derive(Debug, Clone, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDef {
    #[serde(default)]
    pub description: Option<String>,
    /// Policies (embedded presets or your own) whose entries this one includes.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub extends: Vec<Spanned<String>>,
    /// Exact `module.qualname` globals the pickle may import and call.
    #[serde(default)]
    #[schemars(with = "Vec<AllowEntry>")]
    pub allow: Vec<Spanned<AllowEntry>>,
    /// Entries refused even when an extended policy allows them.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny: Vec<Spanned<String>>,
    /// Classes whose instances may receive SETITEM(S)/APPEND(S)/ADDITEMS (method calls).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub containers: Vec<Spanned<String>>,
    #[serde(default)]
    pub build: Option<BuildMode>,
    #[serde(default)]
    pub persistent_ids: Option<PersistentIds>,
    /// What the sanitizer may put in place of a refused call whose result the loaded object
    /// needs: only these declared, determined replacements, never a guess.
    #[serde(default)]
    #[schemars(with = "Vec<Substitute>")]
    pub substitutes: Vec<Spanned<Substitute>>,
}

/// How the refused value is used, which decides what can stand in for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UsedAs {
    /// Only filled by SETITEM(S) (and BUILD of attributes): `with()` is called with no
    /// arguments instead ("Bad Dict": a state dict's root is `collections.OrderedDict()`).
    Mapping,
    /// Only called, with arguments of the shape `args`: `with` is called instead (an
    /// `eval` chain that returns `torch._utils._rebuild_tensor_v2`).
    Callable,
}

/// Where a mapping substitute applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// The loaded object itself.
    #[default]
    Root,
    /// Any value in the loaded object.
    Any,
}

/// A replacement the sanitizer may use for a refused call.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Substitute {
    pub used_as: UsedAs,
    /// `module.qualname` of the allowed global put in its place.
    pub with: String,
    /// For `mapping`: the position it applies to (default `root`).
    #[serde(default)]
    pub at: Position,
    /// For `callable`: the argument shape, one of persistent-id, int, float, bool, str,
    /// bytes, none, tuple, list, dict, any; a trailing `?` makes an argument optional.
    #[serde(default)]
    pub args: Vec<String>,
}

/// The argument kinds a `callable` substitute can require.
pub const ARG_KINDS: &[&str] = &[
    "persistent-id",
    "int",
    "float",
    "bool",
    "str",
    "bytes",
    "none",
    "tuple",
    "list",
    "dict",
    "any",
];

/// Where a policy entry was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: String,
    pub line: u64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// (line, column, byte span) of a YAML location.
pub fn place(l: &Location) -> (u64, u64, Option<(usize, usize)>) {
    let span = l.span();
    let s = span
        .byte_offset()
        .zip(span.byte_len())
        .map(|(o, n)| (o as usize, n as usize));
    (l.line(), l.column(), s)
}

pub fn diag_at(file: &str, l: &Location, message: String, label: &str) -> Diag {
    let (line, col, span) = place(l);
    Diag::new(file, message).at(line, col, span).label(label)
}

/// How many policies one `extends` chain may stack (the presets use two or three).
pub const MAX_EXTENDS_DEPTH: usize = 64;

/// A resolved policy: every `extends` flattened.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub origin: Origin,
    allow: HashMap<String, (Origin, Mode)>,
    /// `module.Prefix*Suffix` patterns: (module, prefix, suffix).
    patterns: Vec<(String, String, String, Origin, Mode)>,
    deny: HashMap<String, Origin>,
    containers: HashSet<String>,
    pub build: BuildMode,
    pub persistent_ids: PersistentIds,
    pub substitutes: Vec<(Substitute, Origin)>,
    /// Allow entries that matched something (for "matched nothing" warnings).
    used: Mutex<HashSet<Origin>>,
}

impl Policy {
    /// Where the allow entry for `module.name` is written, when the policy allows it in
    /// some mode.
    pub fn allowed(&self, module: &str, name: &str) -> Option<&Origin> {
        self.allowed_mode(module, name).map(|(o, _)| o)
    }

    /// The allow entry for `module.name` and the widest use it permits.
    pub fn allowed_mode(&self, module: &str, name: &str) -> Option<(&Origin, Mode)> {
        let q = format!("{module}.{name}");
        if self.deny.contains_key(&q) {
            return None;
        }
        let hit = self.allow.get(&q).map(|(o, m)| (o, *m)).or_else(|| {
            self.patterns
                .iter()
                .find(|(m, pre, suf, _, _)| {
                    m == module
                        && !name.contains('.')
                        && name.len() >= pre.len() + suf.len()
                        && name.starts_with(pre.as_str())
                        && name.ends_with(suf.as_str())
                })
                .map(|p| (&p.3, p.4))
        });
        if let (Some((o, _)), Ok(mut used)) = (hit, self.used.lock()) {
            used.insert(o.clone());
        }
        hit
    }

    /// Whether the policy allows `module.name` used as `mode` says.
    pub fn allows_as(&self, module: &str, name: &str, mode: Mode) -> bool {
        self.allowed_mode(module, name)
            .is_some_and(|(_, m)| mode <= m)
    }

    pub fn is_container(&self, qualified: &str) -> bool {
        self.containers.contains(qualified)
    }

    pub fn allow_count(&self) -> usize {
        self.allow.len() + self.patterns.len()
    }

    /// Origins of allow entries that matched a global so far.
    pub fn used(&self) -> HashSet<Origin> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

struct RawPolicy {
    file: String,
    line: u64,
    def: PolicyDef,
}

/// Policy definitions from the embedded presets and a repository's configuration.
#[derive(Default)]
pub struct PolicySet {
    defs: HashMap<String, RawPolicy>,
}

impl PolicySet {
    /// The embedded presets.
    pub fn embedded() -> Result<Self, Diag> {
        let mut set = PolicySet::default();
        for (_, file, text) in PRESETS {
            let parsed = crate::config::parse(file, text)?;
            set.add(file, parsed.policies);
        }
        Ok(set)
    }

    /// Adds (or replaces) definitions read from `file`.
    pub fn add(&mut self, file: &str, defs: BTreeMap<String, Spanned<PolicyDef>>) {
        for (name, def) in defs {
            let line = def.referenced.line();
            self.defs.insert(
                name,
                RawPolicy {
                    file: file.to_string(),
                    line,
                    def: def.value,
                },
            );
        }
    }

    /// Adds a synthetic policy (command line `--preset`s).
    pub fn add_synthetic(&mut self, name: &str, extends: &[String]) {
        let extends = extends
            .iter()
            .map(|n| Spanned::new(n.clone(), Location::UNKNOWN, Location::UNKNOWN))
            .collect();
        self.defs.insert(
            name.to_string(),
            RawPolicy {
                file: "<command line>".into(),
                line: 0,
                def: PolicyDef {
                    extends,
                    ..PolicyDef::default()
                },
            },
        );
    }

    pub fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.defs.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Where `name` is defined.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.defs.get(name).map(|r| Origin {
            file: r.file.clone(),
            line: r.line,
        })
    }

    /// Allow entries written in `file`, with their origins.
    pub fn allow_entries_in(&self, file: &str) -> Vec<(String, Origin)> {
        let mut v = Vec::new();
        for raw in self.defs.values().filter(|r| r.file == file) {
            for e in &raw.def.allow {
                v.push((
                    e.value.name().to_string(),
                    Origin {
                        file: raw.file.clone(),
                        line: e.referenced.line(),
                    },
                ));
            }
        }
        v.sort_by_key(|a| a.1.line);
        v
    }

    fn unknown_parent(&self, file: &str, name: &str, parent: &Spanned<String>) -> Diag {
        diag_at(
            file,
            &parent.referenced,
            format!(
                "policy `{name}` extends unknown policy `{}` (known: {})",
                parent.value,
                self.names().join(", ")
            ),
            "no such policy",
        )
    }

    /// Every error in the definition of `name` itself (unknown `extends`, each bad allow
    /// entry, each bad substitute), all of them rather than the first; then, when it has
    /// none, the errors of resolving it (cycles, depth). `policy check` reports them in one run.
    pub fn problems(&self, name: &str) -> Vec<Diag> {
        let Some(raw) = self.defs.get(name) else {
            return vec![Diag::new("<policies>", format!("unknown policy `{name}`"))];
        };
        let mut out = Vec::new();
        for parent in &raw.def.extends {
            if !self.defs.contains_key(&parent.value) {
                out.push(self.unknown_parent(&raw.file, name, parent));
            }
        }
        out.extend(
            raw.def
                .allow
                .iter()
                .filter_map(|e| check_allow(&raw.file, name, e).err()),
        );
        out.extend(
            raw.def
                .substitutes
                .iter()
                .filter_map(|e| check_substitute(&raw.file, name, e).err()),
        );
        if out.is_empty() {
            if let Err(e) = self.resolve(name) {
                out.push(e);
            }
        }
        out
    }

    /// Flattens `name` and everything it extends.
    pub fn resolve(&self, name: &str) -> Result<Policy, Diag> {
        let raw = self
            .defs
            .get(name)
            .ok_or_else(|| Diag::new("<policies>", format!("unknown policy `{name}`")))?;
        let mut policy = Policy {
            name: name.to_string(),
            origin: Origin {
                file: raw.file.clone(),
                line: raw.line,
            },
            allow: HashMap::new(),
            patterns: Vec::new(),
            deny: HashMap::new(),
            containers: HashSet::new(),
            build: BuildMode::None,
            persistent_ids: PersistentIds::None,
            substitutes: Vec::new(),
            used: Mutex::new(HashSet::new()),
        };
        let mut path = vec![name.to_string()];
        let mut merged = HashSet::new();
        self.merge_into(&mut policy, name, &mut path, &mut merged)?;
        Ok(policy)
    }

    /// Merges `name`'s parents (depth first, in order), then `name` itself, into `p`.
    /// Each policy is merged once per resolution (`merged`), so a diamond of `extends`
    /// costs its number of edges, not its number of paths.
    fn merge_into(
        &self,
        p: &mut Policy,
        name: &str,
        path: &mut Vec<String>,
        merged: &mut HashSet<String>,
    ) -> Result<(), Diag> {
        let Some(raw) = self.defs.get(name) else {
            return Err(Diag::new("<policies>", format!("unknown policy `{name}`")));
        };
        merged.insert(name.to_string());
        for parent in &raw.def.extends {
            if path.contains(&parent.value) {
                path.push(parent.value.clone());
                return Err(diag_at(
                    &raw.file,
                    &parent.referenced,
                    format!("policy `extends` cycle: {}", path.join(" -> ")),
                    "extending this makes a cycle",
                ));
            }
            if !self.defs.contains_key(&parent.value) {
                return Err(self.unknown_parent(&raw.file, name, parent));
            }
            if merged.contains(&parent.value) {
                continue;
            }
            if path.len() >= MAX_EXTENDS_DEPTH {
                return Err(diag_at(
                    &raw.file,
                    &parent.referenced,
                    format!(
                        "policy `extends` chain deeper than {MAX_EXTENDS_DEPTH} levels: {} -> {}",
                        path.join(" -> "),
                        parent.value
                    ),
                    "too deep",
                ));
            }
            path.push(parent.value.clone());
            self.merge_into(p, &parent.value, path, merged)?;
            path.pop();
        }
        let origin = |l: &Location| Origin {
            file: raw.file.clone(),
            line: l.line(),
        };
        for entry in &raw.def.allow {
            check_allow(&raw.file, name, entry)?;
            let e = entry.value.name().trim();
            let (module, qual) = e.rsplit_once('.').unwrap_or(("", e));
            let mode = entry.value.mode();
            if e.contains('*') {
                let (pre, suf) = qual.split_once('*').unwrap_or((qual, ""));
                p.patterns.push((
                    module.to_string(),
                    pre.to_string(),
                    suf.to_string(),
                    origin(&entry.referenced),
                    mode,
                ));
            } else {
                // The first entry keeps its origin; the widest mode of all entries wins.
                let slot = p
                    .allow
                    .entry(e.to_string())
                    .or_insert_with(|| (origin(&entry.referenced), mode));
                slot.1 = slot.1.max(mode);
            }
        }
        for entry in &raw.def.deny {
            p.deny
                .insert(entry.value.trim().to_string(), origin(&entry.referenced));
        }
        for entry in &raw.def.containers {
            p.containers.insert(entry.value.trim().to_string());
        }
        if let Some(b) = raw.def.build {
            p.build = p.build.max(b);
        }
        if let Some(pid) = raw.def.persistent_ids {
            p.persistent_ids = p.persistent_ids.max(pid);
        }
        for entry in &raw.def.substitutes {
            check_substitute(&raw.file, name, entry)?;
            let w = entry.value.with.trim();
            p.substitutes.push((
                Substitute {
                    with: w.to_string(),
                    ..entry.value.clone()
                },
                origin(&entry.referenced),
            ));
        }
        Ok(())
    }
}

/// The checks of one allow entry: a `module.qualname` shape, a known sink only with explicit
/// acceptance, a `*` only once in the last component.
fn check_allow(file: &str, name: &str, entry: &Spanned<AllowEntry>) -> Result<(), Diag> {
    let e = entry.value.name().trim();
    if e.is_empty() || e.contains(char::is_whitespace) || !e.contains('.') {
        return Err(diag_at(
            file,
            &entry.referenced,
            format!("`{e}` in policy `{name}` is not a `module.qualname` entry"),
            "expected module.qualname",
        ));
    }
    let (module, qual) = e.rsplit_once('.').unwrap_or(("", e));
    let mode = entry.value.mode();
    if let Some(reason) = sinks::sink_reason_as(module, qual, mode) {
        if !entry.value.accepts_code_execution() {
            return Err(diag_at(
                file,
                &entry.referenced,
                format!(
                    "`{e}` in policy `{name}` is a code-execution sink ({reason}); allowing it needs \
                     `{{name: {e}, accept-code-execution: true, reason: ...}}`"
                ),
                "known code-execution sink",
            ));
        }
    }
    if e.contains('*') {
        let stars = qual.matches('*').count();
        if module.is_empty() || module.contains('*') || stars != 1 {
            return Err(diag_at(
                file,
                &entry.referenced,
                format!("`{e}`: a `*` may only appear once, in the last name component (within one module)"),
                "pattern crosses a module boundary",
            ));
        }
    }
    Ok(())
}

/// The checks of one substitute: an exact, safe `with:` and an argument shape that fits
/// how it is used.
fn check_substitute(file: &str, name: &str, entry: &Spanned<Substitute>) -> Result<(), Diag> {
    let sub = &entry.value;
    let bad = |msg: String, label: &str| diag_at(file, &entry.referenced, msg, label);
    let w = sub.with.trim();
    let Some((module, qual)) = w.rsplit_once('.').filter(|_| !w.contains('*')) else {
        return Err(bad(
            format!("substitute `with: {w}` in policy `{name}` is not an exact `module.qualname`"),
            "expected module.qualname",
        ));
    };
    if let Some(reason) = sinks::sink_reason(module, qual) {
        return Err(bad(
            format!(
                "substitute `with: {w}` in policy `{name}` is a code-execution sink ({reason})"
            ),
            "a substitute must be safe to call",
        ));
    }
    match sub.used_as {
                UsedAs::Mapping if !sub.args.is_empty() => {
                    return Err(bad(
                        format!("a `mapping` substitute in policy `{name}` is called with no arguments; `args` does not apply"),
                        "remove `args`",
                    ))
                }
                UsedAs::Callable if sub.args.is_empty() => {
                    return Err(bad(
                        format!("a `callable` substitute in policy `{name}` needs `args`: the argument shape it must be applied to"),
                        "add `args`",
                    ))
                }
                _ => {}
            }
    let mut optional = false;
    for a in &sub.args {
        let (kind, opt) = match a.strip_suffix('?') {
            Some(k) => (k, true),
            None => (a.as_str(), false),
        };
        if !ARG_KINDS.contains(&kind) {
            return Err(bad(
                format!(
                    "unknown argument kind `{a}` in policy `{name}` (known: {})",
                    ARG_KINDS.join(", ")
                ),
                "unknown argument kind",
            ));
        }
        if optional && !opt {
            return Err(bad(
                        format!("`{a}` follows an optional argument in policy `{name}`; only trailing arguments can be optional"),
                        "optional arguments come last",
                    ));
        }
        optional |= opt;
    }
    Ok(())
}

/// The built-in default policy (`policies/default.yaml`).
pub fn builtin_default() -> Result<Policy, Diag> {
    PolicySet::embedded()?.resolve("default")
}

/// A policy made of the named embedded presets, for `scan --preset`.
pub fn from_presets(names: &[String]) -> Result<Policy, Diag> {
    let mut set = PolicySet::embedded()?;
    set.add_synthetic("--preset", names);
    set.resolve("--preset")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(yaml: &str) -> PolicySet {
        let mut set = PolicySet::embedded().unwrap_or_else(|e| panic!("{e}"));
        let parsed = crate::config::parse("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
        set.add("t.yaml", parsed.policies);
        set
    }

    #[test]
    fn default_policy_resolves_and_allows_state_dicts() {
        let p = builtin_default().unwrap_or_else(|e| panic!("{e}"));
        assert!(p.allowed("collections", "OrderedDict").is_some());
        assert!(p.allowed("torch._utils", "_rebuild_tensor_v2").is_some());
        assert!(p.allowed("os", "system").is_none());
        assert!(p.is_container("collections.OrderedDict"));
        assert_eq!(p.persistent_ids, PersistentIds::TorchStorage);
        assert_eq!(p.build, BuildMode::Instances);
    }

    #[test]
    fn sinks_need_explicit_acceptance() {
        let s = set("version: 1\npolicies:\n  p:\n    allow:\n      - builtins.eval\n");
        let err = s
            .resolve("p")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("t.yaml:5:9: `builtins.eval` in policy `p` is a code-execution sink"),
            "{err}"
        );
        let s = set(
            "version: 1\npolicies:\n  p:\n    allow:\n      - {name: builtins.eval, accept-code-execution: true, reason: test}\n",
        );
        assert!(s
            .resolve("p")
            .is_ok_and(|p| p.allowed("builtins", "eval").is_some()));
    }

    #[test]
    fn extends_cycles_are_errors_with_location() {
        let s = set("version: 1\npolicies:\n  a:\n    extends: [b]\n  b:\n    extends: [a]\n");
        let err = s
            .resolve("a")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "t.yaml:6:15: policy `extends` cycle: a -> b -> a");
    }

    /// `extends: [l{i+1}a, l{i+1}b]` for two policies per level: 2^depth paths to the bottom.
    fn diamond(depth: usize) -> String {
        let mut y = String::from("version: 1\npolicies:\n");
        for i in 0..depth {
            for side in ["a", "b"] {
                y.push_str(&format!(
                    "  l{i}{side}:\n    extends: [l{}a, l{}b]\n",
                    i + 1,
                    i + 1
                ));
            }
        }
        for side in ["a", "b"] {
            y.push_str(&format!(
                "  l{depth}{side}:\n    allow: [collections.OrderedDict]\n    deny: [x.y]\n"
            ));
        }
        y
    }

    #[test]
    fn extends_diamonds_resolve_each_policy_once() {
        let s = set(&diamond(40));
        let started = std::time::Instant::now();
        let p = s.resolve("l0a").unwrap_or_else(|e| panic!("{e}"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(p.allowed("collections", "OrderedDict").is_some());
        assert_eq!(p.patterns.len(), 0);
        assert_eq!(p.deny.len(), 1);
        // Cycles are still found, with their location, through shared parents.
        let mut y = diamond(3);
        y.push_str("  l0c:\n    extends: [l1a, l0d]\n  l0d:\n    extends: [l1b, l0c]\n");
        let s = set(&y);
        let err = s
            .resolve("l0c")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.ends_with("policy `extends` cycle: l0c -> l0d -> l0c"),
            "{err}"
        );
        assert!(err.starts_with("t.yaml:"), "{err}");
    }

    #[test]
    fn extends_chains_have_a_depth_limit() {
        let mut y = String::from("version: 1\npolicies:\n");
        for i in 0..100 {
            y.push_str(&format!("  p{i}:\n    extends: [p{}]\n", i + 1));
        }
        y.push_str("  p100: {}\n");
        let s = set(&y);
        let err = s
            .resolve("p0")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("deeper than 64 levels"), "{err}");
        assert!(err.starts_with("t.yaml:"), "{err}");
        assert!(s.resolve("p50").is_ok());
    }

    #[test]
    fn patterns_stay_within_a_module() {
        let s = set("version: 1\npolicies:\n  p:\n    allow: ['torch.*Storage']\n");
        let p = s.resolve("p").ok();
        let p = p.as_ref();
        assert!(p.and_then(|p| p.allowed("torch", "FloatStorage")).is_some());
        assert!(p
            .and_then(|p| p.allowed("torch.x", "FloatStorage"))
            .is_none());
        assert!(p
            .and_then(|p| p.allowed("torch", "a.FloatStorage"))
            .is_none());
        let s = set("version: 1\npolicies:\n  p:\n    allow: ['torch*.Storage']\n");
        assert!(s.resolve("p").is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let s = set(
            "version: 1\npolicies:\n  p:\n    extends: [torch]\n    deny: [torch.FloatStorage]\n",
        );
        let p = s.resolve("p").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.allowed("torch", "FloatStorage").is_none());
        assert!(p.allowed("torch", "HalfStorage").is_some());
    }
}
