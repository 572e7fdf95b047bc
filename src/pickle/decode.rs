//! Zero-copy opcode decoder over `&[u8]`.
//!
//! It reads exactly as the C unpickler reads an in-memory buffer: lines end at `\n`,
//! length prefixes are bounds-checked against what is left, and FRAME only asserts
//! that the declared bytes exist. Frame boundaries are tracked separately because
//! `pickle.py` (and the C unpickler reading a file) refuse or diverge when an opcode
//! straddles one; those places are reported, never silently accepted.

use super::op::{ArgKind, Opcode};

/// An opcode argument as it appears in the stream, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg<'a> {
    None,
    /// uint1, uint2, int4, uint4.
    Int(i64),
    /// uint8 (FRAME and 8-byte lengths).
    U64(u64),
    /// A text line without its `\n` (INT, LONG, GET, PUT, FLOAT, PERSID, STRING, UNICODE).
    Line(&'a [u8]),
    /// GLOBAL and INST: two lines.
    Pair(&'a [u8], &'a [u8]),
    /// BINFLOAT, big-endian IEEE 754.
    Float(f64),
    /// LONG1/LONG4 payload, little-endian two's complement.
    Long(&'a [u8]),
    /// Counted payload of strings, bytes and bytearrays.
    Data(&'a [u8]),
}

/// One decoded opcode.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    /// Absolute byte offset of the opcode byte.
    pub offset: u64,
    /// Absolute offset one past the last byte of the argument.
    pub end: u64,
    pub code: Opcode,
    pub arg: Arg<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("pickle exhausted before seeing STOP")]
    Exhausted,
    #[error("opcode {0:#04x} unknown")]
    UnknownOpcode(u8),
    #[error("{name} argument truncated: needs {needed} bytes, {available} remain")]
    Truncated {
        name: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("{0}: no newline found before the end of the data")]
    NoNewline(&'static str),
    #[error("{0} has a negative byte count")]
    NegativeLength(&'static str),
}

/// A place where the stream disagrees with its FRAME layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameViolation {
    pub offset: u64,
    pub frame_end: u64,
    pub kind: FrameViolationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameViolationKind {
    /// The opcode or its argument runs past the end of the current frame.
    Straddle,
    /// A FRAME opcode appears before the previous frame was consumed.
    NewFrameInsideFrame,
}

pub struct Decoder<'a> {
    data: &'a [u8],
    /// Absolute offset of `data[0]` in the file (for containers and reporting).
    base: u64,
    pos: usize,
    frame_end: Option<usize>,
    pub frame_violations: Vec<FrameViolation>,
    /// pickle.py's `readline()` at the end of the data returns what is left without a
    /// newline, and each opcode then drops its last character (`readline()[:-1]`; INT
    /// keeps it: `int(line, 0)`). `_pickle.c` and pickletools refuse such a line. The VM
    /// sets this (it takes the union of both loaders); disassembly does not.
    pub python_eof_lines: bool,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Decoder {
            data,
            base,
            pos: 0,
            frame_end: None,
            frame_violations: Vec::new(),
            python_eof_lines: false,
        }
    }

    /// A decoder that reads unterminated final lines as pickle.py does.
    pub fn python(data: &'a [u8], base: u64) -> Self {
        Decoder {
            python_eof_lines: true,
            ..Decoder::new(data, base)
        }
    }

    /// Position (relative to `data`) of the next opcode.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Skips `n` raw bytes that a loader reads itself (joblib array data).
    pub fn skip(&mut self, n: u64) -> Result<(), DecodeError> {
        self.take_u64_len(n, "array data").map(|_| ())
    }

    /// Starts a new pickle at `pos` (after a STOP): frames do not carry over.
    pub fn restart_at(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
        self.frame_end = None;
    }

    #[inline(always)]
    fn take(&mut self, n: usize, name: &'static str) -> Result<&'a [u8], DecodeError> {
        let avail = self.data.len() - self.pos;
        if n > avail {
            return Err(DecodeError::Truncated {
                name,
                needed: n as u64,
                available: avail as u64,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn take_u64_len(&mut self, n: u64, name: &'static str) -> Result<&'a [u8], DecodeError> {
        let avail = (self.data.len() - self.pos) as u64;
        if n > avail {
            return Err(DecodeError::Truncated {
                name,
                needed: n,
                available: avail,
            });
        }
        self.take(n as usize, name)
    }

    #[inline]
    fn line(&mut self, name: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None if self.python_eof_lines => {
                self.pos = self.data.len();
                Ok(if name == "INT" {
                    rest
                } else {
                    &rest[..rest.len().saturating_sub(1)]
                })
            }
            None => Err(DecodeError::NoNewline(name)),
        }
    }

    #[inline(always)]
    fn fixed<const N: usize>(&mut self, name: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, name)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Decodes the next opcode. `Ok(None)` only at the exact end of the data.
    #[inline(always)]
    pub fn next_op(&mut self) -> Result<Option<Op<'a>>, DecodeError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let start = self.pos;
        let byte = self.data[start];
        let code = Opcode::from_byte(byte).ok_or(DecodeError::UnknownOpcode(byte))?;
        self.pos += 1;
        let info = code.info();
        let name = info.name;
        let arg = match info.arg {
            ArgKind::None => Arg::None,
            ArgKind::Uint1 => Arg::Int(self.fixed::<1>(name)?[0] as i64),
            ArgKind::Uint2 => Arg::Int(u16::from_le_bytes(self.fixed(name)?) as i64),
            ArgKind::Int4 => Arg::Int(i32::from_le_bytes(self.fixed(name)?) as i64),
            ArgKind::Uint4 => Arg::Int(u32::from_le_bytes(self.fixed(name)?) as i64),
            ArgKind::Uint8 => Arg::U64(u64::from_le_bytes(self.fixed(name)?)),
            ArgKind::Float8 => Arg::Float(f64::from_be_bytes(self.fixed(name)?)),
            ArgKind::DecimalNlShort
            | ArgKind::DecimalNlLong
            | ArgKind::FloatNl
            | ArgKind::StringNl
            | ArgKind::StringNlNoEscape
            | ArgKind::UnicodeStringNl => Arg::Line(self.line(name)?),
            ArgKind::StringNlNoEscapePair => {
                let a = self.line(name)?;
                let b = self.line(name)?;
                Arg::Pair(a, b)
            }
            ArgKind::Long1 => {
                let n = self.fixed::<1>(name)?[0] as usize;
                Arg::Long(self.take(n, name)?)
            }
            ArgKind::Long4 => {
                let n = i32::from_le_bytes(self.fixed(name)?);
                if n < 0 {
                    return Err(DecodeError::NegativeLength(name));
                }
                Arg::Long(self.take(n as usize, name)?)
            }
            ArgKind::String1 | ArgKind::Bytes1 | ArgKind::UnicodeString1 => {
                let n = self.fixed::<1>(name)?[0] as usize;
                Arg::Data(self.take(n, name)?)
            }
            ArgKind::String4 => {
                // BINSTRING's count is signed in both unpicklers.
                let n = i32::from_le_bytes(self.fixed(name)?);
                if n < 0 {
                    return Err(DecodeError::NegativeLength(name));
                }
                Arg::Data(self.take(n as usize, name)?)
            }
            ArgKind::Bytes4 | ArgKind::UnicodeString4 => {
                let n = u32::from_le_bytes(self.fixed(name)?) as usize;
                Arg::Data(self.take(n, name)?)
            }
            ArgKind::Bytes8 | ArgKind::UnicodeString8 | ArgKind::ByteArray8 => {
                let n = u64::from_le_bytes(self.fixed(name)?);
                Arg::Data(self.take_u64_len(n, name)?)
            }
        };
        let end = self.pos;
        // Fast path: no frame, or an opcode wholly inside the current frame.
        let inside = match self.frame_end {
            None => true,
            Some(fe) => end < fe,
        };
        if !inside || code == Opcode::Frame {
            self.track_frame(code, start, end, &arg)?;
        }
        Ok(Some(Op {
            offset: self.base + start as u64,
            end: self.base + end as u64,
            code,
            arg,
        }))
    }

    fn track_frame(
        &mut self,
        code: Opcode,
        start: usize,
        end: usize,
        arg: &Arg<'a>,
    ) -> Result<(), DecodeError> {
        if let Some(fe) = self.frame_end {
            if start >= fe {
                self.frame_end = None;
            } else if end > fe {
                self.frame_violations.push(FrameViolation {
                    offset: self.base + start as u64,
                    frame_end: self.base + fe as u64,
                    kind: FrameViolationKind::Straddle,
                });
                self.frame_end = None;
            } else if code == Opcode::Frame {
                self.frame_violations.push(FrameViolation {
                    offset: self.base + start as u64,
                    frame_end: self.base + fe as u64,
                    kind: FrameViolationKind::NewFrameInsideFrame,
                });
            }
        }
        if code == Opcode::Frame {
            if let Arg::U64(len) = *arg {
                let avail = (self.data.len() - end) as u64;
                if len > avail && !self.python_eof_lines {
                    // The C unpickler reads the whole frame up front and fails here;
                    // pickle.py reads what there is and runs its opcodes first.
                    return Err(DecodeError::Truncated {
                        name: "FRAME",
                        needed: len,
                        available: avail,
                    });
                }
                self.frame_end = if len == 0 {
                    None
                } else {
                    Some(end + len.min(avail) as usize)
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: &[u8]) -> Vec<(u64, Opcode)> {
        let mut d = Decoder::new(data, 0);
        let mut v = Vec::new();
        while let Some(op) = d.next_op().unwrap_or(None) {
            v.push((op.offset, op.code));
        }
        v
    }

    #[test]
    fn decodes_protocol_0_text_forms() {
        let data = b"(S'a\\nb'\np0\nI12\nL5L\ncos\nsystem\n.";
        let got = ops(data);
        assert_eq!(
            got.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![
                Opcode::Mark,
                Opcode::String,
                Opcode::Put,
                Opcode::Int,
                Opcode::Long,
                Opcode::Global,
                Opcode::Stop
            ]
        );
        let mut d = Decoder::new(data, 0);
        d.next_op().ok();
        let s = d.next_op().ok().flatten().map(|o| o.arg);
        assert_eq!(s, Some(Arg::Line(b"'a\\nb'")));
    }

    #[test]
    fn length_beyond_data_is_truncation_not_panic() {
        let data = b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff";
        let mut d = Decoder::new(data, 0);
        assert!(matches!(d.next_op(), Err(DecodeError::Truncated { .. })));
        let data = b"T\xff\xff\xff\xff";
        let mut d = Decoder::new(data, 0);
        assert_eq!(
            d.next_op().err(),
            Some(DecodeError::NegativeLength("BINSTRING"))
        );
    }

    #[test]
    fn missing_newline_is_an_error() {
        let mut d = Decoder::new(b"cos\nsystem", 0);
        assert_eq!(d.next_op().err(), Some(DecodeError::NoNewline("GLOBAL")));
    }

    #[test]
    fn pickle_py_reads_an_unterminated_last_line_without_its_last_char() {
        // pickle.py: `readline()[:-1]` of b"systemX" is b"system"; a first line at EOF
        // leaves an empty second line (the import of `os` still happens).
        let mut d = Decoder::python(b"cos\nsystemX", 0);
        let op = d.next_op().ok().flatten().map(|o| o.arg);
        assert_eq!(op, Some(Arg::Pair(b"os", b"system")));
        let mut d = Decoder::python(b"cosX", 0);
        let op = d.next_op().ok().flatten().map(|o| o.arg);
        assert_eq!(op, Some(Arg::Pair(b"os", b"")));
        let mut d = Decoder::python(b"I12", 0);
        let op = d.next_op().ok().flatten().map(|o| o.arg);
        assert_eq!(op, Some(Arg::Line(b"12")));
    }

    #[test]
    fn frame_straddle_is_reported() {
        // FRAME of 2 bytes, then BINBYTES whose payload runs past it.
        let mut data = vec![0x80, 5, 0x95];
        data.extend_from_slice(&2u64.to_le_bytes());
        data.extend_from_slice(&[b'B', 3, 0, 0, 0, b'a', b'b', b'c', b'.']);
        let mut d = Decoder::new(&data, 0);
        while let Ok(Some(_)) = d.next_op() {}
        assert_eq!(d.frame_violations.len(), 1);
        assert_eq!(d.frame_violations[0].kind, FrameViolationKind::Straddle);
    }

    #[test]
    fn frame_longer_than_data_fails() {
        let mut data = vec![0x95];
        data.extend_from_slice(&100u64.to_le_bytes());
        data.push(b'N');
        let mut d = Decoder::new(&data, 0);
        assert!(matches!(
            d.next_op(),
            Err(DecodeError::Truncated { name: "FRAME", .. })
        ));
    }
}
