//! JSON report, contract version 1:
//! `{"version":1,"tool":{"name","version"},"exit_code","files":[{"path","format","status","findings":[{"rule","severity",
//! "member","offset","global","message",...}]}],"summary":{"files","clean","findings","errors"}}`.
//! Fields may be added; none is removed or renamed within a version.

use super::Summary;
use crate::finding::{Finding, Related};
use crate::scan::FileReport;
use serde::Serialize;

pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'static str,
    severity: &'static str,
    level: &'static str,
    member: Option<&'a str>,
    offset: u64,
    length: u64,
    global: Option<&'a str>,
    message: &'a str,
    related: &'a [Related],
    policy: Option<&'a str>,
    /// Which loader's reading of the bytes produced the finding.
    reading: Option<&'a str>,
    /// For a refused global: the allow mode its use needs (`reference`, `new`, `call`).
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    /// Waived by a configuration exception: `{kind, justification, location}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<&'a crate::finding::Suppression>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    format: &'a str,
    status: &'static str,
    streams: usize,
    bytes_read: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a crate::scan::Source>,
    findings: Vec<JsonFinding<'a>>,
    /// Every reading a loader performs, with the globals it imports.
    readings: &'a [crate::container::Reading],
    /// The fix for the whole file when it is blocked (a preset, the sanitize command).
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    tool: Tool,
    /// The exit code of the run (0 nothing outside policy, 1 findings, 2 unreadable input).
    exit_code: i32,
    files: Vec<JsonFile<'a>>,
    summary: Summary,
}

fn finding(f: &Finding) -> JsonFinding<'_> {
    JsonFinding {
        rule: f.rule.id(),
        severity: f.severity.as_str(),
        level: f.level.as_str(),
        member: f.member.as_deref(),
        offset: f.offset,
        length: f.length,
        global: f.global.as_deref(),
        message: &f.message,
        related: &f.related,
        policy: f.policy.as_deref(),
        reading: f.reading,
        mode: f.mode.map(crate::policy::Mode::as_str),
        suppressed: f.suppressed.as_ref(),
    }
}

pub fn render(reports: &[FileReport]) -> String {
    render_with(
        reports,
        &super::Run::of(reports, std::time::SystemTime::now()),
    )
}

pub fn render_with(reports: &[FileReport], run: &super::Run) -> String {
    let report = JsonReport {
        version: VERSION,
        tool: Tool {
            name: "picklegate",
            version: env!("CARGO_PKG_VERSION"),
        },
        exit_code: run.exit_code,
        files: reports
            .iter()
            .map(|r| JsonFile {
                path: &r.path,
                format: r.format,
                status: r.status.as_str(),
                streams: r.streams,
                bytes_read: r.bytes_read,
                error: r.error.as_deref(),
                exception: r.exception.as_deref(),
                source: r.source.as_ref(),
                findings: r.findings.iter().map(finding).collect(),
                readings: &r.readings,
                help: r.help.as_deref(),
            })
            .collect(),
        summary: Summary::of(reports),
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
