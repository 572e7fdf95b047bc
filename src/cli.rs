//! Command-line front end. Exit codes: 0 nothing outside policy, 1 findings,
//! 2 usage/config error or a file that could not be read.

use crate::config::{self, Config, Level};
use crate::diag::Diag;
use crate::disasm::{self, Style};
use crate::finding::Rule;
use crate::learn;
use crate::policy;
use crate::report::{self, Summary};
use crate::scan::{self, ScanOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

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

#[derive(Args, Clone)]
struct ConfigArgs {
    /// Policy configuration (default: .picklegate.yaml or .picklegate.yml found from here upward).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Scan files and directories; content decides what is a pickle, never the name.
    Scan {
        /// Files or directories (default: the current directory).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Use these embedded presets for every path instead of the configured policies (repeatable).
        #[arg(long = "preset", value_name = "NAME")]
        presets: Vec<String>,
        /// Override a rule's level: RULE=deny|warn|allow (repeatable).
        #[arg(long = "level", value_name = "RULE=LEVEL")]
        levels: Vec<String>,
        #[command(flatten)]
        config: ConfigArgs,
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
    /// Validate, explain and bootstrap policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate the configuration; errors point at line and column in the YAML.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Which policy applies to each path, and why.
    Explain {
        paths: Vec<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print a policy that allows exactly the globals these files use today.
    Learn {
        paths: Vec<PathBuf>,
        /// Name of the generated policy.
        #[arg(long, default_value = "learned")]
        name: String,
    },
    /// Print the JSON Schema of the configuration language.
    Schema,
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
            levels,
            config,
        } => run_scan(paths, format, &presets, &levels, &config),
        Command::Disasm {
            file,
            format,
            plain,
        } => run_disasm(&file, format, plain),
        Command::Policy { command } => match command {
            PolicyCommand::Check { config } => run_check(&config),
            PolicyCommand::Explain { paths, config } => run_explain(&paths, &config),
            PolicyCommand::Learn { paths, name } => run_learn(&paths, &name),
            PolicyCommand::Schema => {
                println!("{}", config::schema());
                0
            }
        },
    }
}

/// Colour on a terminal unless NO_COLOR is set; FORCE_COLOR forces it.
pub fn color(stream_is_terminal: bool) -> bool {
    if std::env::var_os("FORCE_COLOR").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    stream_is_terminal
}

fn print_diags(diags: &[Diag], source: Option<&str>) {
    let c = color(std::io::stderr().is_terminal());
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "{}", d.render(source, c));
    }
}

/// Loads the configuration: `--config`, else discovery from the current directory, else
/// the built-in default (with a one-line notice).
fn load_config(args: &ConfigArgs, quiet: bool) -> Result<Config, i32> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let file = args.config.clone().or_else(|| config::discover(&cwd));
    let result = match &file {
        Some(f) => Config::load(f),
        None => {
            if !quiet {
                eprintln!(
                    "picklegate: no .picklegate.yaml found; using the built-in default policy"
                );
            }
            Config::builtin(&cwd)
        }
    };
    match result {
        Ok(c) => {
            print_diags(&c.warnings, c.source.as_deref());
            Ok(c)
        }
        Err(diags) => {
            let source = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
            print_diags(&diags, source.as_deref());
            Err(2)
        }
    }
}

fn parse_levels(levels: &[String]) -> Result<HashMap<Rule, Level>, String> {
    let mut out = HashMap::new();
    for l in levels {
        let (rule, level) = l
            .split_once('=')
            .ok_or_else(|| format!("--level `{l}`: expected RULE=deny|warn|allow"))?;
        let rule = Rule::from_id(rule.trim())
            .ok_or_else(|| format!("--level: unknown rule id `{rule}`"))?;
        let level = Level::parse(level.trim())
            .ok_or_else(|| format!("--level: unknown level `{level}`"))?;
        out.insert(rule, level);
    }
    Ok(out)
}

fn sha256_file(path: &Path) -> Option<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The LFS oid of a pointer file, which exceptions may pin instead of the content digest.
fn lfs_oid(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.starts_with("version https://git-lfs.github.com/spec/v1") {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("oid sha256:"))
        .map(|s| s.trim().to_ascii_lowercase())
}

fn run_scan(
    paths: Vec<PathBuf>,
    format: Format,
    presets: &[String],
    levels: &[String],
    args: &ConfigArgs,
) -> i32 {
    let known: Vec<&str> = policy::PRESETS.iter().map(|p| p.0).collect();
    for p in presets {
        if !known.contains(&p.as_str()) {
            eprintln!(
                "picklegate: error: unknown preset `{p}` (known: {})",
                known.join(", ")
            );
            return 2;
        }
    }
    let cli_levels = match parse_levels(levels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("picklegate: error: {e}");
            return 2;
        }
    };
    let mut config = match load_config(args, !presets.is_empty() || format == Format::Json) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !presets.is_empty() {
        config = match config.with_presets(presets) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("picklegate: error: {e}");
                return 2;
            }
        };
    }
    let full_scan = paths.is_empty();
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths
    };
    let (files, mut reports) = scan::collect(&paths);
    let opts = ScanOptions::default();
    let mut used_exceptions = std::collections::HashSet::new();
    for f in &files {
        let rel = config.relative(f);
        if config.is_excluded(&rel) {
            continue;
        }
        let (policy, _) = config.policy_for(&rel);
        let mut report = scan::scan_file(f, policy, &opts);
        let mut digest = || lfs_oid(f).or_else(|| sha256_file(f));
        if let Some(ex) = config.apply(&rel, &mut report.findings, &cli_levels, &mut digest) {
            used_exceptions.insert(ex.origin.clone());
            report.exception = Some(format!("{} ({}): {}", ex.path, ex.origin, ex.reason));
        }
        report.refresh_status();
        reports.push(report);
    }
    let text = match format {
        Format::Human => report::human::render(&reports, color(std::io::stdout().is_terminal())),
        Format::Json => report::json::render(&reports),
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", text.trim_end()).is_err() {
        return 2;
    }
    if full_scan && presets.is_empty() {
        warn_unused(&config, &used_exceptions);
    }
    Summary::exit_code(&reports)
}

/// After a full scan: allow entries and exceptions of the configuration that matched nothing.
fn warn_unused(config: &Config, used_exceptions: &std::collections::HashSet<policy::Origin>) {
    for (entry, origin) in config.unused_allow_entries() {
        eprintln!(
            "picklegate: warning: allow entry `{entry}` ({origin}) matched nothing in this scan"
        );
    }
    for ex in config
        .exceptions
        .iter()
        .filter(|e| !used_exceptions.contains(&e.origin))
    {
        eprintln!(
            "picklegate: warning: exception for `{}` ({}) matched nothing in this scan",
            ex.path, ex.origin
        );
    }
}

fn run_check(args: &ConfigArgs) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let Some(file) = args.config.clone().or_else(|| config::discover(&cwd)) else {
        eprintln!("picklegate: no .picklegate.yaml found; the built-in default policy applies");
        return match Config::builtin(&cwd) {
            Ok(_) => 0,
            Err(d) => {
                print_diags(&d, None);
                2
            }
        };
    };
    match Config::load(&file) {
        Ok(c) => {
            print_diags(&c.warnings, c.source.as_deref());
            if !c.warnings.is_empty() {
                return 2;
            }
            println!("{}: ok", file.display());
            0
        }
        Err(diags) => {
            let source = std::fs::read_to_string(&file).ok();
            print_diags(&diags, source.as_deref());
            2
        }
    }
}

fn run_explain(paths: &[PathBuf], args: &ConfigArgs) -> i32 {
    let config = match load_config(args, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let from = match &config.file {
        Some(f) => f.display().to_string(),
        None => "the built-in default (no .picklegate.yaml)".into(),
    };
    for p in paths {
        let rel = config.relative(p);
        println!("{rel}");
        println!("  configuration: {from}");
        if config.is_excluded(&rel) {
            println!("  excluded: yes (matches `exclude`), never scanned");
            continue;
        }
        let (policy, choice) = config.policy_for(&rel);
        let why = match choice {
            config::Choice::Rule {
                index,
                pattern,
                origin,
            } => {
                format!("rule #{index} ({origin}) matches `{pattern}`")
            }
            config::Choice::Default => "no rule matches; the configuration's `default`".into(),
            config::Choice::Builtin => "no configuration; the built-in default".into(),
        };
        println!(
            "  policy: {} ({}), because {why}",
            policy.name, policy.origin
        );
        println!(
            "  allows {} globals; build: {}; persistent ids: {}",
            policy.allow_count(),
            policy.build.as_str(),
            policy.persistent_ids.as_str()
        );
        let mut digest = || lfs_oid(p).or_else(|| sha256_file(p));
        match config.exceptions.iter().find(|e| e.path == rel) {
            Some(e) => {
                let applies = config.exception_for(&rel, &mut digest).is_some();
                println!(
                    "  exception: {} ({}){}",
                    e.reason,
                    e.origin,
                    if applies {
                        ""
                    } else {
                        " — does not apply now (expired or file changed)"
                    }
                );
            }
            None => println!("  exception: none"),
        }
    }
    0
}

fn run_learn(paths: &[PathBuf], name: &str) -> i32 {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let (files, errors) = scan::collect(&paths);
    for e in &errors {
        if let Some(msg) = &e.error {
            eprintln!("picklegate: error: {msg}");
        }
    }
    match learn::learn(&files, name) {
        Ok(yaml) => {
            print!("{yaml}");
            if errors.is_empty() {
                0
            } else {
                2
            }
        }
        Err(e) => {
            eprintln!("picklegate: error: {e}");
            2
        }
    }
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
