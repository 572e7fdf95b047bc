//! Values of the graph as the Python objects numpy would be handed: the arguments and
//! BUILD states of `numpy.dtype` reductions, so joblib's array sizes and object-ness
//! are computed by numpy's own rules (`crate::numpy::dtype`) instead of read off text.

use super::graph::{Graph, Kind, MutKind, ValueId};
use crate::numpy::dtype::{self, Dtype, DtypeError};
use crate::numpy::literal::Lit;

/// Values converted per call; beyond that a value is `Unknown` (numpy then is "unsure").
const MAX_NODES: usize = 10_000;
const MAX_DEPTH: usize = 64;

/// Whether a global is the `numpy.dtype` class as numpy pickles it.
fn is_dtype_class(module: &str, name: &str) -> bool {
    name == "dtype"
        && matches!(
            module,
            "numpy" | "numpy.core.multiarray" | "numpy._core.multiarray"
        )
}

struct Conv<'g> {
    g: &'g Graph,
    data: &'g [u8],
    nodes: usize,
}

impl Conv<'_> {
    fn items(&mut self, ids: &[ValueId], depth: usize) -> Vec<Lit> {
        ids.iter().map(|&i| self.lit(i, depth + 1)).collect()
    }

    /// Items appended to a list or dict after it was made (in opcode order).
    fn mutated(&self, v: ValueId, kinds: &[MutKind]) -> Vec<ValueId> {
        let mut out = Vec::new();
        for m in self.g.mutations.iter().filter(|m| m.target == v) {
            if kinds.contains(&m.kind) {
                out.extend_from_slice(self.g.items(m.items));
            }
        }
        out
    }

    fn lit(&mut self, v: ValueId, depth: usize) -> Lit {
        self.nodes += 1;
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Lit::Unknown;
        }
        let g = self.g;
        match g.value(v).kind {
            Kind::None => Lit::None,
            Kind::Bool(b) => Lit::Bool(b),
            Kind::Int(i) => Lit::Int(i as i128),
            Kind::BigInt(i) => g.bigints[i as usize]
                .parse::<i128>()
                .map(Lit::Int)
                .unwrap_or(Lit::Unknown),
            Kind::Float(f) => Lit::Float(f),
            Kind::Str(_) => g
                .as_str(v, self.data)
                .map(|s| Lit::Str(s.into_owned()))
                .unwrap_or(Lit::Unknown),
            Kind::Bytes(i) => {
                let (off, len) = g.blobs[i as usize];
                let at = off.saturating_sub(g.base) as usize;
                match self.data.get(at..at.saturating_add(len as usize)) {
                    Some(b) if len <= 1 << 16 => Lit::Bytes(b.to_vec()),
                    _ => Lit::Unknown,
                }
            }
            Kind::Tuple(items) => {
                let ids = g.items(items).to_vec();
                Lit::Tuple(self.items(&ids, depth))
            }
            Kind::List(items) => {
                let mut ids = g.items(items).to_vec();
                ids.extend(self.mutated(v, &[MutKind::Append, MutKind::Appends]));
                Lit::List(self.items(&ids, depth))
            }
            Kind::Dict(_) => {
                let pairs = g.dict_pairs(v);
                let mut out: Vec<(Lit, Lit)> = Vec::with_capacity(pairs.len());
                for (k, val) in pairs {
                    let k = self.lit(k, depth + 1);
                    let val = self.lit(val, depth + 1);
                    // Later SETITEMs replace earlier ones, as in a dict.
                    match out.iter_mut().find(|(ek, _)| ek.py_eq(&k)) {
                        Some(slot) => slot.1 = val,
                        None => out.push((k, val)),
                    }
                }
                Lit::Dict(out)
            }
            Kind::Global(gi) => {
                let gl = &g.globals[gi as usize];
                Lit::Global(gl.module.clone(), gl.name.clone())
            }
            Kind::Call(c) => {
                if let Some(b) = self.protocol2_bytes(c) {
                    return Lit::Bytes(b);
                }
                match self.dtype(v, depth) {
                    Ok(d) => Lit::Dtype(Box::new(d)),
                    Err(_) => Lit::Unknown,
                }
            }
            _ => Lit::Unknown,
        }
    }

    /// Bytes as protocols 0–2 write them (they have no bytes opcode):
    /// `_codecs.encode(text, 'latin1')`, or `builtins.bytes()` for `b''`. A datetime64
    /// dtype's unit in a protocol 2 `__setstate__` arrives this way.
    fn protocol2_bytes(&self, c: u32) -> Option<Vec<u8>> {
        let g = self.g;
        let call = &g.calls[c as usize];
        let gl = g.callee_global(call)?;
        if call.kwargs.is_some() {
            return None;
        }
        let Kind::Tuple(items) = g.value(call.args).kind else {
            return None;
        };
        let args = g.items(items);
        match (gl.module.as_str(), gl.name.as_str(), args) {
            ("builtins", "bytes", []) => Some(Vec::new()),
            ("_codecs", "encode", [text, codec]) => {
                let codec = g.as_str(*codec, self.data)?;
                if !matches!(codec.as_ref(), "latin1" | "latin-1" | "iso-8859-1") {
                    return None;
                }
                let text = g.as_str(*text, self.data)?;
                if text.len() > 1 << 16 {
                    return None;
                }
                text.chars()
                    .map(|ch| u8::try_from(u32::from(ch)).ok())
                    .collect()
            }
            _ => None,
        }
    }

    /// `numpy.dtype(*args)` followed by every BUILD (`__setstate__`) applied to it so far.
    fn dtype(&mut self, v: ValueId, depth: usize) -> Result<Dtype, DtypeError> {
        let g = self.g;
        let Kind::Call(c) = g.value(v).kind else {
            return Err(DtypeError::Unsure("not a numpy.dtype(...) call".into()));
        };
        let call = &g.calls[c as usize];
        let is_dtype = g
            .callee_global(call)
            .is_some_and(|gl| is_dtype_class(&gl.module, &gl.name));
        if !is_dtype || call.kwargs.is_some() {
            return Err(DtypeError::Unsure(
                "the array's dtype is not made by numpy.dtype(...)".into(),
            ));
        }
        let args = match g.value(call.args).kind {
            Kind::Tuple(items) => {
                let ids = g.items(items).to_vec();
                self.items(&ids, depth)
            }
            _ => {
                return Err(DtypeError::Unsure(
                    "numpy.dtype arguments are not a tuple".into(),
                ))
            }
        };
        // numpy.dtype(d, ...) of a dtype that is not numpy's singleton returns that same
        // object, so a later BUILD would mutate a dtype used elsewhere too: not modelled.
        if matches!(args.first(), Some(Lit::Dtype(_))) {
            return Err(DtypeError::Unsure(
                "numpy.dtype(...) of another dtype object (aliasing)".into(),
            ));
        }
        let mut d = dtype::call(&args)?;
        let builds: Vec<ValueId> = g
            .mutations
            .iter()
            .filter(|m| m.target == v && m.kind == MutKind::Build)
            .map(|m| g.items(m.items)[0])
            .collect();
        for state in builds {
            let state = self.lit(state, depth + 1);
            d.setstate(&state)?;
        }
        Ok(d)
    }
}

/// The value as a Python literal (`Unknown` where it is not one).
pub fn to_lit(g: &Graph, data: &[u8], v: ValueId) -> Lit {
    Conv { g, data, nodes: 0 }.lit(v, 0)
}

/// The dtype a `numpy.dtype(...)` value has after its BUILDs, by numpy's rules.
pub fn to_dtype(g: &Graph, data: &[u8], v: ValueId) -> Result<Dtype, DtypeError> {
    Conv { g, data, nodes: 0 }.dtype(v, 0)
}
