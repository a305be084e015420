//! Resolution tiers: every telegram for the 1 s stream, exact aggregates for the coarser ones.
//!
//! A provider granted only the 15-minute tier must not be able to reconstruct the 1 s profile,
//! so coarser tiers carry aggregates, computed here from the 1 s readings:
//!
//! - energy registers: the cumulative registers of the window's **last** telegram. Energy used
//!   in a window is the difference between two consecutive aggregates — a register delta, exact
//!   to the Wh, never an integral of sampled power;
//! - power (total and per phase), voltage, current: the integer mean of the window's samples
//!   (sum in `u64`, floor division — no floating point);
//! - gas: the last capture seen;
//! - timestamp: the window's start. Windows are aligned to the meter's local time (a day runs
//!   from local midnight, 23 or 25 h on the DST change days; hours and quarters are the same in
//!   UTC because CET/CEST offsets are whole hours).
//!
//! A window is emitted when the first reading of a later window arrives.

use std::collections::BTreeMap;

use super::meter_time::utc_offset;
use crate::channel::{PhaseReading, Reading, Tier};

#[derive(Debug, Clone, Default)]
struct PhaseSums {
    voltage: (u64, u64),
    current: (u64, u64),
    import: u64,
    export: u64,
}

#[derive(Debug, Clone)]
struct Window {
    start: u64,
    samples: u64,
    power_import: u64,
    power_export: u64,
    phases: Vec<PhaseSums>,
    last: Reading,
}

impl Window {
    fn new(start: u64, reading: &Reading) -> Self {
        let mut window = Self {
            start,
            samples: 0,
            power_import: 0,
            power_export: 0,
            phases: vec![PhaseSums::default(); reading.phases.len()],
            last: reading.clone(),
        };
        window.add(reading);
        window
    }

    fn add(&mut self, reading: &Reading) {
        self.samples += 1;
        self.power_import += u64::from(reading.power_import_w);
        self.power_export += u64::from(reading.power_export_w);
        if self.phases.len() < reading.phases.len() {
            self.phases.resize(reading.phases.len(), PhaseSums::default());
        }
        for (sums, phase) in self.phases.iter_mut().zip(&reading.phases) {
            if let Some(v) = phase.voltage_dv {
                sums.voltage.0 += u64::from(v);
                sums.voltage.1 += 1;
            }
            if let Some(c) = phase.current_ma {
                sums.current.0 += u64::from(c);
                sums.current.1 += 1;
            }
            sums.import += u64::from(phase.power_import_w);
            sums.export += u64::from(phase.power_export_w);
        }
        self.last = reading.clone();
    }

    fn finish(&self) -> Reading {
        let mean = |sum: u64, n: u64| u32::try_from(sum / n.max(1)).unwrap_or(u32::MAX);
        Reading {
            timestamp: self.start,
            energy_import_wh: self.last.energy_import_wh.clone(),
            energy_export_wh: self.last.energy_export_wh.clone(),
            power_import_w: mean(self.power_import, self.samples),
            power_export_w: mean(self.power_export, self.samples),
            phases: self
                .phases
                .iter()
                .map(|s| PhaseReading {
                    voltage_dv: (s.voltage.1 > 0).then(|| mean(s.voltage.0, s.voltage.1)),
                    current_ma: (s.current.1 > 0).then(|| mean(s.current.0, s.current.1)),
                    power_import_w: mean(s.import, self.samples),
                    power_export_w: mean(s.export, self.samples),
                })
                .collect(),
            gas: self.last.gas.clone(),
            raw_telegram: None,
        }
    }
}

/// Start of the window of `tier` holding `timestamp` (UTC seconds).
pub fn window_start(tier: Tier, timestamp: u64) -> u64 {
    let resolution = tier.resolution_secs();
    if tier == Tier::Day {
        let offset = utc_offset(timestamp);
        let local = timestamp + offset;
        let midnight_local = local - local % 86_400;
        // The offset at midnight may differ from the one now (DST change day).
        let guess = midnight_local - offset;
        let exact = midnight_local.saturating_sub(utc_offset(guess));
        return if exact <= timestamp { exact } else { guess };
    }
    timestamp - timestamp % resolution
}

/// Turns a stream of readings into per-tier readings.
#[derive(Debug, Default)]
pub struct TierAggregator {
    windows: BTreeMap<Tier, Window>,
    ignored_older: u64,
}

impl TierAggregator {
    /// An aggregator with no open window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Readings ignored by a tier because they were older than its open window.
    pub fn ignored_older(&self) -> u64 {
        self.ignored_older
    }

    /// Adds one reading; returns the readings now complete, per tier (finest first). The
    /// `Second` tier gets the reading itself.
    pub fn push(&mut self, reading: &Reading, tiers: &[Tier]) -> Vec<(Tier, Reading)> {
        let mut out = Vec::new();
        for &tier in tiers {
            if tier == Tier::Second {
                out.push((tier, reading.clone()));
                continue;
            }
            let start = window_start(tier, reading.timestamp);
            match self.windows.get_mut(&tier) {
                Some(window) if window.start == start => window.add(reading),
                Some(window) if start < window.start => {
                    // The meter's clock went back: never reorder a stream. (`Device` drops
                    // such readings before they get here; other callers see them counted.)
                    self.ignored_older += 1;
                }
                Some(window) => {
                    out.push((tier, window.finish()));
                    *window = Window::new(start, reading);
                }
                None => {
                    self.windows.insert(tier, Window::new(start, reading));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn reading(t: u64, import_wh: u64, power: u32) -> Reading {
        Reading {
            timestamp: t,
            energy_import_wh: vec![import_wh, 0],
            energy_export_wh: vec![0, 0],
            power_import_w: power,
            phases: vec![PhaseReading {
                voltage_dv: Some(2300 + u32::try_from(t % 3).unwrap()),
                current_ma: Some(1000),
                power_import_w: power,
                power_export_w: 0,
            }],
            ..Reading::default()
        }
    }

    #[test]
    fn ten_second_windows_average_exactly_and_keep_the_last_registers() {
        let mut agg = TierAggregator::new();
        let tiers = [Tier::Second, Tier::TenSeconds];
        let mut emitted = Vec::new();
        let base = 1_782_864_000; // a multiple of 10
        for i in 0..25u64 {
            emitted.extend(agg.push(&reading(base + i, 1000 + i, 100 + i as u32), &tiers));
        }
        let ten: Vec<&Reading> =
            emitted.iter().filter(|(t, _)| *t == Tier::TenSeconds).map(|(_, r)| r).collect();
        assert_eq!(ten.len(), 2);
        assert_eq!(ten[0].timestamp, base);
        // Powers 100..=109: sum 1045, mean 104 (floor).
        assert_eq!(ten[0].power_import_w, 104);
        assert_eq!(ten[0].energy_import_wh, vec![1009, 0]);
        assert_eq!(ten[1].timestamp, base + 10);
        assert_eq!(ten[1].energy_import_wh[0] - ten[0].energy_import_wh[0], 10);
        assert_eq!(emitted.iter().filter(|(t, _)| *t == Tier::Second).count(), 25);
    }

    #[test]
    fn a_reading_older_than_the_open_window_is_counted_not_reordered() {
        let mut agg = TierAggregator::new();
        let tiers = [Tier::TenSeconds];
        let base = 1_782_864_000;
        assert!(agg.push(&reading(base + 15, 1000, 100), &tiers).is_empty());
        assert!(agg.push(&reading(base + 3, 999, 100), &tiers).is_empty());
        assert_eq!(agg.ignored_older(), 1);
        let done = agg.push(&reading(base + 21, 1001, 300), &tiers);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1.timestamp, base + 10);
        assert_eq!(done[0].1.power_import_w, 100, "the older reading is not in the mean");
    }

    #[test]
    fn days_start_at_local_midnight_also_on_dst_change_days() {
        // 2026-07-01 12:00 UTC: local midnight (CEST) is 2026-06-30 22:00 UTC.
        assert_eq!(window_start(Tier::Day, 1_782_907_200), 1_782_856_800);
        // 2026-10-25 (25 h day): local midnight is still CEST, 2026-10-24 22:00 UTC.
        assert_eq!(window_start(Tier::Day, 1_792_900_000), 1_792_879_200);
        // 2026-01-15 12:00 UTC: local midnight (CET) is 2026-01-14 23:00 UTC.
        assert_eq!(window_start(Tier::Day, 1_768_478_400), 1_768_431_600);
        assert_eq!(window_start(Tier::FifteenMinutes, 1_768_478_400 + 899), 1_768_478_400);
    }
}
