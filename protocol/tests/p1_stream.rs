//! The framer on a real serial capture: 566 consecutive telegrams of an Iskra AM550 (DSMR 5.0,
//! `fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt`; the capture lost its CRs, restored here).
//! It starts mid-telegram, so the first bytes are reported as garbage.
//!
//! Chunking and corruption come from a seeded xorshift generator, not a randomness crate, so the
//! test is deterministic and runs in the browser (wasm32) as well.
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use protocol::p1::{FrameError, Framer, Readings, Telegram};

mod p1_capture;

use p1_capture::{Prng, TELEGRAMS_IN_CAPTURE, capture};

/// The telegrams in the capture, found independently of the framer: each `/` that starts a line
/// up to its `!` line and the four CRC digits.
fn originals(capture: &[u8]) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(capture).unwrap();
    text.match_indices("\r\n/")
        .map(|(at, _)| {
            let start = at + 2;
            let end = start + text[start..].find("\r\n!").unwrap() + 3 + 4;
            capture[start..end].to_vec()
        })
        .collect()
}

/// Everything the framer reports for `stream` fed in chunks from `chunk_size`.
struct Outcome {
    valid: Vec<Vec<u8>>,
    crc_failures: usize,
    frame_errors: Vec<FrameError>,
}

fn run(stream: &[u8], mut chunk_size: impl FnMut() -> usize) -> Outcome {
    let mut outcome = Outcome { valid: Vec::new(), crc_failures: 0, frame_errors: Vec::new() };
    let mut framer = Framer::default();
    let drain = |framer: &mut Framer, outcome: &mut Outcome| {
        while let Some(step) = framer.next_frame() {
            match step {
                Ok(frame) => {
                    let bytes = [frame.body, frame.crc_digits].concat();
                    match Telegram::parse(frame) {
                        Ok(telegram) if telegram.crc().is_valid() => {
                            // Typed readings must come out of every valid telegram.
                            let readings = Readings::from_telegram(&telegram);
                            assert!(readings.problems.is_empty(), "{:?}", readings.problems);
                            assert!(readings.meter_time.is_some());
                            outcome.valid.push(bytes);
                        }
                        _ => outcome.crc_failures += 1,
                    }
                }
                Err(error) => outcome.frame_errors.push(error),
            }
        }
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(chunk_size().min(rest.len()));
        framer.feed(piece);
        drain(&mut framer, &mut outcome);
        rest = tail;
    }
    framer.finish();
    drain(&mut framer, &mut outcome);
    outcome
}

#[test]
fn the_capture_holds_566_telegrams_by_independent_count() {
    assert_eq!(originals(&capture()).len(), TELEGRAMS_IN_CAPTURE);
}

#[test]
fn one_byte_at_a_time_yields_all_566_valid_telegrams() {
    let stream = capture();
    let outcome = run(&stream, || 1);
    assert_eq!(outcome.valid, originals(&stream));
    assert_eq!(outcome.crc_failures, 0);
    // Only the partial telegram the capture starts with.
    assert!(matches!(outcome.frame_errors[..], [FrameError::Garbage { offset: 0, .. }]));
}

#[test]
fn random_chunk_sizes_yield_all_566_valid_telegrams() {
    let stream = capture();
    let expected = originals(&stream);
    for (seed, largest) in [(1u64, 7usize), (2, 64), (3, 1500), (4, 9000)] {
        let mut prng = Prng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let outcome = run(&stream, || prng.range(1, largest));
        assert_eq!(outcome.valid, expected, "seed {seed}, chunks up to {largest}");
        assert_eq!(outcome.crc_failures, 0);
        assert_eq!(outcome.frame_errors.len(), 1);
    }
}

/// One way to damage the stream.
#[derive(Debug, Clone, Copy)]
enum Damage {
    FlipBit,
    InsertNoise,
    Delete,
}

#[test]
fn noise_truncation_and_bit_flips_yield_only_the_untouched_valid_telegrams() {
    let clean = capture();
    let expected = originals(&clean);
    for seed in 1..=6u64 {
        let mut prng = Prng::new(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let telegram_starts: Vec<usize> = {
            let text = std::str::from_utf8(&clean).unwrap();
            text.match_indices("\r\n/").map(|(at, _)| at + 2).collect()
        };
        let telegram_at =
            |offset: usize| telegram_starts.partition_point(|&s| s <= offset).checked_sub(1);
        let mut damaged = Vec::with_capacity(clean.len() + 4096);
        let mut touched = std::collections::BTreeSet::new();
        let mut index = 0;
        while index < clean.len() {
            // About one damage per 2 KiB: roughly one telegram in three is hit.
            if prng.range(0, 2047) == 0 {
                let damage =
                    [Damage::FlipBit, Damage::InsertNoise, Damage::Delete][prng.range(0, 2)];
                if let Some(t) = telegram_at(index) {
                    touched.insert(t);
                }
                match damage {
                    Damage::FlipBit => {
                        damaged.push(clean[index] ^ (1 << prng.range(0, 6)));
                        index += 1;
                    }
                    Damage::InsertNoise => {
                        for _ in 0..prng.range(1, 40) {
                            // Noise biased towards the bytes that matter to framing.
                            let byte = match prng.range(0, 5) {
                                0 => b'/',
                                1 => b'!',
                                2 => b'\n',
                                _ => (prng.next() & 0xFF) as u8,
                            };
                            damaged.push(byte);
                        }
                        // The noise may have opened a telegram that swallows the next one's start.
                        if let Some(t) = telegram_at(index) {
                            touched.insert(t + 1);
                        }
                    }
                    Damage::Delete => {
                        let end = (index + prng.range(1, 1200)).min(clean.len());
                        if let Some(t) = telegram_at(end.saturating_sub(1)) {
                            touched.extend(telegram_at(index).unwrap_or(0)..=t);
                        }
                        index = end;
                    }
                }
            } else {
                damaged.push(clean[index]);
                index += 1;
            }
        }
        assert!(!touched.is_empty());
        let outcome = run(&damaged, || prng.range(1, 300));

        // Every valid telegram is one of the originals, in the original order...
        let mut originals_iter = expected.iter();
        for telegram in &outcome.valid {
            assert!(
                originals_iter.any(|original| original == telegram),
                "seed {seed}: a CRC-valid telegram that was never sent (or out of order)"
            );
        }
        // ...and every telegram the damage did not touch came through.
        for (number, original) in expected.iter().enumerate() {
            if !touched.contains(&number) {
                assert!(
                    outcome.valid.contains(original),
                    "seed {seed}: lost untouched telegram {number}"
                );
            }
        }
        assert!(outcome.valid.len() < TELEGRAMS_IN_CAPTURE, "seed {seed}: the damage did nothing");
        assert!(
            outcome.crc_failures + outcome.frame_errors.len() > 1,
            "seed {seed}: damage not reported"
        );
    }
}
