//! `dtype.__setstate__` (`arraydescr_setstate` in descriptor.c), the BUILD step of
//! every pickled dtype. The state can change the item size of flexible types, add
//! fields, and set the flags (and with them `hasobject`) directly, so a pickle
//! decides what joblib reads next. The state tuple has 5 to 9 items:
//! `(version, endian, subarray, names, fields, elsize, alignment, flags, metadata)`
//! (version 0 has no version or names; 1 and 2 have no flags).

use crate::numpy::datetime;
use crate::numpy::dtype::{
    is_tuple_of_ints, rej, unsure, Dtype, DtypeError, Fields, Subarray, OBJECT_FLAGS,
};
use crate::numpy::literal::Lit;
use crate::numpy::pyops::{self, dict_get};

struct State<'a> {
    version: i64,
    endian: &'a Lit,
    subarray: &'a Lit,
    /// `None` is C `NULL` (5- and 6-tuples), distinct from a Python `None`.
    names: Option<Lit>,
    fields: &'a Lit,
    elsize: i64,
    alignment: i64,
    flags: u64,
    metadata: Option<&'a Lit>,
}

fn parse(st: &[Lit]) -> Result<State<'_>, DtypeError> {
    let i = |k: usize| pyops::arg_int(&st[k], 32);
    let n = |k: usize| pyops::arg_int(&st[k], 64);
    let s = match st.len() {
        5 => State {
            version: 0,
            endian: &st[0],
            subarray: &st[1],
            names: None,
            fields: &st[2],
            elsize: n(3)?,
            alignment: n(4)?,
            flags: 0,
            metadata: None,
        },
        6 => State {
            version: i(0)?,
            endian: &st[1],
            subarray: &st[2],
            names: None,
            fields: &st[3],
            elsize: n(4)?,
            alignment: n(5)?,
            flags: 0,
            metadata: None,
        },
        7..=9 => State {
            version: i(0)?,
            endian: &st[1],
            subarray: &st[2],
            names: Some(st[3].clone()),
            fields: &st[4],
            elsize: n(5)?,
            alignment: n(6)?,
            flags: if st.len() >= 8 {
                pyops::arg_ulong_mask(&st[7])?
            } else {
                0
            },
            metadata: st.get(8),
        },
        len => {
            let version = if len > 5 {
                pyops::arg_int(&st[0], 64).unwrap_or(-1)
            } else {
                -1
            };
            if (0..=4).contains(&version) {
                return unsure("numpy reads uninitialised memory for this state length");
            }
            return rej(format!(
                "can't handle version {version} of numpy.dtype pickle"
            ));
        }
    };
    if !(0..=4).contains(&s.version) {
        return rej(format!(
            "can't handle version {} of numpy.dtype pickle",
            s.version
        ));
    }
    Ok(s)
}

/// `_descr_find_object`, which also marks the field dtype it finds as an object
/// dtype. That mark is a side effect on an object the pickle may share elsewhere;
/// when it changes anything the result is [`DtypeError::Unsure`].
fn find_object(d: &mut Dtype) -> Result<bool, DtypeError> {
    if d.flags != 0 || d.type_num == crate::numpy::dtype::TypeNum::Object || d.kind == 'O' {
        return Ok(true);
    }
    match &mut d.fields {
        None => Ok(false),
        Some(Fields::Built(fields)) => {
            for f in fields.iter_mut() {
                if find_object(&mut f.dtype)? {
                    mark(&mut f.dtype)?;
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(Fields::State { dict, .. }) => {
            for (key, value) in dict.iter_mut() {
                let Lit::Tuple(t) = value else {
                    // PyArg_ParseTuple fails: numpy stops and answers "no object".
                    return match value {
                        Lit::Unknown => unsure("fields entry of unknown type"),
                        _ => Ok(false),
                    };
                };
                // NPY_TITLE_KEY compares the title with the key by identity.
                if t.len() == 3 && (t[2] == Lit::Unknown || t[2].py_eq(key)) {
                    return unsure("whether a pickled fields entry is a title alias");
                }
                if !(2..=3).contains(&t.len()) || pyops::arg_int(&t[1], 32).is_err() {
                    return Ok(false);
                }
                let Lit::Dtype(sub) = &mut t[0] else {
                    return unsure("numpy reads a non-dtype fields entry as a dtype");
                };
                if find_object(sub)? {
                    mark(sub)?;
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

fn mark(d: &mut Dtype) -> Result<(), DtypeError> {
    if d.flags != OBJECT_FLAGS {
        return unsure("__setstate__ rewrites the flags of a field dtype");
    }
    d.flags = OBJECT_FLAGS;
    Ok(())
}

impl Dtype {
    /// `self.__setstate__(state)`: on success `self` is what numpy's dtype is after
    /// the pickle's BUILD. An error means the BUILD raises in numpy (`Rejected`,
    /// and the load fails) or that the outcome is not known (`Unsure`).
    pub fn setstate(&mut self, state: &Lit) -> Result<(), DtypeError> {
        if !self.is_legacy() {
            return rej("Cannot unpickle new style DType without custom methods.");
        }
        if self.builtin {
            // The shared singleton: numpy ignores the state.
            return Ok(());
        }
        let st = match state {
            Lit::Tuple(t) => t,
            Lit::Unknown => return unsure("dtype state of unknown type"),
            _ => return rej("bad argument to internal function"),
        };
        let s = parse(st)?;
        let mut fields = s.fields.clone();
        let names = if s.version <= 1 {
            match &mut fields {
                Lit::None => Some(Lit::None),
                Lit::Dict(d) => {
                    let Some(pos) = d.iter().rposition(|(k, _)| k.py_eq(&Lit::Int(-1))) else {
                        return rej("version 0/1 dtype state lacks fields[-1]");
                    };
                    let list = d[pos].1.clone();
                    d.retain(|(k, _)| !k.py_eq(&Lit::Int(-1)));
                    Some(list)
                }
                Lit::Unknown => return unsure("fields of unknown type"),
                _ => return rej("bad argument to internal function"),
            }
        } else {
            s.names.clone()
        };
        let endian = match s.endian {
            Lit::Str(e) if !e.is_ascii() => return rej("endian is not ASCII"),
            Lit::Str(e) if e.len() == 1 => e.as_bytes()[0],
            Lit::Bytes(e) if e.len() == 1 => e[0],
            Lit::Str(_) | Lit::Bytes(_) => {
                return rej("endian is not 1-char string in Numpy dtype unpickling")
            }
            Lit::Unknown => return unsure("endian of unknown type"),
            _ => return rej("endian is not a string in Numpy dtype unpickling"),
        };
        let Some(names) = names else {
            // A 6-tuple of version 2..4 leaves `names` NULL.
            if fields == Lit::None {
                return rej("inconsistent fields and names in Numpy dtype unpickling");
            }
            return unsure("numpy dereferences a NULL names tuple");
        };
        if (fields == Lit::None) != (names == Lit::None) {
            return rej("inconsistent fields and names in Numpy dtype unpickling");
        }
        let names = match names {
            Lit::None => None,
            Lit::Tuple(t) => Some(t),
            Lit::Unknown => return unsure("names of unknown type"),
            _ => return rej("non-tuple names in Numpy dtype unpickling"),
        };
        let dict = match fields {
            Lit::None => None,
            Lit::Dict(d) => Some(d),
            Lit::Unknown => return unsure("fields of unknown type"),
            _ => return rej("non-dict fields in Numpy dtype unpickling"),
        };
        self.byteorder = match endian {
            b'<' | b'=' => '=',
            c => c as char,
        };
        self.subarray = match s.subarray {
            Lit::None => None,
            Lit::Tuple(t) if t.len() == 2 => {
                let base = match &t[0] {
                    Lit::Dtype(base) => base,
                    Lit::Unknown => return unsure("subarray base of unknown type"),
                    _ => return rej("incorrect subarray in __setstate__"),
                };
                let shape = match pyops::number_to_int(&t[1]) {
                    Some(v) => Lit::Tuple(vec![v?]),
                    None if is_tuple_of_ints(&t[1]) => t[1].clone(),
                    None if t[1] == Lit::Unknown => {
                        return unsure("subarray shape of unknown type")
                    }
                    None => return rej("incorrect subarray shape in __setstate__"),
                };
                Some(Subarray {
                    base: base.clone(),
                    shape,
                })
            }
            Lit::Unknown => return unsure("subarray of unknown type"),
            _ => return rej("incorrect subarray in __setstate__"),
        };
        if let (Some(names), Some(dict)) = (names, dict) {
            self.fields = Some(install_fields(&names, dict)?);
        }
        if self.type_num.is_flexible() {
            self.itemsize = s.elsize;
            self.alignment = s.alignment;
        }
        // The flags were a signed char once: -128..-1 are shifted into 0..127.
        let signed = s.flags as i64;
        self.flags = if (-128..0).contains(&signed) {
            (signed + 128) as u64
        } else {
            s.flags
        };
        if s.version < 3 {
            self.flags = if find_object(self)? { OBJECT_FLAGS } else { 0 };
        }
        let new_metadata = if self.type_num.is_datetime() {
            let Some(Lit::Tuple(m)) = s.metadata else {
                return match s.metadata {
                    None => unsure("numpy dereferences NULL datetime metadata"),
                    Some(Lit::Unknown) => unsure("datetime metadata of unknown type"),
                    Some(_) => rej("Invalid datetime dtype (metadata, c_metadata)"),
                };
            };
            if m.len() != 2 {
                return rej("Invalid datetime dtype (metadata, c_metadata)");
            }
            datetime::check_metadata_tuple(&m[1])?;
            Some(&m[0])
        } else {
            s.metadata
        };
        self.metadata = match new_metadata {
            None | Some(Lit::None) => None,
            Some(m) => Some(m.clone()),
        };
        Ok(())
    }
}

/// The `names` and `fields` of a state. All-str names are taken as they are;
/// otherwise (Python 2 pickles read with `encoding='bytes'`) each name is decoded
/// as ASCII and the dict rebuilt from them.
fn install_fields(names: &[Lit], dict: Vec<(Lit, Lit)>) -> Result<Fields, DtypeError> {
    let strs: Option<Vec<String>> = names
        .iter()
        .map(|n| match n {
            Lit::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    if let Some(names) = strs {
        return Ok(Fields::State { names, dict });
    }
    let mut out_names = Vec::with_capacity(names.len());
    let mut out_dict: Vec<(Lit, Lit)> = Vec::new();
    for name in names {
        if *name == Lit::Unknown {
            return unsure("field name of unknown type");
        }
        let Some(field) = dict_get(&dict, name) else {
            return rej("fields was missing the name it claimed to contain");
        };
        let s = match name {
            Lit::Str(s) => s.clone(),
            Lit::Bytes(b) if b.is_ascii() => String::from_utf8_lossy(b).into_owned(),
            _ => return rej("field name is neither str nor ASCII bytes"),
        };
        let key = Lit::Str(s.clone());
        match out_dict.iter_mut().find(|(k, _)| k.py_eq(&key)) {
            Some(slot) => slot.1 = field.clone(),
            None => out_dict.push((key, field.clone())),
        }
        out_names.push(s);
    }
    Ok(Fields::State {
        names: out_names,
        dict: out_dict,
    })
}
