//! The fix a blocked file's report names, computed rather than a fixed sentence:
//!
//! - when every refusal in the file is of a kind a policy can allow (a global outside the
//!   allow list, BUILD or a method call on an instance of such a class) and one embedded preset
//!   (or two together) allows all of them, the report says `--preset NAME` /
//!   `extends: [POLICY, NAME]`;
//! - a file whose refusals the sanitizer removes (code-execution and other refused calls in a
//!   pickle-bearing format) gets the exact `picklegate sanitize` command;
//! - a refused PyTorch checkpoint mentions safetensors, a format that cannot carry code.
//!
//! The preset check is static: the same questions the checker asks of a policy
//! (`allows_as` with the use the pickle makes, `build: instances`, `containers:`), asked of
//! each preset.

use crate::finding::{Finding, Rule};
use crate::policy::{BuildMode, Mode, Policy, PolicySet, PRESETS};
use crate::scan::FileReport;
use std::sync::OnceLock;

/// The embedded presets, resolved once (`default` left out: it is what is refused from).
fn presets() -> &'static [(&'static str, Policy)] {
    static CELL: OnceLock<Vec<(&'static str, Policy)>> = OnceLock::new();
    CELL.get_or_init(|| {
        let Ok(set) = PolicySet::embedded() else {
            return Vec::new();
        };
        PRESETS
            .iter()
            .filter(|(name, _, _)| *name != "default")
            .filter_map(|(name, _, _)| set.resolve(name).ok().map(|p| (*name, p)))
            .collect()
    })
}

/// Every `module`/`qualname` split of a dotted name (a qualname may itself hold dots).
fn splits(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.match_indices('.')
        .map(move |(i, _)| (&q[..i], &q[i + 1..]))
}

/// What a policy would have to say for this finding not to be raised; `None` when no
/// policy entry can lift it (a code-execution sink, a malformed stream, a tampered zip…).
#[derive(Clone, Copy)]
enum Need<'a> {
    Global(&'a str, Mode),
    Build(&'a str),
    Container(&'a str),
}

fn need(f: &Finding) -> Option<Need<'_>> {
    let g = f.global.as_deref()?;
    match f.rule {
        Rule::GlobalNotAllowed => Some(Need::Global(g, f.mode.unwrap_or(Mode::Call))),
        Rule::BuildNotAllowed => Some(Need::Build(g)),
        Rule::MethodCall => Some(Need::Container(g)),
        _ => None,
    }
}

fn allows(policies: &[&Policy], n: Need<'_>) -> bool {
    policies.iter().any(|p| match n {
        Need::Global(q, mode) => splits(q).any(|(m, name)| p.allows_as(m, name, mode)),
        Need::Build(q) => {
            p.build == BuildMode::Instances
                && splits(q).any(|(m, name)| p.allows_as(m, name, Mode::New))
        }
        Need::Container(q) => {
            p.is_container(q) && splits(q).any(|(m, name)| p.allowed(m, name).is_some())
        }
    })
}

/// The smallest set of presets (one, else two) that allows every failing finding of the
/// file; `None` when some failing finding is not a policy matter or no such set exists.
pub fn covering_presets(findings: &[Finding]) -> Option<Vec<&'static str>> {
    let needs: Vec<Need<'_>> = findings
        .iter()
        .filter(|f| f.fails())
        .map(need)
        .collect::<Option<_>>()?;
    if needs.is_empty() {
        return None;
    }
    let all = presets();
    for (name, p) in all {
        if needs.iter().all(|n| allows(&[p], *n)) {
            return Some(vec![*name]);
        }
    }
    for (i, (a, pa)) in all.iter().enumerate() {
        for (b, pb) in &all[i + 1..] {
            if needs.iter().all(|n| allows(&[pa, pb], *n)) {
                return Some(vec![*a, *b]);
            }
        }
    }
    None
}

/// Sanitizer-removable refusals: calls and imports the sanitizer drops or neutralises.
fn sanitizable(f: &Finding) -> bool {
    matches!(
        f.rule,
        Rule::CodeExecution
            | Rule::GlobalNotAllowed
            | Rule::UnresolvedGlobal
            | Rule::UnresolvedCall
            | Rule::BuildOnGlobal
            | Rule::BuildNotAllowed
            | Rule::MethodCall
            | Rule::ExtensionCode
            | Rule::TrailingPickle
            | Rule::TrailingData
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+=:@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The policy a finding was refused by (`default` in `default (policies/default.yaml:13)`).
fn policy_name(findings: &[Finding]) -> &str {
    findings
        .iter()
        .find_map(|f| f.policy.as_deref())
        .map(|p| p.split(" (").next().unwrap_or(p))
        .unwrap_or("default")
}

/// The file-level help line of a report with failing findings, or `None`.
pub fn for_report(r: &FileReport) -> Option<String> {
    if !r.findings.iter().any(Finding::fails) {
        return None;
    }
    if let Some(names) = covering_presets(&r.findings) {
        let flags: Vec<String> = names.iter().map(|n| format!("--preset {n}")).collect();
        let what = if names.len() == 1 {
            format!("preset `{}`", names[0])
        } else {
            format!("presets `{}` and `{}`", names[0], names[1])
        };
        return Some(format!(
            "everything refused here is allowed by {what}: scan with `{}`, or put `extends: [{}, {}]` in the policy of .picklegate.yaml",
            flags.join(" "),
            policy_name(&r.findings),
            names.join(", ")
        ));
    }
    let failing: Vec<&Finding> = r.findings.iter().filter(|f| f.fails()).collect();
    let torch = r.format.starts_with("torch");
    let mut lines = Vec::new();
    if r.source.is_none()
        && crate::sanitize::rewrites(r.format)
        && failing.iter().all(|f| sanitizable(f))
    {
        let q = shell_quote(&r.path);
        lines.push(format!(
            "`picklegate sanitize {q} -o {}` writes a copy without the refused calls (it exits 1 and writes nothing when it cannot)",
            shell_quote(&format!("{}.sanitized", r.path))
        ));
    }
    if torch {
        lines.push(
            "a state dict is safer as safetensors, which cannot carry code (`safetensors.torch.save_file` from a trusted copy)"
                .to_string(),
        );
    }
    (!lines.is_empty()).then(|| lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(global: &str, mode: Mode) -> Finding {
        let mut f = Finding::new(Rule::GlobalNotAllowed, 0, format!("imports `{global}`"));
        f.global = Some(global.to_string());
        f.mode = Some(mode);
        f
    }

    #[test]
    fn one_preset_covers_pandas_globals() {
        let f = [
            refused("pandas.DataFrame", Mode::New),
            refused("pandas.core.internals.managers.BlockManager", Mode::Call),
        ];
        assert_eq!(covering_presets(&f), Some(vec!["pandas"]));
    }

    #[test]
    fn no_hint_when_a_refusal_is_not_a_policy_matter() {
        let mut exec = Finding::new(Rule::CodeExecution, 0, "exec");
        exec.global = Some("builtins.exec".into());
        assert_eq!(
            covering_presets(&[refused("pandas.DataFrame", Mode::New), exec]),
            None
        );
        assert_eq!(
            covering_presets(&[refused("evil.payload", Mode::Call)]),
            None
        );
    }

    #[test]
    fn waived_and_warn_findings_do_not_count() {
        let mut w = refused("evil.payload", Mode::Call);
        w.level = crate::config::Level::Warn;
        assert_eq!(
            covering_presets(&[w.clone()]),
            None,
            "nothing failing: no hint"
        );
        assert_eq!(
            covering_presets(&[w, refused("pandas.DataFrame", Mode::New)]),
            Some(vec!["pandas"])
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("models/a.pkl"), "models/a.pkl");
        assert_eq!(shell_quote("my model's.pkl"), r"'my model'\''s.pkl'");
    }
}
