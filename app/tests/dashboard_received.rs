//! The readings a provider keeps: a provisional reading later verified is one row, energy and
//! gas per period come from the cumulative registers, the live chart's tier is the finest one,
//! and the CSV export has one line per reading under its header.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::dashboard::received::{CSV_HEADER, HOUR, ReceivedReadings};
use app::dashboard::watch::Received;
use protocol::channel::{EpochId, GasReading, PhaseReading, Position, Reading, Tier};
use protocol::crypto::PartyId;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const DEVICE: PartyId = PartyId([7; 32]);
/// 2026-11-26 10:00:00 UTC, an hour boundary.
const T0: u64 = 1_764_151_200;

fn reading(at: u64, import_wh: u64, gas_dm3: u64) -> Reading {
    Reading {
        timestamp: at,
        energy_import_wh: vec![import_wh, 1_000],
        energy_export_wh: vec![0, 0],
        power_import_w: 1_234,
        power_export_w: 0,
        phases: vec![PhaseReading { power_import_w: 1_234, ..PhaseReading::default() }],
        gas: Some(GasReading { volume_dm3: gas_dm3, captured_at: at }),
        raw_telegram: None,
    }
}

fn received(tier: Tier, seq: u64, verified: bool, r: Reading) -> Received {
    Received {
        device: DEVICE,
        position: Position { tier, epoch: EpochId([1; 16]), seq },
        verified,
        reading: r,
    }
}

#[test]
fn a_provisional_reading_later_verified_is_counted_once() {
    let mut kept = ReceivedReadings::default();
    assert_eq!(kept.add(&[received(Tier::Second, 0, false, reading(T0, 10, 0))]), 1);
    assert_eq!((kept.len(), kept.verified_count()), (1, 0));
    assert_eq!(kept.add(&[received(Tier::Second, 0, true, reading(T0, 10, 0))]), 0);
    assert_eq!((kept.len(), kept.verified_count()), (1, 1));
    // Delivered again (another node, a resubscription): nothing changes.
    kept.add(&[received(Tier::Second, 0, true, reading(T0, 10, 0))]);
    assert_eq!((kept.len(), kept.verified_count()), (1, 1));
}

#[test]
fn energy_and_gas_per_hour_come_from_register_differences() {
    let mut kept = ReceivedReadings::default();
    // Hour 1: import register 10 000 → 10 500 Wh (tariff 2 constant); hour 2: → 11 700 Wh.
    let items = [
        received(Tier::Second, 0, true, reading(T0 + 5, 10_000, 100_000)),
        received(Tier::Second, 1, true, reading(T0 + 3_000, 10_500, 100_250)),
        received(Tier::Second, 2, true, reading(T0 + HOUR + 10, 11_000, 100_900)),
        received(Tier::Second, 3, true, reading(T0 + HOUR + 3_599, 11_700, 101_000)),
    ];
    kept.add(&items);
    let energy = kept.energy_import(DEVICE, HOUR);
    assert_eq!(energy.len(), 2);
    assert_eq!(energy[0].start, T0);
    assert!((energy[0].amount - 0.5).abs() < 1e-9, "{energy:?}");
    assert_eq!(energy[1].start, T0 + HOUR);
    assert!((energy[1].amount - 1.2).abs() < 1e-9, "{energy:?}");
    let gas = kept.gas(DEVICE, HOUR);
    assert!((gas[0].amount - 0.25).abs() < 1e-9 && (gas[1].amount - 0.75).abs() < 1e-9, "{gas:?}");
    assert!(kept.energy_export(DEVICE, HOUR).iter().all(|bar| bar.amount == 0.0));
    assert!(kept.energy_import(PartyId([8; 32]), HOUR).is_empty(), "another device has none");
}

#[test]
fn history_uses_the_finest_tier_so_tiers_are_not_added_twice() {
    let mut kept = ReceivedReadings::default();
    kept.add(&[
        received(Tier::TenSeconds, 0, true, reading(T0, 10_000, 0)),
        received(Tier::TenSeconds, 1, true, reading(T0 + 10, 10_100, 0)),
        received(Tier::Second, 0, true, reading(T0, 10_000, 0)),
        received(Tier::Second, 9, true, reading(T0 + 9, 10_090, 0)),
    ]);
    assert_eq!(kept.finest_tier(DEVICE), Some(Tier::Second));
    let energy = kept.energy_import(DEVICE, HOUR);
    assert_eq!(energy.len(), 1);
    assert!((energy[0].amount - 0.09).abs() < 1e-9, "{energy:?}");
    assert_eq!(kept.latest(DEVICE).unwrap().timestamp, T0 + 10);
}

#[test]
fn the_csv_has_a_header_and_one_line_per_reading() {
    let mut kept = ReceivedReadings::default();
    kept.add(&[
        received(Tier::Second, 0, true, reading(T0, 10_000, 5)),
        received(Tier::Second, 1, false, reading(T0 + 1, 10_001, 5)),
    ]);
    let csv = kept.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), 3);
    let columns = CSV_HEADER.split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == columns), "{csv}");
    assert!(lines[1].contains(",second,") && lines[1].contains(",verified,"));
    assert!(
        lines[1].contains(&format!(",{T0},10000|1000,0|0,1234,0,1234,0,,,,,5,{T0}")),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(",provisional,"));
}
