//! SARIF 2.1.0: one run, every rule described, results with namespaced partial
//! fingerprints and a line-1 region carrying the byte offset and length (pickles have no
//! lines), the container member and the global in properties.

use super::fingerprint;
use crate::config::Level;
use crate::finding::{Rule, Severity};
use crate::scan::FileReport;
use serde_json::{json, Value};

/// The result's level follows the gate: a finding at level deny fails it, so it is an
/// error whatever the rule's severity; a warn-level one is a warning (a note for notes).
fn level(sev: Severity, lvl: Level) -> &'static str {
    match (lvl, sev) {
        (Level::Deny, _) => "error",
        (_, Severity::Note) => "note",
        _ => "warning",
    }
}

/// GitHub's `security-severity` (CVSS-like) per severity.
fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "9.8",
        Severity::Error => "7.5",
        Severity::Warning => "4.0",
        Severity::Note => "1.0",
    }
}

fn rule_name(r: Rule) -> String {
    // SARIF1001: a name must differ from the id (compared without case).
    if r == Rule::TorchScript {
        return "TorchScriptArchive".into();
    }
    r.id()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub fn render(reports: &[FileReport]) -> String {
    render_with(
        reports,
        &super::Run::of(reports, std::time::SystemTime::now()),
    )
}

pub fn render_with(reports: &[FileReport], run: &super::Run) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "name": rule_name(*r),
                "shortDescription": {"text": r.description()},
                "fullDescription": {"text": r.description()},
                "help": {
                    "text": r.help(),
                    "markdown": format!("**{}**\n\n{}", r.description(), r.help()),
                },
                "defaultConfiguration": {"level": level(r.severity(), r.default_level())},
                "properties": {
                    "tags": ["security", "pickle", "supply-chain"],
                    "precision": "high",
                    "security-severity": security_severity(r.severity()),
                },
            })
        })
        .collect();
    let mut results = Vec::new();
    for rep in reports {
        for f in &rep.findings {
            let index = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
            let mut props = serde_json::Map::new();
            props.insert("severity".into(), json!(f.severity.as_str()));
            if let Some(m) = &f.member {
                props.insert("member".into(), json!(m));
            }
            if let Some(g) = &f.global {
                props.insert("global".into(), json!(g));
            }
            if let Some(p) = &f.policy {
                props.insert("policy".into(), json!(p));
            }
            if let Some(s) = &rep.source {
                props.insert("blob".into(), json!(s.blob));
            }
            let place = match &f.member {
                Some(m) => format!(" (in `{m}`, byte {})", f.offset),
                None => format!(" (byte {})", f.offset),
            };
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index,
                "level": level(f.severity, f.level),
                "message": {"text": format!("{}{place}", f.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": fingerprint::uri(&rep.path)},
                        "region": {
                            "startLine": 1,
                            "byteOffset": f.offset,
                            "byteLength": f.length.max(1),
                        },
                    },
                }],
                "partialFingerprints": {"picklegateFinding/v1": fingerprint::of(&rep.path, f)},
                "properties": Value::Object(props),
            });
            // A waived finding stays a result, suppressed by the configuration (SARIF
            // §3.35: kind `external`, accepted, with the exception's reason).
            if let (Some(s), Some(obj)) = (&f.suppressed, result.as_object_mut()) {
                obj.insert(
                    "suppressions".into(),
                    json!([{
                        "kind": s.kind,
                        "status": "accepted",
                        "justification": format!("{} (exception at {})", s.justification, s.location),
                    }]),
                );
            }
            results.push(result);
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "picklegate",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/picklegate/picklegate",
                    "rules": rules,
                },
            },
            "invocations": [{
                "executionSuccessful": run.exit_code != 2,
                "exitCode": run.exit_code,
                "startTimeUtc": super::utc_timestamp(run.start),
                "endTimeUtc": super::utc_timestamp(run.end),
            }],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
