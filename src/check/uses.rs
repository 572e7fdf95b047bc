//! How a pickle uses each name it imports: called, instantiated without `__init__`, or
//! only referenced as a value (policy allow modes), and which `builtins.getattr` calls
//! name one exact attribute of an imported global (`getattr(ZoneInfo, '_unpickle')`, how
//! CPython pickles classmethods and methods).
//!
//! Pure graph analysis; the policy decision is in the parent module.

use crate::pickle::graph::{CallKind, Graph, Kind, ValueId};
use crate::policy::Mode;
use std::collections::HashMap;

/// The widest use of a name, and the opcode that made it that wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub mode: Mode,
    /// Offset of the call that needs `mode` (the import itself for a reference).
    pub offset: u64,
    pub opcode: &'static str,
}

impl Use {
    fn raise(&mut self, mode: Mode, offset: u64, opcode: &'static str) {
        if mode > self.mode {
            *self = Use {
                mode,
                offset,
                opcode,
            };
        }
    }
}

/// `getattr(base, 'attr')` resolved to the dotted name `module.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub module: String,
    pub name: String,
    /// The getattr REDUCE.
    pub offset: u64,
    pub used: Use,
}

impl Attr {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// The uses of every global of a graph, indexed like `Graph::globals`.
#[derive(Debug, Default)]
pub struct Uses {
    pub globals: Vec<Use>,
    /// Resolved getattr calls, by the value id of the call's result.
    pub attrs: HashMap<ValueId, Attr>,
    /// `builtins.getattr` globals whose every use is a resolved call (their import does
    /// nothing else, so the global itself needs no allow entry).
    pub getattr_resolved: Vec<bool>,
}

impl Uses {
    /// The name a value stands for: a global's or a resolved getattr's.
    pub fn name_of(&self, g: &Graph, id: ValueId) -> Option<(String, String)> {
        match g.value(id).kind {
            Kind::Global(gi) => {
                let gl = &g.globals[gi as usize];
                Some((gl.module.clone(), gl.name.clone()))
            }
            Kind::Call(_) => self
                .attrs
                .get(&id)
                .map(|a| (a.module.clone(), a.name.clone())),
            _ => None,
        }
    }

    /// What the call that produced an object names as its maker: the callee, or for
    /// copyreg's `__newobj__`/`__newobj_ex__`/`_reconstructor` the class argument (the
    /// object is an instance of that class, whose `__setstate__` BUILD calls).
    pub fn made_by(
        &self,
        g: &Graph,
        call: &crate::pickle::graph::Call,
    ) -> Option<(String, String)> {
        let (m, n) = self.name_of(g, call.callee)?;
        if m == "copyreg"
            && matches!(
                n.as_str(),
                "__newobj__" | "__newobj_ex__" | "_reconstructor"
            )
        {
            let cls = tuple_items(g, call.args).and_then(|items| items.first().copied());
            return cls.and_then(|c| self.name_of(g, c));
        }
        Some((m, n))
    }

    /// Whether a call's callee is a global or a resolved getattr (so what runs is known).
    pub fn callee_is_named(&self, g: &Graph, callee: ValueId) -> bool {
        match g.value(callee).kind {
            Kind::Global(_) | Kind::Ext(_) => true,
            Kind::Call(_) => self.attrs.contains_key(&callee),
            _ => false,
        }
    }
}

fn is_global(g: &Graph, id: ValueId, module: &str, name: &str) -> bool {
    matches!(g.value(id).kind, Kind::Global(gi)
        if g.globals[gi as usize].module == module && g.globals[gi as usize].name == name)
}

/// The value ids of a tuple's items, when `id` is a tuple.
fn tuple_items(g: &Graph, id: ValueId) -> Option<&[ValueId]> {
    match g.value(id).kind {
        Kind::Tuple(items) => Some(g.items(items)),
        _ => None,
    }
}

pub fn analyze(g: &Graph, data: &[u8]) -> Uses {
    let mut uses = Uses {
        globals: g
            .globals
            .iter()
            .map(|gl| Use {
                mode: Mode::Reference,
                offset: gl.offset,
                opcode: gl.opcode.name(),
            })
            .collect(),
        attrs: HashMap::new(),
        getattr_resolved: vec![false; g.globals.len()],
    };
    if g.calls.is_empty() {
        return uses;
    }
    // The value id of each call's result (calls are numbered in stream order, so a nested
    // getattr's inner call is resolved before the outer one reads it).
    let mut result = vec![None; g.calls.len()];
    for (id, v) in g.values.iter().enumerate() {
        if let Kind::Call(c) = v.kind {
            if let Some(slot) = result.get_mut(c as usize) {
                *slot = Some(id as ValueId);
            }
        }
    }
    // Which globals are rebuilders that use their arguments: looked up once per global,
    // not once per call (a forest pickles millions of REDUCEs of a few globals).
    let rebuilders: Vec<Rebuilder> = g
        .globals
        .iter()
        .map(|gl| {
            if gl.module == "copyreg" && gl.name == "_reconstructor" {
                Rebuilder::Reconstructor
            } else {
                match crate::policy::sinks::rebuilder_args(&gl.module, &gl.name) {
                    Some(t) => Rebuilder::Table(t),
                    None => Rebuilder::None,
                }
            }
        })
        .collect();
    let mut getattr_calls = vec![0usize; g.globals.len()];
    let mut getattr_other = vec![false; g.globals.len()];
    for (ci, call) in g.calls.iter().enumerate() {
        let op = call.kind.opcode().name();
        let mode = match call.kind {
            CallKind::NewObj | CallKind::NewObjEx => Mode::New,
            CallKind::Reduce | CallKind::Inst | CallKind::Obj => Mode::Call,
        };
        match g.value(call.callee).kind {
            Kind::Global(gi) => {
                let gl = &g.globals[gi as usize];
                let getattr = gl.module == "builtins" && gl.name == "getattr";
                if getattr && call.kind == CallKind::Reduce && call.kwargs.is_none() {
                    if let Some(attr) = resolve_getattr(g, &uses, call.args, data, call.offset) {
                        getattr_calls[gi as usize] += 1;
                        if let Some(res) = result[ci] {
                            uses.attrs.insert(res, attr);
                        }
                        continue;
                    }
                }
                if getattr {
                    getattr_other[gi as usize] = true;
                }
                uses.globals[gi as usize].raise(mode, call.offset, op);
                if call.kind == CallKind::Reduce {
                    rebuilder_args(
                        g,
                        &mut uses,
                        rebuilders[gi as usize],
                        call.args,
                        call.offset,
                    );
                }
            }
            Kind::Call(_) => {
                if let Some(a) = uses.attrs.get_mut(&call.callee) {
                    a.used.raise(mode, call.offset, op);
                }
            }
            _ => {}
        }
    }
    let candidates: Vec<usize> = (0..g.globals.len())
        .filter(|&i| getattr_calls[i] > 0 && !getattr_other[i])
        .collect();
    if !candidates.is_empty() {
        // Referenced anywhere but as the callee of a resolved call (stored, passed on),
        // the getattr global stays a global to check.
        let ids: HashMap<ValueId, usize> = candidates
            .iter()
            .map(|&i| (g.globals[i].value, i))
            .collect();
        let mut referenced = vec![false; g.globals.len()];
        let mut mark = |v: ValueId| {
            if let Some(&i) = ids.get(&v) {
                referenced[i] = true;
            }
        };
        g.items.iter().copied().for_each(&mut mark);
        for m in &g.mutations {
            mark(m.target);
        }
        for s in &g.streams {
            if let Some(r) = s.root {
                mark(r);
            }
        }
        for v in &g.values {
            match v.kind {
                Kind::PersId(p) | Kind::ReadOnly(p) => mark(p),
                _ => {}
            }
        }
        for c in &g.calls {
            mark(c.args);
            if let Some(k) = c.kwargs {
                mark(k);
            }
        }
        for i in candidates {
            uses.getattr_resolved[i] = !referenced[i];
        }
    }
    uses
}

/// `getattr(base, 'attr')` with `base` a literal global or a resolved getattr and `attr` a
/// literal string without a dot (getattr does not walk dotted paths: such a call raises).
fn resolve_getattr(
    g: &Graph,
    uses: &Uses,
    args: ValueId,
    data: &[u8],
    offset: u64,
) -> Option<Attr> {
    let [base, attr] = tuple_items(g, args)? else {
        return None;
    };
    let (module, name) = match g.value(*base).kind {
        Kind::Global(gi) => {
            let gl = &g.globals[gi as usize];
            if !matches!(gl.resolution, crate::pickle::graph::Resolution::Literal) {
                return None;
            }
            (gl.module.clone(), gl.name.clone())
        }
        Kind::Call(_) => {
            let a = uses.attrs.get(base)?;
            (a.module.clone(), a.name.clone())
        }
        _ => return None,
    };
    let attr = g.as_str(*attr, data)?;
    if attr.is_empty() || attr.contains('.') || attr.len() > 256 {
        return None;
    }
    Some(Attr {
        module,
        name: format!("{name}.{attr}"),
        offset,
        used: Use {
            mode: Mode::Reference,
            offset,
            opcode: "REDUCE",
        },
    })
}

/// Allowed rebuilders that call or instantiate an argument (`sinks.yaml` `rebuilders:`,
/// e.g. `copyreg.__newobj__(cls, *args)` is `cls.__new__`, torch's
/// `_rebuild_from_type_v2(func, new_type, args, state)` calls `func`): the argument is used
/// in that mode. `copyreg._reconstructor(cls, base, state)` is `object.__new__(cls)` when
/// `base` is `object`, else `base.__new__(cls, state)` followed by `base.__init__` (a call
/// of `base`).
#[derive(Clone, Copy)]
enum Rebuilder {
    None,
    Reconstructor,
    Table(&'static [Option<Mode>]),
}

fn rebuilder_args(g: &Graph, uses: &mut Uses, rebuilder: Rebuilder, args: ValueId, offset: u64) {
    if matches!(rebuilder, Rebuilder::None) {
        return;
    }
    let Some(items) = tuple_items(g, args) else {
        return;
    };
    let mut raise = |id: ValueId, mode: Mode| match g.value(id).kind {
        Kind::Global(gi) => uses.globals[gi as usize].raise(mode, offset, "REDUCE"),
        Kind::Call(_) => {
            if let Some(a) = uses.attrs.get_mut(&id) {
                a.used.raise(mode, offset, "REDUCE");
            }
        }
        _ => {}
    };
    match (rebuilder, items) {
        (Rebuilder::Table(modes), _) => {
            for (&id, mode) in items.iter().zip(modes) {
                if let Some(m) = mode {
                    raise(id, *m);
                }
            }
        }
        (Rebuilder::Reconstructor, [cls, base, ..]) => {
            raise(*cls, Mode::New);
            if !is_global(g, *base, "builtins", "object") {
                raise(*base, Mode::Call);
            }
        }
        _ => {}
    }
}
