//! Temp files: every file picklegate writes before renaming it into place (sanitized
//! replacements, spooled archives, large git blobs read for a scan) is created here,
//! exclusively, with a recognisable name, and what a killed run left behind is removed
//! by the next run that writes into the same directory.

use std::path::{Path, PathBuf};

/// Every temp file picklegate writes starts with this, so a later run can recognise
/// (and remove) what a killed run left behind.
pub const TEMP_PREFIX: &str = ".picklegate-tmp-";

pub fn create_temp(dir: &Path, stem: &str) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    sweep_stale_temps(dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}-{nanos:08x}-{n}-{stem}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temp file name")))
}

/// The process id in a temp file's name (`.picklegate-tmp-<pid>-<hex>-<n>-<stem>`).
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let mut parts = rest.splitn(4, '-');
    let pid = parts.next()?.parse().ok()?;
    let hex = parts.next()?;
    let n = parts.next()?;
    let _stem = parts.next()?;
    (hex.len() == 8
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit()))
    .then_some(pid)
}

/// Removes, once per directory and run, the temp files of runs that are gone: a file
/// with picklegate's temp name, older than this run, whose process no longer exists
/// (without `/proc`, older than a day). A killed `sanitize` leaves nothing for long.
fn sweep_stale_temps(dir: &Path) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SWEPT: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    static STARTED: OnceLock<std::time::SystemTime> = OnceLock::new();
    let started = *STARTED.get_or_init(std::time::SystemTime::now);
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Ok(mut swept) = SWEPT.get_or_init(Default::default).lock() {
        if !swept.insert(key) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let proc_fs = Path::new("/proc/self").exists();
    let day = std::time::Duration::from_secs(86_400);
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        // Only plain files, never through a link.
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let Ok(modified) = meta.modified() else {
            continue;
        };
        if !meta.is_file() || modified >= started || pid == std::process::id() {
            continue;
        }
        let gone = if proc_fs {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            started.duration_since(modified).unwrap_or_default() > day
        };
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A temp file removed when dropped (a git blob spooled for one scan).
pub struct TempFile {
    pub path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert_eq!(
            temp_owner(".picklegate-tmp-123-0000abcd-7-model.pt"),
            Some(123)
        );
        assert_eq!(
            temp_owner(".picklegate-tmp-123-0000abcd-7-a-b-c"),
            Some(123)
        );
        assert_eq!(temp_owner(".picklegate-tmp-123-abcd-7-model.pt"), None);
        assert_eq!(temp_owner(".picklegate-tmp-x-0000abcd-7-model.pt"), None);
        assert_eq!(temp_owner("picklegate-tmp-123-0000abcd-7-model.pt"), None);
        assert_eq!(temp_owner(".picklegate-tmp-123-0000abcd-7"), None);
    }

    #[test]
    fn stale_temps_of_dead_runs_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("picklegate-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let make = |name: &str| {
            let p = dir.join(name);
            let f = std::fs::File::create(&p);
            if let Ok(f) = f {
                let _ = f.set_modified(old);
            }
            p
        };
        // pid 4194304 is above Linux's pid_max limit, so no such process exists.
        let stale = make(".picklegate-tmp-4194304-0000abcd-1-model.pt");
        let user = make(".picklegate-tmp-notours");
        let plain = make("model.pt");
        let mine = make(&format!(
            ".picklegate-tmp-{}-0000abcd-1-x",
            std::process::id()
        ));
        let (_f, fresh) = create_temp(&dir, "new").unwrap_or_else(|e| panic!("{e}"));
        assert!(!stale.exists(), "a dead run's temp file is removed");
        assert!(user.exists() && plain.exists() && mine.exists() && fresh.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
