//! Resource budgets for one input file, and the wall-clock guard.
//!
//! Every cost that grows with hostile input is bounded where it arises (the VM's opcodes,
//! values and graph memory; decompressed bytes; archive members; nesting; findings), and
//! each limit is a budget here, with the defaults sized for a shared CI runner (about
//! 1 GiB of peak memory and a few seconds per file). A repository may change them in the
//! `budgets:` section of its configuration; `--timeout` overrides the clock. Reaching
//! any budget is a `budget-exceeded` finding, never a silent pass.

use crate::container::Limits;
use crate::pickle::vm::Budgets;
use schemars::JsonSchema;
use serde::Deserialize;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The `budgets:` section of a configuration file. Sizes are bytes (an integer, or a
/// string with a binary suffix: `512MiB`, `1GiB`); the timeout is seconds.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BudgetsDef {
    /// Memory for one pickle's analysis (its value graph, memo and stack). Default 1GiB.
    pub memory: Option<Size>,
    /// Opcodes per pickle. Default 100000000.
    pub opcodes: Option<u64>,
    /// Values per pickle. Default 40000000.
    pub values: Option<u64>,
    /// Bytes decompressed per file, all streams and members together. Default 512MiB.
    pub decompressed: Option<Size>,
    /// Members per archive. Default 10000.
    pub members: Option<u64>,
    /// Container nesting depth. Default 16.
    pub depth: Option<u64>,
    /// Findings kept per file (the rest are counted in one summary finding). Default 5000.
    pub findings: Option<u64>,
    /// Findings kept per run; past it each file keeps one per rule and a count. Default 50000.
    pub findings_per_run: Option<u64>,
    /// Wall-clock seconds per file (0: no limit). Default 10.
    pub timeout: Option<f64>,
}

/// A byte size: an integer, or a string such as `256MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(with = "serde_json::Value")]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => parse_size(&s).map(Size).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?} (expected bytes, or a number with KiB, MiB or GiB)"
                ))
            }),
        }
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The budgets of one run: the defaults, then the configuration, then the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub vm: Budgets,
    pub limits: Limits,
}

impl Budget {
    /// Scan options under these budgets.
    pub fn scan_options(&self, excerpts: bool) -> crate::scan::ScanOptions {
        crate::scan::ScanOptions {
            budgets: self.vm,
            limits: self.limits,
            excerpts,
        }
    }

    /// Applies a configuration's `budgets:` section.
    pub fn with(mut self, def: &BudgetsDef) -> Budget {
        let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(Size(n)) = def.memory {
            self.vm.max_memory = n;
        }
        if let Some(n) = def.opcodes {
            self.vm.max_ops = n;
        }
        if let Some(n) = def.values {
            self.vm.max_values = usize_of(n);
        }
        if let Some(Size(n)) = def.decompressed {
            self.limits.max_total_decompressed = n;
        }
        if let Some(n) = def.members {
            self.limits.max_members = usize_of(n);
        }
        if let Some(n) = def.depth {
            self.limits.max_depth = usize_of(n);
        }
        if let Some(n) = def.findings {
            self.limits.max_findings = usize_of(n);
        }
        if let Some(n) = def.findings_per_run {
            self.limits.max_run_findings = usize_of(n);
        }
        if let Some(t) = def.timeout {
            self.limits.timeout = seconds(t);
        }
        self
    }
}

/// A findings cap that keeps one finding of every rule past it, so that the rules'
/// levels (and the exit code) are the same as without the cap; the rest are counted by
/// rule for one `budget-exceeded` summary. Used per file (as findings arrive, so memory
/// stays bounded) and per run.
#[derive(Debug, Default)]
pub struct RuleCap {
    kept: usize,
    rules: std::collections::HashSet<crate::finding::Rule>,
    dropped: std::collections::BTreeMap<crate::finding::Rule, usize>,
}

impl RuleCap {
    /// Whether a finding of `rule` is kept under a cap of `max`.
    pub fn admit(&mut self, rule: crate::finding::Rule, max: usize) -> bool {
        if self.kept >= max && self.rules.contains(&rule) {
            *self.dropped.entry(rule).or_default() += 1;
            return false;
        }
        self.rules.insert(rule);
        self.kept += 1;
        true
    }

    /// The summary of what was dropped since the last call (`what` names the cap).
    pub fn summary(&mut self, what: &str) -> Option<crate::finding::Finding> {
        if self.dropped.is_empty() {
            return None;
        }
        let dropped = std::mem::take(&mut self.dropped);
        let n: usize = dropped.values().sum();
        let list: Vec<String> = dropped
            .iter()
            .map(|(r, c)| format!("{} ×{c}", r.id()))
            .collect();
        Some(crate::finding::Finding::omitted(
            0,
            format!("{n} more finding(s) not kept ({what}): {}", list.join(", ")),
        ))
    }
}

/// Applies the run's findings budget to one more file's report. Each file starts with
/// every rule unseen, so it keeps one finding of each of its rules.
pub fn cap_run(findings: &mut Vec<crate::finding::Finding>, run: &mut RuleCap, max: usize) {
    let mut file = RuleCap {
        kept: run.kept,
        ..RuleCap::default()
    };
    findings.retain(|f| file.admit(f.rule, max));
    run.kept = file.kept;
    if let Some(s) = file.summary(&format!("the run keeps {max}, budgets.findings-per-run")) {
        findings.push(s);
    }
}

/// A timeout in seconds (0, negative or not a number: none).
pub fn seconds(t: f64) -> Option<Duration> {
    (t.is_finite() && t > 0.0).then(|| Duration::from_secs_f64(t.min(1e9)))
}

thread_local! {
    /// The current file's deadline. A thread-local because the clock is read by every
    /// loop whose cost grows with the input (the VM, decompressors, archive walks, the
    /// sanitizer), and none of them should have to carry it in its signature; a file is
    /// always analysed on one thread.
    static DEADLINE: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// Starts the clock for one file; the previous deadline comes back when the guard drops.
pub fn arm(timeout: Option<Duration>) -> Armed {
    let previous = DEADLINE.with(|d| d.get());
    let next = timeout.map(|t| (Instant::now() + t, t));
    // A nested arm (a member scanned again by the sanitizer) never extends the file's clock.
    let next = match (previous, next) {
        (Some(p), Some(n)) if p.0 <= n.0 => Some(p),
        (Some(p), None) => Some(p),
        (_, n) => n,
    };
    DEADLINE.with(|d| d.set(next));
    Armed { previous }
}

/// Restores the previous deadline on drop.
pub struct Armed {
    previous: Option<(Instant, Duration)>,
}

impl Drop for Armed {
    fn drop(&mut self) {
        let p = self.previous;
        DEADLINE.with(|d| d.set(p));
    }
}

/// The timeout that has run out, if the current file's clock has.
pub fn expired() -> Option<Duration> {
    DEADLINE
        .with(|d| d.get())
        .and_then(|(at, t)| (Instant::now() >= at).then_some(t))
}

/// The message of a `budget-exceeded` finding for a clock that ran out.
pub fn timeout_message(t: Duration) -> String {
    format!(
        "analysis stopped at the time limit of {:.1} s for one file (--timeout, budgets.timeout)",
        t.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1 KiB"), Some(1024));
        assert_eq!(parse_size("1GB"), None);
        assert_eq!(parse_size("99999999999GiB"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn the_clock_runs_out_and_nested_arms_never_extend_it() {
        assert_eq!(expired(), None);
        {
            let _outer = arm(Some(Duration::from_millis(1)));
            std::thread::sleep(Duration::from_millis(5));
            assert!(expired().is_some());
            {
                let _inner = arm(Some(Duration::from_secs(100)));
                assert!(
                    expired().is_some(),
                    "an inner arm must not extend the clock"
                );
            }
            assert!(expired().is_some());
        }
        assert_eq!(expired(), None);
        assert_eq!(seconds(0.0), None);
        assert_eq!(seconds(f64::NAN), None);
        assert_eq!(seconds(2.5), Some(Duration::from_millis(2500)));
    }
}
