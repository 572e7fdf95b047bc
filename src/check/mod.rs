//! Effects × policy → findings. One decision procedure per effect kind; every effect
//! the VM found is either allowed by the policy or becomes a finding (default deny).

pub mod uses;

use crate::finding::{Finding, Related, Rule};
use crate::pickle::graph::*;
use crate::policy::{sinks, BuildMode, Mode, PersistentIds, Policy};
use std::collections::HashMap;
use uses::Uses;

const MAX_RELATED: usize = 8;

/// Findings of one rule kept per analysed pickle buffer. The rest are counted and
/// summarised in one `budget-exceeded` finding, so a pickle of a million refused effects
/// costs a bounded report.
pub const MAX_FINDINGS_PER_RULE: usize = 1_000;

/// The findings of one buffer, capped per rule.
#[derive(Default)]
struct Findings {
    kept: Vec<Finding>,
    per_rule: HashMap<Rule, usize>,
    /// Per rule: how many were dropped, and the offset of the first dropped one.
    dropped: HashMap<Rule, (u64, u64)>,
}

impl Findings {
    /// Keeps `f` unless its rule is at the cap; its index in `kept` when kept.
    fn push(&mut self, f: Finding) -> Option<usize> {
        let n = self.per_rule.entry(f.rule).or_default();
        if *n >= MAX_FINDINGS_PER_RULE {
            let d = self.dropped.entry(f.rule).or_insert((0, f.offset));
            d.0 += 1;
            return None;
        }
        *n += 1;
        self.kept.push(f.clipped());
        Some(self.kept.len() - 1)
    }

    /// The kept findings and one `budget-exceeded` summary per capped rule.
    fn finish(mut self) -> Vec<Finding> {
        let mut dropped: Vec<(Rule, (u64, u64))> = self.dropped.into_iter().collect();
        dropped.sort_by_key(|d| d.0);
        for (rule, (n, first)) in dropped {
            self.kept.push(Finding::omitted(
                first,
                format!(
                    "{n} more `{}` finding(s) in this pickle are not listed (at most {MAX_FINDINGS_PER_RULE} per rule); the first of them is at byte {first}",
                    rule.id()
                ),
            ));
        }
        self.kept
    }
}

/// What the container around a pickle buffer says about it.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Pickles the format itself stores back to back (legacy torch: 5); more are trailing.
    pub expected_streams: usize,
    /// TorchScript archives resolve `__torch__.*` names against their own code, which
    /// is reported once for the archive.
    pub torchscript: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            expected_streams: 1,
            torchscript: false,
        }
    }
}

/// Checks one analysed pickle buffer. `data` is the buffer the graph was built from.
pub fn check(g: &Graph, data: &[u8], policy: &Policy) -> Vec<Finding> {
    check_with(g, data, policy, &Context::default())
}

pub fn check_with(g: &Graph, data: &[u8], policy: &Policy, ctx: &Context) -> Vec<Finding> {
    let mut out = Findings::default();
    let uses = uses::analyze(g, data);
    let mut refused = check_globals(g, &uses, policy, ctx, &mut out);
    check_attrs(&uses, policy, &mut out, &mut refused);
    link_call_sites(g, &refused, &mut out.kept);
    check_calls(g, &uses, data, &mut out);
    check_mutations(g, &uses, data, policy, ctx, &mut out);
    check_persids(g, data, policy, &mut out);
    check_exts(g, &mut out);
    check_streams(g, ctx, &mut out);
    let mut out = out.finish();
    // Pickles stored back to back (an append log) where every one of them is within
    // policy: a loader that reads on runs only allowed code, so this warns.
    if out.iter().all(|f| f.rule == Rule::TrailingPickle) {
        for f in &mut out {
            f.level = crate::config::Level::Warn;
            f.message
                .push_str("; every pickle of the stream is within policy, so this only warns");
        }
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.offset.cmp(&b.offset)));
    out
}

/// Globals that belong to the container format rather than to the pickled object.
fn is_format_global(gl: &Global, ctx: &Context) -> bool {
    is_format_name(&gl.module, &gl.name, ctx)
}

fn policy_note(policy: &Policy) -> String {
    format!("{} ({})", policy.name, policy.origin)
}

/// The finding for a name the policy allows, but not for the use the pickle makes of it;
/// `None` when the use is within what the policy allows.
fn misuse(
    policy: &Policy,
    module: &str,
    name: &str,
    used: &uses::Use,
    what: &str,
) -> Option<Finding> {
    let (_, allowed) = policy.allowed_mode(module, name)?;
    if used.mode <= allowed {
        return None;
    }
    // Allowed as a value, but used in a way that runs it (`numpy.memmap` called).
    let (rule, sink) = match sinks::sink_reason_as(module, name, used.mode) {
        Some(r) => (
            Rule::CodeExecution,
            format!(": used this way it is a sink ({r})"),
        ),
        None => (Rule::GlobalNotAllowed, String::new()),
    };
    let mut f = Finding::new(
        rule,
        used.offset,
        format!(
            "{what} is {} by {} at byte {}, but policy `{}` allows it only {} (mode `{}`; this use needs mode `{}`){sink}",
            used.mode.describe(),
            used.opcode,
            used.offset,
            policy.name,
            allowed.describe(),
            allowed.as_str(),
            used.mode.as_str()
        ),
    );
    f.mode = Some(used.mode);
    Some(f)
}

/// A name the pickle uses (a global, or a resolved getattr) that its policy refuses.
struct Name<'a> {
    module: &'a str,
    name: &'a str,
    used: &'a uses::Use,
    /// Where the name is made (the import, or the getattr REDUCE).
    offset: u64,
    /// The name in a sentence (`` `m.n` ``).
    what: String,
    /// What the opcode does with it (`GLOBAL imports `m.n``).
    subject: String,
}

/// The one decision for a refused name: allowed only for a narrower use (a misuse), a sink
/// for this use (code execution), or simply not allowed.
fn refusal(policy: &Policy, n: &Name<'_>) -> Finding {
    let mut f = match misuse(policy, n.module, n.name, n.used, &n.what) {
        Some(f) => f,
        None => match sinks::sink_reason_as(n.module, n.name, n.used.mode) {
            Some(reason) => Finding::new(
                Rule::CodeExecution,
                n.offset,
                format!(
                    "{}: this executes code when the file is loaded ({reason})",
                    n.subject
                ),
            ),
            None => Finding::new(
                Rule::GlobalNotAllowed,
                n.offset,
                format!(
                    "{}, which policy `{}` does not allow",
                    n.subject, policy.name
                ),
            ),
        },
    };
    f.global = Some(format!("{}.{}", n.module, n.name));
    f.mode = Some(n.used.mode);
    f.policy = Some(policy_note(policy));
    f
}

/// Returns, for each refused global's value id, the index of its finding in `out`.
fn check_globals(
    g: &Graph,
    uses: &Uses,
    policy: &Policy,
    ctx: &Context,
    out: &mut Findings,
) -> HashMap<ValueId, usize> {
    let mut refused = HashMap::new();
    for (gi, gl) in g.globals.iter().enumerate() {
        let len = match gl.opcode {
            crate::pickle::op::Opcode::Global | crate::pickle::op::Opcode::Inst => {
                (gl.module.len() + gl.name.len() + 3) as u64
            }
            _ => 1,
        };
        if let Resolution::Unresolved(why) = &gl.resolution {
            let mut f = Finding::new(
                Rule::UnresolvedGlobal,
                gl.offset,
                format!("{why}; the imported name is decided at load time and cannot be checked"),
            );
            f.policy = Some(policy_note(policy));
            if let Some(i) = out.push(f) {
                refused.insert(gl.value, i);
            }
            continue;
        }
        if is_format_global(gl, ctx) || uses.getattr_resolved[gi] {
            continue;
        }
        let used = &uses.globals[gi];
        if policy.allows_as(&gl.module, &gl.name, used.mode) {
            continue;
        }
        let q = gl.qualified();
        let via = match &gl.original {
            Some((m, n)) => format!(" (written as `{m} {n}`, mapped by fix_imports)"),
            None => String::new(),
        };
        let name = Name {
            module: &gl.module,
            name: &gl.name,
            used,
            offset: gl.offset,
            what: format!("`{q}`"),
            subject: format!("{} imports `{q}`{via}", gl.opcode.name()),
        };
        let mut f = refusal(policy, &name);
        if f.offset != gl.offset {
            // A misuse points at the use; the import is where the name comes from.
            f.related.push(Related {
                offset: gl.offset,
                label: format!("imported here by {}", gl.opcode.name()),
            });
        } else {
            f.length = len;
        }
        if let Some(i) = out.push(f) {
            refused.insert(gl.value, i);
        }
    }
    refused
}

/// `getattr(G, 'attr')` with G a global and a literal name is the dotted global `G.attr`:
/// allowed only when the policy allows that exact name, for the use made of it.
fn check_attrs(
    uses: &Uses,
    policy: &Policy,
    out: &mut Findings,
    refused: &mut HashMap<ValueId, usize>,
) {
    let mut attrs: Vec<(&ValueId, &uses::Attr)> = uses.attrs.iter().collect();
    attrs.sort_by_key(|(_, a)| a.offset);
    for (&id, a) in attrs {
        if policy.allows_as(&a.module, &a.name, a.used.mode) {
            continue;
        }
        let q = a.qualified();
        let attr = a.name.rsplit('.').next().unwrap_or_default();
        let base = &a.name[..a.name.len() - attr.len() - 1];
        let what = format!(
            "`builtins.getattr({}.{base}, {attr:?})`, i.e. `{q}`,",
            a.module
        );
        let name = Name {
            module: &a.module,
            name: &a.name,
            used: &a.used,
            offset: a.offset,
            subject: format!("REDUCE calls {}", what.trim_end_matches(',')),
            what,
        };
        if let Some(i) = out.push(refusal(policy, &name)) {
            refused.insert(id, i);
        }
    }
}

fn link_call_sites(g: &Graph, refused: &HashMap<ValueId, usize>, out: &mut [Finding]) {
    let mut extra: HashMap<usize, usize> = HashMap::new();
    for call in &g.calls {
        if let Some(&i) = refused.get(&call.callee) {
            let f = &mut out[i];
            if f.related.len() < MAX_RELATED {
                f.related.push(Related {
                    offset: call.offset,
                    label: format!("called here by {}", call.kind.opcode().name()),
                });
            } else {
                *extra.entry(i).or_default() += 1;
            }
        }
    }
    for (i, n) in extra {
        out[i].message.push_str(&format!(" ({n} more call sites)"));
    }
}

fn check_calls(g: &Graph, uses: &Uses, data: &[u8], out: &mut Findings) {
    for call in &g.calls {
        let callee = g.value(call.callee);
        match callee.kind {
            _ if uses.callee_is_named(g, call.callee) => {}
            _ => {
                let mut f = Finding::new(
                    Rule::UnresolvedCall,
                    call.offset,
                    format!(
                        "{} calls {}, not an allowed global: what runs is decided at load time",
                        call.kind.opcode().name(),
                        g.describe(call.callee, data)
                    ),
                );
                f.related.push(Related {
                    offset: callee.offset,
                    label: "the callable comes from here".into(),
                });
                out.push(f);
            }
        }
    }
}

/// The name (a global or a resolved getattr) whose call produced `id`, if `id` is a call
/// result; `(module, name, qualified)`.
fn producer(g: &Graph, uses: &Uses, id: ValueId) -> Option<(String, String, String)> {
    match g.value(id).kind {
        Kind::Call(c) => {
            let (m, n) = uses.made_by(g, &g.calls[c as usize])?;
            let q = format!("{m}.{n}");
            Some((m, n, q))
        }
        _ => None,
    }
}

fn is_format_name(module: &str, name: &str, ctx: &Context) -> bool {
    (module == "joblib.numpy_pickle" && name == "NumpyArrayWrapper")
        || (ctx.torchscript && (module == "__torch__" || module.starts_with("__torch__.")))
}

fn check_mutations(
    g: &Graph,
    uses: &Uses,
    data: &[u8],
    policy: &Policy,
    ctx: &Context,
    out: &mut Findings,
) {
    for m in &g.mutations {
        let target = g.value(m.target);
        let op = m.kind.opcode().name();
        let finding = match (m.kind, target.kind) {
            (MutKind::Append | MutKind::Appends, Kind::List(_))
            | (MutKind::SetItem | MutKind::SetItems, Kind::Dict(_))
            | (MutKind::AddItems, Kind::Set) => None,
            (MutKind::Build, Kind::Global(gi)) => {
                let gl = &g.globals[gi as usize];
                let mut f = Finding::new(
                    Rule::BuildOnGlobal,
                    m.offset,
                    format!(
                        "BUILD sets attributes on `{}` itself (a class, function or module), changing what later code sees",
                        gl.qualified()
                    ),
                );
                f.global = Some(gl.qualified());
                Some(f)
            }
            (_, Kind::Global(gi)) => {
                let gl = &g.globals[gi as usize];
                let mut f = Finding::new(
                    Rule::MethodCall,
                    m.offset,
                    format!(
                        "{op} calls `{}.{}` on the global `{}` itself",
                        gl.qualified(),
                        m.kind.method(),
                        gl.qualified()
                    ),
                );
                f.severity = crate::finding::Severity::Critical;
                f.global = Some(gl.qualified());
                Some(f)
            }
            (MutKind::Build, Kind::Call(_)) => match producer(g, uses, m.target) {
                Some((mo, n, _))
                    if (policy.build == BuildMode::Instances
                        && policy.allows_as(&mo, &n, Mode::New))
                        || is_format_name(&mo, &n, ctx) =>
                {
                    None
                }
                Some((_, _, q)) => {
                    let mut f = Finding::new(
                        Rule::BuildNotAllowed,
                        m.offset,
                        format!(
                            "BUILD calls __setstate__ on an object made by `{q}`, which policy `{}` does not allow",
                            policy.name
                        ),
                    );
                    f.global = Some(q);
                    Some(f)
                }
                None => Some(Finding::new(
                    Rule::BuildNotAllowed,
                    m.offset,
                    format!(
                        "BUILD on {}, whose type cannot be known statically",
                        g.describe(m.target, data)
                    ),
                )),
            },
            (_, Kind::Call(_)) => match producer(g, uses, m.target) {
                Some((mo, n, q))
                    if policy.is_container(&q) && policy.allowed(&mo, &n).is_some() =>
                {
                    None
                }
                Some((_, _, q)) => {
                    let mut f = Finding::new(
                        Rule::MethodCall,
                        m.offset,
                        format!(
                            "{op} calls `{}` on an object made by `{q}`, which is not an allowed container",
                            m.kind.method(),
                        ),
                    );
                    f.global = Some(q);
                    Some(f)
                }
                None => Some(Finding::new(
                    Rule::MethodCall,
                    m.offset,
                    format!(
                        "{op} calls `{}` on {}",
                        m.kind.method(),
                        g.describe(m.target, data)
                    ),
                )),
            },
            (MutKind::Build, _) => Some(Finding::new(
                Rule::BuildNotAllowed,
                m.offset,
                format!(
                    "BUILD on {}, which has no state to set",
                    g.describe(m.target, data)
                ),
            )),
            (_, _) => Some(Finding::new(
                Rule::MethodCall,
                m.offset,
                format!(
                    "{op} calls `{}` on {}",
                    m.kind.method(),
                    g.describe(m.target, data)
                ),
            )),
        };
        if let Some(mut f) = finding {
            f.related = vec![Related {
                offset: target.offset,
                label: "the target object is made here".into(),
            }];
            f.policy = Some(policy_note(policy));
            out.push(f);
        }
    }
}

fn check_persids(g: &Graph, data: &[u8], policy: &Policy, out: &mut Findings) {
    for &v in &g.persids {
        let Kind::PersId(pid) = g.value(v).kind else {
            continue;
        };
        let ok = match policy.persistent_ids {
            PersistentIds::Any => true,
            PersistentIds::TorchStorage => {
                crate::container::torch::storage_pid(g, pid, data).is_some()
            }
            PersistentIds::None => false,
        };
        if !ok {
            let mut f = Finding::new(
                Rule::PersistentId,
                g.value(v).offset,
                format!(
                    "persistent id {} is handed to the loader's persistent_load; policy `{}` allows {}",
                    g.describe(pid, data),
                    policy.name,
                    match policy.persistent_ids {
                        PersistentIds::None => "no persistent ids",
                        PersistentIds::TorchStorage => "only torch storage ids ('storage', class, key, location, numel)",
                        PersistentIds::Any => "any",
                    }
                ),
            );
            f.policy = Some(policy_note(policy));
            out.push(f);
        }
    }
}

fn check_exts(g: &Graph, out: &mut Findings) {
    for &v in &g.exts {
        let val = g.value(v);
        let Kind::Ext(code) = val.kind else { continue };
        let mut f = Finding::new(
            Rule::ExtensionCode,
            val.offset,
            format!(
                "extension code {code} imports whatever the loader's copyreg registry maps it to; it cannot be checked statically"
            ),
        );
        for c in g.calls_of(v).take(MAX_RELATED) {
            f.related.push(Related {
                offset: c.offset,
                label: format!("called here by {}", c.kind.opcode().name()),
            });
        }
        out.push(f);
    }
}

fn check_streams(g: &Graph, ctx: &Context, out: &mut Findings) {
    for (i, s) in g.streams.iter().filter(|s| !s.nested).enumerate() {
        if i >= ctx.expected_streams {
            out.push(Finding::new(
                Rule::TrailingPickle,
                s.start,
                format!(
                    "pickle #{} starts after the STOP of the previous one; loaders that read on (or load in a loop) execute it",
                    i + 1
                ),
            ));
        }
        if let Some(e) = &s.error {
            let (rule, what) = if e.budget {
                (Rule::BudgetExceeded, "analysis stopped")
            } else {
                (Rule::MalformedPickle, "the pickle is invalid")
            };
            out.push(Finding::new(
                rule,
                e.offset,
                format!(
                    "{what}: {}; opcodes before this point still run when the file is loaded",
                    e.message
                ),
            ));
        }
        for v in &s.frame_violations {
            let what = match v.kind {
                crate::pickle::decode::FrameViolationKind::Straddle => {
                    "runs past the end of its FRAME"
                }
                crate::pickle::decode::FrameViolationKind::NewFrameInsideFrame => {
                    "starts a new FRAME before the previous one ended"
                }
            };
            let mut f = Finding::new(
                Rule::FrameViolation,
                v.offset,
                format!("the opcode at {} {what} (frame ends at {}); pickle.py rejects this stream and the C unpickler may read it differently", v.offset, v.frame_end),
            );
            f.related.push(Related {
                offset: v.frame_end,
                label: "the frame ends here".into(),
            });
            out.push(f);
        }
    }
    if let Some(t) = &g.trailing {
        let mut f = Finding::new(
            Rule::TrailingData,
            t.offset,
            format!("{} bytes after the last pickle are not part of it", t.len),
        );
        f.length = t.len;
        out.push(f);
    }
}

#[cfg(test)]
mod mode_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::vm::{self, Budgets};

    /// Protocol 2: `n` times `GLOBAL os system; POP`, then `None` and STOP.
    fn refused_globals(n: usize) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        for _ in 0..n {
            p.extend_from_slice(b"cos\nsystem\n0");
        }
        p.extend_from_slice(b"N.");
        p
    }

    #[test]
    fn findings_are_capped_per_rule_with_a_count() {
        let policy = crate::policy::builtin_default().unwrap_or_else(|e| panic!("{e}"));
        let data = refused_globals(MAX_FINDINGS_PER_RULE + 500);
        let g = vm::analyze(&data, 0, Budgets::default());
        let out = check(&g, &data, &policy);
        let exec = out.iter().filter(|f| f.rule == Rule::CodeExecution).count();
        assert_eq!(exec, MAX_FINDINGS_PER_RULE);
        let budget: Vec<&Finding> = out
            .iter()
            .filter(|f| f.rule == Rule::BudgetExceeded)
            .collect();
        assert_eq!(budget.len(), 1, "{out:?}");
        assert!(
            budget[0]
                .message
                .starts_with("500 more `code-execution` finding(s) in this pickle are not listed"),
            "{}",
            budget[0].message
        );
        // The first dropped GLOBAL: 2 bytes of header, 12 bytes per GLOBAL+POP.
        assert_eq!(budget[0].offset, 2 + 12 * MAX_FINDINGS_PER_RULE as u64);
        assert!(budget[0].severity.fails());

        // Below the cap nothing changes.
        let data = refused_globals(3);
        let g = vm::analyze(&data, 0, Budgets::default());
        let out = check(&g, &data, &policy);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|f| f.rule == Rule::CodeExecution));
    }
}
