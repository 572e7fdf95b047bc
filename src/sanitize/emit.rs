//! A pickle writer for the sanitizer: canonical opcodes, a fresh memo, no frames.

use crate::pickle::pytext::PyInt;

pub struct Emitter {
    pub out: Vec<u8>,
    pub proto: u8,
    next_memo: u32,
}

impl Emitter {
    pub fn new(proto: u8) -> Self {
        let out = vec![0x80, proto];
        Emitter {
            out,
            proto,
            next_memo: 0,
        }
    }

    /// Starts a pickle inside this one (joblib's object arrays are read with a nested
    /// `pickle.load`): its own PROTO and memo numbering. Returns what `end_nested` restores.
    pub fn begin_nested(&mut self) -> u32 {
        self.out.extend_from_slice(&[0x80, self.proto]);
        std::mem::replace(&mut self.next_memo, 0)
    }

    pub fn end_nested(&mut self, next_memo: u32) {
        self.next_memo = next_memo;
    }

    pub fn op(&mut self, code: u8) {
        self.out.push(code);
    }

    /// Stores the stack top in a fresh memo slot and returns its index.
    pub fn put(&mut self) -> u32 {
        let i = self.next_memo;
        self.next_memo += 1;
        if i < 256 {
            self.out.extend_from_slice(&[b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        i
    }

    pub fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend_from_slice(&[b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    pub fn none(&mut self) {
        self.out.push(b'N');
    }

    pub fn bool(&mut self, b: bool) {
        self.out.push(if b { 0x88 } else { 0x89 });
    }

    pub fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.long_bytes(&encode_long_i64(v));
        }
    }

    /// An arbitrary-precision int given as decimal text.
    pub fn bigint(&mut self, decimal: &str) -> Result<(), String> {
        match crate::pickle::pytext::parse_int(decimal.as_bytes(), false) {
            Some(PyInt::Small(v)) => {
                self.int(v);
                Ok(())
            }
            Some(PyInt::Big(s)) => {
                self.long_bytes(&encode_long_decimal(&s)?);
                Ok(())
            }
            None => Err(format!("cannot re-emit integer {decimal}")),
        }
    }

    fn long_bytes(&mut self, b: &[u8]) {
        if b.len() < 256 {
            self.out.extend_from_slice(&[0x8a, b.len() as u8]);
        } else {
            self.out.push(0x8b);
            self.out.extend_from_slice(&(b.len() as i32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
    }

    pub fn float(&mut self, f: f64) {
        self.out.push(b'G');
        self.out.extend_from_slice(&f.to_be_bytes());
    }

    /// A length-prefixed argument with the smallest opcode that fits: `short` (1-byte
    /// length, when the protocol has it), `long` (4 bytes) or `huge` (8 bytes, protocol 4;
    /// the rebuild asks for protocol 4 when a value needs it).
    fn sized(&mut self, short: Option<u8>, long: u8, huge: u8, b: &[u8]) {
        match (short, u8::try_from(b.len()), u32::try_from(b.len())) {
            (Some(op), Ok(n), _) => self.out.extend_from_slice(&[op, n]),
            (_, _, Ok(n)) => {
                self.out.push(long);
                self.out.extend_from_slice(&n.to_le_bytes());
            }
            _ => {
                self.out.push(huge);
                self.out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            }
        }
        self.out.extend_from_slice(b);
    }

    /// A `str` from UTF-8 bytes (surrogates already encoded with surrogatepass):
    /// SHORT_BINUNICODE, BINUNICODE or BINUNICODE8.
    pub fn str_utf8(&mut self, b: &[u8]) {
        let short = (self.proto >= 4).then_some(0x8c);
        self.sized(short, b'X', 0x8d, b);
    }

    /// SHORT_BINBYTES, BINBYTES or BINBYTES8 from protocol 3 on.
    pub fn bytes(&mut self, b: &[u8]) {
        if self.proto >= 3 {
            self.sized(Some(b'C'), b'B', 0x8e, b);
        } else {
            // Protocol 2 has no bytes opcode: `_codecs.encode(latin-1 text, 'latin1')`, as CPython writes it.
            self.out.extend_from_slice(b"c_codecs\nencode\n");
            let text: String = b.iter().map(|c| *c as char).collect();
            self.str_utf8(text.as_bytes());
            self.str_utf8(b"latin1");
            self.out.push(0x86);
            self.out.push(b'R');
        }
    }

    /// STACK_GLOBAL from protocol 4 on, as CPython writes it (GLOBAL is a text opcode: the
    /// C unpickler then needs `readline`, which some stream readers, e.g. zstandard's, lack).
    pub fn global(&mut self, module: &str, name: &str) -> Result<(), String> {
        if self.proto >= 4 {
            self.str_utf8(module.as_bytes());
            self.str_utf8(name.as_bytes());
            self.out.push(0x93);
            return Ok(());
        }
        if module.contains('\n') || name.contains('\n') {
            return Err(format!(
                "`{}.{}` contains a newline, which protocol {} GLOBAL cannot write",
                module.escape_debug(),
                name.escape_debug(),
                self.proto
            ));
        }
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        Ok(())
    }

    pub fn stop(&mut self) {
        self.out.push(b'.');
    }
}

fn encode_long_i64(v: i64) -> Vec<u8> {
    let mut b = v.to_le_bytes().to_vec();
    // Minimal two's complement, as pickle.encode_long does.
    while b.len() > 1 {
        let last = b[b.len() - 1];
        let prev = b[b.len() - 2];
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            b.pop();
        } else {
            break;
        }
    }
    b
}

/// Decimal text to minimal little-endian two's complement.
fn encode_long_decimal(s: &str) -> Result<Vec<u8>, String> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    // Python refuses int() of more decimal digits than this (3.11+, and the 2022
    // security releases); converting more would also cost quadratic time here.
    if digits.len() > crate::pickle::pytext::MAX_STR_DIGITS {
        return Err(format!(
            "an integer of {} decimal digits cannot be re-emitted",
            digits.len()
        ));
    }
    let mut mag: Vec<u8> = vec![0];
    for c in digits.chars() {
        let d = c.to_digit(10).ok_or_else(|| format!("bad integer {s}"))?;
        let mut carry = d;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // Room for the sign bit.
    if mag.last().is_some_and(|b| b & 0x80 != 0) {
        mag.push(0);
    }
    if neg {
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    while mag.len() > 1 {
        let last = mag[mag.len() - 1];
        let prev = mag[mag.len() - 2];
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            mag.pop();
        } else {
            break;
        }
    }
    Ok(mag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::pytext::decode_long;

    #[test]
    fn longs_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            1 << 40,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(decode_long(&encode_long_i64(v)), Some(PyInt::Small(v)));
        }
        let big = "-1267650600228229401496703205376";
        assert_eq!(
            encode_long_decimal(big).ok().and_then(|b| decode_long(&b)),
            Some(PyInt::Big(big.into()))
        );
        let big = "18446744073709551616";
        assert_eq!(
            encode_long_decimal(big).ok().and_then(|b| decode_long(&b)),
            Some(PyInt::Big(big.into()))
        );
    }
}
