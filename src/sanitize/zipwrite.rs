//! Repacks a zip the way PyTorch writes one: stored members, data aligned to 64 bytes
//! with an `FB` padding extra field, fresh headers and central directory. Member data
//! other than the rewritten pickle is copied byte for byte.

use crate::container::blob::Blob;
use crate::container::zip::Entry;
use std::io::{self, Write};

const ALIGN: u64 = 64;
/// PyTorch's padding extra field id ("FB").
const PAD_ID: u16 = 0x4246;

pub enum Member {
    /// New content for a stored member.
    Bytes(String, Vec<u8>),
    /// A member copied from the original archive.
    Copy(Entry),
}

fn crc_of(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn crc_of_range(blob: &dyn Blob, offset: u64, len: u64) -> io::Result<u32> {
    let mut c = flate2::Crc::new();
    let mut pos = 0;
    while pos < len {
        let n = (len - pos).min(8 << 20) as usize;
        let chunk = blob.read_at(offset + pos, n)?;
        if chunk.len() != n {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        c.update(&chunk);
        pos += n as u64;
    }
    Ok(c.sum())
}

fn too_big(v: u64) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| {
        io::Error::other("member larger than 4 GiB: zip64 repacking is not supported yet")
    })
}

/// Counts what goes through, for header offsets.
struct Counting<'w> {
    inner: &'w mut dyn Write,
    pos: u64,
}

impl Counting<'_> {
    fn extend_from_slice(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }
}

/// Writes the archive into `sink` (a file for large checkpoints: nothing is held in memory
/// but the central directory).
pub fn write(blob: &dyn Blob, members: &[Member], sink: &mut dyn Write) -> io::Result<()> {
    if members.len() > usize::from(u16::MAX) {
        return Err(io::Error::other(
            "more than 65535 members: zip64 repacking is not supported",
        ));
    }
    let mut out = Counting {
        inner: sink,
        pos: 0,
    };
    let mut central: Vec<u8> = Vec::new();
    let mut count = 0u16;
    for m in members {
        let (name, method, crc, csize, size) = match m {
            Member::Bytes(name, data) => (
                name.clone(),
                0u16,
                crc_of(data),
                data.len() as u64,
                data.len() as u64,
            ),
            Member::Copy(e) => {
                // The CRC is recomputed from the data for stored members: a tampered CRC must
                // not survive into the sanitized file.
                let crc = if e.method == 0 {
                    crc_of_range(blob, e.data_offset, e.compressed_size)?
                } else {
                    e.crc
                };
                (e.name.clone(), e.method, crc, e.compressed_size, e.size)
            }
        };
        // Bit 11: the name is UTF-8 (without it, readers decode non-ASCII names as cp437).
        let flags: u16 = if name.is_ascii() { 0 } else { 0x0800 };
        let header_at = out.pos;
        let fixed = 30 + name.len() as u64;
        // Data starts at header + fixed part + extra field: pad the extra field to 64.
        let pad = (ALIGN - (header_at + fixed + 4) % ALIGN) % ALIGN;
        let extra_len = 4 + pad;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes())?;
        out.extend_from_slice(&20u16.to_le_bytes())?;
        out.extend_from_slice(&flags.to_le_bytes())?;
        out.extend_from_slice(&method.to_le_bytes())?;
        out.extend_from_slice(&[0, 0, 0x21, 0])?;
        out.extend_from_slice(&crc.to_le_bytes())?;
        out.extend_from_slice(&too_big(csize)?.to_le_bytes())?;
        out.extend_from_slice(&too_big(size)?.to_le_bytes())?;
        out.extend_from_slice(&(name.len() as u16).to_le_bytes())?;
        out.extend_from_slice(&(extra_len as u16).to_le_bytes())?;
        out.extend_from_slice(name.as_bytes())?;
        out.extend_from_slice(&PAD_ID.to_le_bytes())?;
        out.extend_from_slice(&(pad as u16).to_le_bytes())?;
        out.extend_from_slice(&vec![b'Z'; pad as usize])?;
        match m {
            Member::Bytes(_, data) => out.extend_from_slice(data)?,
            Member::Copy(e) => {
                let mut pos = 0;
                while pos < e.compressed_size {
                    let n = (e.compressed_size - pos).min(8 << 20) as usize;
                    let chunk = blob.read_at(e.data_offset + pos, n)?;
                    if chunk.len() != n {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                    }
                    out.extend_from_slice(&chunk)?;
                    pos += n as u64;
                }
            }
        }
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&too_big(csize)?.to_le_bytes());
        central.extend_from_slice(&too_big(size)?.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&too_big(header_at)?.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        count += 1;
    }
    let cd_offset = out.pos;
    out.extend_from_slice(&central)?;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes())?;
    out.extend_from_slice(&[0, 0, 0, 0])?;
    out.extend_from_slice(&count.to_le_bytes())?;
    out.extend_from_slice(&count.to_le_bytes())?;
    out.extend_from_slice(&too_big(central.len() as u64)?.to_le_bytes())?;
    out.extend_from_slice(&too_big(cd_offset)?.to_le_bytes())?;
    out.extend_from_slice(&0u16.to_le_bytes())?;
    out.inner.flush()
}
