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
        }
    }
}

/// Recognises a compressed stream by its first bytes.
pub fn sniff(head: &[u8]) -> Option<Codec> {
    match head {
        [0x1f, 0x8b, ..] => Some(Codec::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(Codec::Bz2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Codec::Xz),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Codec::Lz4),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Codec::Zstd),
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
    #[error("corrupt {codec} stream: {message}")]
    Corrupt {
        codec: &'static str,
        message: String,
    },
}

/// A writer that refuses to grow past a limit (lzma-rs writes, it does not read).
struct Capped {
    buf: Vec<u8>,
    limit: u64,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("budget"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn read_capped(
    mut r: impl Read,
    limit: u64,
    codec: &'static str,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let n = (&mut r)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt {
            codec,
            message: e.to_string(),
        })?;
    if n as u64 > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(out)
}

/// Decompresses `input` completely, failing once more than `limit` bytes come out.
pub fn decompress(codec: Codec, input: &[u8], limit: u64) -> Result<Vec<u8>, DecompressError> {
    let name = codec.name();
    match codec {
        // Multi-member gzip (concatenated streams) is what Python's gzip module reads too.
        Codec::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input), limit, name),
        Codec::Zlib => read_capped(flate2::read::ZlibDecoder::new(input), limit, name),
        Codec::Bz2 => read_capped(bzip2::read::MultiBzDecoder::new(input), limit, name),
        Codec::Lz4 => read_capped(lz4_flex::frame::FrameDecoder::new(input), limit, name),
        Codec::Zstd => {
            let dec = ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
                DecompressError::Corrupt {
                    codec: name,
                    message: e.to_string(),
                }
            })?;
            read_capped(dec, limit, name)
        }
        Codec::Xz | Codec::Lzma => {
            let mut out = Capped {
                buf: Vec::new(),
                limit,
                exceeded: false,
            };
            let mut reader = io::BufReader::new(input);
            let r = if codec == Codec::Xz {
                lzma_rs::xz_decompress(&mut reader, &mut out)
            } else {
                lzma_rs::lzma_decompress(&mut reader, &mut out)
            };
            match r {
                Ok(()) => Ok(out.buf),
                Err(_) if out.exceeded => Err(DecompressError::TooLarge(limit)),
                Err(e) => Err(DecompressError::Corrupt {
                    codec: name,
                    message: e.to_string(),
                }),
            }
        }
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
            let mut out = Vec::new();
            let mut r = io::BufReader::new(input);
            if codec == Codec::Xz {
                lzma_rs::xz_compress(&mut r, &mut out)?;
            } else {
                lzma_rs::lzma_compress(&mut r, &mut out)?;
            }
            Ok(out)
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
    fn pickles_are_not_mistaken_for_compressed_data() {
        assert_eq!(sniff(b"\x80\x04\x95"), None);
        assert_eq!(sniff(b"]q\x00(K\x01e."), None);
        assert_eq!(sniff(b"(lp0\nI1\na."), None);
    }
}
