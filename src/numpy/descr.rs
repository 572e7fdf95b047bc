//! `numpy.lib.format.descr_to_dtype` (numpy/lib/_format_impl.py): the `descr` of an
//! `.npy` header back to a dtype. A str is `numpy.dtype(str)`, a tuple is
//! `(descr, shape)`, anything else is iterated as a list of fields, whose unnamed
//! void entries are padding: skipped, but counted in the offsets.

use crate::numpy::dtype::{self, rej, unsure, Dtype, DtypeError, TypeNum};
use crate::numpy::literal::Lit;
use crate::numpy::pyops;

const MAX_DEPTH: usize = 100;

/// Python's `a, b = obj` / `a, b, c = obj`.
fn unpack(obj: &Lit, n: usize) -> Result<Vec<Lit>, DtypeError> {
    let items = pyops::iterate(obj)?;
    if items.len() != n {
        return rej(format!(
            "expected {n} values to unpack, got {}",
            items.len()
        ));
    }
    Ok(items)
}

pub(crate) fn descr_to_dtype(descr: &Lit, depth: usize) -> Result<Dtype, DtypeError> {
    if depth > MAX_DEPTH {
        return unsure("descr nested too deeply");
    }
    match descr {
        Lit::Str(s) => return dtype::from_str(s),
        Lit::Tuple(t) => {
            // "subtype, will always have a shape descr[1]"; extra items are ignored.
            let (Some(base), Some(shape)) = (t.first(), t.get(1)) else {
                return rej("tuple index out of range");
            };
            let dt = descr_to_dtype(base, depth + 1)?;
            return dtype::tuple_with(dt, shape, depth + 1);
        }
        _ => {}
    }
    let mut names = Vec::new();
    let mut formats = Vec::new();
    let mut titles = Vec::new();
    let mut offsets = Vec::new();
    let mut offset: i128 = 0;
    for field in pyops::iterate(descr)? {
        let n = pyops::len(&field)?;
        let (name, dt) = if n == 2 {
            let v = unpack(&field, 2)?;
            (v[0].clone(), descr_to_dtype(&v[1], depth + 1)?)
        } else {
            let v = unpack(&field, 3)?;
            let base = descr_to_dtype(&v[1], depth + 1)?;
            (v[0].clone(), dtype::tuple_with(base, &v[2], depth + 1)?)
        };
        if name == Lit::Unknown {
            return unsure("field name of unknown type");
        }
        // Padding: `name == '' and dt.type is numpy.void and dt.names is None`.
        let is_pad =
            name == Lit::Str(String::new()) && dt.type_num == TypeNum::Void && dt.fields.is_none();
        let size = dt.itemsize;
        if !is_pad {
            let (title, name) = match &name {
                Lit::Tuple(_) => {
                    let v = unpack(&name, 2)?;
                    (v[0].clone(), v[1].clone())
                }
                other => (Lit::None, other.clone()),
            };
            titles.push(title);
            names.push(name);
            formats.push(Lit::Dtype(Box::new(dt)));
            offsets.push(Lit::Int(offset));
        }
        offset += i128::from(size);
    }
    let spec = vec![
        (Lit::Str("names".into()), Lit::List(names)),
        (Lit::Str("formats".into()), Lit::List(formats)),
        (Lit::Str("titles".into()), Lit::List(titles)),
        (Lit::Str("offsets".into()), Lit::List(offsets)),
        (Lit::Str("itemsize".into()), Lit::Int(offset)),
    ];
    dtype::from_dict(&spec, false, depth + 1)
}
