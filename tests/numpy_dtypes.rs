//! Checks src/numpy/ against what the real numpy computed for every case in
//! tests/fixtures/numpy_dtypes.json (written by tools/gen_dtype_table.py): dtype
//! strings, .npy descrs, numpy.dtype(...) calls, __setstate__ states, Python
//! literals and .npy headers. Where numpy succeeds we must compute the same item
//! size, flags (hasobject), alignment, kind, singleton-ness and field names; where
//! numpy raises or crashes we must return an error.

use picklegate::container::npy;
use picklegate::numpy::dtype::{self, Dtype, DtypeError};
use picklegate::numpy::literal::{self, Lit, LitErrorKind};
use serde_json::Value;

/// Cases numpy accepts that we knowingly answer "unsure" for, by message fragment.
const ACCEPTED_UNSURE: &[&str] = &[
    // _descr_find_object marks field dtypes as objects: a side effect on objects the
    // pickle may share (only version < 3 states).
    "rewrites the flags of a field dtype",
    // numpy casts a non-dtype fields entry to a dtype pointer (undefined behaviour).
    "non-dtype fields entry",
];

/// A malformed fixture.
fn bad(what: &str) -> DtypeError {
    DtypeError::Rejected(format!("bad fixture: {what}"))
}

fn parse_int(s: &str) -> Result<Lit, DtypeError> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (radix, digits) = match body.strip_prefix("0x") {
        Some(h) => (16u32, h),
        None => (10u32, body),
    };
    let mut mag: Vec<u64> = Vec::new();
    for c in digits.chars() {
        let mut carry = c.to_digit(radix).ok_or_else(|| bad("int digit"))? as u128;
        for limb in mag.iter_mut() {
            let v = (*limb as u128) * radix as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            mag.push(carry as u64);
        }
    }
    while mag.last() == Some(&0) {
        mag.pop();
    }
    let small: Option<u128> = match mag.len() {
        0 => Some(0),
        1 => Some(mag[0] as u128),
        2 => Some(mag[0] as u128 | (mag[1] as u128) << 64),
        _ => None,
    };
    Ok(match small {
        Some(v) if v <= i128::MAX as u128 => Lit::Int(if neg { -(v as i128) } else { v as i128 }),
        Some(v) if neg && v == i128::MAX as u128 + 1 => Lit::Int(i128::MIN),
        _ => Lit::BigInt {
            negative: neg,
            magnitude: mag,
        },
    })
}

fn float(v: &Value) -> Result<f64, DtypeError> {
    s(v)?.parse().map_err(|_| bad("float"))
}

fn s(v: &Value) -> Result<&str, DtypeError> {
    v.as_str().ok_or_else(|| bad("expected a string"))
}

fn arr(v: &Value) -> Result<&Vec<Value>, DtypeError> {
    v.as_array().ok_or_else(|| bad("expected an array"))
}

fn unhex(h: &str) -> Result<Vec<u8>, DtypeError> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad("hex")))
        .collect()
}

/// The tagged encoding to a Lit; `dtype` values are rebuilt with our own code.
fn decode(v: &Value) -> Result<Lit, DtypeError> {
    let a = arr(v)?;
    let item = |i: usize| a.get(i).ok_or_else(|| bad("short tagged value"));
    Ok(match s(item(0)?)? {
        "none" => Lit::None,
        "ellipsis" => Lit::Ellipsis,
        "bool" => Lit::Bool(item(1)?.as_bool().ok_or_else(|| bad("bool"))?),
        "int" => parse_int(s(item(1)?)?)?,
        "float" => Lit::Float(float(item(1)?)?),
        "complex" => Lit::Complex(float(item(1)?)?, float(item(2)?)?),
        "str" => Lit::Str(s(item(1)?)?.to_string()),
        "bytes" => Lit::Bytes(unhex(s(item(1)?)?)?),
        "tuple" => Lit::Tuple(decode_all(item(1)?)?),
        "list" => Lit::List(decode_all(item(1)?)?),
        "set" => Lit::Set(decode_all(item(1)?)?),
        "dict" => Lit::Dict(
            arr(item(1)?)?
                .iter()
                .map(|kv| {
                    let kv = arr(kv)?;
                    match (kv.first(), kv.get(1)) {
                        (Some(k), Some(v)) => Ok((decode(k)?, decode(v)?)),
                        _ => Err(bad("dict item")),
                    }
                })
                .collect::<Result<_, DtypeError>>()?,
        ),
        "global" => Lit::Global(s(item(1)?)?.to_string(), s(item(2)?)?.to_string()),
        "dtype" => {
            let spec = item(1)?;
            let args = decode_all(&spec["args"])?;
            let mut d = dtype::call(&args)?;
            if !spec["state"].is_null() {
                d.setstate(&decode(&spec["state"])?)?;
            }
            Lit::Dtype(Box::new(d))
        }
        other => return Err(bad(other)),
    })
}

fn decode_all(v: &Value) -> Result<Vec<Lit>, DtypeError> {
    arr(v)?.iter().map(decode).collect()
}

/// Exact structural equality (no 1 == True), sets unordered.
fn same(a: &Lit, b: &Lit) -> bool {
    match (a, b) {
        (Lit::Float(x), Lit::Float(y)) => x.to_bits() == y.to_bits(),
        (Lit::Complex(a1, b1), Lit::Complex(a2, b2)) => {
            a1.to_bits() == a2.to_bits() && b1.to_bits() == b2.to_bits()
        }
        (Lit::Tuple(x), Lit::Tuple(y)) | (Lit::List(x), Lit::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Lit::Set(x), Lit::Set(y)) => {
            x.len() == y.len() && x.iter().all(|p| y.iter().any(|q| same(p, q)))
        }
        (Lit::Dict(x), Lit::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

#[derive(Default)]
struct Tally {
    checked: usize,
    failures: Vec<String>,
    unsure_accepted: usize,
    literal_unsupported: usize,
}

fn describe(d: &Dtype) -> Value {
    serde_json::json!({
        "itemsize": d.itemsize,
        "hasobject": d.hasobject(),
        "flags": d.flags,
        "alignment": d.alignment,
        "kind": d.kind.to_string(),
        "builtin": d.builtin,
        "names": d.names(),
    })
}

fn check_dtype(t: &mut Tally, what: String, numpy: &Value, ours: Result<Dtype, DtypeError>) {
    t.checked += 1;
    match (numpy.get("ok"), ours) {
        (Some(want), Ok(d)) => {
            let got = describe(&d);
            if &got != want {
                t.failures.push(format!("{what}: numpy {want}, ours {got}"));
            }
        }
        (Some(_), Err(DtypeError::Unsure(m))) if ACCEPTED_UNSURE.iter().any(|a| m.contains(a)) => {
            t.unsure_accepted += 1;
        }
        (Some(want), Err(e)) => t.failures.push(format!("{what}: numpy {want}, ours {e}")),
        (None, Ok(d)) => t
            .failures
            .push(format!("{what}: numpy {numpy}, ours {}", describe(&d))),
        (None, Err(_)) => {}
    }
}

fn check_literal(t: &mut Tally, text: &str, numpy: &Value) {
    t.checked += 1;
    let ours = literal::literal_eval(text);
    match (numpy.get("ok"), ours) {
        (Some(want), Ok(got)) if want.get("repr").is_some() => {
            if want["repr"].as_str() != Some(got.repr().as_str()) {
                t.failures.push(format!(
                    "literal {text:?}: python {want}, ours {}",
                    got.repr()
                ));
            }
        }
        (Some(want), Ok(got)) => {
            let want = match decode(&want["value"]) {
                Ok(w) => w,
                Err(e) => {
                    t.failures.push(format!("literal {text:?}: {e}"));
                    return;
                }
            };
            if !same(&want, &got) {
                t.failures.push(format!(
                    "literal {text:?}: python {}, ours {}",
                    want.repr(),
                    got.repr()
                ));
            }
        }
        (Some(_), Err(e)) if e.kind == LitErrorKind::Unsupported => t.literal_unsupported += 1,
        (Some(want), Err(e)) => t
            .failures
            .push(format!("literal {text:?}: python {want}, ours {e}")),
        (None, Ok(got)) => t.failures.push(format!(
            "literal {text:?}: python {numpy}, ours {}",
            got.repr()
        )),
        (None, Err(_)) => {}
    }
}

fn check_npy(t: &mut Tally, bytes: &[u8], numpy: &Value) {
    t.checked += 1;
    let what = format!("npy {:?}", String::from_utf8_lossy(bytes));
    match (numpy.get("ok"), npy::parse(bytes)) {
        (Some(want), Ok(h)) => {
            let got = serde_json::json!({
                "itemsize": h.itemsize,
                "hasobject": h.has_object,
                "data_offset": h.data_offset,
                "shape": h.shape,
                "fortran_order": h.fortran_order,
            });
            let keys = [
                "itemsize",
                "hasobject",
                "data_offset",
                "shape",
                "fortran_order",
            ];
            if keys.iter().any(|k| got[k] != want[k]) {
                t.failures.push(format!("{what}: numpy {want}, ours {got}"));
            }
        }
        (Some(want), Err(e)) => t.failures.push(format!("{what}: numpy {want}, ours {e}")),
        (None, Ok(h)) => t
            .failures
            .push(format!("{what}: numpy {numpy}, ours {h:?}")),
        (None, Err(_)) => {}
    }
}

#[test]
fn matches_numpy() -> Result<(), String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/numpy_dtypes.json"
    );
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let table: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut t = Tally::default();
    let fixture = |e: DtypeError| e.to_string();
    for case in arr(&table["cases"]).map_err(fixture)? {
        let numpy = &case["numpy"];
        let text = |k: &str| s(&case[k]).map_err(fixture);
        match text("kind")? {
            "str" => {
                let spec = text("spec")?;
                check_dtype(
                    &mut t,
                    format!("dtype({spec:?})"),
                    numpy,
                    dtype::from_str(spec),
                );
            }
            "descr" => {
                let src = text("text")?;
                let ours = literal::literal_eval(src)
                    .map_err(|e| DtypeError::Rejected(e.to_string()))
                    .and_then(|d| dtype::from_descr(&d));
                check_dtype(&mut t, format!("descr_to_dtype({src})"), numpy, ours);
            }
            "call" => {
                let ours = decode_all(&case["args"]).and_then(|a| dtype::call(&a));
                check_dtype(&mut t, format!("dtype(*{})", case["args"]), numpy, ours);
            }
            "setstate" => {
                let ours = decode_all(&case["args"]).and_then(|a| {
                    let mut d = dtype::call(&a)?;
                    d.setstate(&decode(&case["state"])?)?;
                    Ok(d)
                });
                let what = format!("dtype(*{}).__setstate__({})", case["args"], case["state"]);
                check_dtype(&mut t, what, numpy, ours);
            }
            "literal" => check_literal(&mut t, text("text")?, numpy),
            "npy" => check_npy(&mut t, &unhex(text("bytes")?).map_err(fixture)?, numpy),
            other => return Err(format!("unknown case kind {other}")),
        }
    }
    eprintln!(
        "{} cases checked against numpy {}: {} mismatches, {} accepted 'unsure', {} literals beyond our nesting limit",
        t.checked,
        table["generator"]["numpy"],
        t.failures.len(),
        t.unsure_accepted,
        t.literal_unsupported
    );
    for f in t.failures.iter().take(60) {
        eprintln!("  {f}");
    }
    if !t.failures.is_empty() {
        return Err(format!("{} mismatches with numpy", t.failures.len()));
    }
    if t.checked < 3000 {
        return Err(format!("only {} cases", t.checked));
    }
    Ok(())
}
