//! `cargo fuzz run disasm`: the body and its invariants are `picklegate_fuzz::disasm`
//! (fuzz/src/lib.rs); fuzz/README.md lists them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    picklegate_fuzz::run(picklegate_fuzz::Target::Disasm, data);
});
