//! A progress line on stderr for scans that take longer than about a second, on a terminal
//! only (never in CI logs, pipes or hooks' captured output): `picklegate: [####    ] 12/40 files`,
//! redrawn in place and erased when the scan ends, so the report that follows is unchanged.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a scan runs before the line appears (`PICKLEGATE_PROGRESS_AFTER_MS` overrides
/// it, for tests on a pseudo-terminal).
fn delay() -> Duration {
    std::env::var("PICKLEGATE_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}
const REDRAW: Duration = Duration::from_millis(150);
const BAR: usize = 24;

pub struct Progress {
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// A progress line over `total` items, drawn only when `enabled` (stderr is a terminal
    /// and the user did not ask for quiet).
    pub fn start(total: usize, enabled: bool) -> Progress {
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (enabled && total > 1).then(|| {
            let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
            std::thread::spawn(move || draw(&done, &stop, total))
        });
        Progress { done, stop, thread }
    }

    /// One item finished.
    pub fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `[####    ] n/total files`.
pub fn line(done: usize, total: usize) -> String {
    let filled = (done.min(total) * BAR).checked_div(total).unwrap_or(BAR);
    format!(
        "picklegate: [{}{}] {done}/{total} files",
        "#".repeat(filled),
        " ".repeat(BAR - filled)
    )
}

fn draw(done: &AtomicUsize, stop: &AtomicBool, total: usize) {
    let start = Instant::now();
    let after = delay();
    let mut shown = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(REDRAW.min(after.max(Duration::from_millis(10))));
        if start.elapsed() < after {
            continue;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}",
            line(done.load(Ordering::Relaxed), total)
        );
        let _ = err.flush();
        shown = true;
    }
    if shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar() {
        assert_eq!(
            line(0, 4),
            format!("picklegate: [{}] 0/4 files", " ".repeat(24))
        );
        assert_eq!(
            line(2, 4),
            format!(
                "picklegate: [{}{}] 2/4 files",
                "#".repeat(12),
                " ".repeat(12)
            )
        );
        assert_eq!(
            line(9, 4),
            format!("picklegate: [{}] 9/4 files", "#".repeat(24))
        );
    }

    #[test]
    fn disabled_draws_nothing_and_ends_at_once() {
        let t = Instant::now();
        let p = Progress::start(100, false);
        p.tick();
        drop(p);
        assert!(t.elapsed() < Duration::from_millis(100));
    }
}
