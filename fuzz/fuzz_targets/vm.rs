//! `cargo fuzz run vm`: the body and its invariants are `picklegate_fuzz::vm`
//! (fuzz/src/lib.rs); fuzz/README.md lists them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    picklegate_fuzz::run(picklegate_fuzz::Target::Vm, data);
});
