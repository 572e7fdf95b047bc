//! A counting global allocator: `std::alloc::System` underneath, with the live and peak
//! number of bytes the Rust heap holds, so every fuzz body can be held to a heap budget.
//!
//! The main crate forbids `unsafe`; implementing `GlobalAlloc` needs it, so it lives here,
//! in the fuzz crate only, and does nothing but forward to `System` and count.
//!
//! Two limits: [`crate::HEAP_BUDGET`] is checked after each input (an assertion with the
//! numbers, so the crash says what happened); [`HARD_LIMIT`] is enforced here on every
//! allocation — one that would take the live heap past it fails (a null pointer, so Rust's
//! `handle_alloc_error` aborts with "memory allocation of N bytes failed"), which keeps a
//! runaway input from taking the machine's memory before libFuzzer's RSS poll notices.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// No allocation may take the live Rust heap past this.
pub const HARD_LIMIT: usize = 2 * crate::HEAP_BUDGET;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

pub struct Counting;

/// Counts `n` more live bytes; false (nothing counted) when that would pass the hard limit.
fn grow(n: usize) -> bool {
    let before = LIVE.fetch_add(n, Relaxed);
    let now = before.saturating_add(n);
    if now > HARD_LIMIT {
        LIVE.fetch_sub(n, Relaxed);
        return false;
    }
    PEAK.fetch_max(now, Relaxed);
    true
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's own arguments, whose
// contracts are exactly `GlobalAlloc`'s; the counting around them touches only atomics
// and never allocates. Failing (returning null) is allowed by the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            shrink(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            shrink(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !grow(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                shrink(new_size - old);
            }
        } else if new_size < old {
            shrink(old - new_size);
        }
        p
    }
}

/// Live Rust heap bytes right now.
pub fn live() -> usize {
    LIVE.load(Relaxed)
}

/// The peak of one input: started before the body runs.
pub struct Measure {
    base: usize,
}

impl Measure {
    pub fn start() -> Measure {
        let base = live();
        PEAK.store(base, Relaxed);
        Measure { base }
    }

    /// Highest live heap since `start`, above what was live then.
    pub fn peak(&self) -> usize {
        PEAK.load(Relaxed).saturating_sub(self.base)
    }
}

/// The highest peak this process has seen and reported.
static REPORTED: AtomicUsize = AtomicUsize::new(0);

/// Prints a line when an input sets a new record of at least 16 MiB (at most one line
/// per doubling), so a campaign's log shows how close inputs come to the budget.
pub fn note_peak(target: &str, input_len: usize, peak: usize) {
    const FLOOR: usize = 16 << 20;
    let seen = REPORTED.load(Relaxed);
    if peak >= FLOOR && peak >= seen.saturating_mul(2).max(FLOOR) {
        REPORTED.store(peak, Relaxed);
        eprintln!(
            "picklegate-fuzz: {target}: new peak heap {} MiB (input of {input_len} bytes)",
            peak >> 20
        );
    }
}

/// The highest peak [`note_peak`] printed.
pub fn reported_peak() -> usize {
    REPORTED.load(Relaxed)
}
