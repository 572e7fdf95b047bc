//! `picklegate disasm`: a listing with the same offsets, opcode names, arguments and
//! MARK indentation as `python -m pickletools`, plus what the VM resolved.

use crate::pickle::decode::{Arg, Decoder};
use crate::pickle::graph::{Graph, Kind};
use crate::pickle::op::Opcode;
use crate::pickle::pyrepr::pickletools_arg_repr;
use crate::pickle::vm::{self, Budgets};
use crate::report::term::escape;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// VM annotations per opcode offset.
fn annotations(g: &Graph, data: &[u8]) -> BTreeMap<u64, Vec<String>> {
    let mut a: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for gl in &g.globals {
        let note = match &gl.resolution {
            crate::pickle::graph::Resolution::Literal => match &gl.original {
                Some((m, n)) => format!("import {} (fix_imports from {m}.{n})", gl.qualified()),
                None => format!("import {}", gl.qualified()),
            },
            crate::pickle::graph::Resolution::Unresolved(why) => format!("import ? ({why})"),
        };
        a.entry(gl.offset).or_default().push(note);
    }
    for c in &g.calls {
        let callee = match g.callee_global(c) {
            Some(gl) => gl.qualified(),
            None => g.describe(c.callee, data),
        };
        a.entry(c.offset)
            .or_default()
            .push(format!("call {callee}"));
    }
    for m in &g.mutations {
        if m.kind == crate::pickle::graph::MutKind::Build
            || !matches!(
                g.value(m.target).kind,
                Kind::List(_) | Kind::Dict(_) | Kind::Set
            )
        {
            a.entry(m.offset).or_default().push(format!(
                "{} on {}",
                m.kind.method(),
                g.describe(m.target, data)
            ));
        }
    }
    for &p in &g.persids {
        if let Kind::PersId(pid) = g.value(p).kind {
            a.entry(g.value(p).offset)
                .or_default()
                .push(format!("persistent_load({})", g.describe(pid, data)));
        }
    }
    for &e in &g.exts {
        a.entry(g.value(e).offset)
            .or_default()
            .push("copyreg extension lookup".into());
    }
    a
}

/// MARK depth shown as indentation; deeper lines keep this much and say how deep they are,
/// so a pickle of nested MARKs cannot make the listing quadratic in its size.
pub const MAX_INDENT_DEPTH: usize = 32;

/// pickletools' indentation for `depth` open MARKs (4 spaces each), capped at
/// [`MAX_INDENT_DEPTH`] levels followed by a `[depth N] ` marker.
fn push_indent(line: &mut String, depth: usize) {
    for _ in 0..depth.min(MAX_INDENT_DEPTH) {
        line.push_str("    ");
    }
    if depth > MAX_INDENT_DEPTH {
        let _ = write!(line, "[depth {depth}] ");
    }
}

/// Emulates `pickletools.dis` bookkeeping: stack of mark/other, markstack, memo keys.
struct DisState {
    stack: Vec<bool>, // true = markobject
    markstack: Vec<u64>,
    memo: HashMap<String, ()>,
    maxproto: i32,
}

impl DisState {
    fn new() -> Self {
        DisState {
            stack: Vec::new(),
            markstack: Vec::new(),
            memo: HashMap::new(),
            maxproto: -1,
        }
    }

    /// Formats one line exactly like `dis`; `Err` carries dis's error message (after the line).
    fn line(&mut self, code: Opcode, offset: u64, arg: Option<&str>) -> (String, Option<String>) {
        let info = code.info();
        let code_repr = if code.code() >= 0x80 {
            format!("\\x{:02x}", code.code())
        } else {
            (code.code() as char).to_string()
        };
        let mut line = format!("{:5}: {:<4} ", offset, code_repr);
        push_indent(&mut line, self.markstack.len());
        line.push_str(info.name);
        self.maxproto = self.maxproto.max(info.proto as i32);
        let mut numtopop = info.pops as usize;
        let mut markmsg: Option<String> = None;
        let mut errormsg: Option<String> = None;
        if info.mark || (code == Opcode::Pop && self.stack.last() == Some(&true)) {
            match self.markstack.pop() {
                Some(pos) => {
                    markmsg = Some(format!("(MARK at {pos})"));
                    while let Some(top) = self.stack.pop() {
                        if top {
                            break;
                        }
                    }
                    numtopop = if info.mark { info.pops as usize } else { 0 };
                }
                None => {
                    markmsg = Some("no MARK exists on stack".into());
                    errormsg = markmsg.clone();
                }
            }
        }
        let arg_key = arg.unwrap_or("None").to_string();
        match code {
            Opcode::Put | Opcode::BinPut | Opcode::LongBinPut | Opcode::Memoize => {
                let key = if code == Opcode::Memoize {
                    let idx = self.memo.len().to_string();
                    markmsg = Some(format!("(as {idx})"));
                    idx
                } else {
                    arg_key.clone()
                };
                if self.memo.contains_key(&key) {
                    errormsg = Some(format!("memo key {arg_key} already defined"));
                } else if self.stack.is_empty() {
                    errormsg = Some("stack is empty -- can't store into memo".into());
                } else if self.stack.last() == Some(&true) {
                    errormsg = Some("can't store markobject in the memo".into());
                } else {
                    self.memo.insert(key, ());
                }
            }
            Opcode::Get | Opcode::BinGet | Opcode::LongBinGet
                if !self.memo.contains_key(&arg_key) =>
            {
                errormsg = Some(format!("memo key {arg_key} has never been stored into"));
            }
            _ => {}
        }
        if arg.is_some() || markmsg.is_some() {
            line.push_str(&" ".repeat(10usize.saturating_sub(info.name.len())));
            if let Some(a) = arg {
                line.push(' ');
                line.push_str(a);
            }
            if let Some(m) = &markmsg {
                line.push(' ');
                line.push_str(m);
            }
        }
        if errormsg.is_some() {
            return (line, errormsg);
        }
        if self.stack.len() < numtopop {
            let e = format!(
                "tries to pop {numtopop} items from stack with only {} items",
                self.stack.len()
            );
            return (line, Some(e));
        }
        self.stack.truncate(self.stack.len() - numtopop);
        if code == Opcode::Mark {
            self.markstack.push(offset);
            self.stack.push(true);
        }
        for _ in 0..info.pushes {
            self.stack.push(false);
        }
        (line, None)
    }
}

#[derive(Serialize)]
struct JsonOp {
    offset: u64,
    name: &'static str,
    arg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arg_error: Option<String>,
}

#[derive(Serialize)]
struct JsonGlobal {
    offset: u64,
    module: String,
    name: String,
    opcode: &'static str,
    resolved: bool,
}

#[derive(Serialize)]
struct JsonStream {
    offset: u64,
    ops: Vec<JsonOp>,
    globals: Vec<JsonGlobal>,
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonDisasm<'a> {
    path: &'a str,
    streams: Vec<JsonStream>,
}

/// Output style of [`disassemble`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// pickletools text plus VM annotations.
    Annotated,
    /// Exactly what `pickletools.dis` prints, stream by stream.
    Plain,
    Json,
}

pub fn disassemble(path: &str, data: &[u8], style: Style) -> String {
    let mut out = String::new();
    disassemble_into(path, data, style, &mut out);
    out
}

/// [`disassemble`], written to `out` as it is produced (the text listing is never held
/// whole; JSON is serialised at the end).
pub fn disassemble_into<W: Write>(path: &str, data: &[u8], style: Style, out: &mut W) {
    let g = vm::analyze(data, 0, Budgets::default());
    let notes = if style == Style::Annotated {
        annotations(&g, data)
    } else {
        BTreeMap::new()
    };
    let mut json_streams = Vec::new();
    let stream_count = g.streams.len();
    for (si, s) in g.streams.iter().enumerate() {
        if style == Style::Annotated && stream_count > 1 {
            let _ = writeln!(out, "== pickle #{} at byte {} ==", si + 1, s.start);
        }
        let mut dec = Decoder::new(data, 0);
        dec.restart_at(s.start as usize);
        let mut dis = DisState::new();
        let mut ops = Vec::new();
        let mut dis_error: Option<String> = None;
        let mut decode_error: Option<String> = None;
        loop {
            let op = match dec.next_op() {
                Ok(Some(op)) => op,
                Ok(None) => {
                    decode_error = Some("pickle exhausted before seeing STOP".into());
                    break;
                }
                Err(e) => {
                    decode_error = Some(e.to_string());
                    break;
                }
            };
            let (arg, arg_error) = match pickletools_arg_repr(&op) {
                Ok(a) => (a, None),
                Err(e) => (None, Some(e)),
            };
            if style != Style::Json && dis_error.is_none() {
                let (line, err) = dis.line(op.code, op.offset, arg.as_deref());
                let _ = writeln!(out, "{line}");
                if let Some(n) = notes.get(&op.offset) {
                    for note in n {
                        // Notes quote names from the input: escaped for the terminal.
                        let _ = writeln!(out, "{:7}; {}", "", escape(note));
                    }
                }
                if let Some(e) = arg_error.clone().or(err) {
                    dis_error = Some(e);
                }
            }
            let stop = op.code == Opcode::Stop;
            if style == Style::Json {
                ops.push(JsonOp {
                    offset: op.offset,
                    name: op.code.name(),
                    arg,
                    arg_error,
                });
            }
            // Like pickletools, the listing runs to STOP even past the opcode where loading
            // fails; the VM's error is reported after it.
            if stop {
                break;
            }
        }
        let error = s
            .error
            .as_ref()
            .map(|e| format!("at byte {}: {}", e.offset, e.message))
            .or(decode_error.filter(|_| !s.stopped));
        if style != Style::Json {
            if dis_error.is_none() && s.stopped {
                let _ = writeln!(out, "highest protocol among opcodes = {}", dis.maxproto);
            }
            if style == Style::Annotated {
                if let Some(e) = &error {
                    let _ = writeln!(out, "error: {}", escape(e));
                } else if let Some(e) = &dis_error {
                    let _ = writeln!(out, "note: pickletools would stop here: {}", escape(e));
                }
            }
        }
        let globals = g
            .globals
            .iter()
            .filter(|gl| gl.stream as usize == si)
            .map(|gl| JsonGlobal {
                offset: gl.offset,
                module: gl.module.clone(),
                name: gl.name.clone(),
                opcode: gl.opcode.name(),
                resolved: matches!(gl.resolution, crate::pickle::graph::Resolution::Literal),
            })
            .collect();
        json_streams.push(JsonStream {
            offset: s.start,
            ops,
            globals,
            error,
        });
    }
    if style == Style::Annotated {
        if let Some(t) = &g.trailing {
            let _ = writeln!(
                out,
                "== {} trailing bytes at byte {} (not a pickle) ==",
                t.len, t.offset
            );
        }
    }
    if style == Style::Json {
        let j = JsonDisasm {
            path,
            streams: json_streams,
        };
        let _ = out.write_str(&serde_json::to_string(&j).unwrap_or_default());
    }
}

/// Disassembly lines around `primary` and `related` offsets of one pickle stream in
/// `data` (whose first byte is at absolute `base`), for annotated reports.
/// `holes` are payloads that were not read (shown as such, not as their zero filling).
pub fn excerpt(
    data: &[u8],
    base: u64,
    primary: u64,
    related: &[(u64, String)],
    holes: &[(u64, u64)],
) -> Option<crate::finding::Excerpt> {
    const CONTEXT: usize = 2;
    const MAX_OPS: usize = 2_000_000;
    let g_start = find_stream_start(data, base, primary)?;
    let mut dec = Decoder::new(data, base);
    dec.restart_at((g_start - base) as usize);
    let mut lines: Vec<(u64, String)> = Vec::new();
    let wanted: Vec<u64> = std::iter::once(primary)
        .chain(related.iter().map(|r| r.0))
        .collect();
    let last = *wanted.iter().max()?;
    while let Ok(Some(op)) = dec.next_op() {
        let unread = match op.arg {
            Arg::Data(d) if !d.is_empty() => {
                let at = base + (d.as_ptr() as usize - data.as_ptr() as usize) as u64;
                let len = d.len() as u64;
                holes
                    .iter()
                    .any(|&(s, n)| at < s + n && s < at + len)
                    .then_some(len)
            }
            _ => None,
        };
        let arg = match unread {
            Some(len) => format!("<{len} bytes, not read>"),
            None => pickletools_arg_repr(&op).ok().flatten().unwrap_or_default(),
        };
        let arg = if arg.len() > 60 {
            format!(
                "{}…",
                &arg[..arg.char_indices().nth(57).map_or(arg.len(), |c| c.0)]
            )
        } else {
            arg
        };
        lines.push((
            op.offset,
            format!("{:>7}: {:<16} {arg}", op.offset, op.code.name())
                .trim_end()
                .to_string(),
        ));
        if op.offset > last + 64 || lines.len() > MAX_OPS || op.code == Opcode::Stop {
            break;
        }
    }
    let idx = |off: u64| lines.iter().position(|(o, _)| *o == off);
    let marks: Vec<usize> = wanted.iter().filter_map(|o| idx(*o)).collect();
    let pidx = idx(primary)?;
    let mut keep = vec![false; lines.len()];
    for &m in &marks {
        let end = (m + 1).min(lines.len() - 1);
        keep[m.saturating_sub(CONTEXT)..=end].fill(true);
    }
    let mut text = String::new();
    let mut spans: std::collections::HashMap<usize, (usize, usize)> =
        std::collections::HashMap::new();
    let mut gap = false;
    for (i, (_, l)) in lines.iter().enumerate() {
        if !keep[i] {
            gap = true;
            continue;
        }
        if gap && !text.is_empty() {
            text.push_str("    ...\n");
        }
        gap = false;
        let start = text.len() + l.find(": ").map_or(0, |p| p + 2);
        spans.insert(i, (start, text.len() + l.len()));
        text.push_str(l);
        text.push('\n');
    }
    let primary_span = *spans.get(&pidx)?;
    let related = related
        .iter()
        .filter_map(|(o, label)| {
            idx(*o)
                .and_then(|i| spans.get(&i))
                .map(|s| (s.0, s.1, label.clone()))
        })
        .filter(|r| (r.0, r.1) != primary_span)
        .collect();
    Some(crate::finding::Excerpt {
        text,
        primary: primary_span,
        related,
    })
}

/// The start of the pickle stream that contains `offset` (streams are found by
/// decoding from the start; nested and trailing streams included).
fn find_stream_start(data: &[u8], base: u64, offset: u64) -> Option<u64> {
    let mut dec = Decoder::new(data, base);
    let mut start = base;
    loop {
        match dec.next_op() {
            Ok(Some(op)) => {
                if op.offset == offset {
                    return Some(start);
                }
                if op.offset > offset {
                    return None;
                }
                if op.code == Opcode::Stop {
                    start = op.end;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `depth` lists nested with MARK/APPENDS: `](` per level, `]`, then an APPENDS each.
    fn nested_marks(depth: usize) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        for _ in 0..depth {
            p.extend_from_slice(b"](");
        }
        p.push(b']');
        p.extend(std::iter::repeat_n(b'e', depth));
        p.push(b'.');
        p
    }

    #[test]
    fn shallow_marks_indent_like_pickletools() {
        // `python -m pickletools` output for this pickle.
        let want = "    0: \\x80 PROTO      2\n    2: ]    EMPTY_LIST\n    3: (    MARK\n    4: ]        EMPTY_LIST\n    5: (        MARK\n    6: ]            EMPTY_LIST\n    7: e            APPENDS    (MARK at 5)\n    8: e        APPENDS    (MARK at 3)\n    9: .    STOP\nhighest protocol among opcodes = 2\n";
        assert_eq!(disassemble("t", &nested_marks(2), Style::Plain), want);
    }

    #[test]
    fn deep_marks_have_bounded_indentation() {
        let depth = 30_000; // a 60 KB pickle
        let out = disassemble("t", &nested_marks(depth), Style::Plain);
        let longest = out.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 4 * MAX_INDENT_DEPTH + 64, "{longest}");
        assert!(out.ends_with("highest protocol among opcodes = 2\n"));
        let line = |off: usize| {
            out.lines()
                .find(|l| l.starts_with(&format!("{off:5}: ")))
                .unwrap_or_default()
                .to_string()
        };
        let cap = "    ".repeat(MAX_INDENT_DEPTH);
        // The MARK at 3 + 2k is shown at depth k: the cap exactly, one more with the marker.
        let over = MAX_INDENT_DEPTH + 1;
        assert!(line(3 + 2 * MAX_INDENT_DEPTH).ends_with(&format!(": (    {cap}MARK")));
        assert!(
            line(5 + 2 * MAX_INDENT_DEPTH).ends_with(&format!(": (    {cap}[depth {over}] MARK"))
        );
        assert!(line(2 + 2 * depth).ends_with(&format!("{cap}[depth {depth}] EMPTY_LIST")));
    }
}
