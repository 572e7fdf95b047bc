//! Shared fuzz bodies for picklegate: every `cargo fuzz` target (fuzz/fuzz_targets/*.rs) is
//! one call to [`run`], and so is every file the stable `replay` binary feeds it, so a
//! corpus or a regression file behaves the same under libFuzzer and under plain `cargo run`.
//!
//! A body panics (through `assert!`) when an invariant does not hold; libFuzzer reports the
//! panic as a crash and saves the input. The invariants are documented on each body and in
//! fuzz/README.md.

use picklegate::finding::{Finding, Rule, Severity};
use picklegate::pickle::vm::{self, Budgets, Sniff};
use picklegate::policy::Policy;
use picklegate::scan::{self, FileReport, ScanOptions, Status};
use picklegate::{check, config, disasm, report, sanitize};
use std::sync::OnceLock;

pub mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// Peak live Rust heap one input may use, above what was live before it ran.
pub const HEAP_BUDGET: usize = 1 << 30;

/// The fuzz targets, by the name `cargo fuzz` and `replay` know them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Scan,
    Vm,
    Disasm,
    Sanitize,
    Config,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Scan,
        Target::Vm,
        Target::Disasm,
        Target::Sanitize,
        Target::Config,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Scan => "scan",
            Target::Vm => "vm",
            Target::Disasm => "disasm",
            Target::Sanitize => "sanitize",
            Target::Config => "config",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Runs one input through `target`'s body and checks its peak heap against the budget.
/// Returns the peak (bytes above the live heap at entry).
pub fn run(target: Target, data: &[u8]) -> usize {
    let guard = heap::Measure::start();
    match target {
        Target::Scan => scan(data),
        Target::Vm => vm(data),
        Target::Disasm => disasm(data),
        Target::Sanitize => sanitize(data),
        Target::Config => config(data),
    }
    let peak = guard.peak();
    heap::note_peak(target.name(), data.len(), peak);
    assert!(
        peak <= HEAP_BUDGET,
        "{}: peak heap {} MiB for a {}-byte input exceeds the budget of {} MiB",
        target.name(),
        peak >> 20,
        data.len(),
        HEAP_BUDGET >> 20
    );
    peak
}

/// The built-in default policy (`policies/default.yaml` and its presets), as `scan` uses it
/// without a configuration file.
pub fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        picklegate::policy::builtin_default()
            .unwrap_or_else(|e| panic!("the embedded default policy does not load: {e}"))
    })
}

/// File names the scan and sanitize bodies give an input: pickle-capable extensions (which
/// only change what a reviewer expects) and pickle-free ones (which add `extension-mismatch`).
pub const NAMES: [&str; 8] = [
    "x.pkl",
    "x.pt",
    "x.joblib",
    "x.npy",
    "x.zip",
    "x.safetensors",
    "x.png",
    "x",
];

/// A selector derived from the first byte (mixed with the length, so that seeds of one
/// format, which share their first byte, still get every choice).
fn selector(data: &[u8]) -> usize {
    usize::from(data.first().copied().unwrap_or(0)) ^ data.len()
}

fn denied(f: &Finding) -> bool {
    f.level == config::Level::Deny
}

/// `scan`: the container walk and every VM reading, through
/// `scan::scan_bytes(name, data, default policy, ScanOptions)`.
///
/// Invariants: no panic; `status` is `findings` exactly when some finding is at level deny
/// (never `error` for bytes in memory); no finding is below its rule's severity; every reporter renders it without panicking; the JSON
/// and SARIF reports are valid JSON, and the JSON one is version 1 with this file's findings
/// (the renderer falls back to an `{"error": …}` object when serialisation fails).
pub fn scan(data: &[u8]) {
    let sel = selector(data);
    let name = NAMES[sel % NAMES.len()];
    let opts = ScanOptions {
        excerpts: sel & 8 != 0,
        ..ScanOptions::default()
    };
    let r = scan::scan_bytes(name, data, policy(), &opts);
    check_status(&r);
    let mut reports = [r];
    reports[0].help = picklegate::hint::for_report(&reports[0]);
    let json = report::json::render(&reports);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("JSON report is not JSON ({e})"));
    assert_eq!(v["version"], 1, "JSON report did not serialise: {json}");
    assert_eq!(
        v["files"][0]["findings"].as_array().map(Vec::len),
        Some(reports[0].findings.len()),
        "JSON report lost findings"
    );
    let sarif = report::sarif::render(&reports);
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&sarif) {
        panic!("SARIF report is not JSON ({e})");
    }
    let _ = report::human::render(
        &reports,
        report::human::Style {
            color: sel & 16 != 0,
            quiet: sel & 32 != 0,
            verbose: sel & 64 != 0,
            width: (sel & 128 != 0).then_some(40),
            fixing: sel & 4 != 0,
        },
    );
    let _ = report::human::render_concise(&reports, sel & 32 != 0);
    let _ = report::github::render(&reports);
    let _ = report::gitlab::render(&reports);
}

fn check_status(r: &FileReport) {
    assert!(
        r.status != Status::Error && r.error.is_none(),
        "bytes in memory reported as unreadable: {:?}",
        r.error
    );
    let any_deny = r.findings.iter().any(denied);
    assert_eq!(
        r.status == Status::Findings,
        any_deny,
        "status {:?} disagrees with the findings' levels",
        r.status
    );
    // A finding may be escalated above its rule's severity (`method-call` on a global is
    // critical), never lowered below it.
    for f in &r.findings {
        assert!(
            f.severity >= f.rule.severity(),
            "{}: severity {:?} below the rule's",
            f.rule.id(),
            f.severity
        );
    }
}

/// `vm`: the abstract unpickler on raw bytes (`vm::analyze`, joblib semantics, and
/// `vm::analyze_plain`) and the policy checker on both graphs, plus the sniffer.
///
/// Invariants: no panic; the findings of a top-level analysis point into the input
/// (offset ≤ length); the sniffer agrees with the exact rule it shortcuts — on the whole
/// input, `Sniff::Yes` ⇒ `pickle_bearing(analyze_plain)` and `Sniff::No` ⇒ not; on a prefix
/// window (as the scanner sniffs the first 4096 bytes of a large blob), `Sniff::No` ⇒ the
/// whole input is not pickle-bearing (otherwise the scanner would skip a pickle: fail open).
pub fn vm(data: &[u8]) {
    let budgets = Budgets::default();
    let g = vm::analyze(data, 0, budgets);
    let findings = check::check(&g, data, policy());
    check_offsets("analyze", &findings, data.len());
    let _ = vm::pickle_bearing(&g);
    let plain = vm::analyze_plain(data, 0, budgets);
    let findings = check::check(&plain, data, policy());
    check_offsets("analyze_plain", &findings, data.len());
    let bearing = vm::pickle_bearing(&plain);
    match vm::sniff(data, true) {
        Sniff::Yes => assert!(bearing, "sniff says Yes, the full plain analysis says no"),
        Sniff::No => assert!(!bearing, "sniff says No, the full plain analysis says yes"),
        Sniff::Undecided => {}
    }
    let mut windows = vec![data.len() / 2, data.len().saturating_sub(1)];
    if data.len() > 4096 {
        windows.push(4096);
    }
    for k in windows {
        if k == 0 || k >= data.len() {
            continue;
        }
        assert!(
            !(vm::sniff(&data[..k], false) == Sniff::No && bearing),
            "sniff of the first {k} bytes says No, but the whole input is pickle-bearing"
        );
    }
}

fn check_offsets(what: &str, findings: &[Finding], len: usize) {
    for f in findings {
        assert!(
            f.member.is_some() || f.offset <= len as u64,
            "{what}: {} finding at offset {} past the end of a {len}-byte input",
            f.rule.id(),
            f.offset
        );
    }
}

/// A `fmt::Write` that keeps nothing (or only what it is asked to keep) and counts.
struct Counter {
    bytes: usize,
    keep: Option<String>,
}

impl std::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes += s.len();
        if let Some(k) = &mut self.keep {
            k.push_str(s);
        }
        Ok(())
    }
}

/// Output bound of the disassembler: each opcode is at least one input byte, and its line
/// (offset, indentation capped at `disasm::MAX_INDENT_DEPTH` levels, argument repr, VM
/// notes) is expected to stay well under this many bytes per input byte.
pub const DISASM_BYTES_PER_INPUT_BYTE: usize = 2000;
pub const DISASM_SLACK: usize = 64 << 10;

/// `disasm`: `disasm::disassemble_into` in one of its three styles into a counting sink.
///
/// Invariants: no panic; the output stays below `2000 × input length + 64 KiB` bytes (no
/// quadratic blow-up from repeated notes or indentation); the JSON style is valid JSON.
pub fn disasm(data: &[u8]) {
    let style = match selector(data) % 3 {
        0 => disasm::Style::Annotated,
        1 => disasm::Style::Plain,
        _ => disasm::Style::Json,
    };
    let mut out = Counter {
        bytes: 0,
        keep: (style == disasm::Style::Json).then(String::new),
    };
    disasm::disassemble_into("fuzz.pkl", data, style, &mut out);
    let bound = data.len() * DISASM_BYTES_PER_INPUT_BYTE + DISASM_SLACK;
    assert!(
        out.bytes <= bound,
        "{style:?} disassembly of {} bytes printed {} bytes (bound {bound})",
        data.len(),
        out.bytes
    );
    if let Some(j) = out.keep {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&j) {
            panic!("JSON disassembly is not JSON ({e})");
        }
    }
}

/// `sanitize`: `sanitize::sanitize_bytes` under the default policy (with `rebuild_clean`
/// chosen by the selector), held to the sanitizer's promise.
///
/// Invariants: no panic; a replacement, scanned again as a file by `scan_bytes` under the
/// same name and policy, reads back (no error) as the format the sanitizer reported, with
/// no finding of critical (code-execution) severity and no finding at level deny except
/// `extension-mismatch` (which only the name causes); and the replacement needs no further
/// sanitizing (`sanitize_bytes` of it, under a name without an extension, is `Clean`).
pub fn sanitize(data: &[u8]) {
    let sel = selector(data);
    let name = NAMES[sel % NAMES.len()];
    let opts = sanitize::Options {
        rebuild_clean: sel & 8 != 0,
        spool_dir: None,
        scan: ScanOptions::default(),
    };
    let (output, format) = match sanitize::sanitize_bytes(name, data, policy(), &opts) {
        Err(_) | Ok(sanitize::Outcome::Clean) => return,
        Ok(sanitize::Outcome::Rebuilt { output, format, .. }) => (output, format),
    };
    let bytes = match output {
        sanitize::Output::Bytes(b) => b,
        sanitize::Output::File(p) => {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let _ = std::fs::remove_file(&p);
            b
        }
    };
    let r = scan::scan_bytes(name, &bytes, policy(), &ScanOptions::default());
    assert!(
        r.error.is_none(),
        "sanitized output unreadable: {:?}",
        r.error
    );
    for f in &r.findings {
        assert!(
            f.severity < Severity::Critical,
            "sanitized {format} output still has a critical finding: {} at {:?}:{}: {}",
            f.rule.id(),
            f.member,
            f.offset,
            f.message
        );
        assert!(
            !denied(f) || f.rule == Rule::ExtensionMismatch,
            "sanitized {format} output still has a deny finding: {} at {:?}:{}: {}",
            f.rule.id(),
            f.member,
            f.offset,
            f.message
        );
    }
    assert_eq!(
        r.format, format,
        "sanitized output reads as {} instead of {format}",
        r.format
    );
    match sanitize::sanitize_bytes("x", &bytes, policy(), &sanitize::Options::default()) {
        Ok(sanitize::Outcome::Clean) => {}
        Ok(sanitize::Outcome::Rebuilt { changes, .. }) => {
            panic!(
                "sanitized output was sanitized again: {} changes",
                changes.len()
            )
        }
        Err(e) => panic!("sanitizing the sanitized output failed: {e}"),
    }
}

/// Where the config body writes the text it loads (one file per process).
fn config_path() -> &'static std::path::Path {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("picklegate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir.join(".picklegate.yaml")
    })
}

/// `config`: the input as (lossy UTF-8) configuration text: `config::parse`, and when that
/// succeeds the whole `Config::load` the CLI does (policy resolution, globs, exceptions,
/// levels), every diagnostic rendered as the CLI renders them (`Diag::render` against the
/// source, with and without colour, and `Display`).
///
/// Invariants: no panic; a successful load answers the questions the scanner asks of it.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let render = |d: &picklegate::diag::Diag| {
        let _ = d.render(Some(&text), false);
        let _ = d.render(Some(&text), true);
        let _ = d.render(None, false);
        let _ = d.to_string();
    };
    if let Err(d) = config::parse("fuzz.yaml", &text) {
        render(&d);
        return;
    }
    let path = config_path();
    std::fs::write(path, text.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match config::Config::load(path) {
        Err(diags) => diags.iter().for_each(render),
        Ok(c) => {
            c.warnings.iter().for_each(render);
            for rel in ["model.pkl", "a/b/model.pt", "data/x.npy", ".git/x"] {
                let _ = c.policy_for(rel);
                let _ = c.is_excluded(rel);
                let _ = c.exception_for(rel, &mut || None);
            }
            let cli = std::collections::HashMap::new();
            for rule in Rule::ALL {
                let _ = c.configured_level(rule, &cli);
            }
            let _ = c.unused_allow_entries();
        }
    }
}
