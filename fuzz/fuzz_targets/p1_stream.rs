#![no_main]
// The framer, parser and typed readings on arbitrary bytes split at an arbitrary point.
libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::p1::fuzz_stream(data));
