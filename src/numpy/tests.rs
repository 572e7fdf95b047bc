//! Unit tests for the numpy model; tests/numpy_dtypes.rs checks thousands more cases
//! against the real numpy.

use super::dtype::{self, Dtype, DtypeError, TypeNum};
use super::literal::{literal_eval, literal_eval_dropping_long_suffix, Lit, LitErrorKind};

fn s(x: &str) -> Lit {
    Lit::Str(x.into())
}

fn size_obj(spec: &str) -> Option<(i64, bool)> {
    dtype::from_str(spec)
        .ok()
        .map(|d| (d.itemsize, d.hasobject()))
}

#[test]
fn string_literals_in_every_form() {
    for src in [
        "'|O'",
        "\"|O\"",
        "'''|O'''",
        "\"\"\"|O\"\"\"",
        "'|' 'O'",
        "'|' \"O\"",
        "('|'\n 'O')",
        "u'|O'",
        "U'|O'",
        "r'|O'",
        "R'|' u'O'",
        "'\\x7cO'",
        "'\\174\\117'",
        "'\\u007cO'",
        "'\\U0000007cO'",
        "'|\\\nO'",
        "  '|O'  # a comment\n",
    ] {
        assert_eq!(literal_eval(src), Ok(s("|O")), "{src}");
    }
    assert_eq!(literal_eval("b'|O'"), Ok(Lit::Bytes(b"|O".to_vec())));
    assert_eq!(literal_eval("rb'\\x'"), Ok(Lit::Bytes(b"\\x".to_vec())));
    assert_eq!(literal_eval("Br'a' b'b'"), Ok(Lit::Bytes(b"ab".to_vec())));
    assert_eq!(literal_eval("'\\q'"), Ok(s("\\q")));
    assert_eq!(literal_eval("r'\\''"), Ok(s("\\'")));
    assert_eq!(literal_eval("'\\400'"), Ok(s("\u{100}")));
    assert_eq!(literal_eval("b'\\400'"), Ok(Lit::Bytes(vec![0])));
}

#[test]
fn literal_errors() {
    let kind = |src: &str| literal_eval(src).map_err(|e| e.kind);
    assert_eq!(kind("b'a' 'b'"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("f'|O'"), Err(LitErrorKind::Value));
    assert_eq!(kind("'a' f'b'"), Err(LitErrorKind::Value));
    assert_eq!(kind("ur'a'"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("b'\u{e9}'"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("'\\x4'"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("'\\N{DASH}'"), Err(LitErrorKind::Unsupported));
    assert_eq!(kind("'\\ud800'"), Err(LitErrorKind::Unsupported));
    assert_eq!(kind("'a\nb'"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("x"), Err(LitErrorKind::Value));
    assert_eq!(kind("1 + 2"), Err(LitErrorKind::Value));
    assert_eq!(kind("--1"), Err(LitErrorKind::Value));
    assert_eq!(kind("{[1]: 2}"), Err(LitErrorKind::Value));
    assert_eq!(kind("1L"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("07"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("1__0"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("1\n  2"), Err(LitErrorKind::Syntax));
    assert_eq!(kind("1\n  "), Err(LitErrorKind::Syntax));
    assert_eq!(kind("1\0"), Err(LitErrorKind::Value));
    assert_eq!(kind(&"1".repeat(4301)), Err(LitErrorKind::Syntax));
    assert!(literal_eval(&"1".repeat(4300)).is_ok());
    assert_eq!(
        kind(&format!("{}{}", "(".repeat(150), ")".repeat(150))),
        Err(LitErrorKind::Unsupported)
    );
    assert_eq!(
        kind(&format!("{}1", "-".repeat(500))),
        Err(LitErrorKind::Unsupported)
    );
}

#[test]
fn containers_numbers_and_constants() {
    assert_eq!(literal_eval("()"), Ok(Lit::Tuple(vec![])));
    assert_eq!(literal_eval("(1,)"), Ok(Lit::Tuple(vec![Lit::Int(1)])));
    assert_eq!(
        literal_eval("1, 2,"),
        Ok(Lit::Tuple(vec![Lit::Int(1), Lit::Int(2)]))
    );
    assert_eq!(literal_eval("(1)"), Ok(Lit::Int(1)));
    assert_eq!(
        literal_eval("[1,\n 2,]"),
        Ok(Lit::List(vec![Lit::Int(1), Lit::Int(2)]))
    );
    assert_eq!(literal_eval("set()"), Ok(Lit::Set(vec![])));
    assert_eq!(
        literal_eval("{1, True, 1.0}"),
        Ok(Lit::Set(vec![Lit::Int(1)]))
    );
    assert_eq!(
        literal_eval("{'a': 1, 'a': 2, 'b': 3}"),
        Ok(Lit::Dict(vec![
            (s("a"), Lit::Int(2)),
            (s("b"), Lit::Int(3))
        ]))
    );
    assert_eq!(literal_eval("0x_ff"), Ok(Lit::Int(255)));
    assert_eq!(literal_eval("-0o17"), Ok(Lit::Int(-15)));
    assert_eq!(literal_eval("0b1_01"), Ok(Lit::Int(5)));
    assert_eq!(literal_eval("1_000"), Ok(Lit::Int(1000)));
    assert_eq!(literal_eval("00"), Ok(Lit::Int(0)));
    assert_eq!(literal_eval("1.e1"), Ok(Lit::Float(10.0)));
    assert_eq!(literal_eval("-1-2j"), Ok(Lit::Complex(-1.0, -2.0)));
    assert_eq!(literal_eval("..."), Ok(Lit::Ellipsis));
    assert_eq!(literal_eval("None"), Ok(Lit::None));
    assert_eq!(literal_eval("True"), Ok(Lit::Bool(true)));
    let big = literal_eval("-0x1_0000_0000_0000_0000_0000_0000_0000_0001");
    assert_eq!(
        big,
        Ok(Lit::BigInt {
            negative: true,
            magnitude: vec![1, 0, 1]
        })
    );
    assert_eq!(
        literal_eval("-170141183460469231731687303715884105728"),
        Ok(Lit::Int(i128::MIN))
    );
}

#[test]
fn python2_long_suffix() {
    assert!(literal_eval("(2L, 3)").is_err());
    assert_eq!(
        literal_eval_dropping_long_suffix("(2L, 3 L)"),
        Ok(Lit::Tuple(vec![Lit::Int(2), Lit::Int(3)]))
    );
    assert_eq!(
        literal_eval_dropping_long_suffix("('L', 0x1fL)"),
        Ok(Lit::Tuple(vec![s("L"), Lit::Int(31)]))
    );
    assert!(literal_eval_dropping_long_suffix("(2LL,)").is_err());
    assert!(literal_eval_dropping_long_suffix("(2, L)").is_err());
    // tokenize/untokenize also drops a trailing line of blanks and first-line indent.
    assert_eq!(
        literal_eval_dropping_long_suffix("\x0c 1\n  "),
        Ok(Lit::Int(1))
    );
}

#[test]
fn dtype_strings() {
    assert_eq!(size_obj("d"), Some((8, false)));
    assert_eq!(size_obj("f8"), Some((8, false)));
    assert_eq!(size_obj(">f 8"), Some((8, false)));
    assert_eq!(size_obj("float64"), Some((8, false)));
    assert_eq!(size_obj("U5"), Some((20, false)));
    assert_eq!(size_obj("5U"), Some((20, false)));
    assert_eq!(size_obj("S"), Some((0, false)));
    assert_eq!(size_obj("c"), Some((1, false)));
    assert_eq!(size_obj("a5"), Some((5, false)));
    assert_eq!(size_obj("M8[ns]"), Some((8, false)));
    assert_eq!(size_obj("m8[7D/2]"), Some((8, false)));
    assert_eq!(size_obj("(2,3)f8"), Some((48, false)));
    assert_eq!(size_obj("i4,f8"), Some((12, false)));
    for obj in [
        "O", "|O", "=O", "O8", "O4", "object", "object_", "O,f8", "3O", "(2,)O", "\x11", "T",
    ] {
        assert_eq!(size_obj(obj).map(|x| x.1), Some(true), "{obj}");
    }
    for bad in [
        "", "<", "!O", "O16", "f3", "Q8", "<float64", "int0", "i4 ", "(2)i4", "i4,,f8", "M8[xs]",
    ] {
        assert!(
            matches!(dtype::from_str(bad), Err(DtypeError::Rejected(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        dtype::from_str("M8[s/0]"),
        Err(DtypeError::Unsure(_))
    ));
    assert_eq!(dtype::from_str("l").map(|d| d.portable), Ok(false));
    assert_eq!(dtype::from_str("i8").map(|d| d.portable), Ok(true));
    assert_eq!(dtype::from_str("f8").map(|d| d.builtin), Ok(true));
    assert_eq!(dtype::from_str(">f8").map(|d| d.builtin), Ok(false));
}

#[test]
fn descrs() {
    let descr = |src: &str| {
        literal_eval(src)
            .ok()
            .and_then(|l| dtype::from_descr(&l).ok())
            .map(|d| (d.itemsize, d.hasobject(), d.names()))
    };
    assert_eq!(
        descr("[('', '|V4'), ('a', '<f8')]"),
        Some((12, false, Some(vec!["a".into()])))
    );
    assert_eq!(
        descr("[(('t', 'a'), '<f8'), ('b', '|O', (2,))]"),
        Some((24, true, Some(vec!["a".into(), "b".into()])))
    );
    assert_eq!(descr("('|V', '|O')"), Some((8, true, None)));
    assert_eq!(
        descr("[('', ('|V', '|O'))]"),
        Some((8, false, Some(vec![])))
    );
    assert_eq!(descr("['aO']"), Some((8, true, Some(vec!["a".into()]))));
    assert_eq!(descr("[('a', '<f8'), ('a', '<i4')]"), None);
    assert_eq!(descr("('<f8',)"), None);
}

fn joblib_like(args: &[Lit], state: Lit) -> Result<Dtype, DtypeError> {
    let mut d = dtype::call(args)?;
    d.setstate(&state)?;
    Ok(d)
}

fn st(items: Vec<Lit>) -> Lit {
    Lit::Tuple(items)
}

#[test]
fn pickled_dtypes() {
    let i = Lit::Int;
    let (f, t) = (Lit::Bool(false), Lit::Bool(true));
    // numpy's own pickles: dtype('f8', False, True) and dtype('O8', False, True).
    let d = joblib_like(
        &[s("f8"), f.clone(), t.clone()],
        st(vec![
            i(3),
            s("<"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(-1),
            i(-1),
            i(0),
        ]),
    );
    assert_eq!(d.map(|d| (d.itemsize, d.hasobject())), Ok((8, false)));
    let obj = joblib_like(
        &[s("O8"), f.clone(), t.clone()],
        st(vec![
            i(3),
            s("|"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(-1),
            i(-1),
            i(63),
        ]),
    );
    assert_eq!(
        obj.as_ref().map(|d| (d.itemsize, d.hasobject())),
        Ok((8, true))
    );
    // The state's flags decide hasobject, whatever the type.
    let hidden = joblib_like(
        &[s("O8"), f.clone(), t.clone()],
        st(vec![
            i(3),
            s("|"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(-1),
            i(-1),
            i(0),
        ]),
    );
    assert_eq!(hidden.map(|d| (d.itemsize, d.hasobject())), Ok((8, false)));
    let v = joblib_like(
        &[s("V16"), f.clone(), t.clone()],
        st(vec![
            i(3),
            s("|"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(1000),
            i(1),
            i(-127),
        ]),
    );
    assert_eq!(v.map(|d| (d.itemsize, d.hasobject())), Ok((1000, true)));
    // The shared singleton (copy=False) ignores its state.
    let single = joblib_like(
        &[s("f8"), f.clone(), f.clone()],
        st(vec![
            i(3),
            s("|"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(1000),
            i(1),
            i(63),
        ]),
    );
    assert_eq!(single.map(|d| (d.itemsize, d.hasobject())), Ok((8, false)));
    // Version 2 states have no flags: an object field makes the dtype hold objects.
    let Ok(o) = obj else { return };
    let fields = Lit::Dict(vec![(s("a"), st(vec![Lit::Dtype(Box::new(o)), i(0)]))]);
    let v2 = joblib_like(
        &[s("V8"), f.clone(), t.clone()],
        st(vec![
            i(2),
            s("|"),
            Lit::None,
            st(vec![s("a")]),
            fields,
            i(8),
            i(1),
        ]),
    );
    assert_eq!(v2.map(|d| (d.itemsize, d.hasobject())), Ok((8, true)));
    // Unknown values make the answer unsure, never a guess.
    let unknown = joblib_like(
        &[s("V8"), f, t],
        st(vec![
            i(3),
            s("|"),
            Lit::None,
            Lit::None,
            Lit::None,
            i(8),
            i(1),
            Lit::Unknown,
        ]),
    );
    assert!(matches!(unknown, Err(DtypeError::Unsure(_))));
    assert!(matches!(
        dtype::call(&[Lit::Unknown]),
        Err(DtypeError::Unsure(_))
    ));
    assert_eq!(
        dtype::from_type("numpy", "float64").map(|d| d.type_num),
        Ok(TypeNum::Double)
    );
    assert!(matches!(
        dtype::from_type("mymod", "Cls"),
        Err(DtypeError::Unsure(_))
    ));
}

#[test]
fn aligned_structs() {
    let d = dtype::from_pickle_args(&s("i1,i8"), true, false);
    assert_eq!(d.map(|d| (d.itemsize, d.alignment)), Ok((16, 8)));
    let d = dtype::from_pickle_args(&s("i1,i8"), false, false);
    assert_eq!(d.map(|d| (d.itemsize, d.alignment)), Ok((9, 1)));
}

#[test]
fn large_inputs_stay_linear() {
    let hex = format!("0x{}", "f".repeat(1 << 20));
    match literal_eval(&hex) {
        Ok(Lit::BigInt {
            negative,
            magnitude,
        }) => {
            assert!(!negative);
            assert_eq!(magnitude.len(), (1 << 20) / 16);
            assert!(magnitude.iter().all(|&l| l == u64::MAX));
        }
        other => panic!("{other:?}"),
    }
    let n = 20_000;
    let dict: String = (0..n).map(|i| format!("'k{i}': {i}, ")).collect();
    assert!(matches!(literal_eval(&format!("{{{dict}}}")), Ok(Lit::Dict(d)) if d.len() == n));
    let fields: String = (0..n).map(|i| format!("('f{i}', '<i4'), ")).collect();
    let d = literal_eval(&format!("[{fields}]"))
        .ok()
        .and_then(|l| dtype::from_descr(&l).ok());
    assert_eq!(d.map(|d| d.itemsize), Some(4 * n as i64));
}
