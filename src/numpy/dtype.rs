//! `numpy.dtype` as numpy 2.4 builds it (numpy/_core/src/multiarray/descriptor.c),
//! for a 64-bit little-endian Linux numpy (x86-64; the sizes of `long` and
//! `long double` differ elsewhere, which `portable` records).
//!
//! What a reader of the data does next depends on two numbers: `hasobject` (the
//! data is a pickle) and `itemsize` (how many raw bytes one element takes). Both are
//! computed here the way numpy computes them; where that cannot be done exactly the
//! answer is [`DtypeError::Unsure`], which callers must treat as failure.

use crate::numpy::literal::Lit;
use crate::numpy::pyops::{self, dict_get};
use crate::numpy::typestr;

/// numpy's type numbers, in numpy's order (a one-character dtype string whose code
/// is below 24 is read as this number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeNum {
    Bool,
    Byte,
    UByte,
    Short,
    UShort,
    Int,
    UInt,
    Long,
    ULong,
    LongLong,
    ULongLong,
    Float,
    Double,
    LongDouble,
    CFloat,
    CDouble,
    CLongDouble,
    Object,
    String,
    Unicode,
    Void,
    Datetime,
    Timedelta,
    Half,
    /// `numpy.dtypes.StringDType` (`'T'`), a new-style dtype.
    VString,
}

impl TypeNum {
    const LEGACY: [TypeNum; 24] = [
        TypeNum::Bool,
        TypeNum::Byte,
        TypeNum::UByte,
        TypeNum::Short,
        TypeNum::UShort,
        TypeNum::Int,
        TypeNum::UInt,
        TypeNum::Long,
        TypeNum::ULong,
        TypeNum::LongLong,
        TypeNum::ULongLong,
        TypeNum::Float,
        TypeNum::Double,
        TypeNum::LongDouble,
        TypeNum::CFloat,
        TypeNum::CDouble,
        TypeNum::CLongDouble,
        TypeNum::Object,
        TypeNum::String,
        TypeNum::Unicode,
        TypeNum::Void,
        TypeNum::Datetime,
        TypeNum::Timedelta,
        TypeNum::Half,
    ];

    /// The legacy type with this number (0..=23).
    pub fn from_number(n: u32) -> Option<TypeNum> {
        Self::LEGACY.get(n as usize).copied()
    }

    /// Flexible types take their item size from the dtype, not the type.
    pub fn is_flexible(self) -> bool {
        matches!(self, TypeNum::String | TypeNum::Unicode | TypeNum::Void)
    }

    pub fn is_datetime(self) -> bool {
        matches!(self, TypeNum::Datetime | TypeNum::Timedelta)
    }
}

/// `NPY_ITEM_HASOBJECT` (also `NPY_ITEM_REFCOUNT`).
pub const ITEM_HASOBJECT: u64 = 0x01;
pub const LIST_PICKLE: u64 = 0x02;
pub const ITEM_IS_POINTER: u64 = 0x04;
pub const NEEDS_INIT: u64 = 0x08;
pub const NEEDS_PYAPI: u64 = 0x10;
pub const USE_GETITEM: u64 = 0x20;
pub const ALIGNED_STRUCT: u64 = 0x80;
/// Flags a structured dtype inherits from its fields.
pub const FROM_FIELDS: u64 = NEEDS_INIT | LIST_PICKLE | ITEM_HASOBJECT | NEEDS_PYAPI;
/// The flags of the object dtype.
pub const OBJECT_FLAGS: u64 =
    LIST_PICKLE | USE_GETITEM | ITEM_IS_POINTER | ITEM_HASOBJECT | NEEDS_INIT | NEEDS_PYAPI;
/// `NPY_MAXDIMS`.
const MAXDIMS: usize = 64;
/// Nesting limit for dtype descriptions (numpy's is Python's recursion limit).
const MAX_DEPTH: usize = 100;

/// A structured dtype's fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// Built by numpy's constructors: in order, each also reachable by its title when
    /// the title is a str.
    Built(Vec<Field>),
    /// Installed by `__setstate__`: the `names` tuple and the `fields` dict exactly as
    /// the pickle gave them (numpy does not check that they agree).
    State {
        names: Vec<String>,
        dict: Vec<(Lit, Lit)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub dtype: Dtype,
    pub offset: i64,
    pub title: Option<Lit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subarray {
    pub base: Box<Dtype>,
    /// The shape tuple (ints).
    pub shape: Lit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dtype {
    pub type_num: TypeNum,
    /// numpy's `dtype.kind` (`'T'` for StringDType).
    pub kind: char,
    /// `dtype.itemsize`. Negative values are real: numpy's struct arithmetic wraps at
    /// 32 bits and `__setstate__` copies whatever the pickle says.
    pub itemsize: i64,
    pub alignment: i64,
    /// `dtype.flags`; bit 0 is `dtype.hasobject`.
    pub flags: u64,
    pub byteorder: char,
    pub fields: Option<Fields>,
    pub subarray: Option<Subarray>,
    /// `dtype.metadata` (any object numpy was given); `None` when unset.
    pub metadata: Option<Lit>,
    /// numpy's shared singleton for the type (`dtype.isbuiltin == 1`). Its
    /// `__setstate__` ignores the state entirely.
    pub builtin: bool,
    /// `false` when the spelling names a C type whose size differs between numpy's
    /// 64-bit platforms (`'l'` is 4 bytes on Windows, `'g'` 8 bytes on macOS arm64).
    pub portable: bool,
}

/// Why a dtype could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtypeError {
    /// numpy raises (or crashes), so whatever reads the data fails here.
    Rejected(String),
    /// numpy's result cannot be determined from what is known.
    Unsure(String),
}

impl std::fmt::Display for DtypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DtypeError::Rejected(m) => write!(f, "numpy rejects this dtype: {m}"),
            DtypeError::Unsure(m) => write!(f, "cannot tell what numpy makes of this dtype: {m}"),
        }
    }
}

impl std::error::Error for DtypeError {}

pub(crate) fn rej<T>(msg: impl Into<String>) -> Result<T, DtypeError> {
    Err(DtypeError::Rejected(msg.into()))
}

pub(crate) fn unsure<T>(msg: impl Into<String>) -> Result<T, DtypeError> {
    Err(DtypeError::Unsure(msg.into()))
}

impl Dtype {
    /// numpy's builtin descriptor for a type (x86-64 sizes and alignments).
    pub fn builtin(t: TypeNum) -> Dtype {
        use TypeNum::*;
        let (kind, size, align, flags, order) = match t {
            Bool => ('b', 1, 1, 0, '|'),
            Byte => ('i', 1, 1, 0, '|'),
            UByte => ('u', 1, 1, 0, '|'),
            Short => ('i', 2, 2, 0, '='),
            UShort => ('u', 2, 2, 0, '='),
            Int => ('i', 4, 4, 0, '='),
            UInt => ('u', 4, 4, 0, '='),
            Long | LongLong => ('i', 8, 8, 0, '='),
            ULong | ULongLong => ('u', 8, 8, 0, '='),
            Half => ('f', 2, 2, 0, '='),
            Float => ('f', 4, 4, 0, '='),
            Double => ('f', 8, 8, 0, '='),
            LongDouble => ('f', 16, 16, 0, '='),
            CFloat => ('c', 8, 4, 0, '='),
            CDouble => ('c', 16, 8, 0, '='),
            CLongDouble => ('c', 32, 16, 0, '='),
            Object => ('O', 8, 8, OBJECT_FLAGS, '|'),
            String => ('S', 0, 1, 0, '|'),
            Unicode => ('U', 0, 4, NEEDS_INIT, '='),
            Void => ('V', 0, 1, 0, '|'),
            Datetime => ('M', 8, 8, 0, '='),
            Timedelta => ('m', 8, 8, 0, '='),
            VString => ('T', 16, 8, 0x6b, '|'),
        };
        Dtype {
            type_num: t,
            kind,
            itemsize: size,
            alignment: align,
            flags,
            byteorder: order,
            fields: None,
            subarray: None,
            metadata: None,
            builtin: t != VString,
            portable: !matches!(t, LongDouble | CLongDouble),
        }
    }

    /// `dtype.hasobject`: the data of an array of this dtype holds Python objects.
    pub fn hasobject(&self) -> bool {
        self.flags & ITEM_HASOBJECT != 0
    }

    /// `PyArray_DescrNew`: a private copy (no longer the shared singleton).
    pub(crate) fn copy(&self) -> Dtype {
        Dtype {
            builtin: false,
            ..self.clone()
        }
    }

    pub(crate) fn is_legacy(&self) -> bool {
        self.type_num != TypeNum::VString
    }

    /// `PyDataType_ISUNSIZED`: a flexible type whose size is still open (`'S'`, `'V'`).
    pub(crate) fn is_unsized(&self) -> bool {
        self.itemsize == 0 && self.fields.is_none()
    }

    /// `dtype.names`.
    pub fn names(&self) -> Option<Vec<String>> {
        match &self.fields {
            None => None,
            Some(Fields::Built(f)) => Some(f.iter().map(|f| f.name.clone()).collect()),
            Some(Fields::State { names, .. }) => Some(names.clone()),
        }
    }

    /// The dtype stored under `name` in `dtype.fields`.
    fn field_dtype(&self, name: &str) -> Result<Option<&Dtype>, DtypeError> {
        match &self.fields {
            None => Ok(None),
            Some(Fields::Built(f)) => Ok(f
                .iter()
                .find(|f| f.name == name || f.title == Some(Lit::Str(name.to_string())))
                .map(|f| &f.dtype)),
            Some(Fields::State { dict, .. }) => match dict_get(dict, &Lit::Str(name.into())) {
                None => Ok(None),
                Some(Lit::Tuple(t)) => match t.first() {
                    Some(Lit::Dtype(d)) => Ok(Some(d)),
                    _ => unsure("a pickled fields entry does not start with a dtype"),
                },
                Some(_) => unsure("a pickled fields entry is not a tuple"),
            },
        }
    }
}

/// `numpy.dtype(s)` for a str.
pub fn from_str(s: &str) -> Result<Dtype, DtypeError> {
    typestr::convert_str(s, false, 0)
}

/// `numpy.lib.format.descr_to_dtype(descr)`: the dtype an `.npy` header describes.
pub fn from_descr(descr: &Lit) -> Result<Dtype, DtypeError> {
    crate::numpy::descr::descr_to_dtype(descr, 0)
}

/// `numpy.dtype(obj, align, copy)`, the call numpy's own pickles make
/// (`dtype('f8', False, True)` followed by BUILD).
pub fn from_pickle_args(obj: &Lit, align: bool, copy: bool) -> Result<Dtype, DtypeError> {
    let mut d = convert_any(obj, align, 0)?;
    if copy && d.builtin {
        d = d.copy();
    }
    Ok(d)
}

/// `numpy.dtype(*args)` with positional arguments `(dtype[, align[, copy[,
/// metadata]]])`, taking Python truthiness of `align` and `copy`.
pub fn call(args: &[Lit]) -> Result<Dtype, DtypeError> {
    if args.is_empty() || args.len() > 4 {
        return rej("dtype() takes 1 to 4 positional arguments");
    }
    let copy = match args.get(2) {
        Some(c) => pyops::truth(c)?,
        None => false,
    };
    // Non-bool `align` only draws a deprecation warning.
    let align = match args.get(1) {
        Some(a) => pyops::truth(a)?,
        None => false,
    };
    let metadata = match args.get(3) {
        None => None,
        Some(m @ Lit::Dict(_)) => Some(m),
        Some(Lit::Unknown) => return unsure("metadata argument of unknown type"),
        Some(_) => return rej("dtype() argument 4 must be dict"),
    };
    let mut d = from_pickle_args(&args[0], align, copy)?;
    if let Some(m) = metadata {
        if !d.is_legacy() {
            return rej("cannot attach metadata to new style DType");
        }
        d = d.copy();
        d.metadata = Some(match (&d.metadata, m) {
            (Some(Lit::Dict(old)), Lit::Dict(new)) => {
                let mut merged = old.clone();
                for (k, v) in new {
                    if dict_get(&merged, k).is_none() {
                        merged.push((k.clone(), v.clone()));
                    }
                }
                Lit::Dict(merged)
            }
            (Some(_), _) => return rej("dtype metadata is not a dict"),
            (None, m) => m.clone(),
        });
    }
    Ok(d)
}

/// `numpy.dtype(cls)` for a class found by GLOBAL.
pub fn from_type(module: &str, name: &str) -> Result<Dtype, DtypeError> {
    use TypeNum::*;
    let t = match (module, name) {
        ("builtins", "int") => Long,
        ("builtins", "float") => Double,
        ("builtins", "complex") => CDouble,
        ("builtins", "bool") => Bool,
        ("builtins", "bytes") => String,
        ("builtins", "str") => Unicode,
        ("builtins", "memoryview") => Void,
        ("builtins", "object") => Object,
        ("numpy", n) => match typestr::scalar_type(n) {
            Some((t, portable)) => {
                let mut d = Dtype::builtin(t);
                d.portable &= portable;
                return Ok(d);
            }
            None => return unsure(format!("numpy.dtype(numpy.{n})")),
        },
        // Other classes become the object dtype unless they have a `dtype`
        // attribute or are ctypes types, which cannot be known here.
        _ => return unsure(format!("numpy.dtype({module}.{name})")),
    };
    Ok(Dtype::builtin(t))
}

/// `_convert_from_any(obj, align)`.
pub(crate) fn convert_any(obj: &Lit, align: bool, depth: usize) -> Result<Dtype, DtypeError> {
    if depth > MAX_DEPTH {
        return unsure("dtype description nested too deeply");
    }
    match obj {
        Lit::None => Ok(Dtype::builtin(TypeNum::Double)),
        Lit::Dtype(d) => Ok((**d).clone()),
        Lit::Global(m, n) => from_type(m, n),
        Lit::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => typestr::convert_str(s, align, depth + 1),
            Err(_) => rej("data type not understood"),
        },
        Lit::Str(s) => typestr::convert_str(s, align, depth + 1),
        Lit::Tuple(items) => from_tuple(items, align, depth + 1),
        Lit::List(items) => from_array_descr(items, align, depth + 1),
        Lit::Dict(pairs) => from_dict(pairs, align, depth + 1),
        Lit::Unknown => unsure("dtype description of unknown type"),
        other => rej(format!("Cannot interpret {other:?} as a data type")),
    }
}

/// `NPY_NEXT_ALIGNED_OFFSET` in C int arithmetic.
fn next_aligned(offset: i32, alignment: i32) -> i32 {
    offset.wrapping_add(alignment).wrapping_sub(1) & alignment.wrapping_neg()
}

/// `_convert_from_tuple`: `(base, shape)`, `(flexible, size)`, `(base, new)`.
pub(crate) fn from_tuple(items: &[Lit], align: bool, depth: usize) -> Result<Dtype, DtypeError> {
    if items.len() != 2 {
        return rej(format!(
            "Tuple must have size 2, but has size {}",
            items.len()
        ));
    }
    let ty = convert_any(&items[0], align, depth + 1)?;
    tuple_with(ty, &items[1], depth)
}

/// The rest of `_convert_from_tuple`, once the first item is a dtype.
pub(crate) fn tuple_with(ty: Dtype, val: &Lit, depth: usize) -> Result<Dtype, DtypeError> {
    if let Some(d) = try_inherit(&ty, val, depth)? {
        return Ok(d);
    }
    if ty.is_unsized() {
        // PyArray_PyIntAsInt's errors come back as -1, "invalid itemsize".
        let mut n = match pyops::as_c_int(val) {
            Ok(n) => n as i64,
            Err(DtypeError::Rejected(_)) => -1,
            Err(e) => return Err(e),
        };
        if ty.type_num == TypeNum::Unicode {
            n = if n > (i32::MAX / 4) as i64 { -1 } else { n * 4 };
        }
        if n < 0 {
            return rej("invalid itemsize in generic type tuple");
        }
        let mut d = ty.copy();
        d.itemsize = n;
        return Ok(d);
    }
    if ty.metadata.is_some() && matches!(val, Lit::Dict(_)) {
        let mut d = ty;
        let Some(Lit::Dict(old)) = &d.metadata else {
            return rej("dtype metadata is not a dict");
        };
        let mut merged = old.clone();
        if let Lit::Dict(new) = val {
            for (k, v) in new {
                if dict_get(&merged, k).is_none() {
                    merged.push((k.clone(), v.clone()));
                }
            }
        }
        d.metadata = Some(Lit::Dict(merged));
        return Ok(d);
    }
    let (shape, is_tuple) = intp_sequence(val)?;
    if shape.len() > MAXDIMS {
        return rej("invalid shape in fixed-type tuple.");
    }
    if shape.is_empty() && is_tuple {
        return Ok(ty);
    }
    let mut items: i64 = 1;
    for &dim in &shape {
        if dim < 0 {
            return rej("invalid shape in fixed-type tuple: dimension smaller then zero.");
        }
        if dim > i32::MAX as i64 {
            return rej("invalid shape in fixed-type tuple: dimension does not fit into a C int.");
        }
        items = items.saturating_mul(dim);
    }
    let nbytes = (ty.itemsize as i32 as i64) * items;
    if items > i32::MAX as i64 || nbytes > i32::MAX as i64 || nbytes < i32::MIN as i64 {
        return rej(
            "invalid shape in fixed-type tuple: dtype size in bytes must fit into a C int.",
        );
    }
    let mut d = Dtype::builtin(TypeNum::Void);
    d.builtin = false;
    d.itemsize = nbytes;
    d.flags = ty.flags;
    d.alignment = ty.alignment;
    d.portable = ty.portable;
    d.subarray = Some(Subarray {
        base: Box::new(ty),
        shape: Lit::Tuple(shape.into_iter().map(|x| Lit::Int(x as i128)).collect()),
    });
    Ok(d)
}

/// `PyArray_IntpConverter`: the shape, and whether it was given as a tuple.
fn intp_sequence(val: &Lit) -> Result<(Vec<i64>, bool), DtypeError> {
    let items: Vec<Lit> = match val {
        Lit::None => return rej("Use () not None as shape arguments"),
        Lit::Tuple(t) | Lit::List(t) => t.clone(),
        Lit::Str(s) => s.chars().map(|c| Lit::Str(c.to_string())).collect(),
        Lit::Bytes(b) => b.iter().map(|&x| Lit::Int(x as i128)).collect(),
        Lit::Dtype(_) | Lit::Unknown => return unsure("shape of unknown type"),
        scalar => return Ok((vec![dimension(scalar)?], false)),
    };
    if items.len() > MAXDIMS {
        return rej("maximum supported dimension for an ndarray is currently 64");
    }
    let dims = items.iter().map(dimension).collect::<Result<Vec<_>, _>>()?;
    Ok((dims, matches!(val, Lit::Tuple(_))))
}

/// `dimension_from_scalar`: an int (not a bool) in `intp` range.
fn dimension(v: &Lit) -> Result<i64, DtypeError> {
    match v {
        Lit::Int(i) => i64::try_from(*i).or_else(|_| rej("Maximum allowed dimension exceeded")),
        Lit::Unknown => unsure("dimension of unknown type"),
        _ => rej("expected a sequence of integers or a single integer"),
    }
}

/// `_is_tuple_of_integers` (Python ints, bools included).
pub(crate) fn is_tuple_of_ints(v: &Lit) -> bool {
    match v {
        Lit::Tuple(t) => t
            .iter()
            .all(|x| matches!(x, Lit::Int(_) | Lit::Bool(_) | Lit::BigInt { .. })),
        _ => false,
    }
}

/// `_try_convert_from_inherit_tuple`: `(base, new)` views `base` as `new`. `None`
/// means "not this form".
fn try_inherit(ty: &Dtype, val: &Lit, depth: usize) -> Result<Option<Dtype>, DtypeError> {
    if is_tuple_of_ints(val) {
        return Ok(None);
    }
    let conv = match convert_any(val, false, depth + 1) {
        Ok(c) => c,
        Err(DtypeError::Rejected(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !ty.is_legacy() || !conv.is_legacy() {
        return Ok(None);
    }
    let mut new = ty.copy();
    if new.is_unsized() {
        new.itemsize = conv.itemsize;
    } else if new.itemsize != conv.itemsize {
        return rej("mismatch in size of old and new data-descriptor");
    } else {
        validate_union(&new, &conv)?;
    }
    if conv.fields.is_some() {
        new.fields = conv.fields.clone();
    }
    if conv.metadata.is_some() {
        new.metadata = conv.metadata.clone();
    }
    if new.type_num == TypeNum::Void {
        new.flags = conv.flags;
    }
    new.portable &= conv.portable;
    Ok(Some(new))
}

/// `_validate_union_object_dtype`: object dtypes may only be viewed as
/// `('O', [('name', 'O')])`.
fn validate_union(new: &Dtype, conv: &Dtype) -> Result<(), DtypeError> {
    let msg =
        "dtypes of the form (old_dtype, new_dtype) containing the object dtype are not supported";
    if !new.hasobject() && !conv.hasobject() {
        return Ok(());
    }
    if new.fields.is_some() || new.kind != 'O' {
        return rej(msg);
    }
    let names = conv.names().unwrap_or_default();
    if conv.fields.is_none() || names.len() != 1 {
        return rej(msg);
    }
    match conv.field_dtype(&names[0])? {
        Some(d) if d.kind == 'O' => Ok(()),
        Some(_) => rej(msg),
        None => unsure("fields lack the name they claim"),
    }
}

/// The keys of a fields dict being built (names and str titles).
type Keys = std::collections::HashSet<String>;

fn struct_dtype(
    fields: Vec<Field>,
    itemsize: i32,
    flags: u64,
    align: bool,
    maxalign: i32,
) -> Dtype {
    let mut d = Dtype::builtin(TypeNum::Void);
    d.builtin = false;
    d.portable = fields.iter().all(|f| f.dtype.portable);
    d.itemsize = itemsize as i64;
    d.flags = flags | if align { ALIGNED_STRUCT } else { 0 };
    if align {
        d.alignment = maxalign as i64;
    }
    d.fields = Some(Fields::Built(fields));
    d
}

/// `_convert_from_array_descr`: `[(name, format[, shape]), ...]`.
fn from_array_descr(items: &[Lit], align: bool, depth: usize) -> Result<Dtype, DtypeError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut keys = Keys::new();
    let mut flags = NEEDS_PYAPI;
    let mut maxalign: i32 = 1;
    let mut total: i32 = 0;
    for (i, item) in items.iter().enumerate() {
        let t = match item {
            Lit::Tuple(t) if t.len() >= 2 => t,
            Lit::Unknown => return unsure("field of unknown type"),
            _ => return rej("Field elements must be 2- or 3-tuples"),
        };
        let (title, name) = match &t[0] {
            Lit::Str(s) => (None, s.clone()),
            Lit::Tuple(nt) if nt.len() == 2 => match &nt[1] {
                Lit::Str(s) => (Some(nt[0].clone()), s.clone()),
                Lit::Unknown => return unsure("field name of unknown type"),
                _ => return rej("Field name must be a str"),
            },
            Lit::Tuple(_) => {
                return rej("If a tuple, the first element of a field tuple must have two elements")
            }
            Lit::Unknown => return unsure("field name of unknown type"),
            _ => return rej("First element of field tuple is neither a tuple nor str"),
        };
        let name = if name.is_empty() {
            match &title {
                None => format!("f{i}"),
                Some(Lit::Str(t)) if !t.is_empty() => t.clone(),
                Some(Lit::Unknown) => return unsure("field title of unknown type"),
                Some(_) => return rej("Field titles must be non-empty strings"),
            }
        } else {
            name
        };
        let conv = match t.len() {
            2 => convert_any(&t[1], align, depth + 1)?,
            3 => from_tuple(&t[1..3], align, depth + 1)?,
            _ => return rej("Field elements must be tuples with at most 3 elements"),
        };
        if conv.type_num == TypeNum::VString {
            return rej("StringDType is not currently supported for structured dtype fields.");
        }
        let title_key = match &title {
            Some(Lit::Str(s)) => Some(s.clone()),
            _ => None,
        };
        if keys.contains(&name) || title_key.as_ref().is_some_and(|k| keys.contains(k)) {
            return rej(format!("field {name:?} occurs more than once"));
        }
        flags |= conv.flags & FROM_FIELDS;
        if align {
            let a = conv.alignment as i32;
            if a > 1 {
                total = next_aligned(total, a);
            }
            maxalign = maxalign.max(a);
        }
        // A str title is a second key for the same field, and may not repeat one.
        if title_key.as_ref().is_some_and(|k| *k == name) {
            return rej("title already used as a name or title.");
        }
        let size = conv.itemsize;
        keys.insert(name.clone());
        keys.extend(title_key);
        fields.push(Field {
            name,
            dtype: conv,
            offset: total as i64,
            title,
        });
        // `int totalsize += npy_intp elsize`: wraps at 32 bits.
        total = (total as i64).wrapping_add(size) as i32;
    }
    if maxalign > 1 {
        total = next_aligned(total, maxalign);
    }
    Ok(struct_dtype(fields, total, flags, align, maxalign))
}

/// `_convert_from_list`: the list `_commastring` makes (`'i4,f8'`).
pub(crate) fn from_format_list(
    items: &[Lit],
    align: bool,
    depth: usize,
) -> Result<Dtype, DtypeError> {
    let mut n = items.len();
    if matches!(items.last(), Some(Lit::Str(s)) if s.is_empty()) {
        n -= 1;
    }
    if n == 0 {
        return rej("Expected at least one field name");
    }
    let mut fields = Vec::new();
    let mut flags = NEEDS_PYAPI;
    let mut maxalign: i32 = 1;
    let mut total: i32 = 0;
    for (i, item) in items[..n].iter().enumerate() {
        let conv = convert_any(item, align, depth + 1)?;
        flags |= conv.flags & FROM_FIELDS;
        if align {
            let a = conv.alignment as i32;
            if a > 1 {
                total = next_aligned(total, a);
            }
            maxalign = maxalign.max(a);
        }
        let size = conv.itemsize;
        fields.push(Field {
            name: format!("f{i}"),
            dtype: conv,
            offset: total as i64,
            title: None,
        });
        total = (total as i64).wrapping_add(size) as i32;
    }
    if maxalign > 1 {
        total = next_aligned(total, maxalign);
    }
    Ok(struct_dtype(fields, total, flags, align, maxalign))
}

/// `_convert_from_dict`: `{'names': ..., 'formats': ..., 'offsets': ..., 'titles':
/// ..., 'itemsize': ..., 'aligned': ..., 'metadata': ...}`, or the `fields`-style
/// dict `{name: (format, offset[, title])}`.
pub(crate) fn from_dict(
    pairs: &[(Lit, Lit)],
    align: bool,
    depth: usize,
) -> Result<Dtype, DtypeError> {
    let key = |k: &str| dict_get(pairs, &Lit::Str(k.into()));
    let (Some(names), Some(formats)) = (key("names"), key("formats")) else {
        return usefields(pairs, align, depth);
    };
    let len_or_rej = |v: &Lit| -> Result<usize, DtypeError> { pyops::len(v) };
    let n = len_or_rej(names)?;
    let offsets = key("offsets");
    let titles = key("titles");
    if n > len_or_rej(formats)?
        || offsets.map(len_or_rej).transpose()?.is_some_and(|l| n > l)
        || titles.map(len_or_rej).transpose()?.is_some_and(|l| n > l)
    {
        return rej(
            "'names', 'formats', 'offsets', and 'titles' dict entries must have the same length",
        );
    }
    let mut align = align;
    match key("aligned") {
        None | Some(Lit::Bool(false)) => {}
        Some(Lit::Bool(true)) => align = true,
        Some(Lit::Unknown) => return unsure("'aligned' of unknown type"),
        Some(_) => return rej("NumPy dtype descriptor includes 'aligned' entry, but its value is neither True nor False"),
    }
    if matches!(names, Lit::Dict(_)) && n > 0 {
        // numpy would key the fields by the dict's values but take its keys as names.
        return unsure("field names given as a dict");
    }
    let mut fields: Vec<Field> = Vec::new();
    let mut keys = Keys::new();
    let mut flags = NEEDS_PYAPI;
    let mut total: i32 = 0;
    let mut maxalign: i32 = 1;
    let mut out_of_order = false;
    for i in 0..n {
        let title = match titles {
            None => None,
            Some(t) => match pyops::getitem_index(t, i) {
                Ok(Lit::None) | Err(DtypeError::Rejected(_)) => None,
                Ok(v) => Some(v),
                Err(e) => return Err(e),
            },
        };
        let descr = pyops::getitem_index(formats, i)?;
        let conv = convert_any(&descr, align, depth + 1)?;
        let a = if align { conv.alignment as i32 } else { 1 };
        if align {
            maxalign = maxalign.max(a);
        }
        let offset = match offsets {
            Some(o) => {
                let off = pyops::getitem_index(o, i)?;
                let offset = pyops::as_c_int(&off)? as i64;
                if offset < 0 {
                    return rej(format!("offset {offset} cannot be negative"));
                }
                if offset < total as i64 {
                    out_of_order = true;
                }
                if align {
                    if conv.alignment == 0 {
                        return rej("numpy divides by a zero field alignment");
                    }
                    if offset % conv.alignment != 0 {
                        return rej(
                            "offset is not divisible by the field alignment with align=True",
                        );
                    }
                }
                if offset + conv.itemsize > total as i64 {
                    total = (offset + conv.itemsize) as i32;
                }
                offset
            }
            None => {
                if align && a > 1 {
                    total = next_aligned(total, a);
                }
                let at = total as i64;
                total = (total as i64).wrapping_add(conv.itemsize) as i32;
                at
            }
        };
        let name = match pyops::getitem_index(names, i)? {
            Lit::Str(s) => s,
            Lit::Unknown => return unsure("field name of unknown type"),
            _ => return rej("field names must be strings"),
        };
        if keys.contains(&name) {
            return rej("name already used as a name or title");
        }
        if let Some(Lit::Str(t)) = &title {
            if *t == name || keys.contains(t) {
                return rej("title already used as a name or title.");
            }
            keys.insert(t.clone());
        }
        keys.insert(name.clone());
        flags |= conv.flags & FROM_FIELDS;
        fields.push(Field {
            name,
            dtype: conv,
            offset,
            title,
        });
    }
    if n == 0 {
        match names {
            Lit::Tuple(_)
            | Lit::List(_)
            | Lit::Str(_)
            | Lit::Bytes(_)
            | Lit::Dict(_)
            | Lit::Set(_) => {}
            _ => return rej("field names are not a sequence"),
        }
    }
    if maxalign > 1 {
        total = next_aligned(total, maxalign);
    }
    let mut d = struct_dtype(fields, total, flags, align, maxalign);
    if out_of_order && d.hasobject() {
        validate_object_overlap(&d)?;
    }
    if let Some(sz) = key("itemsize") {
        let sz = pyops::as_c_int(sz)? as i64;
        if sz < d.itemsize {
            return rej(format!(
                "NumPy dtype descriptor requires {} bytes, cannot override to smaller itemsize of {sz}",
                d.itemsize
            ));
        }
        if align && d.alignment > 0 && sz % d.alignment != 0 {
            return rej(
                "NumPy dtype descriptor requires an alignment not divisible into the itemsize",
            );
        }
        d.itemsize = sz;
    }
    if let Some(m) = key("metadata") {
        d.metadata = Some(m.clone());
    }
    Ok(d)
}

/// `_validate_object_field_overlap`.
fn validate_object_overlap(d: &Dtype) -> Result<(), DtypeError> {
    let Some(Fields::Built(fields)) = &d.fields else {
        return Ok(());
    };
    for (i, a) in fields.iter().enumerate() {
        if !a.dtype.hasobject() {
            continue;
        }
        for (j, b) in fields.iter().enumerate() {
            if i != j
                && a.offset < b.offset + b.dtype.itemsize
                && b.offset < a.offset + a.dtype.itemsize
            {
                return rej("Cannot create a NumPy dtype with overlapping object fields");
            }
        }
    }
    Ok(())
}

/// `numpy._core._internal._usefields`: a `fields`-style dict, optionally with the
/// field order under the key `-1`.
fn usefields(pairs: &[(Lit, Lit)], align: bool, depth: usize) -> Result<Dtype, DtypeError> {
    let order = dict_get(pairs, &Lit::Int(-1)).filter(|v| **v != Lit::None);
    let (names, formats, offsets, titles) = match order {
        None => {
            // _makenames_list: every (format, offset[, title]) entry, by offset;
            // entries whose title equals their key are the title aliases.
            let mut all: Vec<(Lit, Dtype, i128, Lit)> = Vec::new();
            for (fname, obj) in pairs {
                let n = pyops::len(obj)?;
                let Lit::Tuple(t) = obj else {
                    return rej("entry not a 2- or 3- tuple");
                };
                if n != 2 && n != 3 {
                    return rej("entry not a 2- or 3- tuple");
                }
                if n > 2 && (t[2] == Lit::Unknown || *fname == Lit::Unknown) {
                    return unsure("comparing a title of unknown type");
                }
                if n > 2 && t[2].py_eq(fname) {
                    continue;
                }
                let num = pyops::python_int(&t[1])?;
                if num < 0 {
                    return rej("invalid offset.");
                }
                let format = convert_any(&t[0], align, depth + 1)?;
                let title = if n > 2 { t[2].clone() } else { Lit::None };
                all.push((fname.clone(), format, num, title));
            }
            all.sort_by_key(|x| x.2);
            let mut names = Vec::new();
            let mut formats = Vec::new();
            let mut offsets = Vec::new();
            let mut titles = Vec::new();
            for (n, f, o, t) in all {
                names.push(n);
                formats.push(Lit::Dtype(Box::new(f)));
                offsets.push(Lit::Int(o));
                titles.push(t);
            }
            (Lit::List(names), formats, offsets, titles)
        }
        Some(order) => {
            let mut formats = Vec::new();
            let mut offsets = Vec::new();
            let mut titles = Vec::new();
            for name in pyops::iterate(order)? {
                let Some(res) = dict_get(pairs, &name) else {
                    return rej("KeyError in a fields dict");
                };
                formats.push(pyops::getitem_index(res, 0)?);
                offsets.push(pyops::getitem_index(res, 1)?);
                titles.push(if pyops::len(res)? > 2 {
                    pyops::getitem_index(res, 2)?
                } else {
                    Lit::None
                });
            }
            (order.clone(), formats, offsets, titles)
        }
    };
    let spec = vec![
        (Lit::Str("names".into()), names),
        (Lit::Str("formats".into()), Lit::List(formats)),
        (Lit::Str("offsets".into()), Lit::List(offsets)),
        (Lit::Str("titles".into()), Lit::List(titles)),
    ];
    from_dict(&spec, align, depth + 1)
}
