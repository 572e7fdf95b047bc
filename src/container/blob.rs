//! Random-access byte sources, so that a multi-GB checkpoint is read only where the
//! format says something interesting lives (central directory, pickle members, headers).

use std::borrow::Cow;
use std::fs::File;
use std::io;

/// A readable byte range with positioned reads.
pub trait Blob {
    fn len(&self) -> u64;

    /// Reads up to `len` bytes at `offset` (fewer only at the end of the blob).
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;

    /// Fills `buf` from `offset` (all of it, or an error).
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let d = self.read_at(offset, buf.len())?;
        if d.len() != buf.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&d);
        Ok(())
    }

    /// The whole blob in memory when it already is (decompressed members, nested data).
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes actually read from the underlying storage (for the benchmark's "bytes read").
    fn bytes_read(&self) -> u64 {
        0
    }
}

/// Bytes in memory (decompressed members, git blobs, tests).
pub struct MemBlob<'a>(pub &'a [u8]);

impl Blob for MemBlob<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let start = (offset.min(self.0.len() as u64)) as usize;
        let end = start.saturating_add(len).min(self.0.len());
        Ok(Cow::Borrowed(&self.0[start..end]))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.0)
    }
}

/// A file read with positioned reads; nothing is read until asked for.
pub struct FileBlob {
    file: File,
    len: u64,
    read: std::cell::Cell<u64>,
}

impl FileBlob {
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileBlob {
            file,
            len,
            read: std::cell::Cell::new(0),
        })
    }
}

impl Blob for FileBlob {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let avail = self.len.saturating_sub(offset);
        let n = (len as u64).min(avail) as usize;
        let mut buf = vec![0u8; n];
        read_exact_at(&self.file, &mut buf, offset)?;
        self.read.set(self.read.get() + n as u64);
        Ok(Cow::Owned(buf))
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(&self.file, buf, offset)?;
        self.read.set(self.read.get() + buf.len() as u64);
        Ok(())
    }

    fn bytes_read(&self) -> u64 {
        self.read.get()
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A window of another blob (a stored zip member, a tar entry).
pub struct SubBlob<'a> {
    pub inner: &'a dyn Blob,
    pub start: u64,
    pub len: u64,
}

impl Blob for SubBlob<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let avail = self.len.saturating_sub(offset);
        let n = (len as u64).min(avail) as usize;
        // A window declared past the end of the address space (hostile zip offsets) reads
        // nothing, as a read past the end of any blob does.
        match self.start.checked_add(offset) {
            Some(at) if n > 0 => self.inner.read_at(at, n),
            _ => Ok(Cow::Borrowed(&[])),
        }
    }

    fn as_slice(&self) -> Option<&[u8]> {
        let s = self.inner.as_slice()?;
        let start = usize::try_from(self.start).ok()?;
        let end = usize::try_from(self.start.checked_add(self.len)?).ok()?;
        s.get(start..end)
    }
}
