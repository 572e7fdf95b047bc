//! Allow modes, getattr resolution and sink carve-outs, on hand-assembled pickles whose
//! every opcode is written out (protocol 2, text GLOBALs). The policies extend nothing,
//! so that the presets can change without changing what these tests decide.

use super::*;
use crate::config::Level;
use crate::pickle::vm::{self, Budgets};
use crate::policy::PolicySet;

/// What the hand-assembled pickles need besides the entry under test.
const BASE: &str = "      - copyreg._reconstructor\n      - copyreg.__newobj__\n      - {name: builtins.object, mode: reference}\n      - {name: builtins.str, mode: reference}\n      - collections.OrderedDict\n";

fn policy(allow: &str) -> Policy {
    let yaml =
        format!("version: 1\npolicies:\n  p:\n    build: instances\n    allow:\n{BASE}{allow}");
    let mut set = PolicySet::embedded().unwrap_or_else(|e| panic!("{e}"));
    let parsed = crate::config::parse("t.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    set.add("t.yaml", parsed.policies);
    set.resolve("p").unwrap_or_else(|e| panic!("{e}"))
}

fn findings(p: &Policy, body: &[u8]) -> Vec<Finding> {
    let mut data = vec![0x80, 2];
    data.extend_from_slice(body);
    let g = vm::analyze(&data, 0, Budgets::default());
    check(&g, &data, p)
}

fn rules(f: &[Finding]) -> Vec<(Rule, Option<String>)> {
    f.iter().map(|f| (f.rule, f.global.clone())).collect()
}

fn g(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

fn s(text: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(text.len() as u32).to_le_bytes());
    v.extend_from_slice(text.as_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `getattr(zoneinfo.ZoneInfo, '_unpickle')('Europe/Paris', 1)`, as CPython pickles a
/// zoneinfo time zone.
fn zoneinfo() -> Vec<u8> {
    cat(&[
        &g("builtins", "getattr"),
        &g("zoneinfo", "ZoneInfo"),
        &s("_unpickle"),
        b"\x86R",
        &s("Europe/Paris"),
        b"K\x01\x86R.",
    ])
}

#[test]
fn getattr_of_an_allowed_global_is_checked_as_the_exact_name() {
    let p = policy(
        "      - {name: zoneinfo.ZoneInfo, mode: reference}\n      - zoneinfo.ZoneInfo._unpickle\n",
    );
    assert_eq!(rules(&findings(&p, &zoneinfo())), vec![]);

    // Without the dotted name: refused as that name, not as builtins.getattr.
    let p = policy("      - {name: zoneinfo.ZoneInfo, mode: reference}\n");
    let f = findings(&p, &zoneinfo());
    assert_eq!(
        rules(&f),
        vec![(
            Rule::GlobalNotAllowed,
            Some("zoneinfo.ZoneInfo._unpickle".into())
        )]
    );
    assert_eq!(f[0].mode, Some(Mode::Call));
    assert!(f[0]
        .message
        .contains("builtins.getattr(zoneinfo.ZoneInfo, \"_unpickle\")"));
    // The call site of the resolved name is linked to its finding.
    assert!(f[0].related.iter().any(|r| r.label.contains("REDUCE")));
}

#[test]
fn any_other_getattr_stays_a_sink() {
    let p = policy(
        "      - {name: zoneinfo.ZoneInfo, mode: reference}\n      - zoneinfo.ZoneInfo._unpickle\n",
    );
    // A computed attribute name (the result of a call), not a literal.
    let computed = cat(&[
        &g("builtins", "getattr"),
        &g("zoneinfo", "ZoneInfo"),
        &g("builtins", "str"),
        &s("_unpickle"),
        b"\x85R\x86R.",
    ]);
    assert!(rules(&findings(&p, &computed))
        .contains(&(Rule::CodeExecution, Some("builtins.getattr".into()))));
    // A dotted attribute (getattr does not walk dots: no exact name to check).
    let dotted = cat(&[
        &g("builtins", "getattr"),
        &g("zoneinfo", "ZoneInfo"),
        &s("_unpickle.x"),
        b"\x86R.",
    ]);
    assert!(rules(&findings(&p, &dotted))
        .contains(&(Rule::CodeExecution, Some("builtins.getattr".into()))));
    // getattr itself stored as a value (then callable by anything that receives it).
    let stored = cat(&[
        &g("builtins", "getattr"),
        b"q\x00",
        &g("zoneinfo", "ZoneInfo"),
        &s("_unpickle"),
        b"\x86R0h\x00\x85.",
    ]);
    assert!(rules(&findings(&p, &stored))
        .contains(&(Rule::CodeExecution, Some("builtins.getattr".into()))));
    // Reaching interpreter internals through an allowed class is a sink by its name.
    let dunder = cat(&[
        &g("builtins", "getattr"),
        &g("builtins", "str"),
        &s("__globals__"),
        b"\x86R.",
    ]);
    assert!(rules(&findings(&p, &dunder))
        .contains(&(Rule::CodeExecution, Some("builtins.str.__globals__".into()))));
}

#[test]
fn modes_follow_how_the_pickle_uses_a_global() {
    // NEWOBJ + BUILD: `new` suffices; REDUCE of the same class needs `call`.
    let newobj = cat(&[&g("m", "C"), b")\x81}q\x00b."]);
    let reduce = cat(&[&g("m", "C"), b")R}b."]);
    let p_new = policy("      - {name: m.C, mode: new}\n");
    assert_eq!(rules(&findings(&p_new, &newobj)), vec![]);
    let f = findings(&p_new, &reduce);
    assert_eq!(rules(&f)[0], (Rule::GlobalNotAllowed, Some("m.C".into())));
    assert!(
        f[0].message.contains("is called by REDUCE"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.contains("mode `new`"), "{}", f[0].message);
    assert_eq!(f[0].mode, Some(Mode::Call));

    // A function stored in an allowed call's arguments: `reference` suffices; called, not.
    let stored = cat(&[
        &g("collections", "OrderedDict"),
        b"(",
        &g("m", "f"),
        b"\x85\x85lR.",
    ]);
    let called = cat(&[&g("m", "f"), b")R."]);
    let p_ref = policy("      - {name: m.f, mode: reference}\n");
    assert!(!rules(&findings(&p_ref, &stored))
        .iter()
        .any(|r| r.1.as_deref() == Some("m.f")));
    assert_eq!(
        rules(&findings(&p_ref, &called)),
        vec![(Rule::GlobalNotAllowed, Some("m.f".into()))]
    );
    // `reference` also refuses NEWOBJ.
    let p_ref_c = policy("      - {name: m.C, mode: reference}\n");
    assert!(
        rules(&findings(&p_ref_c, &newobj)).contains(&(Rule::GlobalNotAllowed, Some("m.C".into())))
    );
}

#[test]
fn copyreg_reconstructors_instantiate_their_class_argument() {
    let p_new = policy("      - {name: m.C, mode: new}\n");
    // _reconstructor(C, object, None): object.__new__(C), no __init__.
    let plain = cat(&[
        &g("copy_reg", "_reconstructor"),
        b"(",
        &g("m", "C"),
        &g("__builtin__", "object"),
        b"NtR}b.",
    ]);
    assert_eq!(rules(&findings(&p_new, &plain)), vec![]);
    // _reconstructor(C, dict, state): dict.__init__ runs, so the base is called.
    let based = cat(&[
        &g("copy_reg", "_reconstructor"),
        b"(",
        &g("m", "C"),
        &g("m", "Base"),
        b"NtR.",
    ]);
    let p = policy("      - {name: m.C, mode: new}\n      - {name: m.Base, mode: new}\n");
    let f = findings(&p, &based);
    assert_eq!(
        rules(&f),
        vec![(Rule::GlobalNotAllowed, Some("m.Base".into()))]
    );
    assert_eq!(f[0].mode, Some(Mode::Call));
    // __newobj__(C): C.__new__(C).
    let newobj = cat(&[&g("copyreg", "__newobj__"), &g("m", "C"), b"\x85R."]);
    assert_eq!(rules(&findings(&p_new, &newobj)), vec![]);
    let p_ref = policy("      - {name: m.C, mode: reference}\n");
    assert_eq!(
        rules(&findings(&p_ref, &newobj)),
        vec![(Rule::GlobalNotAllowed, Some("m.C".into()))]
    );
}

#[test]
fn carve_outs_hold_only_up_to_their_mode() {
    // numpy.memmap as the subtype of _reconstruct: allowed as a reference; called, a sink.
    let p = policy("      - {name: numpy.memmap, mode: reference}\n      - numpy.core.multiarray._reconstruct\n");
    let as_subtype = cat(&[
        &g("numpy.core.multiarray", "_reconstruct"),
        b"(",
        &g("numpy", "memmap"),
        b"K\x00\x85C\x01btR.",
    ]);
    assert_eq!(rules(&findings(&p, &as_subtype)), vec![]);
    let called = cat(&[&g("numpy", "memmap"), &s("/etc/passwd"), b"\x85R."]);
    let f = findings(&p, &called);
    assert_eq!(
        rules(&f),
        vec![(Rule::CodeExecution, Some("numpy.memmap".into()))]
    );
    assert!(
        f[0].message.contains("opens, creates or truncates a file"),
        "{}",
        f[0].message
    );
    // Not allowed at all: still code execution when called, plain refusal as a value.
    let none = policy("      - numpy.core.multiarray._reconstruct\n");
    assert_eq!(
        rules(&findings(&none, &called)),
        vec![(Rule::CodeExecution, Some("numpy.memmap".into()))]
    );
    assert_eq!(
        rules(&findings(&none, &as_subtype)),
        vec![(Rule::GlobalNotAllowed, Some("numpy.memmap".into()))]
    );
    // A policy cannot allow it beyond the carve-out without accepting code execution.
    let mut set = PolicySet::embedded().unwrap_or_else(|e| panic!("{e}"));
    let parsed = crate::config::parse(
        "t.yaml",
        "version: 1\npolicies:\n  p:\n    allow:\n      - {name: numpy.memmap, mode: new}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    set.add("t.yaml", parsed.policies);
    let err = set
        .resolve("p")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("is a code-execution sink"), "{err}");
}

#[test]
fn an_append_log_of_allowed_pickles_only_warns() {
    let p = policy("      - m.C\n");
    let mut two = cat(&[&g("m", "C"), b")R."]);
    two.extend_from_slice(&[0x80, 2]);
    two.extend_from_slice(&cat(&[&g("m", "C"), b")R."]));
    let f = findings(&p, &two);
    assert_eq!(rules(&f), vec![(Rule::TrailingPickle, None)]);
    assert_eq!(f[0].level, Level::Warn);
    // One refused effect anywhere: the trailing pickle fails the gate as before.
    let mut bad = cat(&[&g("m", "C"), b")R."]);
    bad.extend_from_slice(&[0x80, 2]);
    bad.extend_from_slice(&cat(&[&g("m", "D"), b")R."]));
    let f = findings(&p, &bad);
    assert!(f.iter().all(|f| f.level == Level::Deny), "{f:?}");
    assert!(f.iter().any(|f| f.rule == Rule::TrailingPickle));
}

#[test]
fn an_unknown_module_does_not_hide_what_follows_it() {
    // `mycompany` may exist where the file is loaded: the payload after it runs then.
    let mut data = vec![0x80, 4];
    data.extend_from_slice(&cat(&[
        &g("mycompany.models", "Net"),
        b")\x81",
        &g("os", "system"),
        &s("id"),
        b"\x85R.",
    ]));
    assert!(vm::looks_like_pickle(&data));
    // A label list is still not a pickle: GLOBAL `ats dogs`, then BUILD on one item fails.
    assert!(!vm::looks_like_pickle(b"cats\ndogs\nbirds\nfish\n"));
}

#[test]
fn rebuilders_that_call_an_argument_need_it_callable() {
    // torch's _rebuild_from_type_v2(func, new_type, args, state) calls func(*args).
    let body = cat(&[
        &g("torch._tensor", "_rebuild_from_type_v2"),
        b"(",
        &g("m", "f"),
        &g("m", "T"),
        b")}tR.",
    ]);
    let refs = policy(
        "      - torch._tensor._rebuild_from_type_v2\n      - {name: m.f, mode: reference}\n      - {name: m.T, mode: new}\n",
    );
    let f = findings(&refs, &body);
    assert_eq!(
        rules(&f),
        vec![(Rule::GlobalNotAllowed, Some("m.f".into()))]
    );
    assert!(
        f[0].message.contains("is called by REDUCE"),
        "{}",
        f[0].message
    );
    let called = policy(
        "      - torch._tensor._rebuild_from_type_v2\n      - m.f\n      - {name: m.T, mode: new}\n",
    );
    assert_eq!(rules(&findings(&called, &body)), vec![]);
    // numpy.memmap handed to numpy's RNG rebuilder is called by it: a sink there.
    let rng = cat(&[
        &g("numpy.random._pickle", "__generator_ctor"),
        &s("MT19937"),
        &g("numpy", "memmap"),
        b"\x86R.",
    ]);
    let p = policy(
        "      - numpy.random._pickle.__generator_ctor\n      - {name: numpy.memmap, mode: reference}\n",
    );
    assert_eq!(
        rules(&findings(&p, &rng)),
        vec![(Rule::CodeExecution, Some("numpy.memmap".into()))]
    );
}
