//! Replays files through the fuzz bodies on stable, without libFuzzer:
//!
//!     cargo run --release --manifest-path fuzz/replay/Cargo.toml -- TARGET PATH...
//!
//! TARGET is `scan`, `vm`, `disasm`, `sanitize`, `config` or `all` (every target on every
//! file); PATHs are files or directories (walked recursively, sorted). Every file runs, a
//! failing one is reported with the panic message and the run goes on; the exit code is 1
//! when any file failed (a panic, or longer than `--timeout` seconds, default 10, like the
//! campaigns' `-timeout=10`), 2 on a usage error.

use picklegate_fuzz::{run, Target};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn files(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if std::fs::metadata(p)?.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            files(&e, out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!("usage: replay [--timeout SECS] (scan|vm|disasm|sanitize|config|all) PATH...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut timeout = Duration::from_secs(10);
    if args.first().map(String::as_str) == Some("--timeout") {
        match args.get(1).and_then(|s| s.parse::<f64>().ok()) {
            Some(s) if s > 0.0 => timeout = Duration::from_secs_f64(s),
            _ => return usage(),
        }
        args.drain(..2);
    }
    let Some(target) = args.first() else {
        return usage();
    };
    let targets: Vec<Target> = if target == "all" {
        Target::ALL.to_vec()
    } else {
        match Target::from_name(target) {
            Some(t) => vec![t],
            None => return usage(),
        }
    };
    if args.len() < 2 {
        return usage();
    }
    let mut inputs = Vec::new();
    for p in &args[1..] {
        if let Err(e) = files(Path::new(p), &mut inputs) {
            eprintln!("replay: {p}: {e}");
            return ExitCode::from(2);
        }
    }
    // The default hook prints each panic's message (and a backtrace with RUST_BACKTRACE=1);
    // the file it came from is printed right after by the loop below.
    let mut failed = 0usize;
    for &t in &targets {
        let started = Instant::now();
        let (mut peak, mut peak_file) = (0usize, None::<&Path>);
        let (mut slowest, mut slowest_file) = (Duration::ZERO, None::<&Path>);
        for f in &inputs {
            let data = match std::fs::read(f) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("replay: {}: {e}", f.display());
                    return ExitCode::from(2);
                }
            };
            let t0 = Instant::now();
            let r = std::panic::catch_unwind(|| run(t, &data));
            let took = t0.elapsed();
            match r {
                Ok(p) => {
                    if p > peak {
                        (peak, peak_file) = (p, Some(f.as_path()));
                    }
                }
                Err(_) => {
                    failed += 1;
                    eprintln!("replay: {}: FAILED on {}", t.name(), f.display());
                }
            }
            if took > slowest {
                (slowest, slowest_file) = (took, Some(f.as_path()));
            }
            if took > timeout {
                failed += 1;
                eprintln!(
                    "replay: {}: TIMEOUT on {} ({:.1} s > {:.1} s)",
                    t.name(),
                    f.display(),
                    took.as_secs_f64(),
                    timeout.as_secs_f64()
                );
            }
        }
        let show = |p: Option<&Path>| p.map_or("-".into(), |p| p.display().to_string());
        println!(
            "replay: {:8} {} files in {:.2} s; peak heap {:.1} MiB ({}); slowest {:.3} s ({})",
            t.name(),
            inputs.len(),
            started.elapsed().as_secs_f64(),
            peak as f64 / (1 << 20) as f64,
            show(peak_file),
            slowest.as_secs_f64(),
            show(slowest_file),
        );
    }
    if failed > 0 {
        eprintln!("replay: {failed} failure(s)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
