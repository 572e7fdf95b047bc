//! Command-line front end. Exit codes: 0 nothing outside policy, 1 findings,
//! 2 usage/config error or a file that could not be read.

use crate::disasm::{self, Style};
use crate::policy::{self, Policy};
use crate::report::{self, Summary};
use crate::scan::{self, ScanOptions};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "picklegate", version, about = "Keeps malicious pickles out of git repositories", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum DisasmFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Scan files and directories; content decides what is a pickle, never the name.
    Scan {
        /// Files or directories (default: the current directory).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Use these embedded presets instead of the default policy (repeatable).
        #[arg(long = "preset", value_name = "NAME")]
        presets: Vec<String>,
    },
    /// Disassemble a pickle like `python -m pickletools`, with what the VM resolved.
    Disasm {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = DisasmFormat::Text)]
        format: DisasmFormat,
        /// Print exactly what `pickletools.dis` prints, without annotations.
        #[arg(long)]
        plain: bool,
    },
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Scan {
            paths,
            format,
            presets,
        } => run_scan(paths, format, &presets),
        Command::Disasm {
            file,
            format,
            plain,
        } => run_disasm(&file, format, plain),
    }
}

fn load_policy(presets: &[String]) -> Result<Policy, String> {
    let known: Vec<&str> = policy::PRESETS.iter().map(|p| p.0).collect();
    for p in presets {
        if !known.contains(&p.as_str()) {
            return Err(format!(
                "unknown preset `{p}` (known: {})",
                known.join(", ")
            ));
        }
    }
    let r = if presets.is_empty() {
        policy::builtin_default()
    } else {
        policy::from_presets(presets)
    };
    r.map_err(|e| e.to_string())
}

fn run_scan(paths: Vec<PathBuf>, format: Format, presets: &[String]) -> i32 {
    let policy = match load_policy(presets) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picklegate: error: {e}");
            return 2;
        }
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths
    };
    let (files, mut reports) = scan::collect(&paths);
    let opts = ScanOptions::default();
    for f in &files {
        reports.push(scan::scan_file(f, &policy, &opts));
    }
    let text = match format {
        Format::Human => report::human::render(&reports),
        Format::Json => report::json::render(&reports),
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", text.trim_end()).is_err() {
        return 2;
    }
    Summary::exit_code(&reports)
}

fn run_disasm(file: &PathBuf, format: DisasmFormat, plain: bool) -> i32 {
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("picklegate: error: cannot read {}: {e}", file.display());
            return 2;
        }
    };
    let style = match (format, plain) {
        (DisasmFormat::Json, _) => Style::Json,
        (_, true) => Style::Plain,
        _ => Style::Annotated,
    };
    let out = disasm::disassemble(&file.display().to_string(), &data, style);
    let mut stdout = std::io::stdout().lock();
    if write!(stdout, "{out}").is_err() {
        return 2;
    }
    if style == Style::Json {
        let _ = writeln!(stdout);
    }
    0
}
