//! The abstract unpickler: CPython's `load()` loop with every opcode's stack, MARK and
//! memo semantics (`Modules/_pickle.c`, `Lib/pickle.py`), building a [`Graph`] instead
//! of objects. Nothing is imported or called; calls become graph nodes.
//!
//! Where the two CPython implementations disagree the VM takes the more permissive
//! reading, so that every effect either loader could perform is in the graph.

use super::compat;
use super::decode::{Arg, DecodeError, Decoder, Op};
use super::graph::*;
use super::op::Opcode;
use super::pytext::{self, PyInt};
use std::collections::HashMap;

/// Resource limits. Exceeding one ends the stream with a budget error (a finding).
/// The defaults fit a shared CI runner (`crate::budget`): about 1 GiB for one pickle's
/// graph, and a worst case of a few seconds of opcodes.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub max_ops: u64,
    pub max_values: usize,
    pub max_memo: usize,
    pub max_stack: usize,
    pub max_marks: usize,
    pub max_streams: usize,
    /// Bytes of the graph, memo and stack together (an estimate from their capacities,
    /// checked as they grow).
    pub max_memory: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            max_ops: 100_000_000,
            max_values: 40_000_000,
            max_memo: 20_000_000,
            max_stack: 20_000_000,
            max_marks: 10_000_000,
            max_streams: 1_000,
            max_memory: 1 << 30,
        }
    }
}

/// Opcodes between two looks at the memory estimate and the clock.
const CHECK_EVERY: u64 = 1 << 13;

const DENSE_MEMO: u64 = 1 << 22;

const NO_VALUE: ValueId = ValueId::MAX;

/// CPython's memo: explicit indices for PUT, `len(memo)` for MEMOIZE.
#[derive(Default)]
struct Memo {
    dense: Vec<ValueId>,
    sparse: HashMap<u64, ValueId>,
    /// Indices past 2^63 (decimal text): pickle.py's memo is a dict of Python ints and
    /// takes any non-negative PUT index; `_pickle.c` refuses those (Py_ssize_t).
    big: HashMap<String, ValueId>,
    len: usize,
}

impl Memo {
    #[inline]
    fn get(&self, idx: u64) -> Option<ValueId> {
        if let Some(&v) = usize::try_from(idx).ok().and_then(|i| self.dense.get(i)) {
            if v != NO_VALUE {
                return Some(v);
            }
        }
        if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get(&idx).copied()
        }
    }

    /// The dense part grows with the indices CPython's picklers write (MEMOIZE is always
    /// `len(memo)`, PUT counts up), but never beyond twice the entries it holds plus a
    /// constant, so far-out explicit indices cannot make it allocate more than the memo budget.
    #[inline]
    fn dense_limit(&self) -> u64 {
        (2 * self.len as u64).max(DENSE_MEMO)
    }

    #[inline]
    fn put(&mut self, idx: u64, v: ValueId) {
        let fresh = if idx < self.dense.len() as u64 || idx < self.dense_limit() {
            let i = idx as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, NO_VALUE);
            }
            let was_dense = self.dense[i] != NO_VALUE;
            self.dense[i] = v;
            let was_sparse = !self.sparse.is_empty() && self.sparse.remove(&idx).is_some();
            !(was_dense || was_sparse)
        } else {
            self.sparse.insert(idx, v).is_none()
        };
        if fresh {
            self.len += 1;
        }
    }
}

#[derive(Debug)]
enum Fault {
    Decode(DecodeError),
    Msg(String),
    Budget(String),
}

impl From<DecodeError> for Fault {
    fn from(e: DecodeError) -> Self {
        Fault::Decode(e)
    }
}

fn msg<T>(s: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Msg(s.into()))
}

pub struct Vm<'a> {
    /// `data` is a prefix of the blob, not all of it.
    window: bool,
    /// joblib's NumpyUnpickler semantics for the current stream (never inside an object
    /// array's payload: joblib reads that with a plain `pickle.load`).
    joblib: bool,
    data: &'a [u8],
    base: u64,
    budgets: Budgets,
    g: Graph,
    stack: Vec<ValueId>,
    marks: Vec<usize>,
    memo: Memo,
    proto: u8,
    stream: u32,
    empty_tuple: Option<ValueId>,
    /// Bytes of text the VM owns (decoded strings, big integers' digits).
    owned: u64,
}

/// Analyses every pickle stream in `data` (whose first byte is at absolute `base`).
pub fn analyze(data: &[u8], base: u64, budgets: Budgets) -> Graph {
    run_vm(data, base, budgets, true, false)
}

/// The reading of a plain `pickle.load` (or `torch.load`): no joblib array handling, so
/// the bytes after a NumpyArrayWrapper's BUILD are opcodes, run with the real stack.
pub fn analyze_plain(data: &[u8], base: u64, budgets: Budgets) -> Graph {
    run_vm(data, base, budgets, false, false)
}

fn run_vm(data: &[u8], base: u64, budgets: Budgets, joblib: bool, window: bool) -> Graph {
    let mut vm = Vm {
        window,
        joblib,
        data,
        base,
        budgets,
        g: Graph {
            base,
            ..Graph::default()
        },
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Memo::default(),
        proto: 0,
        stream: 0,
        empty_tuple: None,
        owned: 0,
    };
    // Opcode-heavy pickles make about one value per three bytes; reserving up front
    // avoids repeated copies of a large graph while it grows.
    // Never more than half the memory budget (a value and half an item: 26 bytes).
    let by_memory = usize::try_from(budgets.max_memory / 2 / 26).unwrap_or(usize::MAX);
    let guess = (data.len() / 3)
        .min(budgets.max_values)
        .min(1 << 26)
        .min(by_memory);
    vm.g.values.reserve(guess);
    vm.g.items.reserve(guess / 2);
    vm.run();
    vm.g
}

/// Top-level module names known to exist somewhere (`policies/known-modules.txt`,
/// generated by `tools/gen_known_modules.py`): the standard library, the pinned test
/// environment, the presets' and sinks' modules, common ML packages.
const KNOWN_MODULES: &str = include_str!("../../policies/known-modules.txt");

/// Whether importing `module` could succeed somewhere: its top-level package exists.
/// `__import__` of an unknown top-level name raises before anything runs.
pub fn known_module(module: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        KNOWN_MODULES
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });
    let top = module.split('.').next().unwrap_or(module);
    set.contains(top)
}

/// Whether the import of a global could succeed somewhere (its module, or the name it
/// had before `fix_imports` mapping, is known to exist).
fn importable(gl: &Global) -> bool {
    known_module(&gl.module) || gl.original.as_ref().is_some_and(|(m, _)| known_module(m))
}

/// Offset of the first import, in the first stream, of a module that exists nowhere:
/// every loader raises there (ModuleNotFoundError), so nothing at or after it happens.
pub fn first_failing_import(g: &Graph) -> Option<u64> {
    let s = g.streams.iter().find(|s| !s.nested)?;
    g.globals
        .iter()
        .filter(|gl| gl.offset >= s.start && gl.offset < s.end && !importable(gl))
        .map(|gl| gl.offset)
        .min()
}

/// What the sniffer concluded about bytes read from their first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Every unpickler fails before any effect: not pickle-bearing.
    No,
    /// Some unpickler reaches STOP or an effect.
    Yes,
    /// The window ended first: decide on the whole blob.
    Undecided,
}

/// The exact fail-closed rule: bytes are pickle-bearing when some unpickler (`_pickle.c`
/// or `pickle.py`, whose union the VM models) read from the first byte reaches STOP, a call
/// (REDUCE, NEWOBJ, OBJ, INST), a BUILD, an extension lookup, or an import of a module
/// known to exist, before it fails. A persistent id fails there (no plain loader has a
/// `persistent_load`), so nothing after it counts. An import of a module picklegate does
/// not know is not evidence on its own (`cats\ndogs\n` in a label list is a GLOBAL), but
/// it does not hide what follows either: that module may well exist where the file is
/// loaded (the user's own package), and then every later opcode runs. No opcode-count
/// heuristics.
pub fn pickle_bearing(g: &Graph) -> bool {
    bearing(g, true)
}

/// [`pickle_bearing`]; `budget_counts`: a stream ended by a budget counts (the sniff's
/// own small budget does not: the full analysis decides then).
fn bearing(g: &Graph, budget_counts: bool) -> bool {
    let Some(s) = g.streams.iter().find(|s| !s.nested) else {
        return false;
    };
    let inside = |off: u64| off >= s.start && off < s.end;
    let mut cut = u64::MAX;
    for &p in &g.persids {
        let off = g.value(p).offset;
        if inside(off) {
            cut = cut.min(off);
        }
    }
    let before = |off: u64| inside(off) && off < cut;
    // A budget (opcodes, memory, the clock) ended the analysis, not the unpickler: what
    // the rest of the stream does is unknown, so it counts (fail closed). Otherwise a run
    // of harmless opcodes long enough to reach a budget would hide what follows it.
    let budget_cut = budget_counts && s.error.as_ref().is_some_and(|e| e.budget);
    ((budget_cut || s.stopped) && cut == u64::MAX)
        || g.globals
            .iter()
            .any(|gl| before(gl.offset) && importable(gl))
        || g.calls.iter().any(|c| before(c.offset))
        || g.exts.iter().any(|&e| before(g.value(e).offset))
        || g.mutations
            .iter()
            .any(|m| m.kind == MutKind::Build && before(m.offset))
}

/// Sniffs the first bytes of a blob (`whole`: they are all of it).
pub fn sniff(head: &[u8], whole: bool) -> Sniff {
    match head.first() {
        Some(b) if Opcode::from_byte(*b).is_some() => {}
        _ => return Sniff::No,
    }
    let budgets = Budgets {
        max_ops: 100_000,
        max_streams: 1,
        ..Budgets::default()
    };
    let g = run_vm(head, 0, budgets, false, !whole);
    if bearing(&g, false) {
        return if whole { Sniff::Yes } else { Sniff::Undecided };
    }
    let Some(s) = g.streams.first() else {
        return Sniff::No;
    };
    // A failure inside the window that is not "ran out of data" is where every loader
    // stops too; a persistent id as well.
    let cut_early = !g.persids.is_empty();
    let failed_inside = s.error.as_ref().is_some_and(|e| !e.at_eof && !e.budget);
    if cut_early || failed_inside {
        Sniff::No
    } else if s.error.as_ref().is_some_and(|e| e.budget) {
        // The sniff's own small budget ran out: only the full analysis can tell.
        Sniff::Undecided
    } else if whole {
        Sniff::No
    } else {
        Sniff::Undecided
    }
}

/// Whether `data` (all of a blob) is pickle-bearing by [`pickle_bearing`].
pub fn looks_like_pickle(data: &[u8]) -> bool {
    match sniff(data, true) {
        Sniff::No => false,
        Sniff::Yes => true,
        Sniff::Undecided => pickle_bearing(&analyze_plain(data, 0, Budgets::default())),
    }
}

impl<'a> Vm<'a> {
    fn run(&mut self) {
        // pickle.py's end-of-data rules (unterminated last line, short last frame) apply
        // only where the data really ends, not at the end of a sniffing window.
        let mut dec = if self.window {
            Decoder::new(self.data, self.base)
        } else {
            Decoder::python(self.data, self.base)
        };
        loop {
            let start = dec.pos();
            self.stack.clear();
            self.marks.clear();
            self.proto = 0;
            self.empty_tuple = None;
            let mut stream = Stream::at(self.base + start as u64, false);
            let effects_before = self.effect_count();
            let slot = self.g.streams.len();
            let result = self.run_stream(&mut dec, &mut stream);
            stream.end = self.base + dec.pos() as u64;
            stream.frame_violations = std::mem::take(&mut dec.frame_violations);
            stream.effectful = self.effect_count() > effects_before;
            if let Err(fault) = result {
                let (message, budget, at_eof) = match fault {
                    Fault::Decode(e) => {
                        let eof = !matches!(
                            e,
                            DecodeError::UnknownOpcode(_) | DecodeError::NegativeLength(_)
                        );
                        (e.to_string(), false, eof)
                    }
                    Fault::Msg(m) => (m, false, false),
                    Fault::Budget(m) => (m, true, false),
                };
                stream.error = Some(StreamError {
                    offset: stream.end,
                    message,
                    budget,
                    at_eof,
                });
            }
            let stopped = stream.stopped;
            let is_first = slot == 0;
            if !is_first && !stream.stopped && !stream.effectful {
                // Bytes after a pickle that do not form one: trailing data, not a stream.
                self.g.trailing = Some(Trailing {
                    offset: stream.start,
                    len: (self.data.len() - start) as u64,
                });
                return;
            }
            // Nested streams (joblib object arrays) were recorded while this one ran.
            self.g.streams.insert(slot, stream);
            if !stopped || dec.remaining() == 0 {
                return;
            }
            if self.g.streams.iter().filter(|s| !s.nested).count() >= self.budgets.max_streams {
                let pos = dec.pos();
                self.g.trailing = Some(Trailing {
                    offset: self.base + pos as u64,
                    len: (self.data.len() - pos) as u64,
                });
                return;
            }
            let next = dec.pos();
            if Opcode::from_byte(self.data[next]).is_none() {
                self.g.trailing = Some(Trailing {
                    offset: self.base + next as u64,
                    len: (self.data.len() - next) as u64,
                });
                return;
            }
            dec.restart_at(next);
            self.stream += 1;
        }
    }

    fn effect_count(&self) -> usize {
        self.g.globals.len()
            + self.g.calls.len()
            + self.g.persids.len()
            + self.g.exts.len()
            + self
                .g
                .mutations
                .iter()
                .filter(|m| m.kind == MutKind::Build)
                .count()
                .min(1)
    }

    fn run_stream(&mut self, dec: &mut Decoder<'a>, stream: &mut Stream) -> Result<(), Fault> {
        loop {
            let Some(op) = dec.next_op()? else {
                return Err(Fault::Decode(DecodeError::Exhausted));
            };
            stream.ops += 1;
            if stream.ops > self.budgets.max_ops {
                return Err(Fault::Budget(format!(
                    "more than {} opcodes in one pickle",
                    self.budgets.max_ops
                )));
            }
            if stream.ops % CHECK_EVERY == 0 {
                self.check_resources()?;
            }
            if op.code == Opcode::Proto {
                if let Arg::Int(p) = op.arg {
                    if p > 5 {
                        return msg(format!("unsupported pickle protocol: {p}"));
                    }
                    self.proto = p as u8;
                    stream.max_proto = stream.max_proto.max(p as u8);
                    stream.protos.push((op.offset, p as u8));
                }
                continue;
            }
            if op.code == Opcode::Stop {
                let v = self.pop()?;
                stream.root = Some(v);
                stream.stopped = true;
                return Ok(());
            }
            self.step(&op)?;
            if op.code == Opcode::Build && self.joblib {
                self.joblib_array(dec, op.offset)?;
            }
        }
    }

    /// The memory estimate and the clock, looked at every [`CHECK_EVERY`] opcodes (both
    /// grow at most a bounded amount per opcode in between).
    fn check_resources(&self) -> Result<(), Fault> {
        if let Some(t) = crate::budget::expired() {
            return Err(Fault::Budget(crate::budget::timeout_message(t)));
        }
        let used = self.memory_estimate();
        if used > self.budgets.max_memory {
            return Err(Fault::Budget(format!(
                "the analysis needs more than {} MiB of memory (budgets.memory)",
                self.budgets.max_memory >> 20
            )));
        }
        Ok(())
    }

    /// Heap bytes held by the graph, memo and stack, from the capacities of their tables
    /// plus the text the VM owns.
    fn memory_estimate(&self) -> u64 {
        use std::mem::size_of;
        let g = &self.g;
        let bytes = |n: usize, each: usize| (n as u64).saturating_mul(each as u64);
        bytes(g.values.capacity(), size_of::<Value>())
            + bytes(g.items.capacity(), size_of::<ValueId>())
            + bytes(g.strs.capacity(), size_of::<PyStr>())
            + bytes(g.blobs.capacity(), 16)
            + bytes(g.bigints.capacity(), size_of::<String>())
            + bytes(g.globals.capacity(), size_of::<Global>())
            + bytes(g.calls.capacity(), size_of::<Call>())
            + bytes(g.mutations.capacity(), size_of::<Mutation>())
            + bytes(
                g.persids.capacity() + g.exts.capacity(),
                size_of::<ValueId>(),
            )
            + bytes(self.stack.capacity() + self.marks.capacity(), 8)
            + bytes(self.memo.dense.capacity(), size_of::<ValueId>())
            + bytes(self.memo.sparse.capacity() + self.memo.big.capacity(), 48)
            + self.owned
    }

    // --- stack primitives, with the C unpickler's fence at the topmost MARK ---

    #[inline]
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    #[inline]
    fn pop(&mut self) -> Result<ValueId, Fault> {
        if self.stack.len() <= self.fence() {
            return msg("unpickling stack underflow");
        }
        Ok(self.stack.pop().unwrap_or(NO_VALUE))
    }

    #[inline]
    fn top(&self) -> Result<ValueId, Fault> {
        if self.stack.len() <= self.fence() {
            return msg("unpickling stack underflow");
        }
        Ok(*self.stack.last().unwrap_or(&NO_VALUE))
    }

    #[inline]
    fn push(&mut self, v: ValueId) -> Result<(), Fault> {
        if self.stack.len() >= self.budgets.max_stack {
            return Err(Fault::Budget(format!(
                "stack deeper than {}",
                self.budgets.max_stack
            )));
        }
        self.stack.push(v);
        Ok(())
    }

    #[inline]
    fn new_value(&mut self, kind: Kind, offset: u64) -> Result<ValueId, Fault> {
        if self.g.values.len() >= self.budgets.max_values {
            return Err(Fault::Budget(format!(
                "more than {} values",
                self.budgets.max_values
            )));
        }
        let id = self.g.values.len() as ValueId;
        self.g.values.push(Value { kind, offset });
        Ok(id)
    }

    #[inline]
    fn push_new(&mut self, kind: Kind, offset: u64) -> Result<ValueId, Fault> {
        let id = self.new_value(kind, offset)?;
        self.push(id)?;
        Ok(id)
    }

    /// Pops everything above the topmost MARK, and the MARK, into the items arena.
    fn pop_mark(&mut self) -> Result<Items, Fault> {
        let Some(m) = self.marks.pop() else {
            return msg("could not find MARK");
        };
        let m = m.min(self.stack.len());
        let items = self.store_items_from(m);
        self.stack.truncate(m);
        Ok(items)
    }

    fn store_items_from(&mut self, from: usize) -> Items {
        let start = self.g.items.len() as u32;
        self.g.items.extend_from_slice(&self.stack[from..]);
        Items {
            start,
            len: (self.stack.len() - from) as u32,
        }
    }

    fn store_items(&mut self, ids: &[ValueId]) -> Items {
        let start = self.g.items.len() as u32;
        self.g.items.extend_from_slice(ids);
        Items {
            start,
            len: ids.len() as u32,
        }
    }

    fn memo_put(&mut self, idx: u64) -> Result<(), Fault> {
        let v = self.top()?;
        if self.memo.len >= self.budgets.max_memo && self.memo.get(idx).is_none() {
            return Err(Fault::Budget(format!(
                "memo larger than {} entries",
                self.budgets.max_memo
            )));
        }
        self.memo.put(idx, v);
        Ok(())
    }

    fn memo_big(&mut self, key: String, put: bool) -> Result<(), Fault> {
        if put {
            let v = self.top()?;
            if self.memo.len >= self.budgets.max_memo && !self.memo.big.contains_key(&key) {
                return Err(Fault::Budget(format!(
                    "memo larger than {} entries",
                    self.budgets.max_memo
                )));
            }
            if self.memo.big.insert(key, v).is_none() {
                self.memo.len += 1;
            }
            Ok(())
        } else {
            match self.memo.big.get(&key) {
                Some(&v) => self.push(v),
                None => msg(format!("Memo value not found at index {key}")),
            }
        }
    }

    fn memo_get(&mut self, idx: u64) -> Result<(), Fault> {
        match self.memo.get(idx) {
            Some(v) => self.push(v),
            None => msg(format!("Memo value not found at index {idx}")),
        }
    }

    fn mutate(&mut self, kind: MutKind, target: ValueId, items: Items, offset: u64) {
        self.g.mutations.push(Mutation {
            kind,
            target,
            items,
            offset,
            stream: self.stream,
        });
    }

    fn call(
        &mut self,
        kind: CallKind,
        callee: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        offset: u64,
    ) -> Result<(), Fault> {
        let idx = self.g.calls.len() as u32;
        self.g.calls.push(Call {
            kind,
            callee,
            args,
            kwargs,
            offset,
            stream: self.stream,
        });
        self.push_new(Kind::Call(idx), offset)?;
        Ok(())
    }

    fn new_str(&mut self, s: PyStr, offset: u64) -> Result<ValueId, Fault> {
        self.owned += match &s {
            PyStr::Span { .. } => 0,
            PyStr::Owned(t) => t.len() as u64,
            PyStr::CodePoints(c) => 4 * c.len() as u64,
        };
        let idx = self.g.strs.len() as u32;
        self.g.strs.push(s);
        self.push_new(Kind::Str(idx), offset)
    }

    /// A string that is exactly the opcode's argument (valid UTF-8 / ASCII): no side-table
    /// entry, the text is found again from the opcode.
    fn new_inline_str(&mut self, d: &[u8], offset: u64) -> Result<ValueId, Fault> {
        match u32::try_from(d.len()) {
            Ok(n) if n < STR_INLINE => self.push_new(Kind::Str(STR_INLINE | n), offset),
            _ => {
                let s = PyStr::Span {
                    offset: self.abs(d),
                    len: d.len() as u64,
                };
                self.new_str(s, offset)
            }
        }
    }

    fn new_blob(&mut self, d: &[u8], bytearray: bool, offset: u64) -> Result<(), Fault> {
        let idx = self.g.blobs.len() as u32;
        self.g.blobs.push((self.abs(d), d.len() as u64));
        let kind = if bytearray {
            Kind::ByteArray(idx)
        } else {
            Kind::Bytes(idx)
        };
        self.push_new(kind, offset)?;
        Ok(())
    }

    fn abs(&self, slice: &[u8]) -> u64 {
        self.base + (slice.as_ptr() as usize - self.data.as_ptr() as usize) as u64
    }

    fn new_int(&mut self, v: PyInt, offset: u64) -> Result<(), Fault> {
        let kind = match v {
            PyInt::Small(i) => Kind::Int(i),
            PyInt::Big(s) => {
                self.owned += s.len() as u64;
                self.g.bigints.push(s);
                Kind::BigInt(self.g.bigints.len() as u32 - 1)
            }
        };
        self.push_new(kind, offset)?;
        Ok(())
    }

    /// `find_class` naming: `fix_imports` mapping under protocol < 3.
    fn global(
        &mut self,
        module: String,
        name: String,
        opcode: Opcode,
        offset: u64,
        resolution: Resolution,
    ) -> Result<ValueId, Fault> {
        let (m, n, original) = if self.proto < 3 && resolution == Resolution::Literal {
            map_fix_imports(module, name)
        } else {
            (module, name, None)
        };
        let idx = self.g.globals.len() as u32;
        let value = self.new_value(Kind::Global(idx), offset)?;
        self.g.globals.push(Global {
            value,
            offset,
            opcode,
            module: m,
            name: n,
            original,
            resolution,
            stream: self.stream,
        });
        Ok(value)
    }

    fn line_utf8(line: &[u8], what: &str) -> Result<String, Fault> {
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => msg(format!("{what} is not valid UTF-8")),
        }
    }

    fn empty_tuple(&mut self, offset: u64) -> Result<ValueId, Fault> {
        // One shared empty tuple per stream, like CPython's singleton.
        if let Some(t) = self.empty_tuple {
            return Ok(t);
        }
        let t = self.new_value(Kind::Tuple(Items::default()), offset)?;
        self.empty_tuple = Some(t);
        Ok(t)
    }

    #[inline(always)]
    fn step(&mut self, op: &Op<'a>) -> Result<(), Fault> {
        let off = op.offset;
        use Opcode as O;
        match op.code {
            O::Mark => {
                if self.marks.len() >= self.budgets.max_marks {
                    return Err(Fault::Budget(format!(
                        "more than {} nested MARKs",
                        self.budgets.max_marks
                    )));
                }
                self.marks.push(self.stack.len());
            }
            O::Pop => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            O::PopMark => {
                self.pop_mark()?;
            }
            O::Dup => {
                let v = self.top()?;
                self.push(v)?;
            }
            O::Float => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad FLOAT");
                };
                // _pickle.c: PyOS_string_to_double, which ends at a NUL byte.
                match pytext::parse_float(l).or_else(|| pytext::parse_float(pytext::c_string(l))) {
                    Some(f) => {
                        self.push_new(Kind::Float(f), off)?;
                    }
                    None => return msg("could not convert string to float"),
                }
            }
            O::BinFloat => {
                let Arg::Float(f) = op.arg else {
                    return msg("bad BINFLOAT");
                };
                self.push_new(Kind::Float(f), off)?;
            }
            O::Int => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad INT");
                };
                match l {
                    b"00" => {
                        self.push_new(Kind::Bool(false), off)?;
                    }
                    b"01" => {
                        self.push_new(Kind::Bool(true), off)?;
                    }
                    // _pickle.c: strtol(line, 0), ending at a NUL byte (an empty
                    // C string is 0), then int(line, 0) on overflow.
                    _ => match pytext::parse_int(l, true)
                        .or_else(|| pytext::parse_int_c(l))
                        .or_else(|| {
                            let c = pytext::c_string(l);
                            if c.len() == l.len() {
                                None
                            } else if c.is_empty() {
                                Some(PyInt::Small(0))
                            } else {
                                pytext::parse_int(c, true).or_else(|| pytext::parse_int_c(c))
                            }
                        }) {
                        Some(v) => self.new_int(v, off)?,
                        None => return msg("could not convert string to int"),
                    },
                }
            }
            O::Long => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad LONG");
                };
                let l = l.strip_suffix(b"L").unwrap_or(l);
                // _pickle.c: PyLong_FromString(line, 0) reads up to a NUL byte.
                match pytext::parse_int(l, true).or_else(|| {
                    let c = pytext::c_string(l);
                    (c.len() < l.len())
                        .then(|| pytext::parse_int(c.strip_suffix(b"L").unwrap_or(c), true))
                        .flatten()
                }) {
                    Some(v) => self.new_int(v, off)?,
                    None => return msg("invalid literal for int() with base 0"),
                }
            }
            O::BinInt | O::BinInt1 | O::BinInt2 => {
                let Arg::Int(v) = op.arg else {
                    return msg("bad BININT");
                };
                self.push_new(Kind::Int(v), off)?;
            }
            O::Long1 | O::Long4 => {
                let Arg::Long(d) = op.arg else {
                    return msg("bad LONG1");
                };
                match pytext::decode_long(d) {
                    Some(v) => self.new_int(v, off)?,
                    None => {
                        self.g.bigints.push(format!("<{}-byte integer>", d.len()));
                        self.push_new(Kind::BigInt(self.g.bigints.len() as u32 - 1), off)?;
                    }
                }
            }
            O::None => {
                self.push_new(Kind::None, off)?;
            }
            O::NewTrue => {
                self.push_new(Kind::Bool(true), off)?;
            }
            O::NewFalse => {
                self.push_new(Kind::Bool(false), off)?;
            }
            O::String => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad STRING");
                };
                let n = l.len();
                if n < 2 || l[0] != l[n - 1] || !(l[0] == b'\'' || l[0] == b'"') {
                    return msg("the STRING opcode argument must be quoted");
                }
                let raw =
                    pytext::escape_decode(&l[1..n - 1]).map_err(|e| Fault::Msg(e.to_string()))?;
                // Decoded with the loader's `encoding`; Latin-1 accepts every byte, the superset.
                let s: String = raw.iter().map(|b| *b as char).collect();
                self.new_str(PyStr::Owned(s), off)?;
            }
            O::BinString | O::ShortBinString => {
                let Arg::Data(d) = op.arg else {
                    return msg("bad BINSTRING");
                };
                if d.is_ascii() {
                    self.new_inline_str(d, off)?;
                } else {
                    self.new_str(PyStr::Owned(d.iter().map(|b| *b as char).collect()), off)?;
                }
            }
            O::Unicode => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad UNICODE");
                };
                let cps =
                    pytext::raw_unicode_escape_decode(l).map_err(|e| Fault::Msg(e.to_string()))?;
                let s = if cps.iter().any(|c| (0xD800..0xE000).contains(c)) {
                    PyStr::CodePoints(cps)
                } else {
                    PyStr::Owned(pytext::codepoints_to_string(&cps))
                };
                self.new_str(s, off)?;
            }
            O::BinUnicode | O::ShortBinUnicode | O::BinUnicode8 => {
                let Arg::Data(d) = op.arg else {
                    return msg("bad BINUNICODE");
                };
                if std::str::from_utf8(d).is_ok() {
                    self.new_inline_str(d, off)?;
                } else {
                    let cps = pytext::utf8_surrogatepass(d)
                        .map_err(|_| Fault::Msg("'utf-8' codec can't decode string".into()))?;
                    self.new_str(PyStr::CodePoints(cps), off)?;
                }
            }
            O::BinBytes | O::ShortBinBytes | O::BinBytes8 => {
                let Arg::Data(d) = op.arg else {
                    return msg("bad BINBYTES");
                };
                self.new_blob(d, false, off)?;
            }
            O::ByteArray8 => {
                let Arg::Data(d) = op.arg else {
                    return msg("bad BYTEARRAY8");
                };
                self.new_blob(d, true, off)?;
            }
            O::NextBuffer => {
                self.push_new(Kind::Buffer, off)?;
            }
            O::ReadonlyBuffer => {
                let v = self.pop()?;
                self.push_new(Kind::ReadOnly(v), off)?;
            }
            O::EmptyTuple => {
                let t = self.empty_tuple(off)?;
                self.push(t)?;
            }
            O::Tuple => {
                let items = self.pop_mark()?;
                if items.len == 0 {
                    let t = self.empty_tuple(off)?;
                    self.push(t)?;
                } else {
                    self.push_new(Kind::Tuple(items), off)?;
                }
            }
            O::Tuple1 | O::Tuple2 | O::Tuple3 => {
                let n = match op.code {
                    O::Tuple1 => 1,
                    O::Tuple2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence() + n {
                    return msg("unpickling stack underflow");
                }
                let from = self.stack.len() - n;
                let items = self.store_items_from(from);
                self.stack.truncate(from);
                self.push_new(Kind::Tuple(items), off)?;
            }
            O::EmptyList => {
                self.push_new(Kind::List(Items::default()), off)?;
            }
            O::List => {
                let items = self.pop_mark()?;
                self.push_new(Kind::List(items), off)?;
            }
            O::EmptyDict => {
                self.push_new(Kind::Dict(Items::default()), off)?;
            }
            O::Dict => {
                let items = self.pop_mark()?;
                if items.len % 2 != 0 {
                    return msg("odd number of items for DICT");
                }
                self.push_new(Kind::Dict(items), off)?;
            }
            O::EmptySet => {
                self.push_new(Kind::Set, off)?;
            }
            O::FrozenSet => {
                let items = self.pop_mark()?;
                self.push_new(Kind::FrozenSet(items), off)?;
            }
            O::Append => {
                let v = self.pop()?;
                let target = self.top()?;
                let items = self.store_items(&[v]);
                self.mutate(MutKind::Append, target, items, off);
            }
            O::Appends | O::SetItems | O::AddItems => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                let kind = match op.code {
                    O::Appends => MutKind::Appends,
                    O::SetItems => MutKind::SetItems,
                    _ => MutKind::AddItems,
                };
                if kind == MutKind::SetItems && items.len % 2 != 0 {
                    return msg("odd number of items for SETITEMS");
                }
                self.mutate(kind, target, items, off);
            }
            O::SetItem => {
                let v = self.pop()?;
                let k = self.pop()?;
                let target = self.top()?;
                let items = self.store_items(&[k, v]);
                self.mutate(MutKind::SetItem, target, items, off);
            }
            O::Build => {
                let state = self.pop()?;
                let target = self.top()?;
                let items = self.store_items(&[state]);
                self.mutate(MutKind::Build, target, items, off);
            }
            O::Get | O::Put => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad GET/PUT");
                };
                // pickle.py: int(line); _pickle.c: PyLong_FromString(line, 10), which
                // stops at a NUL byte. Either reading's index counts.
                let parsed = pytext::parse_int(l, false)
                    .or_else(|| pytext::parse_int(pytext::c_string(l), false));
                let idx = match parsed {
                    Some(PyInt::Small(i)) if i >= 0 => i as u64,
                    Some(PyInt::Small(_)) => {
                        return msg(format!("negative {} argument", op.code.name()));
                    }
                    Some(PyInt::Big(b)) if b.starts_with('-') => {
                        return msg(format!("negative {} argument", op.code.name()));
                    }
                    Some(PyInt::Big(b)) => return self.memo_big(b, op.code == O::Put),
                    None => return msg("invalid literal for int() with base 10"),
                };
                if op.code == O::Get {
                    self.memo_get(idx)?;
                } else {
                    self.memo_put(idx)?;
                }
            }
            O::BinGet | O::LongBinGet => {
                let Arg::Int(i) = op.arg else {
                    return msg("bad BINGET");
                };
                self.memo_get(i as u64)?;
            }
            O::BinPut | O::LongBinPut => {
                let Arg::Int(i) = op.arg else {
                    return msg("bad BINPUT");
                };
                self.memo_put(i as u64)?;
            }
            O::Memoize => {
                let idx = self.memo.len as u64;
                self.memo_put(idx)?;
            }
            O::Global | O::Inst => {
                let Arg::Pair(m, n) = op.arg else {
                    return msg("bad GLOBAL");
                };
                let module = Self::line_utf8(m, "module name")?;
                let name = Self::line_utf8(n, "global name")?;
                if op.code == O::Global {
                    let v = self.global(module, name, op.code, off, Resolution::Literal)?;
                    self.push(v)?;
                } else {
                    let items = self.pop_mark()?;
                    let cls = self.global(module, name, op.code, off, Resolution::Literal)?;
                    let args = self.new_value(Kind::Tuple(items), off)?;
                    self.call(CallKind::Inst, cls, args, None, off)?;
                }
            }
            O::StackGlobal => {
                let name = self.pop()?;
                let module = self.pop()?;
                let v = self.stack_global(module, name, off)?;
                self.push(v)?;
            }
            O::Obj => {
                let Some(&m) = self.marks.last() else {
                    return msg("could not find MARK");
                };
                if self.stack.len() < m + 1 {
                    return msg("unpickling stack underflow");
                }
                let items = self.pop_mark()?;
                let cls = self.g.items[items.start as usize];
                let args = Items {
                    start: items.start + 1,
                    len: items.len - 1,
                };
                let args = self.new_value(Kind::Tuple(args), off)?;
                self.call(CallKind::Obj, cls, args, None, off)?;
            }
            O::Reduce => {
                let args = self.pop()?;
                let callee = self.pop()?;
                self.call(CallKind::Reduce, callee, args, None, off)?;
            }
            O::NewObj => {
                let args = self.pop()?;
                let cls = self.pop()?;
                self.call(CallKind::NewObj, cls, args, None, off)?;
            }
            O::NewObjEx => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                self.call(CallKind::NewObjEx, cls, args, Some(kwargs), off)?;
            }
            O::PersId => {
                let Arg::Line(l) = op.arg else {
                    return msg("bad PERSID");
                };
                if !l.is_ascii() {
                    return msg("persistent IDs in protocol 0 must be ASCII strings");
                }
                let pid = self.new_value(Kind::Str(self.g.strs.len() as u32), off)?;
                self.g.strs.push(PyStr::Span {
                    offset: self.abs(l),
                    len: l.len() as u64,
                });
                let v = self.push_new(Kind::PersId(pid), off)?;
                self.g.persids.push(v);
            }
            O::BinPersId => {
                let pid = self.pop()?;
                let v = self.push_new(Kind::PersId(pid), off)?;
                self.g.persids.push(v);
            }
            O::Ext1 | O::Ext2 | O::Ext4 => {
                let Arg::Int(code) = op.arg else {
                    return msg("bad EXT");
                };
                if code <= 0 {
                    return msg("EXT specifies code <= 0");
                }
                let v = self.push_new(Kind::Ext(code), off)?;
                self.g.exts.push(v);
            }
            O::Frame => {}
            O::Proto | O::Stop => unreachable_opcode()?,
        }
        Ok(())
    }

    /// STACK_GLOBAL: both operands must be `str`; literal non-strings make CPython
    /// raise, computed values cannot be resolved statically.
    fn stack_global(&mut self, module: ValueId, name: ValueId, off: u64) -> Result<ValueId, Fault> {
        let describe = |vm: &Self, v: ValueId| vm.g.describe(v, vm.data);
        let literal_str = |vm: &Self, v: ValueId| vm.g.as_str(v, vm.data).map(|s| s.into_owned());
        match (literal_str(self, module), literal_str(self, name)) {
            (Some(m), Some(n)) => self.global(m, n, Opcode::StackGlobal, off, Resolution::Literal),
            _ => {
                let computed = |k: Kind| {
                    matches!(
                        k,
                        Kind::Call(_)
                            | Kind::Global(_)
                            | Kind::Ext(_)
                            | Kind::PersId(_)
                            | Kind::Buffer
                            | Kind::ReadOnly(_)
                    )
                };
                let mk = self.g.value(module).kind;
                let nk = self.g.value(name).kind;
                let m_ok = matches!(mk, Kind::Str(_)) || computed(mk);
                let n_ok = matches!(nk, Kind::Str(_)) || computed(nk);
                if !(m_ok && n_ok) {
                    return msg("STACK_GLOBAL requires str");
                }
                let why = format!(
                    "STACK_GLOBAL operands are not literal strings: module is {}, name is {}",
                    describe(self, module),
                    describe(self, name)
                );
                let m = literal_str(self, module).unwrap_or_else(|| "?".into());
                let n = literal_str(self, name).unwrap_or_else(|| "?".into());
                self.global(m, n, Opcode::StackGlobal, off, Resolution::Unresolved(why))
            }
        }
    }
}

const JOBLIB_WRAPPER: &str = "joblib.numpy_pickle.NumpyArrayWrapper";

impl<'a> Vm<'a> {
    /// joblib's NumpyUnpickler: after BUILD of a NumpyArrayWrapper it reads the array
    /// from the stream itself (raw bytes, or a nested pickle for object arrays) and
    /// replaces the wrapper on the stack with the array. Skipping exactly those bytes is
    /// how the rest of the stream (where payloads hide) gets analysed at all.
    fn joblib_array(&mut self, dec: &mut Decoder<'a>, offset: u64) -> Result<(), Fault> {
        let Some(&target) = self.stack.last() else {
            return Ok(());
        };
        let Kind::Call(c) = self.g.value(target).kind else {
            return Ok(());
        };
        let is_wrapper = self
            .g
            .callee_global(&self.g.calls[c as usize])
            .is_some_and(|gl| gl.module == "joblib.numpy_pickle" && gl.name == "NumpyArrayWrapper");
        if !is_wrapper {
            return Ok(());
        }
        let Some(m) = self.g.mutations.last() else {
            return Ok(());
        };
        let state = self.g.items(m.items)[0];
        // The wrapper's attributes after `__dict__.update(state)`: a state that is not a
        // plain dict (a (dict, slots) pair, a __setstate__ path) is not modelled.
        let mut shape: Option<Vec<i64>> = None;
        let mut dtype_value: Option<ValueId> = None;
        // Some(n): the attribute is set (n its int value, 0 when not an int).
        let mut alignment: Option<u64> = None;
        for (k, v) in self.g.dict_pairs(state) {
            let Some(key) = self.g.as_str(k, self.data) else {
                continue;
            };
            match key.as_ref() {
                "shape" => {
                    shape = match self.g.value(v).kind {
                        Kind::Tuple(items) | Kind::List(items) => self
                            .g
                            .items(items)
                            .iter()
                            .map(|&d| match self.g.value(d).kind {
                                Kind::Int(n) if n >= 0 => Some(n),
                                Kind::Bool(b) => Some(b as i64),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                }
                "dtype" => dtype_value = Some(v),
                // joblib only asks whether the attribute is None.
                "numpy_array_alignment_bytes" => {
                    alignment = match self.g.value(v).kind {
                        Kind::None => None,
                        Kind::Int(n) => Some(n.max(0) as u64),
                        _ => Some(0),
                    };
                }
                _ => {}
            }
        }
        let (Some(shape), Some(dtype_value)) = (shape, dtype_value) else {
            return msg(format!(
                "{JOBLIB_WRAPPER} at {offset} has no readable shape and dtype"
            ));
        };
        // `dtype.hasobject` decides a nested pickle or raw bytes, `dtype.itemsize` their
        // length: numpy's own rules, after every BUILD of the dtype.
        let dt = match super::lit::to_dtype(&self.g, self.data, dtype_value) {
            Ok(d) => d,
            Err(e) => {
                return msg(format!(
                    "{JOBLIB_WRAPPER} at {offset}: the dtype cannot be computed ({e})"
                ))
            }
        };
        let itemsize = if dt.hasobject() {
            None
        } else if dt.itemsize > 0 && dt.portable {
            Some(dt.itemsize as u64)
        } else {
            return msg(format!(
                "{JOBLIB_WRAPPER} at {offset}: dtype item size {} (platform-dependent: {})",
                dt.itemsize, !dt.portable
            ));
        };
        let start = self.base + dec.pos() as u64;
        let region = match itemsize {
            None => {
                // Object arrays: `pickle.load` of the same file, with its own memo.
                let root = self.nested_stream(dec)?;
                let end = self.base + dec.pos() as u64;
                (root, end - start, true, end)
            }
            Some(size) => {
                if alignment.is_some() {
                    let pad = *self
                        .data
                        .get(dec.pos())
                        .ok_or(Fault::Decode(DecodeError::Exhausted))?
                        as u64;
                    dec.skip(1 + pad)?;
                }
                let count = shape
                    .iter()
                    .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
                    .and_then(|n| n.checked_mul(size))
                    .ok_or_else(|| {
                        Fault::Msg(format!(
                            "{JOBLIB_WRAPPER} at {offset}: array size overflows"
                        ))
                    })?;
                let data_start = self.base + dec.pos() as u64;
                dec.skip(count)?;
                (
                    None,
                    self.base + dec.pos() as u64 - start,
                    false,
                    data_start,
                )
            }
        };
        let idx = self.g.arrays.len() as u32;
        self.g.arrays.push(ArrayRegion {
            wrapper: target,
            offset: start,
            len: region.1,
            object: region.2,
            align: alignment,
            data_start: region.3,
            root: region.0,
        });
        self.stack.pop();
        self.push_new(Kind::Array(idx), offset)?;
        Ok(())
    }

    /// Runs a complete pickle that starts at the decoder's position, with a fresh stack,
    /// memo and protocol, as a nested `pickle.load` would; restores the outer state.
    fn nested_stream(&mut self, dec: &mut Decoder<'a>) -> Result<Option<ValueId>, Fault> {
        let stack = std::mem::take(&mut self.stack);
        let marks = std::mem::take(&mut self.marks);
        let memo = std::mem::take(&mut self.memo);
        let proto = self.proto;
        let empty = self.empty_tuple.take();
        let joblib = std::mem::replace(&mut self.joblib, false);
        self.proto = 0;
        let start = self.base + dec.pos() as u64;
        let mut stream = Stream::at(start, true);
        let r = self.run_stream(dec, &mut stream);
        self.joblib = joblib;
        stream.end = self.base + dec.pos() as u64;
        let root = stream.root;
        self.g.streams.push(stream);
        self.stack = stack;
        self.marks = marks;
        self.memo = memo;
        self.proto = proto;
        self.empty_tuple = empty;
        r.map(|()| root)
    }
}

fn unreachable_opcode() -> Result<(), Fault> {
    msg("internal: PROTO/STOP are handled by the stream loop")
}

/// `_compat_pickle` mapping exactly as `find_class` applies it when `proto < 3`.
pub fn map_fix_imports(module: String, name: String) -> (String, String, Option<(String, String)>) {
    if let Some((_, (m, n))) = compat::NAME_MAPPING
        .iter()
        .find(|((m, n), _)| *m == module && *n == name)
    {
        return (m.to_string(), n.to_string(), Some((module, name)));
    }
    if let Some((_, m)) = compat::IMPORT_MAPPING.iter().find(|(m, _)| *m == module) {
        return (m.to_string(), name.clone(), Some((module, name)));
    }
    (module, name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Graph {
        analyze(data, 0, Budgets::default())
    }

    fn globals(g: &Graph) -> Vec<String> {
        g.globals.iter().map(|x| x.qualified()).collect()
    }

    const CALL_OS_SYSTEM: &[u8] = b"cos\nsystem\n(S'echo'\ntR.";

    #[test]
    fn ordinary_text_is_not_pickle_bearing() {
        // GLOBAL of a module no environment has (`at`), a PERSID no plain loader can
        // resolve, a TUPLE without MARK: every unpickler fails before any effect.
        for text in [
            &b"cat\ndog\nbird\n"[..],
            b"Permission is hereby granted, free of charge, to any person\n",
            b"car\nbus\ntruck\n",
            b"(lp0\nI1\naI2\na",
            b"\x80\x02garbage",
        ] {
            assert!(
                !looks_like_pickle(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn an_effect_before_the_failure_makes_bytes_pickle_bearing() {
        assert!(looks_like_pickle(b"N."));
        assert!(looks_like_pickle(CALL_OS_SYSTEM));
        // find_class imports `os` before getattr fails: an import is an effect.
        assert!(looks_like_pickle(b"cos\nsin\ntan\n"));
        // Effects after a persistent id never happen in a plain loader.
        assert!(!looks_like_pickle(b"Pid\ncos\nsystem\n(S'x'\ntR."));
    }

    #[test]
    fn c_numbers_end_at_a_nul_byte() {
        // _pickle.c parses INT/LONG/FLOAT/GET/PUT lines as C strings.
        for prefix in [
            &b"I5\x00\n0"[..],
            b"I5\x00junk\n0",
            b"L5\x00L\n0",
            b"F1.5\x00x\n0",
            b"Np0\x00zz\n0",
        ] {
            let mut data = prefix.to_vec();
            data.extend_from_slice(CALL_OS_SYSTEM);
            let g = run(&data);
            assert_eq!(
                globals(&g),
                ["os.system"],
                "{:?}",
                String::from_utf8_lossy(prefix)
            );
            assert!(looks_like_pickle(&data));
        }
    }

    #[test]
    fn pickle_py_memo_takes_any_non_negative_index() {
        let data = b"S'echo'\np9223372036854775808\n0cos\nsystem\n(g9223372036854775808\ntR.";
        let g = run(data);
        assert_eq!(globals(&g), ["os.system"]);
        assert_eq!(g.calls.len(), 1);
        assert!(g.streams[0].error.is_none(), "{:?}", g.streams[0].error);
    }

    #[test]
    fn pickle_py_reads_an_unterminated_inst_and_calls_it() {
        // INST's name line ends the file: pickle.py drops its last char and instantiates.
        let g = run(b"(S'echo'\nios\nsystemX");
        assert_eq!(globals(&g), ["os.system"]);
        assert_eq!(g.calls.len(), 1);
    }

    #[test]
    fn a_long_first_argument_is_followed_to_its_end() {
        let mut data = b"S'".to_vec();
        data.extend(std::iter::repeat_n(b'a', 2 << 20));
        data.extend_from_slice(b"'\n0");
        data.extend_from_slice(CALL_OS_SYSTEM);
        assert_eq!(sniff(&data[..4096], false), Sniff::Undecided);
        assert!(looks_like_pickle(&data));
    }

    #[test]
    fn memoize_index_is_number_of_occupied_slots() {
        // "os" PUT 0? no: BINPUT 5 "os", then MEMOIZE stores at len(memo) == 1, not 6.
        let mut p = vec![0x80, 4];
        p.extend_from_slice(b"\x8c\x02osq\x05"); // memo[5] = "os"
        p.extend_from_slice(b"\x8c\x06system\x94"); // memo[1] = "system"
        p.extend_from_slice(b"0"); // POP
        p.extend_from_slice(b"0"); // POP
        p.extend_from_slice(b"h\x05h\x01\x93N."); // BINGET 5, BINGET 1, STACK_GLOBAL
        let g = run(&p);
        assert_eq!(globals(&g), vec!["os.system"]);
        assert!(g.streams[0].stopped);
    }

    #[test]
    fn fix_imports_maps_only_below_protocol_3() {
        let g = run(b"c__builtin__\neval\n.");
        assert_eq!(globals(&g), vec!["builtins.eval"]);
        let g = run(b"\x80\x03c__builtin__\neval\n.");
        assert_eq!(globals(&g), vec!["__builtin__.eval"]);
        let g = run(b"\x80\x02c__builtin__\nxrange\n.");
        assert_eq!(globals(&g), vec!["builtins.range"]);
    }

    #[test]
    fn missing_memo_key_is_an_error_after_effects() {
        let g = run(b"cos\nsystem\n(S'x'\ntR0h\x03.");
        assert_eq!(globals(&g), vec!["os.system"]);
        assert_eq!(g.calls.len(), 1);
        let err = g.streams[0].error.as_ref().map(|e| e.message.clone());
        assert_eq!(err.as_deref(), Some("Memo value not found at index 3"));
    }

    #[test]
    fn pop_removes_a_mark_like_cpython() {
        let g = run(b"(0N.");
        assert!(g.streams[0].stopped && g.streams[0].error.is_none());
    }

    #[test]
    fn fence_blocks_popping_below_mark() {
        let g = run(b"N(0\x85.");
        // POP removes the MARK; TUPLE1 then takes None.
        assert!(g.streams[0].stopped);
        let g = run(b"N(\x85.");
        assert_eq!(
            g.streams[0].error.as_ref().map(|e| e.message.as_str()),
            Some("unpickling stack underflow")
        );
    }

    #[test]
    fn stack_global_on_computed_operands_is_unresolved() {
        let p = b"\x80\x04\x8c\x01a\x8c\x01b\x93)R\x8c\x01x\x93.";
        let g = run(p);
        assert_eq!(g.globals.len(), 2);
        assert!(matches!(g.globals[1].resolution, Resolution::Unresolved(_)));
    }

    #[test]
    fn stack_global_on_literal_non_strings_fails_like_cpython() {
        let g = run(b"\x80\x04K\x01K\x02\x93.");
        assert_eq!(
            g.streams[0].error.as_ref().map(|e| e.message.as_str()),
            Some("STACK_GLOBAL requires str")
        );
    }

    #[test]
    fn trailing_pickle_is_a_second_stream() {
        let g = run(b"N.cos\nsystem\n.");
        assert_eq!(g.streams.len(), 2);
        assert_eq!(globals(&g), vec!["os.system"]);
        let g = run(b"N.\x00\x01garbage");
        assert_eq!(g.streams.len(), 1);
        assert!(g.trailing.is_some());
    }

    #[test]
    fn inst_and_obj_are_calls() {
        let g = run(b"(S'ls'\nios\nsystem\n.");
        assert_eq!(g.calls.len(), 1);
        assert_eq!(g.calls[0].kind, CallKind::Inst);
        let g = run(b"\x80\x04(\x8c\x07smtplib\x8c\x04SMTP\x93\x8c\x01x\x8c\x01y\x930N.");
        assert_eq!(g.calls.len(), 0);
        let g = run(b"\x80\x04(\x8c\x07smtplib\x8c\x04SMTP\x93\x8c\x01xo0N.");
        assert_eq!(g.calls.len(), 1);
        assert_eq!(g.calls[0].kind, CallKind::Obj);
    }

    #[test]
    fn budgets_end_the_stream() {
        let mut p = vec![b'('; 100];
        p.push(b'.');
        let g = analyze(
            &p,
            0,
            Budgets {
                max_marks: 10,
                ..Budgets::default()
            },
        );
        assert!(g.streams[0].error.as_ref().is_some_and(|e| e.budget));
    }

    #[test]
    fn a_budget_reached_by_harmless_opcodes_is_still_pickle_bearing() {
        // Enough MARK/POP_MARK to reach the budget, then the attack: the analysis stops
        // before the import, so the bytes must count as a pickle (fail closed).
        let mut p = b"\x80\x02".to_vec();
        for _ in 0..5_000 {
            p.extend_from_slice(b"(1");
        }
        p.extend_from_slice(b"cos\nsystem\n(S'x'\ntR.");
        let g = analyze_plain(
            &p,
            0,
            Budgets {
                max_ops: 1_000,
                ..Budgets::default()
            },
        );
        assert!(g.globals.is_empty());
        assert!(pickle_bearing(&g));
        // The sniff's own small budget leaves the decision to the full analysis.
        assert_ne!(sniff(&p[..4000], false), Sniff::No);
    }

    #[test]
    fn memo_counts_each_index_once_wherever_it_is_stored() {
        let mut m = Memo::default();
        // Far beyond the dense part: stored sparsely.
        m.put(DENSE_MEMO * 4, 7);
        assert_eq!((m.len, m.get(DENSE_MEMO * 4)), (1, Some(7)));
        // An index that was sparse and is then written where the dense part reaches.
        m.sparse.insert(10, 1);
        m.len += 1;
        m.put(10, 2);
        assert_eq!(
            (m.len, m.get(10), m.sparse.contains_key(&10)),
            (2, Some(2), false)
        );
        // Overwrites are not new entries (MEMOIZE's index is len(memo)).
        m.put(10, 3);
        m.put(0, 4);
        assert_eq!(
            (m.len, m.get(0), m.get(10), m.get(11)),
            (3, Some(4), Some(3), None)
        );
        // Growth stays bounded by the entries held.
        assert!(m.dense.len() as u64 <= m.dense_limit());
    }
}
