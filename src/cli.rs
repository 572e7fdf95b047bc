//! Command-line front end. Exit codes: 0 nothing outside policy, 1 findings,
//! 2 usage/config error or a file that could not be read.

use crate::config::{self, Config, Level};
use crate::diag::Diag;
use crate::disasm::{self, Style};
use crate::finding::Rule;
use crate::git;
use crate::learn;
use crate::loosen;
use crate::policy;
use crate::report::{self, Summary};
use crate::sanitize;
use crate::scan::{self, FileReport, ScanOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout is gone (the reader closed the pipe, `| head`): later output is
/// dropped and the command finishes with its usual exit code.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. A closed pipe (EPIPE) ends output quietly; any other write
/// error is reported once on stderr and returned.
fn write_stdout(text: &str) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                eprintln!("picklegate: error: cannot write to stdout: {e}");
                Err(e)
            }
        }
    }
}

/// `println!` through [`write_stdout`]: never panics on a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => {{
        let mut line = format!($($t)*);
        line.push('\n');
        let _ = write_stdout(&line);
    }};
}

/// A buffered `fmt::Write` over [`write_stdout`], for listings written piece by piece.
struct StdoutText {
    buf: String,
    failed: bool,
}

impl StdoutText {
    const CHUNK: usize = 1 << 16;

    fn new() -> Self {
        StdoutText {
            buf: String::new(),
            failed: false,
        }
    }

    /// Writes what is buffered; false when stdout failed (other than a closed pipe).
    fn finish(&mut self) -> bool {
        if !self.buf.is_empty() {
            self.failed |= write_stdout(&self.buf).is_err();
            self.buf.clear();
        }
        !self.failed
    }
}

impl std::fmt::Write for StdoutText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= Self::CHUNK {
            self.finish();
        }
        Ok(())
    }
}

/// Text from the input (paths, member names, messages) escaped for a terminal.
/// `picklegate --version`: the version, the commit it was built from, and the library
/// versions each embedded preset was generated from (the first line of every preset).
fn long_version() -> &'static str {
    let mut libs: Vec<&str> = Vec::new();
    for (_, _, text) in policy::PRESETS {
        let first = text.lines().next().unwrap_or_default();
        if let Some(rest) = first.split_once(" from ").map(|(_, r)| r) {
            let list = rest.split(" on Python").next().unwrap_or_default();
            for lib in list.split(", ") {
                // `numpy==2.4.6 (plus numpy 1.x module paths …)`: the pin only.
                let pin = lib.split(" (").next().unwrap_or_default().trim();
                if pin.contains("==") && !libs.contains(&pin) {
                    libs.push(pin);
                }
            }
        }
    }
    libs.sort_unstable();
    let text = format!(
        "{}\ncommit: {}\npresets generated from: {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("PICKLEGATE_GIT_COMMIT").unwrap_or("unknown"),
        libs.join(", ")
    );
    Box::leak(text.into_boxed_str())
}

fn esc(s: impl std::fmt::Display) -> String {
    report::term::escape(&s.to_string()).into_owned()
}

#[derive(Parser)]
#[command(name = "picklegate", version, long_version = long_version(), about = "Keeps malicious pickles out of git repositories", long_about = None)]
struct Cli {
    /// When to colour the output: `auto` (a terminal, unless NO_COLOR is set; CLICOLOR_FORCE
    /// or FORCE_COLOR force it), `always`, `never`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    /// Print only what blocks (findings that fail the gate) and the summary; no notices.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print a line for every clean file.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, ValueEnum)]
enum ColorChoice {
    /// Colour on a terminal (NO_COLOR, CLICOLOR_FORCE and FORCE_COLOR apply).
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The terminal options of this run (`--color`, `-q`, `-v`), set once in [`main`].
#[derive(Clone, Copy, Default)]
struct Ui {
    color: ColorChoice,
    quiet: bool,
    verbose: bool,
}

static UI: std::sync::OnceLock<Ui> = std::sync::OnceLock::new();

fn ui() -> Ui {
    UI.get().copied().unwrap_or_default()
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Findings grouped per file, with disassembly excerpts.
    Human,
    /// One line per finding: `path!member@offset: blocks rule: message`.
    Concise,
    /// The versioned JSON report (version 1; fields are only added).
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// GitHub Actions workflow commands (annotations).
    Github,
    /// A GitLab Code Quality report.
    Gitlab,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        <Format as ValueEnum>::from_str(s, true).ok()
    }
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum DisasmFormat {
    /// The annotated listing (`text` is the old name).
    #[value(alias = "text")]
    Human,
    /// The listing as JSON.
    Json,
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// Policy configuration (default: .picklegate.yaml or .picklegate.yml found from here upward).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct GitArgs {
    /// Scan what is staged (HEAD vs the index), reading blobs from the index, never the working tree.
    #[arg(long, conflicts_with_all = ["diff", "hook", "ci"])]
    staged: bool,
    /// Scan every added or modified blob in BASE..HEAD (or BASE...HEAD from the merge base).
    #[arg(long, value_name = "RANGE", conflicts_with_all = ["hook", "ci"])]
    diff: Option<String>,
    /// pre-commit mode: scan the index blobs of the named files (a range when PRE_COMMIT_FROM_REF/TO_REF are set).
    #[arg(long, conflicts_with = "ci")]
    hook: bool,
    /// Detect the range from GitHub Actions or GitLab CI variables.
    #[arg(long)]
    ci: bool,
    /// With a range: also every blob any commit of the range added, even if removed later.
    #[arg(long)]
    all_commits: bool,
    /// Print the paths of the Git LFS pointers among the blobs this git mode selects whose
    /// objects are not available locally, one per line, and exit 0: what to fetch
    /// (`git lfs fetch --include …`) before the scan (the GitHub Action and GitLab job do).
    #[arg(long)]
    list_missing_lfs: bool,
    /// Scan every blob of every commit reachable from HEAD, root commit included (an audit
    /// of the whole history: a model removed long ago can still be checked out).
    #[arg(long, conflicts_with_all = ["staged", "diff", "hook", "ci", "all_commits"])]
    all_history: bool,
    /// Largest git blob read (bytes); larger blobs are a budget finding.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 30)]
    max_blob_size: u64,
    /// Where a range scan's policy comes from: `base` (the base revision's .picklegate.yaml:
    /// the change under review never configures its own gate; default for --diff, --ci and
    /// pre-push ranges), `head` (the change's own), `worktree` (discovery from the current
    /// directory; the default for --staged and files).
    #[arg(long, value_enum, value_name = "SIDE")]
    policy_from: Option<PolicyFrom>,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, ValueEnum)]
enum PolicyFrom {
    /// The base revision's configuration (the default for ranges).
    Base,
    /// The change's own configuration.
    Head,
    /// Discovery from the current directory (the default for --staged and files).
    Worktree,
}

#[derive(Subcommand)]
enum Command {
    /// Scan files and directories; content decides what is a pickle, never the name.
    Scan {
        /// Files or directories (default: the current directory); with --hook, the files pre-commit passes.
        paths: Vec<PathBuf>,
        /// Output format on stdout (`--report` writes more formats to files).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        git: GitArgs,
        /// Also write a report: FORMAT=PATH (json, sarif, github, gitlab, human; repeatable).
        #[arg(long = "report", value_name = "FORMAT=PATH")]
        reports: Vec<String>,
        /// Write sanitized replacements for files with findings (in the working tree).
        #[arg(long)]
        fix: bool,
        /// With --fix in --staged/--hook mode: also stage the sanitized files.
        #[arg(long, requires = "fix")]
        fix_stage: bool,
        /// Use these embedded presets for every path instead of the configured policies (repeatable).
        #[arg(long = "preset", value_name = "NAME")]
        presets: Vec<String>,
        /// Override a rule's level: RULE=deny|warn|allow (repeatable).
        #[arg(long = "level", value_name = "RULE=LEVEL")]
        levels: Vec<String>,
        /// Wall-clock limit per file in seconds (0: none); a file that reaches it is a
        /// `budget-exceeded` finding. Default: the configuration's `budgets.timeout`, else 10.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Disassemble a pickle like `python -m pickletools`, with what the VM resolved.
    Disasm {
        /// A pickle file, or a container (torch zip, joblib, npz, tar, compressed…): alone it
        /// lists the container's pickle streams; `FILE!MEMBER` (the member syntax of the
        /// reports) disassembles one of them.
        #[arg(value_name = "FILE[!MEMBER]")]
        file: String,
        /// Output format: the annotated listing, or JSON.
        #[arg(long, value_enum, default_value_t = DisasmFormat::Human)]
        format: DisasmFormat,
        /// Print exactly what `pickletools.dis` prints, without annotations.
        #[arg(long)]
        plain: bool,
    },
    /// Write a sanitized replacement: keep the model, drop the attack (exit 1 if impossible).
    Sanitize {
        /// Files to sanitize (several with --in-place, e.g. from a pre-commit hook).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the sanitized file.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "OUT",
            conflicts_with = "in_place"
        )]
        output: Option<PathBuf>,
        /// Replace FILE (keeping FILE.orig unless --no-backup).
        #[arg(long)]
        in_place: bool,
        /// With --in-place: do not keep the original as FILE.orig.
        #[arg(long, requires = "in_place")]
        no_backup: bool,
        /// Re-emit files with nothing outside policy too: a canonical, freshly numbered copy.
        #[arg(long)]
        rebuild: bool,
        /// Output format: `human` lists the changes, `json` one object per file.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Judge with these embedded presets instead of the configured policies (repeatable).
        #[arg(long = "preset", value_name = "NAME")]
        presets: Vec<String>,
        /// Wall-clock limit per file in seconds (0: none); default as for `scan`.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write a starter .picklegate.yaml at the repository root: the presets the repository's
    /// pickle files need (found by a scan) and a learned baseline for what no preset covers
    /// (code-execution sinks are never allowed; each entry names the files that need it).
    Init {
        /// Files or directories to look at (default: the current directory).
        paths: Vec<PathBuf>,
        /// Replace an existing .picklegate.yaml.
        #[arg(long)]
        force: bool,
        /// Print the configuration on stdout instead of writing it.
        #[arg(long)]
        stdout: bool,
    },
    /// Print a shell completion script: `picklegate completions bash > /etc/bash_completion.d/picklegate`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
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
        /// Paths to explain (as the configuration's path rules see them).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print a policy that allows exactly the globals these files use today.
    Learn {
        /// Files or directories whose pickles the policy must allow (default: the current directory).
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
    let _ = UI.set(Ui {
        color: cli.color,
        quiet: cli.quiet,
        verbose: cli.verbose,
    });
    match cli.command {
        Command::Scan {
            paths,
            format,
            git,
            reports,
            fix,
            fix_stage,
            presets,
            levels,
            timeout,
            config,
        } => run_scan(
            paths,
            format,
            &git,
            &reports,
            &presets,
            &levels,
            &config,
            fix.then_some(fix_stage),
            timeout,
        ),
        Command::Disasm {
            file,
            format,
            plain,
        } => run_disasm(&file, format, plain),
        Command::Sanitize {
            files,
            output,
            in_place,
            no_backup,
            rebuild,
            format,
            presets,
            timeout,
            config,
        } => {
            if output.is_some() && files.len() != 1 {
                eprintln!("picklegate: error: -o takes one input file; use --in-place for several");
                return 2;
            }
            files
                .iter()
                .map(|f| {
                    run_sanitize(
                        f,
                        &Destination {
                            output: output.as_deref(),
                            in_place,
                            no_backup,
                        },
                        sanitize::Options {
                            rebuild_clean: rebuild,
                            ..sanitize::Options::default()
                        },
                        format,
                        &presets,
                        &config,
                        timeout,
                    )
                })
                .max()
                .unwrap_or(0)
        }
        Command::Init {
            paths,
            force,
            stdout,
        } => run_init(&paths, force, stdout),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "picklegate",
                &mut buf,
            );
            match write_stdout(&String::from_utf8_lossy(&buf)) {
                Ok(()) => 0,
                Err(_) => 2,
            }
        }
        Command::Policy { command } => match command {
            PolicyCommand::Check { config } => run_check(&config),
            PolicyCommand::Explain { paths, config } => run_explain(&paths, &config),
            PolicyCommand::Learn { paths, name } => run_learn(&paths, &name),
            PolicyCommand::Schema => {
                outln!("{}", config::schema());
                0
            }
        },
    }
}

/// Whether to colour a stream: `--color always|never` decides; with `auto`, FORCE_COLOR or
/// CLICOLOR_FORCE (set and not `0`) force colour, NO_COLOR (set, not empty) turns it off,
/// else colour exactly when the stream is a terminal.
pub fn color(stream_is_terminal: bool) -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    match ui().color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("FORCE_COLOR") || set("CLICOLOR_FORCE") => true,
        ColorChoice::Auto if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) => false,
        ColorChoice::Auto => stream_is_terminal,
    }
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
            if !quiet && !ui().quiet && first_notice(&cwd, "no-config") {
                eprintln!(
                    "picklegate: no .picklegate.yaml found; using the built-in default policy \
                     (`picklegate init` writes one; this notice is shown once per repository)"
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

/// The width of the terminal stdout is, when it is one (long lines are wrapped to it).
fn terminal_width() -> Option<usize> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&out).map(|(w, _)| usize::from(w.0))
}

/// True the first time a notice named `what` is due in the repository around `cwd` (a
/// marker under its git directory records it), and always outside a repository.
fn first_notice(cwd: &Path, what: &str) -> bool {
    let Ok(repo) = git2::Repository::discover(cwd) else {
        return true;
    };
    let marker = repo
        .path()
        .join("picklegate")
        .join(format!("notice-{what}"));
    if marker.exists() {
        return false;
    }
    // A read-only git directory only means the notice is shown again next time.
    let _ = std::fs::create_dir_all(marker.parent().unwrap_or(repo.path()))
        .and_then(|()| std::fs::write(&marker, b"shown\n"));
    true
}

/// The configuration, replaced by `--preset`s for every path when any are given.
fn load_config_with_presets(
    args: &ConfigArgs,
    presets: &[String],
    quiet: bool,
) -> Result<Config, i32> {
    let config = load_config(args, quiet)?;
    if presets.is_empty() {
        return Ok(config);
    }
    config.with_presets(presets).map_err(|e| {
        eprintln!("picklegate: error: {}", esc(e));
        2
    })
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
    Some(crate::digest::hex(&h.finalize()))
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

fn parse_reports(reports: &[String]) -> Result<Vec<(Format, PathBuf)>, String> {
    reports
        .iter()
        .map(|r| {
            let (f, p) = r
                .split_once('=')
                .ok_or_else(|| format!("--report `{r}`: expected FORMAT=PATH"))?;
            let f = Format::parse(f).ok_or_else(|| format!("--report: unknown format `{f}`"))?;
            Ok((f, PathBuf::from(p)))
        })
        .collect()
}

fn render(
    format: Format,
    reports: &[FileReport],
    color_ok: bool,
    run: &report::Run,
    fixing: bool,
) -> String {
    let ui = ui();
    match format {
        Format::Human => report::human::render(
            reports,
            report::human::Style {
                color: color_ok,
                quiet: ui.quiet,
                verbose: ui.verbose,
                width: terminal_width(),
                fixing,
            },
        ),
        Format::Concise => report::human::render_concise(reports, ui.quiet),
        Format::Json => report::json::render_with(reports, run),
        Format::Sarif => report::sarif::render_with(reports, run),
        Format::Github => report::github::render(reports),
        Format::Gitlab => report::gitlab::render(reports),
    }
}

/// What a scan looks at.
enum Targets {
    Files(Vec<PathBuf>),
    /// Hook mode: index blobs, plus named files that are not in the index.
    Mixed(git2::Repository, Vec<git::Change>, Vec<PathBuf>),
    Blobs(
        git2::Repository,
        Vec<git::Change>,
        &'static str,
        Option<String>,
    ),
}

/// The blobs a git mode scans, and the range they come from (range modes only).
type GitTargets = (Option<Targets>, Option<git::Range>);

fn git_targets(paths: &[PathBuf], g: &GitArgs) -> Result<GitTargets, String> {
    if !(g.staged || g.diff.is_some() || g.hook || g.ci || g.all_history) {
        return Ok((None, None));
    }
    if g.all_commits && !(g.diff.is_some() || g.ci || g.hook) {
        return Err("--all-commits needs a range (--diff, --ci, or a pre-push hook)".into());
    }
    let repo = git::open().map_err(|e| e.to_string())?;
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let specs = if g.hook {
        Vec::new()
    } else {
        pathspecs(&repo, paths)?
    };
    let only = |v: Vec<git::Change>| filter_pathspecs(v, &specs);
    let env_range = |from: String, to: String| git::Range {
        base: from,
        head: to,
        merge_base: false,
    };
    let (changes, kind, range) = if g.all_history {
        let c = only(git::all_history(&repo, "HEAD").map_err(|e| e.to_string())?)?;
        return Ok((Some(Targets::Blobs(repo, c, "history", None)), None));
    } else if g.staged {
        (
            only(git::staged(&repo).map_err(|e| e.to_string())?)?,
            "staged",
            None,
        )
    } else if let Some(spec) = &g.diff {
        let r = git::Range::parse(spec).map_err(|e| e.to_string())?;
        let c = git::range(&repo, &r, g.all_commits).map_err(|e| e.to_string())?;
        (only(c)?, "range", Some(r))
    } else if g.hook {
        let pre_push = pre_push();
        match (
            std::env::var("PRE_COMMIT_FROM_REF"),
            std::env::var("PRE_COMMIT_TO_REF"),
        ) {
            (Ok(from), Ok(to)) if !from.is_empty() && !to.is_empty() => {
                let r = env_range(from, to);
                let c = git::range(&repo, &r, g.all_commits).map_err(|e| e.to_string())?;
                (only(c)?, "range", Some(r))
            }
            _ if pre_push.is_some() => {
                // A push of a new branch whose history reaches a root commit: pre-commit
                // sets no range and passes the files of whatever is checked out. Scan what
                // the push adds instead, from the pushed ref.
                let (local, remote) = pre_push.unwrap_or_default();
                let c = git::pushed(&repo, &local, &remote).map_err(|e| e.to_string())?;
                let shown = format!("{local} --not --remotes={remote}");
                return Ok((Some(Targets::Blobs(repo, c, "push", Some(shown))), None));
            }
            _ => {
                let (blobs, missing) =
                    git::index_blobs(&repo, &names).map_err(|e| e.to_string())?;
                // Named but not staged (e.g. `pre-commit run --files new.pkl`): scan the file.
                let files: Vec<PathBuf> = missing
                    .iter()
                    .map(PathBuf::from)
                    .filter(|p| p.is_file())
                    .collect();
                return Ok((Some(Targets::Mixed(repo, blobs, files)), None));
            }
        }
    } else {
        let env = |k: &str| std::env::var(k).ok();
        match git::detect_ci(&env).map_err(|e| e.to_string())? {
            git::CiTarget::Range(r) => {
                let c = git::range(&repo, &r, g.all_commits).map_err(|e| e.to_string())?;
                (only(c)?, "range", Some(r))
            }
            git::CiTarget::Tree(rev) => {
                let c = only(git::whole_tree(&repo, &rev).map_err(|e| e.to_string())?)?;
                return Ok((Some(Targets::Blobs(repo, c, "tree", Some(rev))), None));
            }
        }
    };
    let shown = range.as_ref().map(git::Range::display);
    Ok((Some(Targets::Blobs(repo, changes, kind, shown)), range))
}

/// `scan --list-missing-lfs`: the LFS pointers of a git mode's blobs without a local object.
fn list_missing_lfs(targets: &Targets) -> i32 {
    let (repo, changes) = match targets {
        Targets::Blobs(repo, changes, ..) | Targets::Mixed(repo, changes, _) => (repo, changes),
        Targets::Files(_) => {
            eprintln!("picklegate: error: --list-missing-lfs needs a git mode (--staged, --diff, --ci, --hook, --all-history)");
            return 2;
        }
    };
    let mut out = String::new();
    for c in changes {
        // A pointer is at most a few hundred bytes; larger blobs are not read.
        if !git::blob_size(repo, c.oid).is_ok_and(|n| n <= 1024) {
            continue;
        }
        let Ok(data) = git::read_blob(repo, c.oid) else {
            continue;
        };
        if let Some((oid, _)) = git::lfs_pointer(&data) {
            if !git::lfs_object_path(repo, &oid).is_file() {
                out.push_str(&c.path);
                out.push('\n');
            }
        }
    }
    if write_stdout(&out).is_err() {
        return 2;
    }
    0
}

/// The pushed ref and the remote of a pre-push hook run by pre-commit
/// (`PRE_COMMIT_LOCAL_BRANCH`, `PRE_COMMIT_REMOTE_NAME`), when both are set.
fn pre_push() -> Option<(String, String)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some((
        var("PRE_COMMIT_LOCAL_BRANCH")?,
        var("PRE_COMMIT_REMOTE_NAME")?,
    ))
}

/// One notice per path the walk did not read (symlinks leaving the root, FIFOs, sockets,
/// devices), so nothing is skipped silently.
fn print_skipped(skipped: &[String]) {
    for s in skipped {
        eprintln!("picklegate: note: skipped {}", esc(s));
    }
}

/// A path argument of a git mode, as git reads a pathspec: relative to the current
/// directory, a directory covering everything below it (`.` the whole tree), or a glob.
struct Pathspec {
    /// As typed, for messages.
    arg: String,
    /// Repository-relative, `/`-separated, normalised (`""`: the root).
    path: String,
    glob: Option<globset::GlobMatcher>,
}

fn pathspecs(repo: &git2::Repository, paths: &[PathBuf]) -> Result<Vec<Pathspec>, String> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let workdir = repo
        .workdir()
        .ok_or("path arguments need a repository with a work tree")?;
    let real_workdir = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let real_cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let prefix = real_cwd
        .strip_prefix(&real_workdir)
        .map_err(|_| "the current directory is outside the repository's work tree".to_string())?
        .to_path_buf();
    let mut out = Vec::new();
    for p in paths {
        let arg = p.to_string_lossy().into_owned();
        let joined = if p.is_absolute() {
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            real.strip_prefix(&real_workdir)
                .map(Path::to_path_buf)
                .map_err(|_| format!("path `{arg}` is outside the repository"))?
        } else {
            prefix.join(p)
        };
        let mut parts: Vec<String> = Vec::new();
        for c in joined.to_string_lossy().replace('\\', "/").split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("path `{arg}` is outside the repository"));
                    }
                }
                c => parts.push(c.to_string()),
            }
        }
        let path = parts.join("/");
        let glob = if path.contains(['*', '?', '[']) {
            let g = globset::GlobBuilder::new(&path)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("path `{arg}`: {e}"))?;
            Some(g.compile_matcher())
        } else {
            None
        };
        out.push(Pathspec { arg, path, glob });
    }
    Ok(out)
}

impl Pathspec {
    fn matches(&self, path: &str) -> bool {
        match &self.glob {
            Some(g) => g.is_match(path),
            None => {
                self.path.is_empty()
                    || path == self.path
                    || path
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

/// The changes the pathspecs select. A path that matches no change and names nothing in
/// the work tree is a mistake (a typo would otherwise pass the gate with 0 files).
fn filter_pathspecs(
    mut v: Vec<git::Change>,
    specs: &[Pathspec],
) -> Result<Vec<git::Change>, String> {
    if specs.is_empty() {
        return Ok(v);
    }
    for s in specs {
        let hit = v.iter().any(|c| s.matches(&c.path));
        if !hit && s.glob.is_none() && !Path::new(&s.arg).exists() {
            return Err(format!(
                "path `{}` matches no file (as `{}` from the repository root)",
                s.arg,
                if s.path.is_empty() { "." } else { &s.path }
            ));
        }
        if !hit && s.glob.is_some() {
            eprintln!(
                "picklegate: note: `{}` matches no changed file",
                esc(&s.arg)
            );
        }
    }
    v.retain(|c| specs.iter().any(|s| s.matches(&c.path)));
    Ok(v)
}

/// The configuration files looked for in a revision's tree: the one `--config` names
/// (relative to the repository root), else `.picklegate.yaml`/`.yml` at the root.
fn config_names(repo: &git2::Repository, args: &ConfigArgs) -> Result<Vec<String>, String> {
    let Some(file) = &args.config else {
        return Ok(config::CONFIG_NAMES.iter().map(|n| n.to_string()).collect());
    };
    let workdir = repo
        .workdir()
        .ok_or("--policy-from base|head needs a repository with a work tree")?;
    let abs = if file.is_absolute() {
        file.clone()
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(file)
    };
    let rel = abs
        .strip_prefix(workdir)
        .map(Path::to_path_buf)
        .or_else(|_| {
            // The work tree may be reached through a symlink (macOS /tmp, CI runners).
            let real = std::fs::canonicalize(workdir).map_err(|_| ())?;
            let abs = std::fs::canonicalize(abs.parent().unwrap_or(&abs))
                .map_err(|_| ())?
                .join(abs.file_name().unwrap_or_default());
            abs.strip_prefix(&real)
                .map(Path::to_path_buf)
                .map_err(|_| ())
        })
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .map_err(|_| {
            format!(
                "--config {} is outside the repository, so it cannot be read from a revision (use --policy-from worktree)",
                file.display()
            )
        })?;
    Ok(vec![rel.trim_start_matches("./").to_string()])
}

/// A range scan's configuration from one side of the range: the file in that commit's
/// tree, else the built-in default. Also returns the blob id of the file it read.
fn load_config_at(
    repo: &git2::Repository,
    commit: git2::Oid,
    side: &str,
    args: &ConfigArgs,
    quiet: bool,
) -> Result<(Config, Option<git2::Oid>), i32> {
    let fail = |e: String| {
        eprintln!("picklegate: error: {}", esc(e));
        2
    };
    let names = config_names(repo, args).map_err(fail)?;
    let root = repo
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let short = &commit.to_string()[..12];
    match git::file_at(repo, commit, &names).map_err(|e| fail(e.to_string()))? {
        Some((name, bytes, blob)) => {
            let display = format!("{side}:{name}");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match Config::from_text(&display, &text, root) {
                Ok(c) => {
                    print_diags(&c.warnings, Some(&text));
                    Ok((c, Some(blob)))
                }
                Err(diags) => {
                    print_diags(&diags, Some(&text));
                    Err(2)
                }
            }
        }
        None => {
            // A named file that exists nowhere is a typo, not a first configuration.
            if let Some(file) = args.config.as_ref().filter(|f| !f.is_file()) {
                return Err(fail(format!(
                    "--config {}: no such file in the {side} revision ({short}) or the work tree",
                    file.display()
                )));
            }
            if !quiet {
                eprintln!(
                    "picklegate: the {side} revision ({short}) has no {}; using the built-in default policy",
                    names.join(" or ")
                );
            }
            Config::builtin(&root).map(|c| (c, None)).map_err(|d| {
                print_diags(&d, None);
                2
            })
        }
    }
}

/// When the change under review edits the configuration the scan took from its base: a
/// warning, and a `policy-loosened` report that lists, at its line in the new file, each
/// thing the edit would let through once merged, so a reviewer approves it explicitly.
fn config_change_report(
    repo: &git2::Repository,
    range: &git::Range,
    base: &Config,
    base_blob: Option<git2::Oid>,
    args: &ConfigArgs,
    ci: bool,
) -> Option<FileReport> {
    let names = config_names(repo, args).ok()?;
    let head = git::commit_id(repo, &range.head).ok()?;
    let head_file = git::file_at(repo, head, &names).ok().flatten();
    if head_file.as_ref().map(|h| h.2) == base_blob {
        return None;
    }
    let name = head_file
        .as_ref()
        .map(|h| h.0.clone())
        .unwrap_or_else(|| names.join(" or "));
    eprintln!(
        "picklegate: warning: this change modifies {}; the scan uses the policy of the base revision \
         (--policy-from base), so the change cannot configure its own gate",
        esc(&name)
    );
    let text = head_file
        .as_ref()
        .map(|h| String::from_utf8_lossy(&h.1).into_owned());
    let display = format!("head:{name}");
    let base_text = if base.file.is_some() {
        base.source.as_deref()
    } else {
        None
    };
    let found = match loosen::loosenings(base_text, text.as_deref().map(|t| (display.as_str(), t)))
    {
        Ok(l) => l,
        Err(d) => {
            eprintln!(
                "picklegate: warning: the change's {} is not a valid configuration; once merged, every scan stops with exit 2:",
                esc(&name)
            );
            print_diags(&[d.warning()], text.as_deref());
            return None;
        }
    };
    if found.is_empty() {
        return None;
    }
    let listed: Vec<String> = found
        .iter()
        .map(|l| match l.line {
            0 => l.what.clone(),
            n => format!("line {n}: {}", l.what),
        })
        .collect();
    let mut f = crate::finding::Finding::new(
        Rule::PolicyLoosened,
        found[0].offset,
        crate::finding::clip(format!(
            "this change loosens the gate's configuration in {} place(s), applying once merged: {}",
            found.len(),
            listed.join("; ")
        )),
    );
    f.related = found
        .iter()
        .zip(&listed)
        .map(|(l, label)| crate::finding::Related {
            offset: l.offset,
            label: crate::finding::clip(label.clone()),
        })
        .collect();
    f.reading = Some("policy");
    // Deny in CI, where the merge is decided; a warning in a local `--diff` or pre-push,
    // where the author is looking at their own edit.
    if !ci {
        f.level = Level::Warn;
    }
    let mut r = scan::FileReport::from_findings(name, "policy", vec![f], 0);
    r.source = head_file.map(|(_, _, blob)| scan::Source {
        kind: "range",
        blob: blob.to_string(),
        commit: Some(head.to_string()),
        range: Some(range.display()),
        status: "modified",
        renamed_from: None,
        lfs_oid: None,
    });
    Some(r)
}

/// A scanned blob's SHA-256 for exception pins: known, or computed from a file only when an
/// exception asks (hashing a multi-GB checkpoint costs more than scanning it).
enum BlobDigest {
    Known(Option<String>),
    OfFile(PathBuf),
}

impl BlobDigest {
    fn get(&self) -> Option<String> {
        match self {
            BlobDigest::Known(d) => d.clone(),
            BlobDigest::OfFile(p) => sha256_file(p),
        }
    }
}

/// Scans one git blob; LFS pointers are resolved to the local object.
fn scan_blob(
    repo: &git2::Repository,
    change: &git::Change,
    kind: &'static str,
    range: &Option<String>,
    policy: &policy::Policy,
    opts: &ScanOptions,
    max_blob: u64,
) -> (FileReport, BlobDigest) {
    let mut source = scan::Source {
        kind,
        blob: change.oid.to_string(),
        commit: change.commit.clone(),
        range: range.clone(),
        status: change.status,
        renamed_from: change.from.clone(),
        lfs_oid: None,
    };
    let unreadable = |msg: String, source: scan::Source| {
        let mut r = scan::scan_bytes(&change.path, &[], policy, opts);
        r.status = scan::Status::Error;
        r.format = "unreadable";
        r.error = Some(msg);
        r.source = Some(source);
        (r, BlobDigest::Known(None))
    };
    let size = match git::blob_size(repo, change.oid) {
        Ok(s) => s,
        Err(e) => {
            return unreadable(
                format!("{}: cannot read blob {}: {e}", change.path, change.oid),
                source,
            )
        }
    };
    if size > max_blob {
        let mut r = scan::scan_bytes(&change.path, &[], policy, opts);
        r.findings.push(crate::finding::Finding::new(
            Rule::BudgetExceeded,
            0,
            format!("blob of {size} bytes exceeds --max-blob-size {max_blob}; not read"),
        ));
        r.refresh_status();
        r.source = Some(source);
        return (r, BlobDigest::Known(None));
    }
    if size > git::STREAM_BLOBS_ABOVE && matches!(kind, "staged" | "hook") {
        // A staged checkpoint whose work-tree file git itself takes to be the index blob
        // (stat data match, not racily clean) is scanned in place, with sparse reads.
        if let Some(file) = git::worktree_copy_of_index_blob(repo, &change.path, change.oid) {
            let r = scan::scan_file_as(&file, &change.path, policy, opts);
            // Still the same after the scan (not modified while it was read): else the
            // blob itself is read below.
            if git::worktree_copy_of_index_blob(repo, &change.path, change.oid).is_some() {
                let mut r = r;
                r.source = Some(source);
                return (r, BlobDigest::OfFile(file));
            }
        }
    }
    if size > git::STREAM_BLOBS_ABOVE {
        // Large blobs (checkpoints) are copied out in bounded chunks and scanned from disk
        // with sparse reads; an LFS pointer is never this large.
        return match git::spool_blob(repo, change.oid, size, &std::env::temp_dir()) {
            Ok((temp, digest)) => {
                let mut r = scan::scan_file_as(&temp.path, &change.path, policy, opts);
                r.source = Some(source);
                (r, BlobDigest::Known(Some(digest)))
            }
            Err(e) => unreadable(
                format!("{}: cannot read blob {}: {e}", change.path, change.oid),
                source,
            ),
        };
    }
    let data = match git::read_blob(repo, change.oid) {
        Ok(d) => d,
        Err(e) => {
            return unreadable(
                format!("{}: cannot read blob {}: {e}", change.path, change.oid),
                source,
            )
        }
    };
    if let Some((oid, _)) = git::lfs_pointer(&data) {
        source.lfs_oid = Some(oid.clone());
        let object = git::lfs_object_path(repo, &oid);
        let mut r = if object.is_file() {
            match sha256_file(&object) {
                Some(d) if d == oid => {
                    let mut r = scan::scan_file(&object, policy, opts);
                    r.path = change.path.clone();
                    r
                }
                _ => {
                    let mut r = scan::scan_bytes(&change.path, &data, policy, opts);
                    r.findings.retain(|f| f.rule != Rule::LfsPointer);
                    r.findings.push(crate::finding::Finding::new(
                        Rule::NotInspectable,
                        0,
                        format!("the local Git LFS object for oid {oid} does not match its digest"),
                    ));
                    r
                }
            }
        } else {
            let mut r = scan::scan_bytes(&change.path, &data, policy, opts);
            for f in r.findings.iter_mut().filter(|f| f.rule == Rule::LfsPointer) {
                f.message = format!(
                    "Git LFS object {oid} is not available locally (fetch it with `git lfs pull`, or `lfs: true` in actions/checkout); the model was not inspected"
                );
            }
            r
        };
        r.source = Some(source);
        return (r, BlobDigest::Known(Some(oid)));
    }
    let mut r = scan::scan_bytes(&change.path, &data, policy, opts);
    r.source = Some(source);
    (r, BlobDigest::Known(Some(crate::digest::sha256_hex(&data))))
}

#[allow(clippy::too_many_arguments)]
fn run_scan(
    paths: Vec<PathBuf>,
    format: Format,
    g: &GitArgs,
    side: &[String],
    presets: &[String],
    levels: &[String],
    args: &ConfigArgs,
    fix: Option<bool>,
    timeout: Option<f64>,
) -> i32 {
    let started = std::time::SystemTime::now();
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
    let (cli_levels, side) = match (parse_levels(levels), parse_reports(side)) {
        (Ok(l), Ok(s)) => (l, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("picklegate: error: {}", esc(e));
            return 2;
        }
    };
    let (targets, range) = match git_targets(&paths, g) {
        Ok((Some(t), r)) => (t, r),
        Ok((None, _)) => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                paths.clone()
            };
            (Targets::Files(paths), None)
        }
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(e));
            return 2;
        }
    };
    if g.list_missing_lfs {
        return list_missing_lfs(&targets);
    }
    // The "no configuration" notice is for a person at a terminal, never in hooks.
    let quiet = !presets.is_empty() || format != Format::Human || g.hook;
    // A range scan reviews a change: its policy comes from the base revision unless asked
    // otherwise, so the change cannot loosen the gate it is checked by.
    let mut config_report = None;
    let policy_side = match (&range, g.policy_from) {
        (Some(_), None) => PolicyFrom::Base,
        (_, Some(s)) => s,
        (None, None) => PolicyFrom::Worktree,
    };
    let config = match (&targets, &range, policy_side) {
        (Targets::Blobs(repo, ..), Some(r), PolicyFrom::Base | PolicyFrom::Head) => {
            let commit = match policy_side {
                PolicyFrom::Base => git::range_base(repo, r),
                _ => git::commit_id(repo, &r.head),
            };
            let commit = match commit {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("picklegate: error: {}", esc(e));
                    return 2;
                }
            };
            let label = if policy_side == PolicyFrom::Base {
                "base"
            } else {
                "head"
            };
            let loaded = load_config_at(repo, commit, label, args, quiet).and_then(|(c, blob)| {
                if policy_side == PolicyFrom::Base {
                    config_report = config_change_report(repo, r, &c, blob, args, g.ci);
                }
                if presets.is_empty() {
                    return Ok(c);
                }
                c.with_presets(presets).map_err(|e| {
                    eprintln!("picklegate: error: {}", esc(e));
                    2
                })
            });
            match loaded {
                Ok(c) => c,
                Err(code) => return code,
            }
        }
        (_, None, PolicyFrom::Base | PolicyFrom::Head) => {
            eprintln!("picklegate: error: --policy-from base|head needs a range (--diff, --ci, or a pre-push hook)");
            return 2;
        }
        _ => match load_config_with_presets(args, presets, quiet) {
            Ok(c) => c,
            Err(code) => return code,
        },
    };
    let full_scan = paths.is_empty() && matches!(targets, Targets::Files(_));
    let mut budget = config.budget;
    if let Some(t) = timeout {
        budget.limits.timeout = crate::budget::seconds(t);
    }
    let opts = budget
        .scan_options(format == Format::Human || side.iter().any(|(f, _)| *f == Format::Human));
    let mut used_exceptions = std::collections::HashSet::new();
    let mut reports = Vec::new();
    let run_cap = std::cell::RefCell::new(crate::budget::RuleCap::default());
    let total = match &targets {
        Targets::Files(_) => 0,
        Targets::Mixed(_, changes, files) => changes.len() + files.len(),
        Targets::Blobs(_, changes, ..) => changes.len(),
    };
    let progress_on = std::io::stderr().is_terminal()
        && !ui().quiet
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    // File targets are counted once the walk has listed them (below).
    let progress = std::cell::RefCell::new(report::progress::Progress::start(total, progress_on));
    let scan_files = |files: &[PathBuf],
                      reports: &mut Vec<FileReport>,
                      used: &mut HashSet<policy::Origin>| {
        for f in files {
            let rel = config.relative(f);
            if config.is_excluded(&rel) {
                continue;
            }
            let (policy, _) = config.policy_for(&rel);
            let mut report = scan::scan_file(f, policy, &opts);
            progress.borrow().tick();
            crate::budget::cap_run(
                &mut report.findings,
                &mut run_cap.borrow_mut(),
                opts.limits.max_run_findings,
            );
            let mut digest = || lfs_oid(f).or_else(|| sha256_file(f));
            if let Some(ex) = config.apply(&rel, &mut report.findings, &cli_levels, &mut digest) {
                used.insert(ex.origin.clone());
                report.exception = Some(format!("{} ({}): {}", ex.path, ex.origin, ex.reason));
            }
            report.refresh_status();
            reports.push(report);
        }
    };
    let scan_blobs = |repo: &git2::Repository,
                      changes: &[git::Change],
                      kind: &'static str,
                      range: &Option<String>,
                      reports: &mut Vec<FileReport>,
                      used: &mut HashSet<policy::Origin>| {
        let workdir = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        for c in changes {
            let rel = config.relative_lexical(&workdir, &c.path);
            if config.is_excluded(&rel) {
                continue;
            }
            let (policy, _) = config.policy_for(&rel);
            let (mut report, digest) =
                scan_blob(repo, c, kind, range, policy, &opts, g.max_blob_size);
            progress.borrow().tick();
            if g.ci {
                // In CI a model that was not fetched was not seen: deny unless configured.
                for f in report
                    .findings
                    .iter_mut()
                    .filter(|f| f.rule == Rule::LfsPointer)
                {
                    f.level = Level::Deny;
                }
            }
            crate::budget::cap_run(
                &mut report.findings,
                &mut run_cap.borrow_mut(),
                opts.limits.max_run_findings,
            );
            let mut digest = || digest.get();
            if let Some(ex) = config.apply(&rel, &mut report.findings, &cli_levels, &mut digest) {
                used.insert(ex.origin.clone());
                report.exception = Some(format!("{} ({}): {}", ex.path, ex.origin, ex.reason));
            }
            report.refresh_status();
            reports.push(report);
        }
    };
    match &targets {
        Targets::Files(paths) => {
            let (files, errors, skipped) = scan::collect(paths);
            print_skipped(&skipped);
            reports.extend(errors);
            *progress.borrow_mut() = report::progress::Progress::start(files.len(), progress_on);
            scan_files(&files, &mut reports, &mut used_exceptions);
        }
        Targets::Blobs(repo, changes, kind, range) => {
            scan_blobs(
                repo,
                changes,
                kind,
                range,
                &mut reports,
                &mut used_exceptions,
            );
            if let Some(mut r) = config_report {
                // The base configuration's levels (and a pinned exception) apply to it too.
                let mut digest = || None;
                config.apply(&r.path.clone(), &mut r.findings, &cli_levels, &mut digest);
                r.refresh_status();
                // It replaces the plain "not a pickle" report of the same blob.
                reports.retain(|x| {
                    !(x.path == r.path && x.format == "unknown" && x.findings.is_empty())
                });
                reports.push(r);
            }
        }
        Targets::Mixed(repo, changes, files) => {
            scan_blobs(
                repo,
                changes,
                "hook",
                &None,
                &mut reports,
                &mut used_exceptions,
            );
            scan_files(files, &mut reports, &mut used_exceptions);
        }
    }
    // The progress line is erased before the report is written.
    drop(progress.into_inner());
    // The fix each blocked file's report names (a preset, the sanitize command).
    for r in &mut reports {
        r.help = crate::hint::for_report(r);
    }
    let run = report::Run::of(&reports, started);
    let text = render(
        format,
        &reports,
        color(std::io::stdout().is_terminal()),
        &run,
        fix.is_some(),
    );
    let mut text = text.trim_end().to_string();
    text.push('\n');
    if write_stdout(&text).is_err() {
        return 2;
    }
    for (f, path) in &side {
        if let Err(e) =
            sanitize::write_atomically(path, render(*f, &reports, false, &run, false).as_bytes())
        {
            eprintln!(
                "picklegate: error: cannot write {}: {e}",
                esc(path.display())
            );
            return 2;
        }
    }
    let github = format == Format::Github || side.iter().any(|(f, _)| *f == Format::Github);
    if let (true, Some(summary)) = (github, std::env::var_os("GITHUB_STEP_SUMMARY")) {
        let md = report::github::step_summary(&reports);
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(md.as_bytes()));
        if let Err(e) = appended {
            eprintln!("picklegate: warning: cannot append to GITHUB_STEP_SUMMARY: {e}");
        }
    }
    if full_scan && presets.is_empty() {
        warn_unused(&config, &used_exceptions);
    }
    let code = Summary::exit_code(&reports);
    match fix {
        Some(stage) if code == 1 => fix_reports(&reports, &targets, &config, stage),
        _ => code,
    }
}

/// `scan --fix`: sanitized replacements for every file with findings, written in the working
/// tree (from the scanned content: the index blob in git modes); `--fix-stage` stages them.
/// 0 when every file was sanitized, 1 when one could not be, 2 on errors.
fn fix_reports(reports: &[FileReport], targets: &Targets, config: &Config, stage: bool) -> i32 {
    let (repo, workdir) = match targets {
        Targets::Blobs(r, ..) | Targets::Mixed(r, ..) => (
            Some(r),
            r.workdir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
        Targets::Files(_) => (None, PathBuf::from(".")),
    };
    let mut code = 0;
    let mut staged = Vec::new();
    for r in reports
        .iter()
        .filter(|r| r.status == scan::Status::Findings)
    {
        if r.format == "policy" {
            // A configuration change is reviewed, not rewritten.
            eprintln!(
                "picklegate: {}: not fixed: a policy-loosened finding needs a reviewer",
                esc(&r.path)
            );
            code = code.max(1);
            continue;
        }
        let rel = match (&r.source, repo) {
            (Some(_), Some(_)) => config.relative_lexical(&workdir, &r.path),
            _ => config.relative(Path::new(&r.path)),
        };
        let (policy, _) = config.policy_for(&rel);
        let (outcome, target) = match (&r.source, repo) {
            (Some(src), Some(repo)) => {
                let data = git2::Oid::from_str(&src.blob)
                    .ok()
                    .and_then(|o| git::read_blob(repo, o).ok());
                let Some(data) = data else {
                    eprintln!(
                        "picklegate: error: {}: cannot read blob {}",
                        esc(&r.path),
                        src.blob
                    );
                    code = 2;
                    continue;
                };
                let target = workdir.join(&r.path);
                // The work-tree file is replaced by the sanitized blob: only when it is
                // that blob, so unstaged edits (or a deletion) are never lost.
                let same = git2::Oid::hash_file(git2::ObjectType::Blob, &target)
                    .is_ok_and(|o| o.to_string() == src.blob);
                if !same {
                    eprintln!(
                        "picklegate: {}: not fixed: the work-tree file differs from the scanned blob (unstaged changes); commit or stash them first, or run `picklegate sanitize` on the file",
                        esc(&r.path)
                    );
                    code = code.max(1);
                    continue;
                }
                let opts = spool_next_to(&target, config);
                (
                    sanitize::sanitize_bytes(&r.path, &data, policy, &opts),
                    target,
                )
            }
            _ => {
                let target = PathBuf::from(&r.path);
                let opts = spool_next_to(&target, config);
                (
                    sanitize::sanitize_file(Path::new(&r.path), policy, &opts),
                    target,
                )
            }
        };
        match outcome {
            Ok(sanitize::Outcome::Rebuilt {
                output, changes, ..
            }) => {
                if let Err(e) = output.commit(&target) {
                    eprintln!(
                        "picklegate: error: cannot write {}: {e}",
                        esc(target.display())
                    );
                    code = 2;
                    continue;
                }
                eprintln!(
                    "picklegate: {}: sanitized ({} change(s))",
                    esc(&r.path),
                    changes.len()
                );
                staged.push(r.path.clone());
            }
            Ok(sanitize::Outcome::Clean) => {}
            Err(sanitize::SanitizeError::Refused(why)) => {
                eprintln!(
                    "picklegate: {}: cannot be sanitized: {}",
                    esc(&r.path),
                    esc(why)
                );
                code = code.max(1);
            }
            Err(e) => {
                eprintln!("picklegate: error: {}", esc(e));
                code = 2;
            }
        }
    }
    let failing = reports
        .iter()
        .filter(|r| r.status == scan::Status::Findings)
        .count();
    let left = failing.saturating_sub(staged.len());
    eprintln!(
        "picklegate: --fix: {} file(s) sanitized{}, {left} still with findings",
        staged.len(),
        if stage && !staged.is_empty() {
            " and staged"
        } else {
            ""
        }
    );
    if stage {
        if let Some(repo) = repo {
            let added = repo.index().and_then(|mut idx| {
                for p in &staged {
                    idx.add_path(Path::new(p))?;
                }
                idx.write()
            });
            if let Err(e) = added {
                eprintln!(
                    "picklegate: error: cannot stage the sanitized files: {}",
                    esc(e)
                );
                return 2;
            }
        }
    }
    code
}

/// After a full scan: allow entries and exceptions of the configuration that matched nothing.
fn warn_unused(config: &Config, used_exceptions: &std::collections::HashSet<policy::Origin>) {
    for (entry, origin) in config.unused_allow_entries() {
        eprintln!(
            "picklegate: warning: allow entry `{}` ({}) matched nothing in this scan",
            esc(entry),
            esc(origin)
        );
    }
    for ex in config
        .exceptions
        .iter()
        .filter(|e| !used_exceptions.contains(&e.origin))
    {
        eprintln!(
            "picklegate: warning: exception for `{}` ({}) matched nothing in this scan",
            esc(&ex.path),
            esc(&ex.origin)
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
            outln!("{}: ok", esc(file.display()));
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
        Some(f) => esc(f.display()),
        None => "the built-in default (no .picklegate.yaml)".into(),
    };
    for p in paths {
        let rel = config.relative(p);
        outln!("{}", esc(&rel));
        outln!("  configuration: {from}");
        if config.is_excluded(&rel) {
            outln!("  excluded: yes (matches `exclude`), never scanned");
            continue;
        }
        let (policy, choice) = config.policy_for(&rel);
        let why = match choice {
            config::Choice::Rule {
                index,
                pattern,
                origin,
            } => {
                format!("rule #{index} ({}) matches `{}`", esc(origin), esc(pattern))
            }
            config::Choice::Default => "no rule matches; the configuration's `default`".into(),
            config::Choice::Builtin => "no configuration; the built-in default".into(),
        };
        outln!(
            "  policy: {} ({}), because {why}",
            esc(&policy.name),
            esc(&policy.origin)
        );
        outln!(
            "  allows {} globals; build: {}; persistent ids: {}",
            policy.allow_count(),
            policy.build.as_str(),
            policy.persistent_ids.as_str()
        );
        let mut digest = || lfs_oid(p).or_else(|| sha256_file(p));
        match config.exceptions.iter().find(|e| e.path == rel) {
            Some(e) => {
                let applies = config.exception_for(&rel, &mut digest).is_some();
                outln!(
                    "  exception: {} ({}){}",
                    esc(&e.reason),
                    esc(&e.origin),
                    if applies {
                        ""
                    } else {
                        " — does not apply now (expired or file changed)"
                    }
                );
            }
            None => outln!("  exception: none"),
        }
    }
    0
}

/// The files under `paths` (default: the current directory), with what was skipped and
/// what could not be read reported on stderr (`policy learn`, `init`); true when something
/// could not be read.
fn collect_reporting(paths: &[PathBuf]) -> (Vec<PathBuf>, bool) {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let (files, errors, skipped) = scan::collect(&paths);
    print_skipped(&skipped);
    for e in &errors {
        if let Some(msg) = &e.error {
            eprintln!("picklegate: error: {}", esc(msg));
        }
    }
    (files, !errors.is_empty())
}

fn run_learn(paths: &[PathBuf], name: &str) -> i32 {
    let (files, unreadable) = collect_reporting(paths);
    match learn::learn(&files, name) {
        Ok(yaml) => {
            let _ = write_stdout(&yaml);
            if !unreadable {
                0
            } else {
                2
            }
        }
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(e));
            2
        }
    }
}

/// Sanitizer options that stream large replacements into `target`'s directory.
fn spool_next_to(target: &Path, config: &Config) -> sanitize::Options {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sanitize::Options {
        spool_dir: Some(dir.to_path_buf()),
        scan: config.budget.scan_options(false),
        ..sanitize::Options::default()
    }
}

/// Whether two paths name the same file (the same inode, so links count too).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Where `sanitize` writes: `-o OUT`, or over the input (with a `.orig` unless `no_backup`).
struct Destination<'a> {
    output: Option<&'a Path>,
    in_place: bool,
    no_backup: bool,
}

fn run_sanitize(
    file: &Path,
    dest: &Destination<'_>,
    opts: sanitize::Options,
    format: Format,
    presets: &[String],
    args: &ConfigArgs,
    timeout: Option<f64>,
) -> i32 {
    let Destination {
        output,
        mut in_place,
        no_backup,
    } = *dest;
    // `-o FILE` naming the input itself (or a link to it) is an in-place rewrite, with
    // the backup `--in-place` keeps.
    let output = match output {
        Some(o) if same_file(o, file) => {
            in_place = true;
            None
        }
        o => o,
    };
    if output.is_none() && !in_place {
        eprintln!("picklegate: error: say where to write: -o OUT or --in-place");
        return 2;
    }
    let config = match load_config_with_presets(args, presets, true) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rel = config.relative(file);
    let (policy, _) = config.policy_for(&rel);
    let limit = match timeout {
        Some(t) => crate::budget::seconds(t),
        None => config.budget.limits.timeout,
    };
    let _clock = crate::budget::arm(limit);
    let json = format == Format::Json;
    let emit = |status: &str,
                changes: &[sanitize::Change],
                reason: Option<&str>,
                written: Option<&Path>| {
        if json {
            let v = serde_json::json!({
                "version": 1,
                "path": file.display().to_string(),
                "status": status,
                "output": written.map(|p| p.display().to_string()),
                "reason": reason,
                "changes": changes.iter().map(|c| serde_json::json!({
                    "offset": c.offset, "action": c.action, "what": c.what
                })).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            for c in changes {
                outln!(
                    "{}: byte {}: {} {}",
                    esc(file.display()),
                    c.offset,
                    esc(c.action),
                    esc(&c.what)
                );
            }
            match (status, reason, written) {
                ("clean", _, _) => {
                    outln!(
                        "{}: nothing outside policy; left untouched",
                        esc(file.display())
                    )
                }
                ("sanitized", _, Some(w)) => outln!(
                    "{}: sanitized replacement written to {}",
                    esc(file.display()),
                    esc(w.display())
                ),
                (_, Some(r), _) => {
                    eprintln!(
                        "picklegate: {}: cannot be sanitized: {}",
                        esc(file.display()),
                        esc(r)
                    )
                }
                _ => {}
            }
        }
    };
    let target = if in_place {
        file
    } else {
        output.unwrap_or(file)
    };
    let mut budget = config.budget;
    budget.limits.timeout = limit;
    let opts = sanitize::Options {
        spool_dir: spool_next_to(target, &config).spool_dir,
        scan: budget.scan_options(false),
        ..opts
    };
    match sanitize::sanitize_file(file, policy, &opts) {
        Ok(sanitize::Outcome::Clean) => {
            emit("clean", &[], None, None);
            0
        }
        Ok(sanitize::Outcome::Rebuilt {
            output: replacement,
            changes,
            ..
        }) => {
            if in_place && !no_backup {
                let mut orig = file.as_os_str().to_owned();
                orig.push(".orig");
                if let Err(e) = sanitize::copy_atomically(file, Path::new(&orig)) {
                    eprintln!(
                        "picklegate: error: cannot keep a backup of {}: {e}",
                        esc(file.display())
                    );
                    replacement.discard();
                    return 2;
                }
            }
            if let Err(e) = replacement.commit(target) {
                eprintln!(
                    "picklegate: error: cannot write {}: {e}",
                    esc(target.display())
                );
                return 2;
            }
            emit("sanitized", &changes, None, Some(target));
            0
        }
        Err(sanitize::SanitizeError::Refused(reason)) => {
            emit("refused", &[], Some(&reason), None);
            1
        }
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(e));
            2
        }
    }
}

/// `picklegate init`: scan with the built-in default, choose the presets that cover each
/// blocked file ([`crate::hint::covering_presets`]), learn what they still refuse, and write
/// the result (checked to load) as `.picklegate.yaml` at the repository root.
fn run_init(paths: &[PathBuf], force: bool, to_stdout: bool) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = git2::Repository::discover(&cwd)
        .ok()
        .and_then(|r| r.workdir().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.clone());
    let target = root.join(config::CONFIG_NAMES[0]);
    if !to_stdout && !force {
        if let Some(existing) = config::CONFIG_NAMES
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.exists())
        {
            eprintln!(
                "picklegate: error: {} exists; pass --force to replace it, or --stdout to print a proposal",
                esc(existing.display())
            );
            return 2;
        }
    }
    // An unreadable file is reported; the configuration covers what could be read.
    let (files, _unreadable) = collect_reporting(paths);
    let default = match policy::builtin_default() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(&e));
            return 2;
        }
    };
    let opts = ScanOptions::default();
    let mut chosen: Vec<&'static str> = Vec::new();
    let mut blocked = 0;
    let mut uncovered = 0;
    for f in &files {
        let r = scan::scan_file(f, &default, &opts);
        if r.status != scan::Status::Findings {
            continue;
        }
        blocked += 1;
        match crate::hint::covering_presets(&r.findings) {
            Some(names) => {
                for n in names {
                    if !chosen.contains(&n) {
                        chosen.push(n);
                    }
                }
            }
            None => uncovered += 1,
        }
    }
    // Presets in the order the library lists them, after the default.
    let mut extends = vec!["default".to_string()];
    extends.extend(
        policy::PRESETS
            .iter()
            .map(|p| p.0)
            .filter(|n| chosen.contains(n))
            .map(str::to_string),
    );
    let base = match policy::PolicySet::embedded().and_then(|mut set| {
        set.add_synthetic("init", &extends);
        set.resolve("init")
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(&e));
            return 2;
        }
    };
    let yaml = match learn::learn_over(&files, "repository", &base, &extends, "picklegate init") {
        Ok(y) => y,
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(e));
            return 2;
        }
    };
    // What is written must load: a configuration init cannot read back is a bug, not a file.
    if let Err(diags) = Config::from_text(&target.display().to_string(), &yaml, root.clone()) {
        print_diags(&diags, Some(&yaml));
        return 2;
    }
    if to_stdout {
        return match write_stdout(&yaml) {
            Ok(()) => 0,
            Err(_) => 2,
        };
    }
    if let Err(e) = sanitize::write_atomically(&target, yaml.as_bytes()) {
        eprintln!(
            "picklegate: error: cannot write {}: {e}",
            esc(target.display())
        );
        return 2;
    }
    eprintln!(
        "picklegate: wrote {}: extends [{}]; {} file(s) scanned, {blocked} blocked by the default policy, {uncovered} not covered by a preset (learned; `# !!!` lines name what is never allowed)",
        esc(target.display()),
        extends.join(", "),
        files.len()
    );
    0
}

/// `FILE` or `FILE!MEMBER`: the longest prefix before a `!` that is an existing file names
/// the file (a file name may itself contain `!`).
fn split_member(spec: &str) -> (&str, Option<&str>) {
    if Path::new(spec).exists() {
        return (spec, None);
    }
    for (i, _) in spec.match_indices('!').rev() {
        if Path::new(&spec[..i]).is_file() {
            return (&spec[..i], Some(&spec[i + 1..]));
        }
    }
    (spec, None)
}

fn run_disasm(spec: &str, format: DisasmFormat, plain: bool) -> i32 {
    let (file, member) = split_member(spec);
    let blob = match crate::container::blob::FileBlob::open(Path::new(file)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("picklegate: error: cannot read {}: {e}", esc(file));
            return 2;
        }
    };
    let style = match (format, plain) {
        (DisasmFormat::Json, _) => Style::Json,
        (_, true) => Style::Plain,
        _ => Style::Annotated,
    };
    let policy = match policy::builtin_default() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picklegate: error: {}", esc(&e));
            return 2;
        }
    };
    // The same walk as a scan finds what each reader unpickles: a container's members,
    // a compressed payload, a plain pickle.
    let (container, mut streams) = crate::container::pickle_streams(
        &blob,
        &policy,
        crate::pickle::vm::Budgets::default(),
        crate::container::Limits::default(),
        member,
    );
    streams.dedup_by(|a, b| a.member == b.member && a.reading == b.reading && a.data.is_none());
    let plain_pickle = streams.iter().all(|s| s.member.is_none());
    // A container with one pickle stream (a compressed joblib file): that stream.
    let one = match (member, &streams[..]) {
        (None, [only]) if !plain_pickle => only.member.clone(),
        _ => None,
    };
    let member = member.or(one.as_deref());
    if one.is_some() {
        streams = crate::container::pickle_streams(
            &blob,
            &policy,
            crate::pickle::vm::Budgets::default(),
            crate::container::Limits::default(),
            member,
        )
        .1;
    }
    let mut out = StdoutText::new();
    let data: Vec<u8>;
    let (title, bytes): (String, &[u8]) =
        match member {
            None if plain_pickle => {
                // The blob already open: no second open of the file.
                let whole = match usize::try_from(crate::container::blob::Blob::len(&blob))
                    .map_err(std::io::Error::other)
                    .and_then(|n| crate::container::blob::Blob::read_at(&blob, 0, n))
                {
                    Ok(d) => d.into_owned(),
                    Err(e) => {
                        eprintln!("picklegate: error: cannot read {}: {e}", esc(file));
                        return 2;
                    }
                };
                // Not a pickle by CPython's rules, and not even a PROTO opcode to start a
                // listing at: nothing to disassemble.
                if streams.is_empty() && whole.first() != Some(&0x80) {
                    eprintln!(
                        "picklegate: error: {} holds no pickle ({container})",
                        esc(file)
                    );
                    return 2;
                }
                data = whole;
                (file.to_string(), &data)
            }
            None => {
                // A container: list the readings, each named the way the reports name members.
                if style == Style::Json {
                    let list: Vec<serde_json::Value> = streams
                        .iter()
                        .map(|s| serde_json::json!({"member": s.member, "reading": s.reading}))
                        .collect();
                    let v = serde_json::json!({"path": file, "format": container, "streams": list});
                    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    outln!(
                        "{}: {container}, {} pickle stream(s):",
                        esc(file),
                        streams.len()
                    );
                    for s in &streams {
                        outln!(
                            "  {}!{}  (read by {})",
                            esc(file),
                            esc(s.member.as_deref().unwrap_or("")),
                            s.reading
                        );
                    }
                    outln!("disassemble one with: picklegate disasm 'FILE!MEMBER'");
                }
                return 0;
            }
            Some(m) => {
                match streams.iter().find_map(|s| s.data.as_deref()) {
                    Some(d) => (format!("{file}!{m}"), d),
                    None => {
                        let names: Vec<String> = streams
                            .iter()
                            .filter_map(|s| s.member.as_deref().map(esc))
                            .collect();
                        eprintln!(
                    "picklegate: error: {} has no pickle member `{}` (its pickle members: {})",
                    esc(file),
                    esc(m),
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                );
                        return 2;
                    }
                }
            }
        };
    disasm::disassemble_into(&title, bytes, style, &mut out);
    if style == Style::Json {
        out.buf.push('\n');
    }
    if out.finish() {
        0
    } else {
        2
    }
}
