#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oxidump_fuzz::oplog(data));
