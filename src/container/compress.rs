//! Single-stream compressors, recognised by magic bytes and decompressed as a stream
//! under a byte budget (zip bombs end in a finding, not in memory exhaustion).

use std::io::{self, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Bz2,
    Xz,
    /// `.lzma` "alone" format (joblib's `lzma` compressor).
    Lzma,
    Zlib,
    Lz4,
    Zstd,
    /// joblib's pre-0.10 format (`numpy_pickle_compat.read_zfile`): `ZF`, the length as
    /// 19 characters of hex text, an optional space, then one zlib stream. joblib.load
    /// takes this path for any file that starts with `ZF`.
    JoblibZfile,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bz2 => "bz2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::Zlib => "zlib",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::JoblibZfile => "joblib-zfile",
        }
    }
}

/// Where a joblib ZF file's zlib stream starts: `int(text, 16)` of the 19 characters
/// after `ZF` must succeed (whitespace, a `0x` prefix and single underscores allowed).
fn zfile_data(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head.get(2..21)?).ok()?;
    let t = text.trim_matches(|c: char| c.is_whitespace());
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let t = t.strip_prefix('_').unwrap_or(t);
    let valid = !t.is_empty()
        && !t.starts_with('_')
        && !t.ends_with('_')
        && !t.contains("__")
        && t.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    valid.then(|| if head.get(21) == Some(&b' ') { 22 } else { 21 })
}

/// Recognises a compressed stream by its first bytes.
pub fn sniff(head: &[u8]) -> Option<Codec> {
    if head.starts_with(b"ZF") && zfile_data(head).is_some() {
        return Some(Codec::JoblibZfile);
    }
    match head {
        [0x1f, 0x8b, ..] => Some(Codec::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(Codec::Bz2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Codec::Xz),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Codec::Lz4),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Codec::Zstd),
        // A skippable frame first: zstd readers (pandas) step over it; lz4 frame readers
        // too, but a file that starts so is taken as zstd, whose frames follow.
        [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50 => {
            let next = skippable(head).unwrap_or(usize::MAX);
            match head.get(next..next.saturating_add(4)) {
                Some([0x04, 0x22, 0x4d, 0x18]) => Some(Codec::Lz4),
                _ => Some(Codec::Zstd),
            }
        }
        [0x78, flg, ..] if (0x78u16 * 256 + *flg as u16) % 31 == 0 => Some(Codec::Zlib),
        // lzma-alone: properties byte 0x5d, a power-of-two-ish dictionary size, then an
        // 8-byte size that is either unknown (all ones) or plausible.
        [0x5d, d0, d1, d2, d3, s @ ..] if s.len() >= 8 => {
            let dict = u32::from_le_bytes([*d0, *d1, *d2, *d3]);
            let size = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
            let dict_ok =
                dict >= 4096 && (dict.is_power_of_two() || (dict - (dict >> 1)).is_power_of_two());
            (dict_ok && (size == u64::MAX || size < 1 << 48)).then_some(Codec::Lzma)
        }
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("decompressed size exceeds the budget of {0} bytes")]
    TooLarge(u64),
    #[error("the file's time limit was reached while decompressing")]
    OutOfTime,
    #[error("the decoder needs more than {0} bytes of memory for its dictionary")]
    DecoderMemory(u64),
    #[error("corrupt {codec} stream: {message}")]
    Corrupt {
        codec: &'static str,
        message: String,
    },
}

/// A decoder's output, cut off once the file's clock has run out (`crate::budget`): a
/// decompression that is slow rather than large still ends in a finding.
struct Clocked<R>(R);

#[derive(Debug, thiserror::Error)]
#[error("time limit reached")]
struct OutOfTime;

impl<R: Read> Read for Clocked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::budget::expired().is_some() {
            return Err(io::Error::other(OutOfTime));
        }
        self.0.read(buf)
    }
}

fn out_of_time(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<OutOfTime>())
}

fn read_capped(r: impl Read, limit: u64, codec: &'static str) -> Result<Vec<u8>, DecompressError> {
    let mut r = Clocked(r);
    let mut out = Vec::new();
    let n = (&mut r)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| match out_of_time(&e) {
            true => DecompressError::OutOfTime,
            false => DecompressError::Corrupt {
                codec,
                message: e.to_string(),
            },
        })?;
    if n as u64 > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(out)
}

/// A skippable frame (lz4 and zstd share the magic range 0x184D2A50..=0x184D2A5F).
fn skippable(rest: &[u8]) -> Option<usize> {
    match rest {
        [m, 0x2a, 0x4d, 0x18, a, b, c, d, ..] if m & 0xf0 == 0x50 => {
            Some(8usize.saturating_add(u32::from_le_bytes([*a, *b, *c, *d]) as usize))
        }
        _ => None,
    }
}

const OUT_OF_TIME: &str = "\0out of time";

/// Frame after frame, as Python's lz4.frame and zstandard readers (joblib, pandas) read
/// them: skippable frames stepped over, empty frames allowed, the content concatenated.
/// A damaged frame after the first ends the output there (a reader raises at that point,
/// after handing over what came before).
fn frames(
    input: &[u8],
    limit: u64,
    name: &'static str,
    open: impl for<'r> Fn(&'r mut io::Cursor<&[u8]>) -> Result<Box<dyn Read + 'r>, String>,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut first = true;
    while pos < input.len() {
        if let Some(n) = skippable(&input[pos..]) {
            pos = pos.saturating_add(n);
            continue;
        }
        let mut cur = io::Cursor::new(input);
        cur.set_position(pos as u64);
        let room = limit - out.len() as u64;
        let r = open(&mut cur).and_then(|dec| {
            Clocked(dec)
                .take(room + 1)
                .read_to_end(&mut out)
                .map_err(|e| match out_of_time(&e) {
                    true => OUT_OF_TIME.to_string(),
                    false => e.to_string(),
                })
        });
        match r {
            Ok(_) if out.len() as u64 > limit => return Err(DecompressError::TooLarge(limit)),
            Ok(_) => {}
            Err(m) if m == OUT_OF_TIME => return Err(DecompressError::OutOfTime),
            Err(message) if first => {
                return Err(DecompressError::Corrupt {
                    codec: name,
                    message,
                })
            }
            Err(_) => break,
        }
        let next = cur.position() as usize;
        if next <= pos {
            break;
        }
        pos = next;
        first = false;
    }
    Ok(out)
}

/// Decoder memory liblzma may use for one stream (dictionary and state). Python sets no
/// limit; a header that asks for more than this is a budget finding, so a few bytes cannot
/// make the scanner allocate gigabytes of dictionary.
const LZMA_MEMLIMIT: u64 = 256 << 20;

/// `.xz` and `.lzma` as Python's `lzma` module reads them (`LZMAFile`, `lzma.decompress`):
/// liblzma's auto decoder, stream after stream; once a stream has ended, bytes that do
/// not start a new one (padding, garbage) are ignored, and a later stream that breaks
/// ends the output where it broke. Output is pulled through a bounded reader, so no
/// stream (however large its blocks) materialises more than `limit` bytes.
fn lzma_streams(input: &[u8], limit: u64, name: &'static str) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut first = true;
    while pos < input.len() {
        let stream = liblzma::stream::Stream::new_auto_decoder(LZMA_MEMLIMIT, 0).map_err(|e| {
            DecompressError::Corrupt {
                codec: name,
                message: e.to_string(),
            }
        })?;
        let before = out.len();
        let mut dec = Clocked(liblzma::bufread::XzDecoder::new_stream(
            &input[pos..],
            stream,
        ));
        let room = limit - out.len() as u64;
        let r = (&mut dec).take(room + 1).read_to_end(&mut out);
        match r {
            Ok(_) if out.len() as u64 > limit => return Err(DecompressError::TooLarge(limit)),
            Ok(_) => {}
            Err(e) if out_of_time(&e) => return Err(DecompressError::OutOfTime),
            Err(e) if is_memlimit(&e) => return Err(DecompressError::DecoderMemory(LZMA_MEMLIMIT)),
            Err(e) if first => {
                return Err(DecompressError::Corrupt {
                    codec: name,
                    message: e.to_string(),
                })
            }
            // Trailing bytes that are not a stream: Python ignores them.
            Err(_) if out.len() == before => {
                out.truncate(before);
                break;
            }
            Err(_) => break,
        }
        let used = dec.0.total_in() as usize;
        if used == 0 {
            break;
        }
        pos = pos.saturating_add(used);
        first = false;
    }
    Ok(out)
}

fn is_memlimit(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                liblzma::stream::Error::MemLimit | liblzma::stream::Error::Mem
            )
        })
}

/// Decompresses `input` completely, failing once more than `limit` bytes come out.
pub fn decompress(codec: Codec, input: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    let name = codec.name();
    match codec {
        // Multi-member gzip (concatenated streams) is what Python's gzip module reads too.
        Codec::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input), limit, name),
        Codec::Zlib => read_capped(flate2::read::ZlibDecoder::new(input), limit, name),
        Codec::JoblibZfile => {
            let at = zfile_data(input).ok_or(DecompressError::Corrupt {
                codec: name,
                message: "bad ZF length header".into(),
            })?;
            read_capped(flate2::read::ZlibDecoder::new(&input[at..]), limit, name)
        }
        Codec::Bz2 => read_capped(bzip2::read::MultiBzDecoder::new(input), limit, name),
        Codec::Lz4 => frames(input, limit, name, |r| {
            Ok(Box::new(lz4_flex::frame::FrameDecoder::new(r)))
        }),
        Codec::Zstd => frames(input, limit, name, |r| {
            ruzstd::decoding::StreamingDecoder::new(r)
                .map(|d| Box::new(d) as Box<dyn Read + '_>)
                .map_err(|e| e.to_string())
        }),
        Codec::Xz | Codec::Lzma => lzma_streams(input, limit, name),
    }
}

/// Compresses with the same codec, for a sanitized replacement of a compressed file.
/// (lzma-rs's xz/lzma encoder stores literals only: valid streams, little compression.)
pub fn compress(codec: Codec, input: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(input)?;
            e.finish()
        }
        Codec::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(input)?;
            e.finish()
        }
        Codec::JoblibZfile => {
            // joblib's write_zfile: `ZF`, hex_str(len).ljust(19), zlib.compress(data).
            let mut out = format!("ZF{:<19}", format!("{:#x}", input.len())).into_bytes();
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
            e.write_all(input)?;
            out.extend(e.finish()?);
            Ok(out)
        }
        Codec::Bz2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
            e.write_all(input)?;
            e.finish()
        }
        Codec::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(input)?;
            e.finish().map_err(io::Error::other)
        }
        Codec::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            input,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
        Codec::Xz | Codec::Lzma => {
            // Python's lzma defaults: preset 6, CRC64 for .xz.
            let stream = if codec == Codec::Xz {
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc64)
            } else {
                liblzma::stream::LzmaOptions::new_preset(6)
                    .and_then(|o| liblzma::stream::Stream::new_lzma_encoder(&o))
            }
            .map_err(io::Error::from)?;
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            e.write_all(input)?;
            e.finish()
        }
    }
}

/// Raw deflate (zip method 8).
pub fn inflate(input: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    read_capped(flate2::read::DeflateDecoder::new(input), limit, "deflate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_gzip_and_enforces_budget() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = enc.write_all(&[0u8; 100_000]);
        let gz = enc.finish().unwrap_or_default();
        assert_eq!(sniff(&gz), Some(Codec::Gzip));
        assert_eq!(
            decompress(Codec::Gzip, &gz, 200_000).map(|v| v.len()).ok(),
            Some(100_000)
        );
        assert!(matches!(
            decompress(Codec::Gzip, &gz, 1000),
            Err(DecompressError::TooLarge(1000))
        ));
    }

    #[test]
    fn every_codec_round_trips_through_its_own_compressor() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            Codec::Gzip,
            Codec::Zlib,
            Codec::Bz2,
            Codec::Lz4,
            Codec::Zstd,
            Codec::Xz,
            Codec::Lzma,
            Codec::JoblibZfile,
        ] {
            let packed = compress(codec, &data).unwrap_or_default();
            assert_eq!(sniff(&packed), Some(codec), "{codec:?}");
            assert_eq!(
                decompress(codec, &packed, 1 << 20).ok().as_deref(),
                Some(&data[..]),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn concatenated_frames_and_streams_are_read_as_python_reads_them() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = data.split_at(7_000);
        for codec in [Codec::Lz4, Codec::Zstd, Codec::Xz, Codec::Gzip, Codec::Bz2] {
            let mut packed = compress(codec, a).unwrap_or_default();
            packed.extend(compress(codec, &[]).unwrap_or_default());
            packed.extend(compress(codec, b).unwrap_or_default());
            assert_eq!(
                decompress(codec, &packed, 1 << 20).ok().as_deref(),
                Some(&data[..]),
                "{codec:?}"
            );
        }
        // A skippable frame first (zstd and lz4 readers step over it).
        let mut skip = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        skip.extend(compress(Codec::Zstd, &data).unwrap_or_default());
        assert_eq!(sniff(&skip), Some(Codec::Zstd));
        assert_eq!(
            decompress(Codec::Zstd, &skip, 1 << 20).ok().as_deref(),
            Some(&data[..])
        );
        let mut skip = vec![0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        skip.extend(compress(Codec::Lz4, &data).unwrap_or_default());
        assert_eq!(sniff(&skip), Some(Codec::Lz4));
        assert_eq!(
            decompress(Codec::Lz4, &skip, 1 << 20).ok().as_deref(),
            Some(&data[..])
        );
    }

    #[test]
    fn lzma_trailing_bytes_after_a_stream_are_ignored_as_python_ignores_them() {
        // `lzma.decompress(a + b"\0" * 4 + b)` and `LZMAFile` return only `a`: the
        // padding does not start a stream, so it and everything after it are ignored.
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = data.split_at(7_000);
        for codec in [Codec::Xz, Codec::Lzma] {
            for pad in [&b"\0\0\0\0"[..], b"junk", b"\0\0\0"] {
                let mut packed = compress(codec, a).unwrap_or_default();
                packed.extend_from_slice(pad);
                packed.extend(compress(codec, b).unwrap_or_default());
                assert_eq!(
                    decompress(codec, &packed, 1 << 20).ok().as_deref(),
                    Some(a),
                    "{codec:?} {pad:?}"
                );
            }
        }
    }

    #[test]
    fn lzma_bombs_stop_at_the_budget_not_at_the_block() {
        // One block of 64 MiB of zeros: the output is pulled in bounded reads, so the
        // budget applies before the block is complete.
        let zeros = vec![0u8; 64 << 20];
        let packed = compress(Codec::Xz, &zeros).unwrap_or_default();
        assert!(packed.len() < 64 << 10);
        assert!(matches!(
            decompress(Codec::Xz, &packed, 1 << 20),
            Err(DecompressError::TooLarge(_))
        ));
        // An .lzma header asking for a 4 GiB dictionary: refused by the decoder's memory
        // limit, never allocated.
        let mut alone = vec![0x5d, 0xff, 0xff, 0xff, 0xff];
        alone.extend_from_slice(&[0xff; 8]);
        alone.extend_from_slice(&[0u8; 64]);
        assert!(matches!(
            decompress(Codec::Lzma, &alone, 1 << 20),
            Err(DecompressError::DecoderMemory(_))
        ));
    }

    #[test]
    fn joblib_zfile_headers_are_parsed_like_int_of_hex() {
        assert_eq!(zfile_data(b"ZF0x1f               x"), Some(21));
        assert_eq!(zfile_data(b"ZF0x1f                x"), Some(22));
        assert_eq!(zfile_data(b"ZFnot hex at all!!!!!x"), None);
    }

    #[test]
    fn pickles_are_not_mistaken_for_compressed_data() {
        assert_eq!(sniff(b"\x80\x04\x95"), None);
        assert_eq!(sniff(b"]q\x00(K\x01e."), None);
        assert_eq!(sniff(b"(lp0\nI1\na."), None);
    }
}
