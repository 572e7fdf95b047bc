//! The value graph the VM builds: every value knows the opcode that produced it, its
//! inputs (items, call arguments) and, through `mutations`, every change applied to it
//! in stream order. Shared references are the same `ValueId`, exactly as the memo
//! shares Python objects, so the sanitizer can re-emit the object graph faithfully.

use super::decode::FrameViolation;
use super::op::Opcode;
use std::borrow::Cow;

pub type ValueId = u32;

/// A run of value ids in `Graph::items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Items {
    pub start: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    None,
    Bool(bool),
    Int(i64),
    /// Index into `Graph::bigints` (decimal text).
    BigInt(u32),
    Float(f64),
    /// A `str`: see [`Graph::str_bytes`]. Either an index into `Graph::strs`, or (with
    /// [`STR_INLINE`] set) the length of UTF-8 text that follows the producing BINUNICODE-
    /// family opcode's header, so the common string costs no side-table entry.
    Str(u32),
    /// Index into `Graph::blobs`.
    Bytes(u32),
    ByteArray(u32),
    Tuple(Items),
    /// Initial items (LIST) — later APPEND(S) are mutations.
    List(Items),
    Dict(Items),
    Set,
    FrozenSet(Items),
    /// Index into `Graph::globals`.
    Global(u32),
    /// Index into `Graph::calls`: the call's result.
    Call(u32),
    /// EXT1/2/4 registry code.
    Ext(i64),
    /// Result of `persistent_load(pid)`.
    PersId(ValueId),
    /// Out-of-band buffer (NEXT_BUFFER).
    Buffer,
    ReadOnly(ValueId),
    /// The array joblib's NumpyUnpickler reads after BUILD of a NumpyArrayWrapper
    /// (index into `Graph::arrays`).
    Array(u32),
}

/// Raw array bytes that joblib reads from inside the pickle stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayRegion {
    pub wrapper: ValueId,
    /// Absolute offset and length of the raw bytes (padding included), or of the
    /// nested pickle for object arrays.
    pub offset: u64,
    pub len: u64,
    pub object: bool,
    /// joblib's `numpy_array_alignment_bytes`: the padding before raw bytes depends on the
    /// absolute position, so a rewriter recomputes it.
    pub align: Option<u64>,
    /// Absolute offset of the element bytes (after the padding) of a raw array.
    pub data_start: u64,
    /// The loaded object of an object array's nested pickle.
    pub root: Option<ValueId>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub kind: Kind,
    /// Absolute offset of the producing opcode.
    pub offset: u64,
}

/// String payloads: borrowed from the input when they are valid UTF-8 as-is.
/// Marks a `Kind::Str` whose text is the producing opcode's own argument.
pub const STR_INLINE: u32 = 1 << 31;

/// Bytes of header before the argument of a length-prefixed string opcode.
fn string_header(opcode: u8) -> Option<u64> {
    match opcode {
        0x8c | b'U' => Some(2), // SHORT_BINUNICODE, SHORT_BINSTRING
        b'X' | b'T' => Some(5), // BINUNICODE, BINSTRING
        0x8d => Some(9),        // BINUNICODE8
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PyStr {
    Span {
        offset: u64,
        len: u64,
    },
    Owned(String),
    /// Strings with lone surrogates (legal in Python), as code points.
    CodePoints(Vec<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Reduce,
    NewObj,
    NewObjEx,
    Inst,
    Obj,
}

impl CallKind {
    pub fn opcode(self) -> Opcode {
        match self {
            CallKind::Reduce => Opcode::Reduce,
            CallKind::NewObj => Opcode::NewObj,
            CallKind::NewObjEx => Opcode::NewObjEx,
            CallKind::Inst => Opcode::Inst,
            CallKind::Obj => Opcode::Obj,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub kind: CallKind,
    pub callee: ValueId,
    /// A tuple value (synthesized for INST/OBJ from the MARK items).
    pub args: ValueId,
    pub kwargs: Option<ValueId>,
    pub offset: u64,
    pub stream: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutKind {
    Append,
    Appends,
    SetItem,
    SetItems,
    AddItems,
    Build,
}

impl MutKind {
    pub fn opcode(self) -> Opcode {
        match self {
            MutKind::Append => Opcode::Append,
            MutKind::Appends => Opcode::Appends,
            MutKind::SetItem => Opcode::SetItem,
            MutKind::SetItems => Opcode::SetItems,
            MutKind::AddItems => Opcode::AddItems,
            MutKind::Build => Opcode::Build,
        }
    }

    /// The Python method the unpickler calls on a target that is not a builtin container.
    pub fn method(self) -> &'static str {
        match self {
            MutKind::Append => "append",
            MutKind::Appends => "extend",
            MutKind::SetItem | MutKind::SetItems => "__setitem__",
            MutKind::AddItems => "add",
            MutKind::Build => "__setstate__",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub kind: MutKind,
    pub target: ValueId,
    /// Appended items, key/value pairs, or the single BUILD state.
    pub items: Items,
    pub offset: u64,
    pub stream: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Module and name came from literal strings.
    Literal,
    /// STACK_GLOBAL on values that are not literal strings.
    Unresolved(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub value: ValueId,
    pub offset: u64,
    pub opcode: Opcode,
    /// After `fix_imports` mapping.
    pub module: String,
    pub name: String,
    /// The names as written in the pickle, when `fix_imports` changed them.
    pub original: Option<(String, String)>,
    pub resolution: Resolution,
    pub stream: u32,
}

impl Global {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    pub offset: u64,
    pub message: String,
    pub budget: bool,
    /// The data ended inside an opcode (truncation), as opposed to invalid content.
    pub at_eof: bool,
}

/// One pickle program (the bytes up to and including a STOP, or up to an error).
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub start: u64,
    pub end: u64,
    pub ops: u64,
    pub root: Option<ValueId>,
    pub stopped: bool,
    pub error: Option<StreamError>,
    pub max_proto: u8,
    /// Offsets and values of every PROTO opcode.
    pub protos: Vec<(u64, u8)>,
    pub frame_violations: Vec<FrameViolation>,
    /// Whether the stream did anything a loader would act on (imports, calls, ...).
    pub effectful: bool,
    /// A pickle read by a nested `pickle.load` inside another one (joblib object arrays).
    pub nested: bool,
}

impl Stream {
    /// A stream about to be run from `start`.
    pub fn at(start: u64, nested: bool) -> Stream {
        Stream {
            start,
            end: start,
            ops: 0,
            root: None,
            stopped: false,
            error: None,
            max_proto: 0,
            protos: Vec::new(),
            frame_violations: Vec::new(),
            effectful: false,
            nested,
        }
    }
}

/// Bytes after the last pickle that are not a pickle themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailing {
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    pub items: Vec<ValueId>,
    pub strs: Vec<PyStr>,
    /// (absolute offset, length) of bytes payloads.
    pub blobs: Vec<(u64, u64)>,
    pub bigints: Vec<String>,
    pub globals: Vec<Global>,
    pub calls: Vec<Call>,
    pub mutations: Vec<Mutation>,
    /// Values produced by PERSID/BINPERSID.
    pub persids: Vec<ValueId>,
    /// Values produced by EXT1/2/4.
    pub exts: Vec<ValueId>,
    pub streams: Vec<Stream>,
    pub arrays: Vec<ArrayRegion>,
    pub trailing: Option<Trailing>,
    /// Absolute offset of the first byte of the analysed buffer.
    pub base: u64,
}

impl Graph {
    #[inline]
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id as usize]
    }

    pub fn items(&self, it: Items) -> &[ValueId] {
        &self.items[it.start as usize..(it.start + it.len) as usize]
    }

    /// Where a string's text lies in `data`, when it is a span of the analysed buffer.
    fn str_span(&self, v: &Value, data: &[u8]) -> Option<(usize, usize)> {
        let Kind::Str(i) = v.kind else {
            return None;
        };
        if i & STR_INLINE != 0 {
            let at = (v.offset - self.base) as usize;
            let header = string_header(*data.get(at)?)? as usize;
            return Some((at + header, (i & !STR_INLINE) as usize));
        }
        match &self.strs[i as usize] {
            PyStr::Span { offset, len } => Some(((offset - self.base) as usize, *len as usize)),
            _ => None,
        }
    }

    /// A string value's UTF-8 bytes (lone surrogates as surrogatepass), borrowing from
    /// `data` (the analysed buffer) when possible.
    pub fn str_bytes<'d>(&'d self, id: ValueId, data: &'d [u8]) -> Option<Cow<'d, [u8]>> {
        let v = self.value(id);
        let Kind::Str(i) = v.kind else {
            return None;
        };
        if let Some((s, len)) = self.str_span(v, data) {
            return data.get(s..s + len).map(Cow::Borrowed);
        }
        if i & STR_INLINE != 0 {
            return None;
        }
        match &self.strs[i as usize] {
            PyStr::Owned(s) => Some(Cow::Borrowed(s.as_bytes())),
            PyStr::CodePoints(c) => Some(Cow::Owned(super::pytext::encode_surrogatepass(c))),
            PyStr::Span { .. } => None,
        }
    }

    /// Length in bytes of a string's UTF-8 text.
    pub fn str_len(&self, id: ValueId) -> u64 {
        match self.value(id).kind {
            Kind::Str(i) if i & STR_INLINE != 0 => u64::from(i & !STR_INLINE),
            Kind::Str(i) => match &self.strs[i as usize] {
                PyStr::Span { len, .. } => *len,
                PyStr::Owned(s) => s.len() as u64,
                PyStr::CodePoints(c) => c.len() as u64 * 3,
            },
            _ => 0,
        }
    }

    /// The string a value holds, if it is a literal `str`.
    pub fn as_str<'d>(&'d self, id: ValueId, data: &'d [u8]) -> Option<Cow<'d, str>> {
        let Kind::Str(i) = self.value(id).kind else {
            return None;
        };
        if i & STR_INLINE == 0 {
            match &self.strs[i as usize] {
                PyStr::Owned(s) => return Some(Cow::Borrowed(s.as_str())),
                PyStr::CodePoints(c) => {
                    return Some(Cow::Owned(super::pytext::codepoints_to_string(c)))
                }
                PyStr::Span { .. } => {}
            }
        }
        let (s, len) = self.str_span(self.value(id), data)?;
        Some(String::from_utf8_lossy(data.get(s..s + len).unwrap_or(&[])))
    }

    /// All calls whose callee is `id` (the same object, however it was reached).
    pub fn calls_of(&self, id: ValueId) -> impl Iterator<Item = &Call> {
        self.calls.iter().filter(move |c| c.callee == id)
    }

    /// The global a call invokes, when the callee is one.
    pub fn callee_global(&self, call: &Call) -> Option<&Global> {
        match self.value(call.callee).kind {
            Kind::Global(g) => Some(&self.globals[g as usize]),
            _ => None,
        }
    }

    /// Key/value pairs of a dict literal: its initial items and every SETITEM(S) on it.
    pub fn dict_pairs(&self, id: ValueId) -> Vec<(ValueId, ValueId)> {
        let mut out = Vec::new();
        if let Kind::Dict(items) = self.value(id).kind {
            out.extend(self.items(items).chunks_exact(2).map(|p| (p[0], p[1])));
        }
        for m in self.mutations.iter().filter(|m| m.target == id) {
            if matches!(m.kind, MutKind::SetItem | MutKind::SetItems) {
                out.extend(self.items(m.items).chunks_exact(2).map(|p| (p[0], p[1])));
            }
        }
        out
    }

    /// A short description of a value for messages ("the result of REDUCE at 40").
    pub fn describe(&self, id: ValueId, data: &[u8]) -> String {
        let v = self.value(id);
        match v.kind {
            Kind::None => "None".into(),
            Kind::Bool(b) => if b { "True" } else { "False" }.into(),
            Kind::Int(i) => i.to_string(),
            Kind::BigInt(i) => self.bigints[i as usize].clone(),
            Kind::Float(f) => super::pyrepr::repr_float(f),
            Kind::Str(_) => {
                let t = self.as_str(id, data).unwrap_or_default();
                let cps: Vec<u32> = t.chars().take(80).map(|c| c as u32).collect();
                super::pyrepr::repr_str(&cps)
            }
            Kind::Bytes(_) => format!("bytes at {}", v.offset),
            Kind::ByteArray(_) => format!("bytearray at {}", v.offset),
            Kind::Tuple(_) => format!("tuple at {}", v.offset),
            Kind::List(_) => format!("list at {}", v.offset),
            Kind::Dict(_) => format!("dict at {}", v.offset),
            Kind::Set => format!("set at {}", v.offset),
            Kind::FrozenSet(_) => format!("frozenset at {}", v.offset),
            Kind::Global(g) => format!(
                "global {} at {}",
                self.globals[g as usize].qualified(),
                v.offset
            ),
            Kind::Call(c) => {
                let call = &self.calls[c as usize];
                let callee = match self.callee_global(call) {
                    Some(g) => g.qualified(),
                    None => "a computed callable".into(),
                };
                format!(
                    "the result of {} {} at {}",
                    call.kind.opcode().name(),
                    callee,
                    v.offset
                )
            }
            Kind::Ext(code) => format!("extension code {code} at {}", v.offset),
            Kind::PersId(_) => format!("a persistent object at {}", v.offset),
            Kind::Buffer => format!("an out-of-band buffer at {}", v.offset),
            Kind::ReadOnly(_) => format!("a read-only buffer at {}", v.offset),
            Kind::Array(_) => format!("a joblib array at {}", v.offset),
        }
    }
}
