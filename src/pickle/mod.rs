//! The pickle engine: opcode table, zero-copy decoder, abstract VM and value graph.

pub mod compat;
pub mod decode;
pub mod graph;
pub mod lit;
pub mod op;
pub mod pyrepr;
pub mod pytext;
pub mod vm;
