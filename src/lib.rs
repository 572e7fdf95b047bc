//! picklegate: keeps malicious pickles out of git repositories.
//!
//! The library never unpickles anything. It decodes pickle programs, runs them on an
//! abstract VM that models CPython's unpickler, and checks every effect (imports,
//! calls, mutations, persistent ids, extension codes) against an allow-list policy.

pub mod budget;
pub mod check;
pub mod cli;
pub mod config;
pub mod container;
pub mod diag;
pub mod digest;
pub mod disasm;
pub mod finding;
pub mod git;
pub mod hint;
pub mod learn;
pub mod loosen;
pub mod numpy;
pub mod pickle;
pub mod policy;
pub mod report;
pub mod sanitize;
pub mod scan;
pub mod spool;
