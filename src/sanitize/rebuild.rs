//! Reconstruction, not byte surgery: keep what the root object needs (its data
//! dependencies and every mutation applied to kept objects, in original order), drop
//! everything else, substitute a malicious constructor only where the replacement is
//! determined, and re-emit a fresh pickle with a fresh memo.

use super::emit::Emitter;
use crate::pickle::graph::*;
use crate::policy::{BuildMode, Policy, Position, UsedAs};
use std::collections::{HashMap, HashSet};

/// What the sanitizer did, with offsets in the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub offset: u64,
    pub action: &'static str,
    pub what: String,
}

#[derive(Debug)]
pub struct Rebuilt {
    pub bytes: Vec<u8>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subst {
    /// Replace a call's result by `module.name()`.
    EmptyCall(String, String),
    /// Keep the call, but call this allowed global instead of the computed callee.
    Callee(String, String),
}

fn is_scalar(k: Kind) -> bool {
    matches!(
        k,
        Kind::None
            | Kind::Bool(_)
            | Kind::Int(_)
            | Kind::BigInt(_)
            | Kind::Float(_)
            | Kind::Str(_)
            | Kind::Bytes(_)
            | Kind::ByteArray(_)
    )
}

struct Ctx<'a> {
    g: &'a Graph,
    data: &'a [u8],
    policy: &'a Policy,
    muts: HashMap<ValueId, Vec<usize>>,
    subst: HashMap<ValueId, Subst>,
    /// joblib's NumpyArrayWrapper calls and their callee: the container format's own
    /// objects (the array bytes follow their BUILD), not part of the pickled model.
    wrappers: HashSet<ValueId>,
    wrapper_callees: HashSet<ValueId>,
    /// Values stored somewhere (container items, mutation items, call arguments,
    /// persistent ids): computed once, so deciding substitutes stays linear.
    stored: HashSet<ValueId>,
    /// Calls by callee.
    calls_by_callee: HashMap<ValueId, Vec<usize>>,
    /// How each global is used and which getattr calls name an exact attribute: the
    /// scan's own reading (`check::uses`), so both decide alike.
    uses: crate::check::uses::Uses,
    /// Whether every call of a callee fits a substitute's argument shape, by (callee,
    /// substitute): one shared callable called 10,000 times is checked once.
    shape_fits: std::cell::RefCell<HashMap<(ValueId, usize), bool>>,
}

impl Ctx<'_> {
    /// Whether `id` names something the policy allows for the use the pickle makes of
    /// it: a global (in its allow mode), or a resolved `getattr(G, 'attr')`.
    fn allowed_global(&self, id: ValueId) -> bool {
        if self.wrapper_callees.contains(&id) {
            return true;
        }
        match self.g.value(id).kind {
            Kind::Global(gi) => {
                let gl = &self.g.globals[gi as usize];
                let used = self.uses.globals[gi as usize].mode;
                matches!(gl.resolution, Resolution::Literal)
                    && (self.uses.getattr_resolved[gi as usize]
                        || self.policy.allows_as(&gl.module, &gl.name, used))
            }
            Kind::Call(_) => self.allowed_attr(id),
            _ => false,
        }
    }

    /// Whether `id` is a resolved getattr whose dotted name the policy allows.
    fn allowed_attr(&self, id: ValueId) -> bool {
        self.uses
            .attrs
            .get(&id)
            .is_some_and(|a| self.policy.allows_as(&a.module, &a.name, a.used.mode))
    }

    /// Whether the call that produced `id` may stay as it is: its callee is allowed, or
    /// it is a getattr resolved to an allowed name.
    fn allowed_call(&self, id: ValueId, callee: ValueId) -> bool {
        if self.uses.attrs.contains_key(&id) {
            return self.allowed_attr(id);
        }
        self.allowed_global(callee)
    }

    fn inputs(&self, id: ValueId) -> Vec<ValueId> {
        let mut v = Vec::new();
        match self.g.value(id).kind {
            Kind::Tuple(it) | Kind::List(it) | Kind::Dict(it) | Kind::FrozenSet(it) => {
                v.extend_from_slice(self.g.items(it))
            }
            Kind::PersId(p) | Kind::ReadOnly(p) => v.push(p),
            Kind::Array(a) => {
                let a = &self.g.arrays[a as usize];
                v.push(a.wrapper);
                v.extend(a.root);
            }
            Kind::Call(c) => match self.subst.get(&id) {
                Some(Subst::EmptyCall(..)) => {}
                Some(Subst::Callee(..)) => {
                    let call = &self.g.calls[c as usize];
                    v.push(call.args);
                    v.extend(call.kwargs);
                }
                None => {
                    let call = &self.g.calls[c as usize];
                    v.push(call.callee);
                    v.push(call.args);
                    v.extend(call.kwargs);
                }
            },
            _ => {}
        }
        // Every change made to a kept object is kept, with what it stores.
        for &m in self.muts.get(&id).into_iter().flatten() {
            v.extend_from_slice(self.g.items(self.g.mutations[m].items));
        }
        v
    }

    fn needed(&self, root: ValueId) -> HashSet<ValueId> {
        let mut seen = HashSet::new();
        let mut work = vec![root];
        while let Some(v) = work.pop() {
            if seen.insert(v) {
                work.extend(self.inputs(v));
            }
        }
        seen
    }

    fn describe(&self, id: ValueId) -> String {
        self.g.describe(id, self.data)
    }

    /// Only SETITEM(S) (and BUILD of its attributes, like a state dict's `_metadata`) touch
    /// this value: it is used exactly as a mapping.
    fn used_as_mapping(&self, id: ValueId) -> bool {
        let ms: Vec<MutKind> = self
            .muts
            .get(&id)
            .into_iter()
            .flatten()
            .map(|&m| self.g.mutations[m].kind)
            .collect();
        ms.iter()
            .any(|k| matches!(k, MutKind::SetItem | MutKind::SetItems))
            && ms
                .iter()
                .all(|k| matches!(k, MutKind::SetItem | MutKind::SetItems | MutKind::Build))
    }

    /// How the rest of the pickle uses a value, for refusals.
    fn uses(&self, id: ValueId) -> String {
        let mut uses = Vec::new();
        for m in &self.g.mutations {
            if m.target == id {
                uses.push(format!(
                    "{} at byte {} changes it",
                    m.kind.opcode().name(),
                    m.offset
                ));
            } else if self.g.items(m.items).contains(&id) {
                uses.push(format!(
                    "{} at byte {} stores it into {}",
                    m.kind.opcode().name(),
                    m.offset,
                    self.describe(m.target)
                ));
            }
        }
        for c in &self.g.calls {
            if c.callee == id {
                uses.push(format!(
                    "{} at byte {} calls it",
                    c.kind.opcode().name(),
                    c.offset
                ));
            } else if matches!(self.g.value(c.args).kind, Kind::Tuple(it) if self.g.items(it).contains(&id))
            {
                uses.push(format!(
                    "{} at byte {} passes it as an argument",
                    c.kind.opcode().name(),
                    c.offset
                ));
            }
        }
        if uses.is_empty() {
            "it is the loaded object itself".into()
        } else {
            uses.truncate(4);
            uses.join("; ")
        }
    }

    /// Whether `args` is a tuple of the declared shape (`int`, `tuple`, `any?`, ...).
    fn args_match(&self, args: ValueId, shape: &[String]) -> bool {
        let Kind::Tuple(it) = self.g.value(args).kind else {
            return false;
        };
        let it = self.g.items(it);
        let required = shape.iter().filter(|a| !a.ends_with('?')).count();
        if it.len() < required || it.len() > shape.len() {
            return false;
        }
        it.iter().zip(shape).all(|(&v, want)| {
            let kind = self.g.value(v).kind;
            match want.trim_end_matches('?') {
                "persistent-id" => matches!(kind, Kind::PersId(_)),
                "int" => matches!(kind, Kind::Int(_) | Kind::BigInt(_)),
                "float" => matches!(kind, Kind::Float(_)),
                "bool" => matches!(kind, Kind::Bool(_)),
                "str" => matches!(kind, Kind::Str(_)),
                "bytes" => matches!(kind, Kind::Bytes(_)),
                "none" => matches!(kind, Kind::None),
                "tuple" => matches!(kind, Kind::Tuple(_)),
                "list" => matches!(kind, Kind::List(_)),
                "dict" => matches!(kind, Kind::Dict(_)),
                _ => true,
            }
        })
    }

    /// Whether the value is only ever called (never stored, changed or returned).
    fn only_called(&self, id: ValueId, root: ValueId) -> bool {
        id != root && self.muts.get(&id).is_none_or(|m| m.is_empty()) && !self.stored.contains(&id)
    }

    fn every_call_fits(&self, callee: ValueId, sub: usize, shape: &[String]) -> bool {
        if let Some(&known) = self.shape_fits.borrow().get(&(callee, sub)) {
            return known;
        }
        let fits = self
            .calls_by_callee
            .get(&callee)
            .into_iter()
            .flatten()
            .all(|&o| self.args_match(self.g.calls[o].args, shape));
        self.shape_fits.borrow_mut().insert((callee, sub), fits);
        fits
    }

    /// Decides a substitute for a needed call whose callee is not allowed, from the
    /// substitutes the policy declares, or explains why none applies.
    fn substitute(&self, id: ValueId, root: ValueId) -> Result<Subst, String> {
        let Kind::Call(c) = self.g.value(id).kind else {
            return Err(format!(
                "{} is not allowed and is not a call",
                self.describe(id)
            ));
        };
        let call = &self.g.calls[c as usize];
        for (si, (sub, _)) in self.policy.substitutes.iter().enumerate() {
            let Some((m, n)) = sub.with.rsplit_once('.') else {
                continue;
            };
            if self.policy.allowed(m, n).is_none() {
                continue;
            }
            match sub.used_as {
                UsedAs::Mapping => {
                    if self.used_as_mapping(id) && (sub.at == Position::Any || id == root) {
                        return Ok(Subst::EmptyCall(m.into(), n.into()));
                    }
                }
                UsedAs::Callable => {
                    // A computed callable (not a plain refused import) whose every call
                    // site is this one, applied to the declared argument shape.
                    if !matches!(self.g.value(call.callee).kind, Kind::Global(_))
                        && !self.allowed_global(call.callee)
                        && self.args_match(call.args, &sub.args)
                        && call.kwargs.is_none()
                        && self.only_called(call.callee, root)
                        && self.every_call_fits(call.callee, si, &sub.args)
                    {
                        return Ok(Subst::Callee(m.into(), n.into()));
                    }
                }
            }
        }
        let declared = if self.policy.substitutes.is_empty() {
            "the policy declares no substitutes".to_string()
        } else {
            format!(
                "none of the policy's substitutes applies ({})",
                self.policy
                    .substitutes
                    .iter()
                    .map(|(s, o)| format!(
                        "{} `{}` at {}:{}",
                        match s.used_as {
                            UsedAs::Mapping => "mapping",
                            UsedAs::Callable => "callable",
                        },
                        s.with,
                        o.file,
                        o.line
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(format!(
            "{} is part of the loaded object ({}), and no safe substitute is determined: {declared}",
            self.describe(id),
            self.uses(id)
        ))
    }
}

/// Rebuilds the first pickle of `g` (decoded from `data`) under `policy`.
pub fn rebuild(g: &Graph, data: &[u8], policy: &Policy) -> Result<Rebuilt, String> {
    let stream = g
        .streams
        .iter()
        .find(|s| !s.nested)
        .ok_or("no pickle stream")?;
    if let Some(e) = &stream.error {
        return Err(format!(
            "the pickle is invalid at byte {} ({}); its meaning is not fully known",
            e.offset, e.message
        ));
    }
    let root = stream.root.ok_or("the pickle has no result")?;
    let mut muts: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, m) in g.mutations.iter().enumerate() {
        muts.entry(m.target).or_default().push(i);
    }
    let mut ctx = Ctx {
        g,
        data,
        policy,
        muts,
        subst: HashMap::new(),
        wrappers: g.arrays.iter().map(|a| a.wrapper).collect(),
        wrapper_callees: g
            .arrays
            .iter()
            .filter_map(|a| match g.value(a.wrapper).kind {
                Kind::Call(c) => Some(g.calls[c as usize].callee),
                _ => None,
            })
            .collect(),
        stored: stored_values(g),
        calls_by_callee: HashMap::new(),
        uses: crate::check::uses::analyze(g, data),
        shape_fits: Default::default(),
    };
    for (i, c) in g.calls.iter().enumerate() {
        ctx.calls_by_callee.entry(c.callee).or_default().push(i);
    }
    for a in &g.arrays {
        let builds = ctx.muts.get(&a.wrapper).map_or(0, |m| m.len());
        if builds != 1 {
            return Err(format!(
                "the joblib array wrapper at byte {} is changed {builds} times; joblib reads one array per BUILD",
                g.value(a.wrapper).offset
            ));
        }
    }
    // Substitute until every needed call has an allowed callee, or refuse. Outermost
    // calls first: a computed callable applied to arguments is replaced before the call
    // that computed it is considered (it is then no longer needed). A substitution only
    // removes edges, so reachability is kept by counting references from needed values
    // and releasing what a substitution cuts off: linear in the graph, however many
    // substitutions there are. (A cycle cut off keeps its counts: such a call may get a
    // substitute it does not need; the final traversal below is exact.)
    let reachable = ctx.needed(root);
    let mut refs: HashMap<ValueId, u32> = HashMap::new();
    for &v in &reachable {
        for i in ctx.inputs(v) {
            *refs.entry(i).or_default() += 1;
        }
    }
    let mut pending: Vec<ValueId> = reachable
        .iter()
        .copied()
        .filter(|&id| match g.value(id).kind {
            Kind::Call(c) => !ctx.allowed_call(id, g.calls[c as usize].callee),
            _ => false,
        })
        .collect();
    pending.sort_unstable_by(|a, b| b.cmp(a));
    for id in pending {
        if id != root && refs.get(&id).is_none_or(|&n| n == 0) {
            continue;
        }
        let s = ctx.substitute(id, root)?;
        let Kind::Call(c) = g.value(id).kind else {
            continue;
        };
        let call = &g.calls[c as usize];
        let cut: Vec<ValueId> = match s {
            Subst::EmptyCall(..) => std::iter::once(call.callee)
                .chain(std::iter::once(call.args))
                .chain(call.kwargs)
                .collect(),
            Subst::Callee(..) => vec![call.callee],
        };
        ctx.subst.insert(id, s);
        let mut work = cut;
        while let Some(v) = work.pop() {
            let Some(n) = refs.get_mut(&v) else {
                continue;
            };
            *n = n.saturating_sub(1);
            if *n == 0 && v != root {
                work.extend(ctx.inputs(v));
            }
        }
    }
    let needed = ctx.needed(root);
    // A BUILD or method call that changes a class (a global) the result is then made from
    // (`Namespace.__setstate__ = exec`, then a Namespace BUILD): dropping the change alters
    // what the kept opcodes mean, so there is no faithful replacement.
    let patched: HashSet<String> = g
        .mutations
        .iter()
        .filter(|m| !needed.contains(&m.target))
        .filter_map(|m| match g.value(m.target).kind {
            Kind::Global(gi) => Some(g.globals[gi as usize].qualified()),
            _ => None,
        })
        .collect();
    if !patched.is_empty() {
        for &id in &needed {
            if let Kind::Global(gi) = g.value(id).kind {
                let q = g.globals[gi as usize].qualified();
                if patched.contains(&q) {
                    return Err(format!(
                        "the pickle changes `{q}` itself (BUILD or a method call on the class) before the result is made from it; without that change the result would not be the same object"
                    ));
                }
            }
        }
    }
    ctx.subst.retain(|id, _| needed.contains(id));
    for &id in &needed {
        let v = g.value(id);
        match v.kind {
            Kind::Global(gi) if !ctx.allowed_global(id) => {
                return Err(format!(
                    "`{}` (at byte {}) is part of the result itself, not only called, and the policy does not allow it",
                    g.globals[gi as usize].qualified(),
                    v.offset
                ));
            }
            Kind::Ext(_) | Kind::Buffer | Kind::ReadOnly(_) => {
                return Err(format!(
                    "{} is needed by the result and cannot be re-emitted safely",
                    ctx.describe(id)
                ));
            }
            _ => {}
        }
    }
    // Mutations on kept objects must be allowed too.
    for m in &g.mutations {
        if !needed.contains(&m.target) {
            continue;
        }
        let target = g.value(m.target);
        let ok = match (m.kind, target.kind) {
            (MutKind::Append | MutKind::Appends, Kind::List(_))
            | (MutKind::SetItem | MutKind::SetItems, Kind::Dict(_))
            | (MutKind::AddItems, Kind::Set) => true,
            (MutKind::Build, Kind::Call(_)) if ctx.wrappers.contains(&m.target) => true,
            (kind, Kind::Call(c)) => {
                let producer = match ctx.subst.get(&m.target) {
                    Some(Subst::EmptyCall(mo, n)) | Some(Subst::Callee(mo, n)) => {
                        Some(format!("{mo}.{n}"))
                    }
                    None => ctx
                        .uses
                        .made_by(g, &g.calls[c as usize])
                        .map(|(mo, n)| format!("{mo}.{n}")),
                };
                match (kind, producer) {
                    (MutKind::Build, Some(p)) => {
                        policy.build == BuildMode::Instances && {
                            let (mo, n) = p.rsplit_once('.').unwrap_or(("", &p));
                            policy.allowed(mo, n).is_some()
                        }
                    }
                    (_, Some(p)) => policy.is_container(&p),
                    _ => false,
                }
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{} at byte {} changes {}, which the result needs, in a way the policy does not allow",
                m.kind.opcode().name(),
                m.offset,
                ctx.describe(m.target)
            ));
        }
    }
    let mut changes = Vec::new();
    // Report what is dropped: effects that the result does not need.
    let mut call_values: HashMap<u32, ValueId> = HashMap::new();
    for (id, v) in g.values.iter().enumerate() {
        if let Kind::Call(c) = v.kind {
            call_values.insert(c, id as ValueId);
        }
    }
    for (ci, call) in g.calls.iter().enumerate() {
        if call_values
            .get(&(ci as u32))
            .is_some_and(|v| needed.contains(v))
        {
            continue;
        }
        let callee = match g.callee_global(call) {
            Some(gl) => gl.qualified(),
            None => g.describe(call.callee, data),
        };
        changes.push(Change {
            offset: call.offset,
            action: "removed",
            what: format!(
                "{} of {callee} (its result is not part of the loaded object)",
                call.kind.opcode().name()
            ),
        });
    }
    for (id, s) in &ctx.subst {
        let v = g.value(*id);
        let what = match s {
            Subst::EmptyCall(m, n) => format!("{} replaced by `{m}.{n}()`", ctx.describe(*id)),
            Subst::Callee(m, n) => format!(
                "the computed callable of {} replaced by `{m}.{n}`",
                ctx.describe(*id)
            ),
        };
        changes.push(Change {
            offset: v.offset,
            action: "substituted",
            what,
        });
    }
    // Mutations of values the result does not need (a BUILD that rewrites a class's
    // `__setstate__`, SETITEMs on a discarded object) are dropped with them.
    for m in g.mutations.iter().filter(|m| !needed.contains(&m.target)) {
        let target = g.value(m.target);
        if !matches!(target.kind, Kind::Global(_) | Kind::Call(_)) {
            continue;
        }
        changes.push(Change {
            offset: m.offset,
            action: "removed",
            what: format!(
                "{} on {} (not part of the loaded object)",
                m.kind.opcode().name(),
                ctx.describe(m.target)
            ),
        });
    }
    for v in &stream.frame_violations {
        changes.push(Change {
            offset: v.offset,
            action: "removed",
            what: "a FRAME layout that pickle.py and the C unpickler read differently (re-emitted without frames)".into(),
        });
    }
    for s in g.streams.iter().filter(|s| !s.nested).skip(1) {
        changes.push(Change {
            offset: s.start,
            action: "removed",
            what: "a trailing pickle after the first STOP".into(),
        });
    }
    if let Some(t) = &g.trailing {
        changes.push(Change {
            offset: t.offset,
            action: "removed",
            what: format!("{} trailing bytes", t.len),
        });
    }
    changes.sort_by_key(|c| c.offset);
    let bytes = emit(&ctx, &needed, root, stream.max_proto)?;
    Ok(Rebuilt { bytes, changes })
}

/// Every value stored somewhere: in a container's items, a mutation's items, a call's
/// arguments or keyword arguments, or a persistent id.
fn stored_values(g: &Graph) -> HashSet<ValueId> {
    let mut out = HashSet::new();
    for v in &g.values {
        match v.kind {
            Kind::Tuple(it) | Kind::List(it) | Kind::Dict(it) | Kind::FrozenSet(it) => {
                out.extend(g.items(it).iter().copied())
            }
            Kind::PersId(p) => {
                out.insert(p);
            }
            _ => {}
        }
    }
    for m in &g.mutations {
        out.extend(g.items(m.items).iter().copied());
    }
    for c in &g.calls {
        out.insert(c.args);
        out.extend(c.kwargs);
    }
    out
}

fn needs_proto4(ctx: &Ctx<'_>, needed: &HashSet<ValueId>) -> bool {
    needed.iter().any(|&id| {
        let huge = |n: u64| n > u64::from(u32::MAX);
        match ctx.g.value(id).kind {
            Kind::Set | Kind::FrozenSet(_) => true,
            Kind::Call(c) => ctx.g.calls[c as usize].kind == CallKind::NewObjEx,
            // BINBYTES8 / BINUNICODE8
            Kind::Bytes(b) | Kind::ByteArray(b) => huge(ctx.g.blobs[b as usize].1),
            Kind::Str(_) => huge(ctx.g.str_len(id)),
            _ => false,
        }
    })
}

/// Deepest nesting the writer follows before it refuses (it recurses).
const MAX_DEPTH: usize = 5_000;

fn emit(
    ctx: &Ctx<'_>,
    needed: &HashSet<ValueId>,
    root: ValueId,
    max_proto: u8,
) -> Result<Vec<u8>, String> {
    let proto = if needs_proto4(ctx, needed) {
        max_proto.max(4)
    } else {
        max_proto.clamp(2, 5)
    };
    let mut w = Writer {
        ctx,
        e: Emitter::new(proto),
        memo: HashMap::new(),
    };
    // Written the way a pickler writes: each object once, built, memoized, then filled by
    // its mutations in their original order, before anything uses it. No POP or DUP, so
    // restricted loaders (torch's weights_only) accept the result.
    w.value(root, 0)?;
    w.e.stop();
    Ok(w.e.out)
}

struct Writer<'c, 'g> {
    ctx: &'c Ctx<'g>,
    e: Emitter,
    memo: HashMap<ValueId, u32>,
}

impl Writer<'_, '_> {
    fn value(&mut self, id: ValueId, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the object is nested deeper than {MAX_DEPTH} levels"
            ));
        }
        if let Some(&i) = self.memo.get(&id) {
            self.e.get(i);
            return Ok(());
        }
        let g = self.ctx.g;
        if is_scalar(g.value(id).kind) {
            return push_ref(self.ctx, &mut self.e, &self.memo, id);
        }
        self.construct(id, depth)?;
        let i = self.e.put();
        self.memo.insert(id, i);
        let muts: Vec<usize> = self.ctx.muts.get(&id).cloned().unwrap_or_default();
        for m in muts {
            let m = &g.mutations[m];
            let items = g.items(m.items).to_vec();
            match m.kind {
                MutKind::Append | MutKind::SetItem | MutKind::Build => {
                    for it in items {
                        self.value(it, depth + 1)?;
                    }
                    self.e.op(match m.kind {
                        MutKind::Append => b'a',
                        MutKind::SetItem => b's',
                        _ => b'b',
                    });
                }
                MutKind::Appends | MutKind::SetItems | MutKind::AddItems => {
                    self.e.op(b'(');
                    for it in items {
                        self.value(it, depth + 1)?;
                    }
                    self.e.op(match m.kind {
                        MutKind::Appends => b'e',
                        MutKind::SetItems => b'u',
                        _ => 0x90,
                    });
                }
            }
        }
        Ok(())
    }

    /// joblib's layout: the wrapper, its BUILD, then the array itself right after it — raw
    /// bytes behind padding recomputed for the new position, or a nested pickle.
    fn array(&mut self, idx: u32, depth: usize) -> Result<(), String> {
        let g = self.ctx.g;
        let a = &g.arrays[idx as usize];
        if self.memo.contains_key(&a.wrapper) {
            return Err(format!(
                "the joblib array wrapper at byte {} is used twice",
                g.value(a.wrapper).offset
            ));
        }
        self.value(a.wrapper, depth + 1)?;
        if a.object {
            let root = a
                .root
                .ok_or("a joblib object array without a loaded object")?;
            let memo = std::mem::take(&mut self.memo);
            let next = self.e.begin_nested();
            self.value(root, depth + 1)?;
            self.e.stop();
            self.e.end_nested(next);
            self.memo = memo;
            return Ok(());
        }
        let rel = |o: u64| (o - g.base) as usize;
        let bytes = self
            .ctx
            .data
            .get(rel(a.data_start)..rel(a.offset + a.len))
            .ok_or("array bytes out of range")?;
        if let Some(align) = a.align {
            // joblib's write_array: one byte with the padding length, then that many 0xff
            // (joblib and the VM read the byte whenever an alignment is set).
            let pad = if align == 0 {
                0
            } else {
                let after = self.e.out.len() as u64 + 1;
                align - after % align
            };
            let pad =
                u8::try_from(pad).map_err(|_| format!("joblib alignment {align} is too large"))?;
            self.e.op(pad);
            self.e.out.extend(std::iter::repeat_n(0xffu8, pad as usize));
        }
        self.e.out.extend_from_slice(bytes);
        Ok(())
    }

    /// EMPTY_LIST/EMPTY_DICT, then MARK, the items and APPENDS/SETITEMS when there are any.
    fn filled(&mut self, empty: u8, fill: u8, it: Items, depth: usize) -> Result<(), String> {
        self.e.op(empty);
        if it.len > 0 {
            self.e.op(b'(');
            self.items(it, depth)?;
            self.e.op(fill);
        }
        Ok(())
    }

    fn items(&mut self, it: Items, depth: usize) -> Result<(), String> {
        for &x in self.ctx.g.items(it).to_vec().iter() {
            self.value(x, depth + 1)?;
        }
        Ok(())
    }

    fn construct(&mut self, id: ValueId, depth: usize) -> Result<(), String> {
        let g = self.ctx.g;
        match g.value(id).kind {
            Kind::Tuple(it) => match it.len {
                0 => self.e.op(b')'),
                1..=3 => {
                    self.items(it, depth)?;
                    self.e.op(0x84 + it.len as u8);
                }
                _ => {
                    self.e.op(b'(');
                    self.items(it, depth)?;
                    self.e.op(b't');
                }
            },
            // Empty container plus APPENDS/SETITEMS, as CPython's pickler and torch.save write them.
            Kind::List(it) => self.filled(b']', b'e', it, depth)?,
            Kind::Dict(it) => self.filled(b'}', b'u', it, depth)?,
            Kind::Array(a) => self.array(a, depth)?,
            Kind::Set => self.e.op(0x8f),
            Kind::FrozenSet(it) => {
                self.e.op(b'(');
                self.items(it, depth)?;
                self.e.op(0x91);
            }
            Kind::Global(gi) => {
                let gl = &g.globals[gi as usize];
                self.e.global(&gl.module, &gl.name)?;
            }
            Kind::PersId(pid) => {
                self.value(pid, depth + 1)?;
                self.e.op(b'Q');
            }
            Kind::Call(c) => {
                let call = &g.calls[c as usize];
                let subst = self.ctx.subst.get(&id).cloned();
                if let Some(Subst::EmptyCall(m, n)) = &subst {
                    self.e.global(m, n)?;
                    self.e.op(b')');
                    self.e.op(b'R');
                    return Ok(());
                }
                let inst = matches!(call.kind, CallKind::Inst | CallKind::Obj);
                if inst {
                    self.e.op(b'(');
                }
                match &subst {
                    Some(Subst::Callee(m, n)) => self.e.global(m, n)?,
                    _ => self.value(call.callee, depth + 1)?,
                }
                if inst {
                    // instantiate(cls, args) keeps INST/OBJ semantics: MARK, class, arguments, OBJ.
                    let Kind::Tuple(it) = g.value(call.args).kind else {
                        return Err("INST/OBJ arguments are not a tuple".into());
                    };
                    self.items(it, depth)?;
                    self.e.op(b'o');
                    return Ok(());
                }
                self.value(call.args, depth + 1)?;
                match call.kind {
                    CallKind::Reduce => self.e.op(b'R'),
                    CallKind::NewObj => self.e.op(0x81),
                    _ => {
                        self.value(call.kwargs.ok_or("NEWOBJ_EX without kwargs")?, depth + 1)?;
                        self.e.op(0x92);
                    }
                }
            }
            k => return Err(format!("cannot re-emit {k:?}")),
        }
        Ok(())
    }
}

fn push_ref(
    ctx: &Ctx<'_>,
    e: &mut Emitter,
    memo: &HashMap<ValueId, u32>,
    id: ValueId,
) -> Result<(), String> {
    if let Some(&i) = memo.get(&id) {
        e.get(i);
        return Ok(());
    }
    let g = ctx.g;
    let v = g.value(id);
    match v.kind {
        Kind::None => e.none(),
        Kind::Bool(b) => e.bool(b),
        Kind::Int(i) => e.int(i),
        Kind::BigInt(i) => e.bigint(&g.bigints[i as usize])?,
        Kind::Float(f) => e.float(f),
        Kind::Str(_) => {
            let bytes = g.str_bytes(id, ctx.data).ok_or("string out of range")?;
            e.str_utf8(&bytes);
        }
        Kind::Bytes(b) | Kind::ByteArray(b) => {
            let (off, len) = g.blobs[b as usize];
            let s = (off - g.base) as usize;
            let bytes = ctx
                .data
                .get(s..s + len as usize)
                .ok_or("bytes out of range")?;
            if matches!(v.kind, Kind::ByteArray(_)) {
                if e.proto < 5 {
                    e.global("builtins", "bytearray")?;
                    e.bytes(bytes);
                    e.op(0x85);
                    e.op(b'R');
                } else {
                    e.op(0x96);
                    e.out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    e.out.extend_from_slice(bytes);
                }
            } else {
                e.bytes(bytes);
            }
        }
        _ => {
            return Err(format!(
                "internal: {} used before it is built",
                g.describe(id, ctx.data)
            ))
        }
    }
    Ok(())
}
