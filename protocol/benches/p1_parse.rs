//! Throughput of the P1 read path on the 890-byte DSMR 5 example (`telegram_v5.txt`): bytes fed
//! to the streaming framer, CRC-16/ARC checked, every line parsed, typed readings built — what
//! the Pi agent and the browser do every second. Prints the median telegrams/s of 15 rounds as
//! JSON on one line (`scripts/bench-p1.sh` compares it with dsmr_parser in the same run).
//!
//! `cargo bench -p protocol --bench p1_parse` (pin to one core with `taskset -c 0`).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use protocol::p1::{FrameIn, Framer, Readings, Telegram};

const TELEGRAM: &[u8] = include_bytes!("../tests/fixtures/p1/plain/ndokter/telegram_v5.txt");

/// One telegram through the whole path; returns something derived so nothing is optimised away.
fn read_one(framer: &mut Framer) -> usize {
    framer.feed(TELEGRAM);
    let mut count = 0;
    while let Some(step) = framer.next_frame() {
        let telegram = Telegram::parse(step.unwrap()).unwrap();
        assert!(telegram.crc().is_valid());
        let readings = Readings::from_telegram(&telegram);
        count += readings.energy.len() + telegram.objects().len();
    }
    count
}

/// Parse only: `Telegram::parse` (CRC + lines) on the borrowed telegram, no framer copy and no
/// typed readings.
fn parse_only(frame: FrameIn<'_>) -> usize {
    let telegram = Telegram::parse(black_box(frame)).unwrap();
    assert!(telegram.crc().is_valid());
    telegram.objects().len()
}

fn median_rate(mut round: impl FnMut(u32) -> usize, per_round: u32) -> f64 {
    let mut rates: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            black_box(round(per_round));
            f64::from(per_round) / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The `N` of a `--count N` argument.
fn count_argument() -> Option<u32> {
    let mut args = std::env::args().skip_while(|arg| arg != "--count").skip(1);
    args.next().map(|count| count.parse().expect("--count takes a number"))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let per_round = if quick { 100 } else { 200_000 };
    let mut framer = Framer::default();
    // `--count N`: read N telegrams and stop, nothing timed. For instruction counts under
    // `valgrind --tool=callgrind`: the difference between two counts is the per-telegram cost.
    if let Some(count) = count_argument() {
        let total: usize = (0..count).map(|_| read_one(&mut framer)).sum();
        println!("{{\"telegrams\": {count}, \"checksum\": {total}}}");
        return;
    }
    // Warm up caches and the branch predictor.
    for _ in 0..1000 {
        black_box(read_one(&mut framer));
    }
    let stream = median_rate(|n| (0..n).map(|_| read_one(&mut framer)).sum(), per_round);
    // The frame boundaries of the single telegram: `/` … `!`, then four CRC digits.
    let bang = TELEGRAM.iter().rposition(|&byte| byte == b'!').unwrap();
    let frame =
        FrameIn { offset: 0, body: &TELEGRAM[..=bang], crc_digits: &TELEGRAM[bang + 1..bang + 5] };
    let parse = median_rate(|n| (0..n).map(|_| parse_only(frame)).sum(), per_round);
    println!(
        "{{\"bytes\": {}, \"framer_parse_readings_per_second\": {stream:.0}, \"parse_only_per_second\": {parse:.0}}}",
        TELEGRAM.len()
    );
}
