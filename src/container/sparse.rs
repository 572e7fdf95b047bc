//! Large raw pickles are mostly payload bytes (a fitted forest pickles its node arrays as
//! BINBYTES): the opcodes are read with positioned reads and large bytes payloads are left
//! unread. The image has the file's length, with zeros where a payload was skipped; the
//! VM never looks inside a bytes payload, and if a skipped region were ever decoded as
//! opcodes, 0x00 is not an opcode, so the stream would fail — a finding, not a silent pass.

use super::blob::Blob;
use crate::pickle::op::{ArgKind, Opcode};
use std::io;

/// Bytes payloads at least this large are skipped.
const SKIP: u64 = 16 << 10;
/// After this much of the file, a walk that skipped under a quarter of it stops and the rest
/// is read in one go (opcode-heavy pickles: walking would only add work).
const PROBE_SPAN: u64 = 8 << 20;
const MAX_LOOKAHEAD: u64 = 1 << 20;

pub struct Image {
    /// The file's bytes, zero in the holes.
    pub data: Vec<u8>,
    /// (absolute offset, length) of each payload left unread; when the walk stopped early,
    /// the last hole is the rest of the file.
    pub holes: Vec<(u64, u64)>,
    /// Whether every opcode was read (only payloads are missing).
    pub complete: bool,
}

impl Image {
    /// Reads the holes too: the complete file, each byte read once.
    pub fn fill(mut self, blob: &dyn Blob) -> io::Result<Vec<u8>> {
        for &(s, n) in &self.holes {
            blob.read_into(s, &mut self.data[s as usize..(s + n) as usize])?;
        }
        Ok(self.data)
    }
}

struct Filler<'b> {
    blob: &'b dyn Blob,
    data: Vec<u8>,
    /// End of the bytes read so far in the current run of opcodes.
    filled: u64,
    lookahead: u64,
}

impl Filler<'_> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Makes `[pos, pos + n)` readable (clipped to the file), reading ahead a little more.
    fn ensure(&mut self, pos: u64, n: u64) -> io::Result<()> {
        let want = pos.saturating_add(n).min(self.len());
        if want <= self.filled {
            return Ok(());
        }
        let start = self.filled.max(pos);
        let end = want
            .max(start.saturating_add(self.lookahead))
            .min(self.len());
        self.blob
            .read_into(start, &mut self.data[start as usize..end as usize])?;
        self.filled = end;
        self.lookahead = (self.lookahead * 2).min(MAX_LOOKAHEAD);
        Ok(())
    }

    /// A payload that is not read: the next opcode starts a new run.
    fn skip_to(&mut self, pos: u64) {
        self.filled = self.filled.max(pos);
        self.lookahead = 4 << 10;
    }

    /// A little-endian length field, if the file holds all of it.
    fn le(&self, pos: u64, n: usize) -> Option<u64> {
        let start = usize::try_from(pos).ok()?;
        let field = self.data.get(start..start.checked_add(n)?)?;
        Some(
            field
                .iter()
                .rev()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b)),
        )
    }
}

/// Reads `blob` as a pickle, leaving large bytes payloads unread. When the walk meets bytes
/// it cannot follow as opcodes (joblib's raw arrays, trailing data), or finds nothing worth
/// skipping early on, it stops and leaves the rest as one hole (`complete` is false).
pub fn read(blob: &dyn Blob) -> io::Result<Image> {
    let len = blob.len();
    let size = usize::try_from(len).map_err(io::Error::other)?;
    // alloc_zeroed: the kernel maps zero pages lazily, so holes cost no memory.
    let mut f = Filler {
        blob,
        data: vec![0u8; size],
        filled: 0,
        lookahead: 64 << 10,
    };
    let mut holes: Vec<(u64, u64)> = Vec::new();
    let mut skipped = 0u64;
    let mut pos = 0u64;
    while pos < len {
        if pos > PROBE_SPAN && skipped < pos / 4 {
            break;
        }
        f.ensure(pos, 9)?;
        let Some(op) = f.data.get(pos as usize).and_then(|&b| Opcode::from_byte(b)) else {
            // Not an opcode (trailing data, or bytes the walk cannot follow): read the rest.
            break;
        };
        let arg_at = pos + 1;
        let fixed = |n: u64| arg_at + n;
        // A length field cut off by the end of the file ends the walk (the VM reports it).
        let Some(next) = (|| -> io::Result<Option<u64>> {
            Ok(Some(match op.info().arg {
                ArgKind::None => arg_at,
                ArgKind::Uint1 => fixed(1),
                ArgKind::Uint2 => fixed(2),
                ArgKind::Int4 | ArgKind::Uint4 => fixed(4),
                ArgKind::Uint8 | ArgKind::Float8 => fixed(8),
                ArgKind::Long1 | ArgKind::String1 | ArgKind::Bytes1 | ArgKind::UnicodeString1 => {
                    f.ensure(arg_at, 1)?;
                    let Some(n) = f.le(arg_at, 1) else {
                        return Ok(None);
                    };
                    arg_at + 1 + n
                }
                ArgKind::Long4 | ArgKind::String4 | ArgKind::UnicodeString4 => {
                    f.ensure(arg_at, 4)?;
                    let Some(n) = f.le(arg_at, 4) else {
                        return Ok(None);
                    };
                    arg_at + 4 + n
                }
                ArgKind::UnicodeString8 => {
                    f.ensure(arg_at, 8)?;
                    let Some(n) = f.le(arg_at, 8) else {
                        return Ok(None);
                    };
                    (arg_at + 8).saturating_add(n)
                }
                ArgKind::Bytes4 | ArgKind::Bytes8 | ArgKind::ByteArray8 => {
                    let w = if op.info().arg == ArgKind::Bytes4 {
                        4
                    } else {
                        8
                    };
                    f.ensure(arg_at, w)?;
                    let Some(n) = f.le(arg_at, w as usize) else {
                        return Ok(None);
                    };
                    let start = arg_at + w;
                    let end = start.saturating_add(n);
                    if n >= SKIP && end <= len {
                        holes.push((start, n));
                        skipped += n;
                        f.skip_to(end);
                    }
                    end
                }
                ArgKind::DecimalNlShort
                | ArgKind::DecimalNlLong
                | ArgKind::FloatNl
                | ArgKind::StringNl
                | ArgKind::StringNlNoEscape
                | ArgKind::UnicodeStringNl => line_end(&mut f, arg_at, 1)?,
                ArgKind::StringNlNoEscapePair => line_end(&mut f, arg_at, 2)?,
            }))
        })()?
        else {
            break;
        };
        if next > len {
            break;
        }
        if holes.last().is_none_or(|&(s, n)| s + n != next) {
            f.ensure(pos, next - pos)?;
        }
        pos = next;
    }
    let complete = pos >= len;
    if !complete {
        let from = f.filled.max(pos).min(len);
        if from < len {
            holes.push((from, len - from));
        }
    }
    Ok(Image {
        data: f.data,
        holes,
        complete,
    })
}

/// Offset after the `lines`-th newline from `pos` (or the end of the file).
fn line_end(f: &mut Filler<'_>, mut pos: u64, lines: usize) -> io::Result<u64> {
    let len = f.len();
    for _ in 0..lines {
        loop {
            if pos >= len {
                return Ok(len + 1);
            }
            f.ensure(pos, 1)?;
            let end = f.filled.min(len);
            let window = &f.data[pos as usize..end as usize];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                pos += i as u64 + 1;
                break;
            }
            pos = end;
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::blob::MemBlob;

    fn bytes_op(n: usize) -> Vec<u8> {
        let mut v = vec![b'B'];
        v.extend_from_slice(&(n as u32).to_le_bytes());
        v.extend(std::iter::repeat_n(0xAB, n));
        v
    }

    #[test]
    fn large_payloads_are_holes_and_everything_else_is_read() {
        // PROTO 3, MARK, a big bytes, a text GLOBAL, a small bytes, another big one, TUPLE, STOP
        let mut p = vec![0x80, 3, b'('];
        let big1 = p.len() + 5;
        p.extend(bytes_op(200_000));
        p.extend_from_slice(b"cos\nsystem\n");
        p.extend(bytes_op(10));
        let big2 = p.len() + 5;
        p.extend(bytes_op(300_000));
        p.extend_from_slice(b"t.");
        let img = read(&MemBlob(&p)).unwrap_or_else(|e| panic!("{e}"));
        assert!(img.complete);
        assert_eq!(
            img.holes,
            vec![(big1 as u64, 200_000), (big2 as u64, 300_000)]
        );
        assert_eq!(img.data.len(), p.len());
        let mut unread = 0;
        for (i, (&a, &b)) in img.data.iter().zip(&p).enumerate() {
            let in_hole = img
                .holes
                .iter()
                .any(|&(s, n)| (s..s + n).contains(&(i as u64)));
            // read-ahead may have read part of a hole: real bytes or zeros, nothing else
            if in_hole && a == 0 {
                unread += 1;
            } else {
                assert_eq!(a, b, "byte {i}");
            }
        }
        assert!(unread > 350_000, "{unread}");
    }

    #[test]
    fn a_small_pickle_is_read_whole() {
        let p = [0x80, 4, b'K', 1, b'.'];
        let img = read(&MemBlob(&p)).unwrap_or_else(|e| panic!("{e}"));
        assert!(img.complete && img.holes.is_empty());
        assert_eq!(img.data, p);
    }

    #[test]
    fn a_walk_that_stops_leaves_the_rest_as_one_hole_and_fill_reads_it() {
        let mut p = vec![0x80, 3];
        p.push(b'B');
        p.extend_from_slice(&u32::MAX.to_le_bytes()); // claims more than the file holds
        p.extend(std::iter::repeat_n(7u8, 300_000));
        let img = read(&MemBlob(&p)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!img.complete);
        let (s, n) = *img.holes.last().unwrap_or(&(0, 0));
        assert_eq!(s + n, p.len() as u64);
        assert_eq!(img.fill(&MemBlob(&p)).unwrap_or_default(), p);
    }
}
