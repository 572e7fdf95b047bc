//! Findings: stable rule ids, severities and byte spans.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Whether a finding of this severity fails the gate.
    pub fn fails(self) -> bool {
        self >= Severity::Warning
    }
}

/// Every rule picklegate reports. The ids are a public contract (JSON, SARIF, policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    CodeExecution,
    GlobalNotAllowed,
    UnresolvedGlobal,
    UnresolvedCall,
    BuildOnGlobal,
    BuildNotAllowed,
    MethodCall,
    ExtensionCode,
    PersistentId,
    MalformedPickle,
    BudgetExceeded,
    FrameViolation,
    TrailingPickle,
    TrailingData,
    ZipTampering,
    ZipDuplicateMember,
    ZipOverlappingMembers,
    HiddenPickle,
    ExtensionMismatch,
    NotInspectable,
    StorageReference,
    TorchScript,
    LegacyMagic,
    LfsPointer,
    PolicyLoosened,
}

impl Rule {
    pub const ALL: [Rule; 25] = [
        Rule::CodeExecution,
        Rule::GlobalNotAllowed,
        Rule::UnresolvedGlobal,
        Rule::UnresolvedCall,
        Rule::BuildOnGlobal,
        Rule::BuildNotAllowed,
        Rule::MethodCall,
        Rule::ExtensionCode,
        Rule::PersistentId,
        Rule::MalformedPickle,
        Rule::BudgetExceeded,
        Rule::FrameViolation,
        Rule::TrailingPickle,
        Rule::TrailingData,
        Rule::ZipTampering,
        Rule::ZipDuplicateMember,
        Rule::ZipOverlappingMembers,
        Rule::HiddenPickle,
        Rule::ExtensionMismatch,
        Rule::NotInspectable,
        Rule::StorageReference,
        Rule::TorchScript,
        Rule::LegacyMagic,
        Rule::LfsPointer,
        Rule::PolicyLoosened,
    ];

    /// The level a finding of this rule has before the configuration's `levels:`: deny,
    /// except a Git LFS pointer (the object may simply not be fetched; `--ci` makes it deny).
    pub fn default_level(self) -> crate::config::Level {
        if self == Rule::LfsPointer {
            crate::config::Level::Warn
        } else {
            crate::config::Level::Deny
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Rule::CodeExecution => "code-execution",
            Rule::GlobalNotAllowed => "global-not-allowed",
            Rule::UnresolvedGlobal => "unresolved-global",
            Rule::UnresolvedCall => "unresolved-call",
            Rule::BuildOnGlobal => "build-on-global",
            Rule::BuildNotAllowed => "build-not-allowed",
            Rule::MethodCall => "method-call",
            Rule::ExtensionCode => "extension-code",
            Rule::PersistentId => "persistent-id",
            Rule::MalformedPickle => "malformed-pickle",
            Rule::BudgetExceeded => "budget-exceeded",
            Rule::FrameViolation => "frame-violation",
            Rule::TrailingPickle => "trailing-pickle",
            Rule::TrailingData => "trailing-data",
            Rule::ZipTampering => "zip-tampering",
            Rule::ZipDuplicateMember => "zip-duplicate-member",
            Rule::ZipOverlappingMembers => "zip-overlapping-members",
            Rule::HiddenPickle => "hidden-pickle",
            Rule::ExtensionMismatch => "extension-mismatch",
            Rule::NotInspectable => "not-inspectable",
            Rule::StorageReference => "storage-reference",
            Rule::TorchScript => "torchscript",
            Rule::LegacyMagic => "legacy-magic",
            Rule::LfsPointer => "lfs-pointer",
            Rule::PolicyLoosened => "policy-loosened",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::CodeExecution
            | Rule::UnresolvedGlobal
            | Rule::UnresolvedCall
            | Rule::BuildOnGlobal
            | Rule::ExtensionCode
            | Rule::FrameViolation
            | Rule::ZipDuplicateMember
            | Rule::LegacyMagic => Severity::Critical,
            Rule::GlobalNotAllowed
            | Rule::BuildNotAllowed
            | Rule::MethodCall
            | Rule::PersistentId
            | Rule::MalformedPickle
            | Rule::BudgetExceeded
            | Rule::ZipTampering
            | Rule::ZipOverlappingMembers
            | Rule::HiddenPickle
            | Rule::ExtensionMismatch
            | Rule::NotInspectable
            | Rule::StorageReference
            | Rule::TorchScript
            | Rule::PolicyLoosened => Severity::Error,
            Rule::TrailingPickle | Rule::TrailingData => Severity::Warning,
            Rule::LfsPointer => Severity::Note,
        }
    }

    /// One sentence: what the rule means.
    pub fn description(self) -> &'static str {
        match self {
            Rule::CodeExecution => "The pickle imports a known code-execution sink: loading it runs code.",
            Rule::GlobalNotAllowed => "The pickle imports a global that the policy does not allow.",
            Rule::UnresolvedGlobal => {
                "STACK_GLOBAL operands are computed at load time, so the imported name cannot be known statically."
            }
            Rule::UnresolvedCall => "A call whose callable is computed at load time rather than an allowed global.",
            Rule::BuildOnGlobal => "BUILD sets attributes on a class, function or module (a setattr gadget).",
            Rule::BuildNotAllowed => "BUILD (__setstate__) on an object the policy does not allow it for.",
            Rule::MethodCall => {
                "APPEND(S)/SETITEM(S)/ADDITEMS call methods of an object that is not a plain list, dict or set."
            }
            Rule::ExtensionCode => {
                "EXT1/EXT2/EXT4 import whatever the loader's copyreg extension registry maps the code to."
            }
            Rule::PersistentId => "A persistent id the policy does not allow is handed to the loader's persistent_load.",
            Rule::MalformedPickle => {
                "The pickle is truncated or invalid; opcodes before the failure still execute when loaded."
            }
            Rule::BudgetExceeded => "The pickle exceeds a resource budget and was not fully analysed.",
            Rule::FrameViolation => {
                "An opcode straddles a FRAME boundary; pickle.py and the C unpickler read such streams differently."
            }
            Rule::TrailingPickle => "Another pickle follows the first STOP; loaders that read on will execute it.",
            Rule::TrailingData => "Bytes follow the last pickle that are not part of it.",
            Rule::ZipTampering => {
                "The zip disagrees with itself (CRC, encryption/patch flags, local vs central names): Python's zipfile refuses it, PyTorch's reader does not."
            }
            Rule::ZipDuplicateMember => "Two members share a name; different readers load different copies.",
            Rule::ZipOverlappingMembers => "Members overlap in the archive; their bytes are shared or hidden.",
            Rule::HiddenPickle => "A pickle member that torch.load does not read by itself (a crafted data.pkl or custom loader can).",
            Rule::ExtensionMismatch => "The file name claims a format that cannot hold pickles, but the content is pickle-bearing.",
            Rule::NotInspectable => "Content picklegate cannot look inside (7z, unsupported compression, read errors).",
            Rule::StorageReference => "A torch persistent id names a storage that is missing or smaller than its dtype and size require.",
            Rule::TorchScript => "A TorchScript archive: torch.jit.load runs its code.",
            Rule::LegacyMagic => "A legacy torch file whose magic number is computed instead of written as a literal.",
            Rule::LfsPointer => "A Git LFS pointer: the model content was not available to inspect.",
            Rule::PolicyLoosened => {
                "The change edits the gate's configuration so that more would pass once it is merged."
            }
        }
    }

    /// How to resolve a finding of this rule.
    pub fn help(self) -> &'static str {
        match self {
            Rule::CodeExecution | Rule::UnresolvedGlobal | Rule::UnresolvedCall | Rule::BuildOnGlobal => {
                "Do not load this file. Remove it, re-export the model from a trusted source, or run `picklegate sanitize`."
            }
            Rule::GlobalNotAllowed => {
                "If this global is trusted, add it to an `allow:` list in .picklegate.yaml; otherwise remove the file."
            }
            Rule::BuildNotAllowed | Rule::MethodCall => {
                "Allow the class in the policy (`allow:`, `containers:`, `build: instances`) only if you trust it."
            }
            Rule::ExtensionCode => "Extension codes are never needed by ML checkpoints; remove or sanitize the file.",
            Rule::PersistentId => "Only torch storages are expected as persistent ids; check where the file came from.",
            Rule::MalformedPickle | Rule::FrameViolation => {
                "Regenerate the file with a standard pickler; a corrupted or hand-crafted stream cannot be judged safe."
            }
            Rule::BudgetExceeded => "Inspect the file by hand; raise budgets only for files you trust.",
            Rule::TrailingPickle | Rule::TrailingData => {
                "Strip the trailing bytes (`picklegate sanitize`) or regenerate the file."
            }
            Rule::ZipTampering | Rule::ZipDuplicateMember | Rule::ZipOverlappingMembers | Rule::HiddenPickle => {
                "Re-save the model with torch.save from a trusted source; a standard writer never produces this."
            }
            Rule::ExtensionMismatch => "Rename the file to what it is, or replace it with the format its name claims.",
            Rule::NotInspectable => "Store models uncompressed or in a format picklegate reads (zip, tar, gzip, bz2, xz, zstd, lz4).",
            Rule::StorageReference => "Re-save the checkpoint; inconsistent storage metadata is a known memory-safety attack on torch.load.",
            Rule::TorchScript => "Load it only if you trust its source, or allow the rule for this path in .picklegate.yaml.",
            Rule::LegacyMagic => "Do not load this file; re-save it with a current torch.save.",
            Rule::LfsPointer => "Fetch LFS objects (git lfs pull) in CI so picklegate can scan the real content.",
            Rule::PolicyLoosened => {
                "Review each loosening; the scan used the base revision's policy. Land the configuration change on its own, approved by its owners."
            }
        }
    }

    /// Critical rules mean the file runs code or is read differently by different
    /// loaders: lowering or waiving them needs an explicit acceptance or a pin.
    pub fn is_critical(self) -> bool {
        self.severity() == Severity::Critical
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// A second location that explains a finding (e.g. the call site of an import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Related {
    pub offset: u64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// Member path inside a container (`outer!inner`), `None` for the file itself.
    pub member: Option<String>,
    /// Absolute byte offset in the member (or file) of the primary opcode.
    pub offset: u64,
    pub length: u64,
    /// `module.qualname` when the finding is about a global.
    pub global: Option<String>,
    pub message: String,
    pub related: Vec<Related>,
    /// The policy that refused it and where that policy is defined.
    pub policy: Option<String>,
    /// `deny` fails the gate, `warn` only reports (set from the configuration's levels).
    pub level: crate::config::Level,
    /// A disassembly excerpt around the opcodes, for the human report.
    pub excerpt: Option<Excerpt>,
    /// The reading that produced it: which loader's view of the bytes (`pickle`,
    /// `joblib`, `torch`, `zipfile`, `npy`, `torch-legacy`, `tarfile`, ...).
    pub reading: Option<&'static str>,
    /// A count of findings left out of the report (a findings cap), not a limit of the
    /// analysis: the file was still read completely.
    pub counts_only: bool,
    /// For a refused global: the use the pickle makes of it (the allow mode it needs).
    pub mode: Option<crate::policy::Mode>,
    /// Waived by a configuration exception: still reported everywhere, never failing.
    pub suppressed: Option<Suppression>,
}

/// Why a finding is waived: the exception that covers it (SARIF `suppressions`, kind
/// `external`, because the waiver lives in the configuration, not in the scanned file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub kind: &'static str,
    /// The exception's `reason`.
    pub justification: String,
    /// Where the exception is written (`file:line`).
    pub location: String,
}

/// A few disassembly lines with the spans of the primary and related opcodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    pub text: String,
    pub primary: (usize, usize),
    pub related: Vec<(usize, usize, String)>,
}

impl Finding {
    pub fn new(rule: Rule, offset: u64, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity: rule.severity(),
            member: None,
            offset,
            length: 1,
            global: None,
            message: message.into(),
            related: Vec::new(),
            policy: None,
            level: rule.default_level(),
            excerpt: None,
            reading: None,
            counts_only: false,
            mode: None,
            suppressed: None,
        }
    }

    /// A `budget-exceeded` finding that only counts findings left out of the report.
    pub fn omitted(offset: u64, message: impl Into<String>) -> Self {
        Finding {
            counts_only: true,
            ..Finding::new(Rule::BudgetExceeded, offset, message)
        }
    }
}

/// Longest text from the input kept in a report field (a global's name, a message).
/// Names from a pickle can be megabytes; a report repeats them in several places.
pub const MAX_TEXT: usize = 4096;

/// `text` cut to [`MAX_TEXT`] bytes (on a character boundary), saying how much was cut.
pub fn clip(mut text: String) -> String {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("…(+{cut} bytes)"));
    text
}

impl Finding {
    /// Whether the finding fails the gate: level deny and not waived.
    pub fn fails(&self) -> bool {
        self.level == crate::config::Level::Deny && self.suppressed.is_none()
    }

    /// The finding with every input-derived text field clipped ([`clip`]).
    pub fn clipped(mut self) -> Finding {
        self.message = clip(std::mem::take(&mut self.message));
        self.global = self.global.map(clip);
        self
    }
}
