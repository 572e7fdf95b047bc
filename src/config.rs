//! The repository configuration (`.picklegate.yaml`): policies, path rules, exclusions,
//! exceptions and rule levels. Discovered from the current directory upward; without
//! one, the embedded default applies.

use crate::diag::Diag;
use crate::finding::{Finding, Rule};
use crate::policy::{diag_at, Origin, Policy, PolicyDef, PolicySet};
use globset::{Glob, GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub const CONFIG_NAMES: [&str; 2] = [".picklegate.yaml", ".picklegate.yml"];

/// A policy file: presets use `version` and `policies` only; a repository configuration
/// may use every key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "picklegate configuration",
    description = "picklegate policy file (version 1)"
)]
pub struct ConfigFile {
    /// Format version; must be 1.
    pub version: u32,
    /// Named policies. `extends` may name embedded presets: default, python-data, torch, numpy, sklearn.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, PolicyDef>")]
    pub policies: BTreeMap<String, Spanned<PolicyDef>>,
    /// Path globs mapped to policies; the first matching rule decides.
    #[serde(default)]
    #[schemars(with = "Vec<PathRule>")]
    pub rules: Vec<Spanned<PathRule>>,
    /// The policy for paths no rule matches (default: `default`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default: Option<Spanned<String>>,
    /// Path globs that are never scanned.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
    /// Single files whose findings are accepted, with a reason.
    #[serde(default)]
    #[schemars(with = "Vec<ExceptionDef>")]
    pub exceptions: Vec<Spanned<ExceptionDef>>,
    /// Per-rule levels: `deny` fails the gate, `warn` reports, `allow` drops the finding.
    /// Lowering a critical rule needs the detailed form with `accept-code-execution: true`
    /// and a `reason`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, LevelEntry>")]
    pub levels: BTreeMap<String, Spanned<LevelEntry>>,
    /// Resource budgets for one file (memory, opcodes, decompressed bytes, findings, time).
    #[serde(default)]
    pub budgets: Option<crate::budget::BudgetsDef>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// Globs relative to the repository root (`*` stays within a directory, `**` crosses).
    #[schemars(with = "Vec<String>")]
    pub paths: Vec<Spanned<String>>,
    #[schemars(with = "String")]
    pub policy: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionDef {
    /// Path of one file, relative to the repository root.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// Why the file is accepted (required).
    #[schemars(with = "String")]
    pub reason: Spanned<String>,
    /// Pin to the file's SHA-256 (a Git LFS oid works too): the exception stops applying when the file changes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sha256: Option<Spanned<String>>,
    /// `YYYY-MM-DD`: the exception stops applying after this day.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub expires: Option<Spanned<String>>,
    /// Rule ids the exception covers (default: all).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub rules: Vec<Spanned<String>>,
}

/// A rule's level: a plain `deny | warn | allow`, or the detailed form that a critical rule
/// needs to go below `deny`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LevelEntry {
    Plain(Level),
    Detailed(DetailedLevel),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DetailedLevel {
    pub level: Level,
    /// Required to lower a critical rule (code-execution, unresolved-global, ...): pickles
    /// that run code may then pass the gate.
    #[serde(default)]
    pub accept_code_execution: bool,
    /// Why (required with `accept-code-execution`).
    #[serde(default)]
    pub reason: Option<String>,
}

impl LevelEntry {
    pub fn level(&self) -> Level {
        match self {
            LevelEntry::Plain(l) => *l,
            LevelEntry::Detailed(d) => d.level,
        }
    }

    /// Accepted explicitly, with a reason.
    fn accepted(&self) -> bool {
        matches!(self, LevelEntry::Detailed(d)
            if d.accept_code_execution && d.reason.as_deref().is_some_and(|r| !r.trim().is_empty()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Deny,
    Warn,
    Allow,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Deny => "deny",
            Level::Warn => "warn",
            Level::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "deny" => Some(Level::Deny),
            "warn" => Some(Level::Warn),
            "allow" => Some(Level::Allow),
            _ => None,
        }
    }
}

/// Parses a policy/config file, mapping YAML errors (syntax, unknown keys, wrong types)
/// to a diagnostic at their location.
pub fn parse(file: &str, text: &str) -> Result<ConfigFile, Diag> {
    serde_saphyr::from_str::<ConfigFile>(text).map_err(|e| {
        let full = e.to_string();
        let first = full
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim_start_matches("error: ");
        // The location is rendered separately; drop saphyr's own "line N column M: " prefix.
        let message = match first.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
                rest.to_string()
            }
            _ => first.to_string(),
        };
        match e.location() {
            Some(l) => diag_at(file, &l, message, "here"),
            None => Diag::new(file, message),
        }
    })
}

/// The most data errors one run reports before it stops looking.
const MAX_PARSE_ERRORS: usize = 64;

/// Whether a parse error is about the data (a key, a type, a value) rather than the YAML
/// syntax: only those can be stepped over by dropping the node they are in.
fn is_data_error(message: &str) -> bool {
    [
        "unknown field",
        "missing field",
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "duplicate",
        "expected ",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

/// The text with the YAML node that holds line `line` (1-based) blanked: a sequence item
/// (`- …` and its continuation) or a key with its nested block, each line turned into a
/// comment of the same length. `None` when there is nothing left to blank.
fn blank_node(text: &str, line: u64) -> Option<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let i = usize::try_from(line).ok()?.checked_sub(1)?;
    let first = lines.get(i)?.clone();
    if first.trim().is_empty() {
        return None;
    }
    let own = first.len() - first.trim_start().len();
    let is_item = first.trim_start().starts_with("- ") || first.trim() == "-";
    // Inside a node, every deeper line belongs to it; a block sequence under a key may also
    // sit at the key's own indentation.
    let opens_block = !is_item && first.trim_end().ends_with(':');
    let mut end = i + 1;
    while end < lines.len() {
        let l = &lines[end];
        let t = l.trim_start();
        let depth = l.len() - t.len();
        if t.is_empty()
            || t.starts_with('#')
            || depth > own
            || (opens_block && depth == own && t.starts_with('-'))
        {
            end += 1;
        } else {
            break;
        }
    }
    // A comment of the same byte length: every later byte offset (and so every location
    // the parser reports) stays that of the original text.
    for l in &mut lines[i..end] {
        let n = l.len();
        *l = if n == 0 {
            String::new()
        } else {
            format!("#{}", " ".repeat(n - 1))
        };
    }
    Some(lines.join("\n"))
}

/// [`parse`], continued past data errors: each located error blanks the node it is in and
/// parsing resumes, so one run lists every unknown key and wrong type of the file (like
/// cargo-deny's validation) with the line numbers of the original text. A syntax error ends
/// it. Returns what parsed once the errors were stepped over, and every error.
pub fn parse_all(file: &str, text: &str) -> (Option<ConfigFile>, Vec<Diag>) {
    let mut text = text.to_string();
    let mut errors: Vec<Diag> = Vec::new();
    loop {
        match parse(file, &text) {
            Ok(c) => return (Some(c), errors),
            Err(d) => {
                let next =
                    (d.line > 0 && is_data_error(&d.message) && errors.len() < MAX_PARSE_ERRORS)
                        .then(|| blank_node(&text, d.line))
                        .flatten();
                let repeated = errors
                    .iter()
                    .any(|e| e.line == d.line && e.message == d.message);
                if !repeated {
                    errors.push(d);
                }
                match next {
                    Some(t) if !repeated => text = t,
                    _ => return (None, errors),
                }
            }
        }
    }
}

/// JSON Schema of the configuration language.
pub fn schema() -> String {
    let s = schemars::schema_for!(ConfigFile);
    serde_json::to_string_pretty(&s).unwrap_or_default()
}

#[derive(Debug)]
struct CompiledRule {
    glob: GlobSet,
    patterns: Vec<String>,
    policy: String,
    origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Exception {
    pub path: String,
    pub reason: String,
    pub sha256: Option<String>,
    pub expires: Option<String>,
    pub rules: Vec<Rule>,
    pub origin: Origin,
}

/// Why a path gets the policy it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Rule {
        index: usize,
        pattern: String,
        origin: Origin,
    },
    Default,
    Builtin,
}

/// A loaded configuration: every policy resolved, every glob compiled.
pub struct Config {
    /// The configuration file as written on the command line or found; `None` for the built-in default.
    pub file: Option<PathBuf>,
    pub source: Option<String>,
    /// Paths in rules, exclusions and exceptions are relative to this directory.
    pub root: PathBuf,
    pub set: PolicySet,
    policies: HashMap<String, Policy>,
    rules: Vec<CompiledRule>,
    default_policy: String,
    default_resolved: Policy,
    exclude: GlobSet,
    pub exceptions: Vec<Exception>,
    levels: HashMap<Rule, Level>,
    /// Non-fatal problems (e.g. expired exceptions).
    pub warnings: Vec<Diag>,
    /// Resource budgets for one file (defaults, then the file's `budgets:`).
    pub budget: crate::budget::Budget,
}

/// Today as `YYYY-MM-DD` (UTC), for exception expiry.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
}

/// Finds `.picklegate.yaml`/`.yml` from `start` upward, stopping at the repository root.
pub fn discover(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        for name in CONFIG_NAMES {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        if d.join(".git").exists() {
            return None;
        }
        dir = d.parent();
    }
    None
}

impl Config {
    /// The embedded default only.
    pub fn builtin(root: &Path) -> Result<Config, Vec<Diag>> {
        let set = PolicySet::embedded().map_err(|e| vec![e])?;
        Self::build(None, None, root.to_path_buf(), set, None)
    }

    /// Loads `file` (errors are returned all at once, each with its location).
    pub fn load(file: &Path) -> Result<Config, Vec<Diag>> {
        let display = file.display().to_string();
        let text = std::fs::read_to_string(file)
            .map_err(|e| vec![Diag::new(&display, format!("cannot read: {e}"))])?;
        let root = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Self::from_text(&display, &text, root)
    }

    /// A configuration from `text` (read from a git tree, named `display` in messages),
    /// whose globs are relative to `root`.
    pub fn from_text(display: &str, text: &str, root: PathBuf) -> Result<Config, Vec<Diag>> {
        let display = display.to_string();
        let (parsed, mut errors) = parse_all(&display, text);
        let Some(parsed) = parsed else {
            return Err(errors);
        };
        let mut set = PolicySet::embedded().map_err(|e| vec![e])?;
        if parsed.version != 1 {
            errors.push(Diag::new(
                &display,
                format!("unsupported version {} (expected 1)", parsed.version),
            ));
        }
        let own: Vec<String> = parsed.policies.keys().cloned().collect();
        set.add(&display, parsed.policies);
        // Every policy the file defines must resolve, used or not.
        for name in &own {
            errors.extend(set.problems(name));
        }
        let rest = Rest {
            rules: parsed.rules,
            default: parsed.default,
            exclude: parsed.exclude,
            exceptions: parsed.exceptions,
            levels: parsed.levels,
            budgets: parsed.budgets,
        };
        match Self::build(
            Some(PathBuf::from(&display)),
            Some(text.to_string()),
            root,
            set,
            Some((&display, rest)),
        ) {
            Ok(c) if errors.is_empty() => Ok(c),
            Ok(c) => {
                errors.extend(c.warnings);
                Err(dedup(errors))
            }
            Err(mut more) => {
                errors.append(&mut more);
                Err(dedup(errors))
            }
        }
    }

    fn build(
        file: Option<PathBuf>,
        source: Option<String>,
        root: PathBuf,
        set: PolicySet,
        rest: Option<(&str, Rest)>,
    ) -> Result<Config, Vec<Diag>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        let mut default_policy = "default".to_string();
        let mut exclude = GlobSetBuilder::new();
        let mut exceptions = Vec::new();
        let mut levels = HashMap::new();
        let mut budget = crate::budget::Budget::default();
        let today = today();
        if let Some((display, rest)) = rest {
            if let Some(def) = &rest.budgets {
                budget = budget.with(def);
            }
            for r in rest.rules {
                let mut b = GlobSetBuilder::new();
                let mut patterns = Vec::new();
                if r.value.paths.is_empty() {
                    errors.push(diag_at(
                        display,
                        &r.referenced,
                        "a rule needs at least one path glob".into(),
                        "no `paths`",
                    ));
                }
                for p in &r.value.paths {
                    match glob(&p.value) {
                        Ok(g) => {
                            b.add(g);
                            patterns.push(p.value.clone());
                        }
                        Err(e) => errors.push(diag_at(
                            display,
                            &p.referenced,
                            format!("invalid glob `{}`: {}", p.value, e.kind()),
                            "bad glob",
                        )),
                    }
                }
                if !set.contains(&r.value.policy.value) {
                    errors.push(diag_at(
                        display,
                        &r.value.policy.referenced,
                        format!(
                            "rule names unknown policy `{}` (known: {})",
                            r.value.policy.value,
                            set.names().join(", ")
                        ),
                        "no such policy",
                    ));
                }
                if let Ok(glob) = b.build() {
                    rules.push(CompiledRule {
                        glob,
                        patterns,
                        policy: r.value.policy.value.clone(),
                        origin: Origin {
                            file: display.to_string(),
                            line: r.referenced.line(),
                        },
                    });
                }
            }
            if let Some(d) = rest.default {
                if !set.contains(&d.value) {
                    errors.push(diag_at(
                        display,
                        &d.referenced,
                        format!("`default` names unknown policy `{}`", d.value),
                        "no such policy",
                    ));
                }
                default_policy = d.value;
            }
            for p in &rest.exclude {
                match glob(&p.value) {
                    Ok(g) => {
                        exclude.add(g);
                    }
                    Err(e) => errors.push(diag_at(
                        display,
                        &p.referenced,
                        format!("invalid glob `{}`: {}", p.value, e.kind()),
                        "bad glob",
                    )),
                }
            }
            for ex in rest.exceptions {
                let v = ex.value;
                let origin = Origin {
                    file: display.to_string(),
                    line: ex.referenced.line(),
                };
                if v.reason.value.trim().is_empty() {
                    errors.push(diag_at(
                        display,
                        &v.reason.referenced,
                        "an exception needs a non-empty `reason`".into(),
                        "empty reason",
                    ));
                }
                let sha = v.sha256.as_ref().map(|s| {
                    s.value
                        .trim()
                        .trim_start_matches("sha256:")
                        .to_ascii_lowercase()
                });
                if let (Some(s), Some(sp)) = (&sha, &v.sha256) {
                    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        errors.push(diag_at(
                            display,
                            &sp.referenced,
                            format!("`{}` is not a SHA-256 (64 hex digits)", sp.value),
                            "bad digest",
                        ));
                    }
                }
                if let Some(e) = &v.expires {
                    if !valid_date(&e.value) {
                        errors.push(diag_at(
                            display,
                            &e.referenced,
                            format!("`{}` is not a date (YYYY-MM-DD)", e.value),
                            "bad date",
                        ));
                    } else if e.value.as_str() < today.as_str() {
                        warnings.push(
                            diag_at(
                                display,
                                &e.referenced,
                                format!(
                                    "the exception for `{}` expired on {}; it no longer applies",
                                    v.path.value, e.value
                                ),
                                "expired",
                            )
                            .warning(),
                        );
                    }
                }
                let mut covered = Vec::new();
                for r in &v.rules {
                    match Rule::from_id(&r.value) {
                        Some(rule) => covered.push(rule),
                        None => errors.push(diag_at(
                            display,
                            &r.referenced,
                            format!("unknown rule id `{}`", r.value),
                            "no such rule",
                        )),
                    }
                }
                // Waiving a pickle that runs code is accepted for those exact bytes only:
                // an unpinned exception would also waive whatever replaces the file.
                let critical: Vec<&str> = if v.rules.is_empty() {
                    vec!["all rules"]
                } else {
                    covered
                        .iter()
                        .filter(|r| r.is_critical())
                        .map(|r| r.id())
                        .collect()
                };
                if sha.is_none() && !critical.is_empty() {
                    errors.push(diag_at(
                        display,
                        &v.path.referenced,
                        format!(
                            "the exception for `{}` waives critical rules ({}) without pinning the file: add `sha256:` \
                             (the file's SHA-256 or its Git LFS oid), or list only non-critical rules under `rules:`",
                            v.path.value,
                            critical.join(", ")
                        ),
                        "unpinned critical waiver",
                    ));
                }
                exceptions.push(Exception {
                    path: normalize(&v.path.value),
                    reason: v.reason.value.clone(),
                    sha256: sha,
                    expires: v.expires.as_ref().map(|e| e.value.clone()),
                    rules: covered,
                    origin,
                });
            }
            for (id, level) in rest.levels {
                match Rule::from_id(&id) {
                    Some(rule) => {
                        let l = level.value.level();
                        if rule.is_critical() && l != Level::Deny && !level.value.accepted() {
                            errors.push(diag_at(
                                display,
                                &level.referenced,
                                format!(
                                    "lowering the critical rule `{id}` to {} lets a pickle that runs code pass the gate; \
                                     write it as `{id}: {{level: {}, accept-code-execution: true, reason: \"…\"}}`",
                                    l.as_str(),
                                    l.as_str()
                                ),
                                "critical rule lowered",
                            ));
                        }
                        levels.insert(rule, l);
                    }
                    None => errors.push(diag_at(
                        display,
                        &level.referenced,
                        format!("`levels` names unknown rule id `{id}`"),
                        "no such rule",
                    )),
                }
            }
        }
        let mut policies = HashMap::new();
        let wanted: Vec<String> = rules.iter().map(|r| r.policy.clone()).collect();
        for name in wanted {
            if policies.contains_key(&name) || !set.contains(&name) {
                continue;
            }
            match set.resolve(&name) {
                Ok(p) => {
                    policies.insert(name, p);
                }
                Err(e) => errors.push(e),
            }
        }
        let default_resolved = match set.resolve(&default_policy) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                return Err(errors);
            }
        };
        if !errors.is_empty() {
            errors.extend(warnings);
            return Err(errors);
        }
        Ok(Config {
            default_resolved,
            file,
            source,
            root,
            set,
            policies,
            rules,
            default_policy,
            exclude: exclude.build().unwrap_or_else(|_| GlobSet::empty()),
            exceptions,
            levels,
            warnings,
            budget,
        })
    }

    /// Replaces every rule by one policy made of presets (`scan --preset`).
    pub fn with_presets(mut self, presets: &[String]) -> Result<Config, Diag> {
        self.set.add_synthetic("--preset", presets);
        self.default_resolved = self.set.resolve("--preset")?;
        self.rules.clear();
        self.default_policy = "--preset".into();
        Ok(self)
    }

    /// `path` relative to the configuration root, with `/` separators.
    pub fn relative(&self, path: &Path) -> String {
        let abs = std::fs::canonicalize(path).ok();
        let root = std::fs::canonicalize(&self.root).ok();
        if let (Some(a), Some(r)) = (&abs, &root) {
            if let Ok(rel) = a.strip_prefix(r) {
                return normalize(&rel.to_string_lossy());
            }
        }
        normalize(&path.to_string_lossy())
    }

    /// A repository path (relative to `workdir`) relative to the configuration root,
    /// without touching the working tree (the file may not exist there).
    pub fn relative_lexical(&self, workdir: &Path, repo_path: &str) -> String {
        let wd = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        match wd.join(repo_path).strip_prefix(&root) {
            Ok(rel) => normalize(&rel.to_string_lossy()),
            Err(_) => normalize(repo_path),
        }
    }

    pub fn is_excluded(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }

    /// The policy for a path and why.
    pub fn policy_for(&self, rel: &str) -> (&Policy, Choice) {
        for (i, r) in self.rules.iter().enumerate() {
            let m = r.glob.matches(rel);
            if let Some(&first) = m.first() {
                if let Some(p) = self.policies.get(&r.policy) {
                    return (
                        p,
                        Choice::Rule {
                            index: i + 1,
                            pattern: r.patterns.get(first).cloned().unwrap_or_default(),
                            origin: r.origin.clone(),
                        },
                    );
                }
            }
        }
        let choice = if self.file.is_some() {
            Choice::Default
        } else {
            Choice::Builtin
        };
        (&self.default_resolved, choice)
    }

    pub fn default_policy_name(&self) -> &str {
        &self.default_policy
    }

    /// The level the command line or the configuration sets for a rule, if any.
    pub fn configured_level(&self, rule: Rule, cli: &HashMap<Rule, Level>) -> Option<Level> {
        cli.get(&rule).or_else(|| self.levels.get(&rule)).copied()
    }

    /// The exception covering `rel`, if one applies now (unexpired, digest matching).
    pub fn exception_for(
        &self,
        rel: &str,
        sha256: &mut dyn FnMut() -> Option<String>,
    ) -> Option<&Exception> {
        let today = today();
        self.exceptions.iter().find(|e| {
            e.path == rel
                && e.expires
                    .as_ref()
                    .is_none_or(|d| d.as_str() >= today.as_str())
                && e.sha256
                    .as_ref()
                    .is_none_or(|want| sha256().is_some_and(|got| &got == want))
        })
    }

    /// Applies levels and an exception to a file's findings. Returns the exception used.
    pub fn apply<'c>(
        &'c self,
        rel: &str,
        findings: &mut Vec<Finding>,
        cli: &HashMap<Rule, Level>,
        sha256: &mut dyn FnMut() -> Option<String>,
    ) -> Option<&'c Exception> {
        // A configured level wins; otherwise the finding keeps the level the check gave it
        // (the rule's default, or `warn` for a trailing pickle that is within policy).
        findings.retain_mut(
            |f| match self.configured_level(f.rule, cli).unwrap_or(f.level) {
                Level::Allow => false,
                l => {
                    f.level = l;
                    true
                }
            },
        );
        if findings.is_empty() {
            return None;
        }
        let ex = self.exception_for(rel, sha256)?;
        // Waived findings stay in the report, marked, so no output format hides them.
        let mut waived = false;
        for f in findings
            .iter_mut()
            .filter(|f| ex.rules.is_empty() || ex.rules.contains(&f.rule))
        {
            f.suppressed = Some(crate::finding::Suppression {
                kind: "external",
                justification: ex.reason.clone(),
                location: ex.origin.to_string(),
            });
            waived = true;
        }
        waived.then_some(ex)
    }

    /// Allow entries of the configuration file that no scanned global matched.
    pub fn unused_allow_entries(&self) -> Vec<(String, Origin)> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        let display = file.display().to_string();
        let used: HashSet<Origin> = self
            .policies
            .values()
            .chain(std::iter::once(&self.default_resolved))
            .flat_map(|p| p.used())
            .collect();
        self.set
            .allow_entries_in(&display)
            .into_iter()
            .filter(|(_, o)| !used.contains(o))
            .collect()
    }
}

/// Errors in file order, each once.
fn dedup(mut v: Vec<Diag>) -> Vec<Diag> {
    let mut seen = HashSet::new();
    v.retain(|d| seen.insert(d.to_string()));
    v.sort_by_key(|d| d.line);
    v
}

fn normalize(p: &str) -> String {
    let p = p.replace('\\', "/");
    let p = p.trim_start_matches("./");
    p.to_string()
}

/// The non-policy parts of a file, handed to `Config::build`.
pub struct Rest {
    rules: Vec<Spanned<PathRule>>,
    default: Option<Spanned<String>>,
    exclude: Vec<Spanned<String>>,
    exceptions: Vec<Spanned<ExceptionDef>>,
    levels: BTreeMap<String, Spanned<LevelEntry>>,
    budgets: Option<crate::budget::BudgetsDef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_413), "2025-11-21");
        assert!(valid_date("2026-02-28"));
        assert!(!valid_date("2026-13-01"));
        assert!(!valid_date("26-1-1"));
    }
}
