//! Allow-list policies: the YAML language, embedded presets and matching.

pub mod sinks;

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Embedded presets, by name: (file name, YAML text).
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
];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}:{line}: policy `{policy}` extends unknown policy `{target}`")]
    UnknownExtends {
        file: String,
        line: u64,
        policy: String,
        target: String,
    },
    #[error("policy `extends` cycle: {0}")]
    Cycle(String),
    #[error(
        "{file}:{line}: `{entry}` in policy `{policy}` is a code-execution sink ({reason}); \
             allowing it needs an explicit acceptance of code execution"
    )]
    SinkAllowed {
        file: String,
        line: u64,
        policy: String,
        entry: String,
        reason: String,
    },
    #[error("{file}:{line}: `{entry}`: a `*` may only appear in the last name component, within one module")]
    BadPattern {
        file: String,
        line: u64,
        entry: String,
    },
    #[error("unknown policy `{0}`")]
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildMode {
    None,
    Instances,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersistentIds {
    None,
    TorchStorage,
    Any,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[allow(dead_code)]
    version: u32,
    policies: BTreeMap<String, Spanned<PolicyDef>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyDef {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    extends: Vec<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    containers: Vec<Spanned<String>>,
    #[serde(default)]
    build: Option<BuildMode>,
    #[serde(default)]
    persistent_ids: Option<PersistentIds>,
}

/// Where a policy entry was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: u64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A resolved policy: every `extends` flattened.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub origin: Origin,
    allow: HashMap<String, Origin>,
    /// `module.Prefix*Suffix` patterns: (module, prefix, suffix).
    patterns: Vec<(String, String, String, Origin)>,
    deny: HashMap<String, Origin>,
    containers: HashSet<String>,
    pub build: BuildMode,
    pub persistent_ids: PersistentIds,
}

impl Policy {
    /// Where the allow entry for `qualified` is written, when the policy allows it.
    pub fn allowed(&self, module: &str, name: &str) -> Option<&Origin> {
        let q = format!("{module}.{name}");
        if self.deny.contains_key(&q) {
            return None;
        }
        if let Some(o) = self.allow.get(&q) {
            return Some(o);
        }
        self.patterns
            .iter()
            .find(|(m, pre, suf, _)| {
                m == module
                    && !name.contains('.')
                    && name.len() >= pre.len() + suf.len()
                    && name.starts_with(pre.as_str())
                    && name.ends_with(suf.as_str())
            })
            .map(|p| &p.3)
    }

    pub fn is_container(&self, qualified: &str) -> bool {
        self.containers.contains(qualified)
    }

    pub fn allow_count(&self) -> usize {
        self.allow.len() + self.patterns.len()
    }
}

struct RawPolicy {
    file: String,
    line: u64,
    def: PolicyDef,
}

/// A set of policy definitions from one or more YAML files.
#[derive(Default)]
pub struct PolicySet {
    defs: HashMap<String, RawPolicy>,
}

impl PolicySet {
    /// The embedded presets.
    pub fn embedded() -> Result<Self, PolicyError> {
        let mut set = PolicySet::default();
        for (_, file, text) in PRESETS {
            set.add_yaml(file, text)?;
        }
        Ok(set)
    }

    pub fn add_yaml(&mut self, file: &str, text: &str) -> Result<(), PolicyError> {
        let parsed: PolicyFile = serde_saphyr::from_str(text).map_err(|e| PolicyError::Yaml {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        for (name, def) in parsed.policies {
            let line = def.defined.line();
            self.defs.insert(
                name,
                RawPolicy {
                    file: file.to_string(),
                    line,
                    def: def.value,
                },
            );
        }
        Ok(())
    }

    /// Flattens `name` and everything it extends.
    pub fn resolve(&self, name: &str) -> Result<Policy, PolicyError> {
        let raw = self
            .defs
            .get(name)
            .ok_or_else(|| PolicyError::Unknown(name.to_string()))?;
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
        };
        let mut seen = vec![name.to_string()];
        self.merge_into(&mut policy, name, &mut seen)?;
        Ok(policy)
    }

    fn merge_into(
        &self,
        p: &mut Policy,
        name: &str,
        path: &mut Vec<String>,
    ) -> Result<(), PolicyError> {
        let raw = self
            .defs
            .get(name)
            .ok_or_else(|| PolicyError::Unknown(name.to_string()))?;
        for parent in &raw.def.extends {
            if path.contains(&parent.value) {
                path.push(parent.value.clone());
                return Err(PolicyError::Cycle(path.join(" -> ")));
            }
            if !self.defs.contains_key(&parent.value) {
                return Err(PolicyError::UnknownExtends {
                    file: raw.file.clone(),
                    line: parent.referenced.line(),
                    policy: name.to_string(),
                    target: parent.value.clone(),
                });
            }
            path.push(parent.value.clone());
            self.merge_into(p, &parent.value, path)?;
            path.pop();
        }
        let origin = |s: &Spanned<String>| Origin {
            file: raw.file.clone(),
            line: s.referenced.line(),
        };
        for entry in &raw.def.allow {
            let e = entry.value.trim();
            let (module, qual) = split_module(e);
            if let Some(reason) = sinks::sink_reason(module, qual) {
                return Err(PolicyError::SinkAllowed {
                    file: raw.file.clone(),
                    line: entry.referenced.line(),
                    policy: name.to_string(),
                    entry: e.to_string(),
                    reason,
                });
            }
            if e.contains('*') {
                let (m, last) = e.rsplit_once('.').unwrap_or(("", e));
                let stars = last.matches('*').count();
                if m.is_empty() || m.contains('*') || stars != 1 {
                    return Err(PolicyError::BadPattern {
                        file: raw.file.clone(),
                        line: entry.referenced.line(),
                        entry: e.to_string(),
                    });
                }
                let (pre, suf) = last.split_once('*').unwrap_or((last, ""));
                p.patterns.push((
                    m.to_string(),
                    pre.to_string(),
                    suf.to_string(),
                    origin(entry),
                ));
            } else {
                p.allow
                    .entry(e.to_string())
                    .or_insert_with(|| origin(entry));
            }
        }
        for entry in &raw.def.deny {
            p.deny.insert(entry.value.trim().to_string(), origin(entry));
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
        Ok(())
    }
}

/// Splits `module.qualname` at the first component that starts with an uppercase letter
/// or, failing that, the last dot: good enough for sink classification of entries.
fn split_module(entry: &str) -> (&str, &str) {
    entry.rsplit_once('.').unwrap_or(("", entry))
}

/// The built-in default policy (`policies/default.yaml`).
pub fn builtin_default() -> Result<Policy, PolicyError> {
    PolicySet::embedded()?.resolve("default")
}

/// A policy made of the named embedded presets, for `scan --preset`.
pub fn from_presets(names: &[String]) -> Result<Policy, PolicyError> {
    let set = PolicySet::embedded()?;
    let mut combined = PolicySet {
        defs: HashMap::new(),
    };
    for (k, v) in &set.defs {
        combined.defs.insert(
            k.clone(),
            RawPolicy {
                file: v.file.clone(),
                line: v.line,
                def: clone_def(&v.def),
            },
        );
    }
    let extends = names
        .iter()
        .map(|n| {
            Spanned::new(
                n.clone(),
                serde_saphyr::Location::UNKNOWN,
                serde_saphyr::Location::UNKNOWN,
            )
        })
        .collect();
    combined.defs.insert(
        "--preset".into(),
        RawPolicy {
            file: "<command line>".into(),
            line: 0,
            def: PolicyDef {
                extends,
                ..PolicyDef::default()
            },
        },
    );
    combined.resolve("--preset")
}

fn clone_def(d: &PolicyDef) -> PolicyDef {
    PolicyDef {
        description: d.description.clone(),
        extends: d.extends.clone(),
        allow: d.allow.clone(),
        deny: d.deny.clone(),
        containers: d.containers.clone(),
        build: d.build,
        persistent_ids: d.persistent_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_resolves_and_allows_state_dicts() {
        let p = builtin_default().map_err(|e| e.to_string());
        let p = match p {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert!(p.allowed("collections", "OrderedDict").is_some());
        assert!(p.allowed("torch._utils", "_rebuild_tensor_v2").is_some());
        assert!(p.allowed("os", "system").is_none());
        assert!(p.is_container("collections.OrderedDict"));
        assert_eq!(p.persistent_ids, PersistentIds::TorchStorage);
        assert_eq!(p.build, BuildMode::Instances);
    }

    #[test]
    fn sinks_cannot_be_allowed() {
        let mut set = PolicySet::default();
        let yaml = "version: 1\npolicies:\n  p:\n    allow:\n      - builtins.eval\n";
        assert!(set.add_yaml("t.yaml", yaml).is_ok());
        let err = set
            .resolve("p")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("t.yaml:5"), "{err}");
        assert!(err.contains("code-execution sink"), "{err}");
    }

    #[test]
    fn extends_cycles_are_errors() {
        let mut set = PolicySet::default();
        let yaml = "version: 1\npolicies:\n  a:\n    extends: [b]\n  b:\n    extends: [a]\n";
        assert!(set.add_yaml("t.yaml", yaml).is_ok());
        assert!(matches!(set.resolve("a"), Err(PolicyError::Cycle(_))));
    }

    #[test]
    fn patterns_stay_within_a_module() {
        let mut set = PolicySet::default();
        let yaml = "version: 1\npolicies:\n  p:\n    allow: ['torch.*Storage']\n";
        assert!(set.add_yaml("t.yaml", yaml).is_ok());
        let p = set.resolve("p").ok();
        let p = p.as_ref();
        assert!(p.and_then(|p| p.allowed("torch", "FloatStorage")).is_some());
        assert!(p
            .and_then(|p| p.allowed("torch.x", "FloatStorage"))
            .is_none());
        assert!(p
            .and_then(|p| p.allowed("torch", "a.FloatStorage"))
            .is_none());
    }
}
