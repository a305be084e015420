//! The 566-telegram serial capture (Iskra AM550, nielsbasjes/dsmr-tools, Apache-2.0) that the
//! stream tests feed in pieces, and a seeded generator for chunk sizes and damage. Shared by
//! `protocol/tests/p1_stream.rs` and, through `#[path]`, by the web app's reader tests, so both
//! read the same bytes the same way on native and wasm32 (the capture is compiled in: no files in
//! the browser).
#![allow(dead_code)]

/// The capture as recorded: its line ends lost their CR on the way.
pub const CAPTURE_LF: &str = include_str!("../fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt");

/// Complete telegrams in the capture (counted once by hand, asserted by the tests).
pub const TELEGRAMS_IN_CAPTURE: usize = 566;

/// The capture with the CRs its recording lost put back: the bytes the meter sent.
pub fn capture() -> Vec<u8> {
    CAPTURE_LF.replace('\n', "\r\n").into_bytes()
}

/// Deterministic pseudo-random choices (chunk sizes, cut points, damage), the same on every target.
pub struct Prng(oorandom::Rand64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Self(oorandom::Rand64::new(u128::from(seed)))
    }

    pub fn next(&mut self) -> u64 {
        self.0.rand_u64()
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        let span = (high - low) as u64 + 1;
        low + usize::try_from(self.0.rand_range(0..span)).expect("within usize")
    }
}
