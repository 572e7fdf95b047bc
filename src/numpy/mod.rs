//! NumPy's own rules for dtypes and `.npy` headers, reimplemented so that what
//! picklegate decides about array data (a pickle, or so many raw bytes) is what
//! numpy decides. Nothing here runs Python or numpy.
//!
//! - [`literal`]: `ast.literal_eval`, which reads `.npy` headers.
//! - [`dtype`]: `numpy.dtype(...)`, `descr_to_dtype`, and (in `setstate`) the BUILD
//!   of a pickled dtype.

mod commastring;
mod datetime;
mod descr;
pub mod dtype;
pub mod literal;
mod pyops;
mod setstate;
mod typestr;

pub use dtype::{Dtype, DtypeError};
pub use literal::{Lit, LitError};

#[cfg(test)]
mod tests;
