//! `picklegate policy learn`: a baseline policy that allows exactly what the given files
//! use today, for adopting the gate in an existing repository. Known sinks and anything
//! that cannot be expressed as an allow entry are listed loudly, never allowed.

use crate::config;
use crate::finding::{Rule, Severity};
use crate::policy::{Mode, PolicySet};
use crate::scan::{self, ScanOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

/// Whether calling `qualified` is a sink (an `inert` carve-out that covers calls is not).
fn is_sink(qualified: &str) -> bool {
    let (m, n) = qualified.rsplit_once('.').unwrap_or(("", qualified));
    crate::policy::sinks::sink_reason_as(m, n, Mode::Call).is_some()
}

/// Rules about how a file is stored rather than what it runs: a learned baseline may
/// lower them to `warn` (listed with the files that needed it). Every other rule that
/// refused a file is printed as a `# !!!` line for a person to decide (critical rules such
/// as `legacy-magic` need `accept-code-execution`, which a baseline never writes).
const LEARNABLE_LEVELS: &[Rule] = &[
    Rule::TrailingPickle,
    Rule::TrailingData,
    Rule::ExtensionMismatch,
];

/// An allow entry in the narrowest mode the files need (a plain name is `call`).
fn entry(global: &str, mode: Mode) -> String {
    match mode {
        Mode::Call => global.to_string(),
        m => format!("{{name: {global}, mode: {}}}", m.as_str()),
    }
}

pub fn learn(files: &[PathBuf], name: &str) -> Result<String, String> {
    // Scan against a policy that allows nothing: every effect becomes a finding that
    // names what would have to be allowed.
    let mut set = PolicySet::default();
    set.add_synthetic("nothing", &[]);
    let nothing = set.resolve("nothing").map_err(|e| e.to_string())?;
    learn_over(files, name, &nothing, &[], "picklegate policy learn")
}

/// [`learn`] on top of `base`: only what `base` refuses is learned, and the policy
/// written `extends` the named policies (`picklegate init`: the default and the presets
/// the repository's files need). `tool` names the command in the header comment.
pub fn learn_over(
    files: &[PathBuf],
    name: &str,
    base: &crate::policy::Policy,
    extends: &[String],
    tool: &str,
) -> Result<String, String> {
    let opts = ScanOptions::default();

    let mut seen = BTreeSet::new();
    // The widest use of each learned global over all files.
    let mut modes: BTreeMap<String, Mode> = BTreeMap::new();
    let mut levels: BTreeMap<Rule, BTreeSet<String>> = BTreeMap::new();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut containers = BTreeSet::new();
    let mut build = false;
    let mut pids = false;
    let mut loud: Vec<String> = Vec::new();
    let mut scanned = 0;
    for f in files {
        let r = scan::scan_file(f, base, &opts);
        if let Some(e) = &r.error {
            loud.push(format!("{}: not scanned: {e}", r.path));
            continue;
        }
        if r.format == "unknown" || r.format == "safetensors" {
            continue;
        }
        scanned += 1;
        let mut mine = Vec::new();
        for finding in &r.findings {
            let place = match &finding.member {
                Some(m) => format!("{}!{m} @ byte {}", r.path, finding.offset),
                None => format!("{} @ byte {}", r.path, finding.offset),
            };
            match finding.rule {
                Rule::GlobalNotAllowed => {
                    if let Some(g) = &finding.global {
                        let m = finding.mode.unwrap_or_default();
                        modes
                            .entry(g.clone())
                            .and_modify(|w| *w = (*w).max(m))
                            .or_insert(m);
                        if seen.insert(g.clone()) {
                            mine.push(g.clone());
                        }
                    }
                }
                // A method call on a global itself (not on an instance) is critical and
                // never a container to learn.
                Rule::MethodCall => match &finding.global {
                    Some(g) if finding.severity < Severity::Critical && !is_sink(g) => {
                        containers.insert(g.clone());
                    }
                    _ => loud.push(format!("{place}: {}", finding.message)),
                },
                Rule::BuildNotAllowed if finding.global.as_deref().is_some_and(|g| !is_sink(g)) => build = true,
                Rule::PersistentId => pids = true,
                rule if LEARNABLE_LEVELS.contains(&rule) => {
                    levels.entry(rule).or_default().insert(r.path.clone());
                }
                Rule::CodeExecution => loud.push(format!(
                    "{place}: `{}` EXECUTES CODE and is not allowed; remove the file or run `picklegate sanitize`",
                    finding.global.as_deref().unwrap_or("?")
                )),
                _ => loud.push(format!("{place}: [{}] {}", finding.rule.id(), finding.message)),
            }
        }
        if !mine.is_empty() {
            mine.sort();
            groups.push((r.path.clone(), mine));
        }
    }
    // Persistent ids are allowed only in torch's storage shape.
    if pids {
        let mut set = PolicySet::default();
        let yaml = "version: 1\npolicies:\n  p:\n    persistent_ids: torch-storage\n";
        let parsed = config::parse("<learn>", yaml).map_err(|e| e.to_string())?;
        set.add("<learn>", parsed.policies);
        let p = set.resolve("p").map_err(|e| e.to_string())?;
        for f in files {
            let r = scan::scan_file(f, &p, &opts);
            for finding in r.findings.iter().filter(|x| x.rule == Rule::PersistentId) {
                loud.push(format!(
                    "{} @ byte {}: {} — not expressible safely; persistent ids other than torch storages are not allowed",
                    r.path, finding.offset, finding.message
                ));
            }
        }
    }

    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by `{tool}` on {} from {scanned} pickle-bearing file(s).",
        config::today()
    );
    if extends.is_empty() {
        let _ = writeln!(
            y,
            "# It allows exactly the globals these files use today. Review it, then save it as"
        );
        let _ = writeln!(
            y,
            "# .picklegate.yaml at the repository root. Known code-execution sinks are never allowed."
        );
    } else {
        let _ = writeln!(
            y,
            "# The presets below cover what these files use; `allow:` adds what no preset covers."
        );
        let _ = writeln!(
            y,
            "# Review it and commit it. Known code-execution sinks are never allowed."
        );
    }
    for l in &loud {
        let _ = writeln!(y, "# !!! {l}");
    }
    let _ = writeln!(y, "version: 1");
    let _ = writeln!(y, "policies:");
    let _ = writeln!(y, "  {name}:");
    let _ = writeln!(
        y,
        "    description: \"Learned from {scanned} file(s) on {}\"",
        config::today()
    );
    if !extends.is_empty() {
        let _ = writeln!(y, "    extends: [{}]", extends.join(", "));
    }
    if groups.is_empty() {
        let _ = writeln!(y, "    allow: []");
    } else {
        let _ = writeln!(y, "    allow:");
        for (file, globals) in &groups {
            let _ = writeln!(y, "      # {file}");
            for g in globals {
                let mode = modes.get(g).copied().unwrap_or_default();
                let _ = writeln!(y, "      - {}", entry(g, mode));
            }
        }
    }
    if !containers.is_empty() {
        let _ = writeln!(y, "    containers:");
        for c in &containers {
            let _ = writeln!(y, "      - {c}");
        }
    }
    // On top of presets, what is not learned is inherited from them (their `build` and
    // `persistent_ids`); a baseline of its own states both.
    if build || extends.is_empty() {
        let _ = writeln!(y, "    build: {}", if build { "instances" } else { "none" });
    }
    if pids || extends.is_empty() {
        let _ = writeln!(
            y,
            "    persistent_ids: {}",
            if pids { "torch-storage" } else { "none" }
        );
    }
    if !levels.is_empty() {
        let _ = writeln!(y, "levels:");
        for (rule, files) in &levels {
            let list: Vec<&str> = files.iter().map(String::as_str).take(5).collect();
            let more = files.len().saturating_sub(list.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                y,
                "  # refused {}{more} (a storage quirk, not an import)",
                list.join(", ")
            );
            let _ = writeln!(y, "  {}: warn", rule.id());
        }
    }
    let _ = writeln!(y, "default: {name}");
    Ok(y)
}
