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
//!   from local midnight, 23 or 25 h on the DST change days; minutes, quarters and hours are
//!   the same in UTC because CET/CEST offsets are whole hours, so they are cut in UTC and a DST
//!   change never lengthens or shortens one).
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

    /// The aggregates of `tier` written out the slow way: group by window, mean with floor
    /// division over the samples present, registers and gas of the window's last reading.
    fn reference(tier: Tier, readings: &[Reading]) -> Vec<Reading> {
        let mut groups: Vec<(u64, Vec<&Reading>)> = Vec::new();
        for r in readings {
            let start = window_start(tier, r.timestamp);
            match groups.last_mut() {
                Some((s, group)) if *s == start => group.push(r),
                _ => groups.push((start, vec![r])),
            }
        }
        groups.pop(); // still open: not emitted yet
        let mean = |values: Vec<u32>| {
            let n = values.len() as u64;
            u32::try_from(values.into_iter().map(u64::from).sum::<u64>() / n).unwrap()
        };
        groups
            .into_iter()
            .map(|(start, group)| {
                let last = *group.last().unwrap();
                Reading {
                    timestamp: start,
                    energy_import_wh: last.energy_import_wh.clone(),
                    energy_export_wh: last.energy_export_wh.clone(),
                    power_import_w: mean(group.iter().map(|r| r.power_import_w).collect()),
                    power_export_w: mean(group.iter().map(|r| r.power_export_w).collect()),
                    phases: vec![PhaseReading {
                        voltage_dv: Some(mean(
                            group.iter().map(|r| r.phases[0].voltage_dv.unwrap()).collect(),
                        )),
                        current_ma: Some(mean(
                            group.iter().map(|r| r.phases[0].current_ma.unwrap()).collect(),
                        )),
                        power_import_w: mean(
                            group.iter().map(|r| r.phases[0].power_import_w).collect(),
                        ),
                        power_export_w: 0,
                    }],
                    gas: last.gas.clone(),
                    raw_telegram: None,
                }
            })
            .collect()
    }

    fn emitted(tier: Tier, readings: &[Reading]) -> Vec<Reading> {
        let mut agg = TierAggregator::new();
        readings
            .iter()
            .flat_map(|r| agg.push(r, &[Tier::Second, Tier::Minute]))
            .filter(|(t, _)| *t == tier)
            .map(|(_, r)| r)
            .collect()
    }

    #[test]
    fn minute_windows_are_exact_across_minute_boundaries() {
        let base = 1_782_864_000; // a whole minute (UTC)
        // Start mid-minute, run over two boundaries, close the third window with one reading.
        let readings: Vec<Reading> =
            (0..151u64).map(|i| reading(base - 30 + i, 1000 + i, 100 + i as u32)).collect();
        let minutes = emitted(Tier::Minute, &readings);
        assert_eq!(minutes, reference(Tier::Minute, &readings));
        let starts: Vec<u64> = minutes.iter().map(|r| r.timestamp).collect();
        assert_eq!(starts, vec![base - 60, base, base + 60]);
        // Powers 100..=129 (a half minute), 130..=189, 190..=249: floor means.
        let powers: Vec<u32> = minutes.iter().map(|r| r.power_import_w).collect();
        assert_eq!(powers, vec![114, 159, 219]);
        // Energy per minute is the register delta of consecutive aggregates: one Wh per second.
        let registers: Vec<u64> = minutes.iter().map(|r| r.energy_import_wh[0]).collect();
        assert_eq!(registers, vec![1029, 1089, 1149]);
        assert!(minutes.iter().all(|r| r.raw_telegram.is_none()));
    }

    #[test]
    fn missing_telegrams_average_over_the_samples_present() {
        let base = 1_782_864_000;
        // Every third second lost (a noisy line); registers still climb 2 Wh per second.
        let readings: Vec<Reading> = (0..301u64)
            .filter(|i| i % 3 != 1)
            .map(|i| reading(base + i, 50_000 + 2 * i, (i * 37 % 1000) as u32))
            .collect();
        let minutes = emitted(Tier::Minute, &readings);
        assert_eq!(minutes.len(), 5);
        assert_eq!(minutes, reference(Tier::Minute, &readings));
        for pair in minutes.windows(2) {
            assert_eq!(pair[1].energy_import_wh[0] - pair[0].energy_import_wh[0], 120);
        }
    }

    #[test]
    fn minute_windows_ignore_daylight_saving_changes() {
        // 2026-03-29 01:00 UTC (local 02:00 CET becomes 03:00 CEST: a local hour skipped) and
        // 2026-10-25 01:00 UTC (local 03:00 CEST becomes 02:00 CET: a local hour repeated).
        for change in [1_774_746_000u64, 1_792_890_000] {
            let readings: Vec<Reading> = (0..7_201u64)
                .map(|i| reading(change - 3_600 + i, i, 500 + (i % 7) as u32))
                .collect();
            let minutes = emitted(Tier::Minute, &readings);
            assert_eq!(minutes.len(), 120);
            assert_eq!(minutes, reference(Tier::Minute, &readings));
            for (n, minute) in (0u64..).zip(&minutes) {
                assert_eq!(minute.timestamp, change - 3_600 + 60 * n);
                // Every window holds exactly 60 telegrams: its register delta is 60 Wh.
                assert_eq!(minute.energy_import_wh[0], 60 * n + 59);
            }
            // The meter's own clock did jump: its offset differs on the two sides.
            assert_ne!(utc_offset(change - 1), utc_offset(change));
        }
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
        assert_eq!(window_start(Tier::Minute, 1_768_478_400 + 59), 1_768_478_400);
        assert_eq!(window_start(Tier::Minute, 1_768_478_400 + 60), 1_768_478_460);
    }
}
