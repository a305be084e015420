//! The readings this provider received, kept in the tab: the live figures, energy and gas per
//! hour and per day, and the CSV export.
//!
//! Readings are keyed by their stream position, so a provisional reading later covered by the
//! device's checkpoint is the same row, then marked verified. Energy per period is the
//! difference of the meter's cumulative registers (all tariffs summed) between the last
//! reading of a period and the last reading before it, so a missed reading loses no energy.

use std::collections::BTreeMap;

use protocol::channel::{Position, Reading, Tier};
use protocol::crypto::PartyId;

use super::watch::Received;

/// Most readings kept in the tab (a day at 1 s, plus slower tiers).
pub const MAX_KEPT: usize = 100_000;

/// CSV header of [`ReceivedReadings::csv`].
pub const CSV_HEADER: &str = "device,tier,epoch,seq,status,timestamp,energy_import_wh,energy_export_wh,power_import_w,power_export_w,l1_import_w,l1_export_w,l2_import_w,l2_export_w,l3_import_w,l3_export_w,gas_dm3,gas_captured_at";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    verified: bool,
    reading: Reading,
}

/// One bar of a history chart: a period's start (UTC seconds) and its amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// First second of the period.
    pub start: u64,
    /// Energy in kWh or gas in m³.
    pub amount: f64,
}

/// Period lengths for the history.
pub const HOUR: u64 = 3_600;
/// See [`HOUR`].
pub const DAY: u64 = 86_400;

/// Every reading received, per device and position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedReadings {
    rows: BTreeMap<(PartyId, Position), Kept>,
    verified: usize,
}

impl ReceivedReadings {
    /// Adds readings (a repeat of a position only upgrades it to verified). Returns how many
    /// positions are new.
    pub fn add(&mut self, received: &[Received]) -> usize {
        let mut new = 0;
        for item in received {
            let key = (item.device, item.position);
            let room = self.rows.len() < MAX_KEPT;
            match self.rows.get_mut(&key) {
                Some(kept) if item.verified && !kept.verified => {
                    kept.verified = true;
                    kept.reading = item.reading.clone();
                    self.verified += 1;
                }
                None if room => {
                    self.rows.insert(
                        key,
                        Kept { verified: item.verified, reading: item.reading.clone() },
                    );
                    self.verified += usize::from(item.verified);
                    new += 1;
                }
                _ => {}
            }
        }
        new
    }

    /// Readings verified by the device's checkpoints.
    pub fn verified_count(&self) -> usize {
        self.verified
    }

    /// Every reading kept.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Nothing received yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The finest tier received for `device` (the one charted).
    pub fn finest_tier(&self, device: PartyId) -> Option<Tier> {
        self.rows
            .keys()
            .filter(|(d, _)| *d == device)
            .map(|(_, p)| p.tier)
            .min_by_key(|tier| tier.resolution_secs())
    }

    /// `device`'s readings of `tier`, by meter time (one per timestamp).
    fn timeline(&self, device: PartyId, tier: Tier) -> BTreeMap<u64, &Reading> {
        self.rows
            .iter()
            .filter(|((d, p), _)| *d == device && p.tier == tier)
            .map(|(_, kept)| (kept.reading.timestamp, &kept.reading))
            .collect()
    }

    /// The newest reading of `device` (any tier), by meter time.
    pub fn latest(&self, device: PartyId) -> Option<&Reading> {
        self.rows
            .iter()
            .filter(|((d, _), _)| *d == device)
            .map(|(_, kept)| &kept.reading)
            .max_by_key(|reading| reading.timestamp)
    }

    /// Imported energy (kWh, all tariffs) per period of `period` seconds.
    pub fn energy_import(&self, device: PartyId, period: u64) -> Vec<Bar> {
        self.per_period(device, period, |r| {
            Some(r.energy_import_wh.iter().sum::<u64>() as f64 / 1000.0)
        })
    }

    /// Exported energy (kWh, all tariffs) per period.
    pub fn energy_export(&self, device: PartyId, period: u64) -> Vec<Bar> {
        self.per_period(device, period, |r| {
            Some(r.energy_export_wh.iter().sum::<u64>() as f64 / 1000.0)
        })
    }

    /// Gas (m³) per period.
    pub fn gas(&self, device: PartyId, period: u64) -> Vec<Bar> {
        self.per_period(device, period, |r| r.gas.as_ref().map(|g| g.volume_dm3 as f64 / 1000.0))
    }

    /// Differences of a cumulative register between the last value of consecutive periods;
    /// the first period counts from its own first value.
    fn per_period(
        &self,
        device: PartyId,
        period: u64,
        register: impl Fn(&Reading) -> Option<f64>,
    ) -> Vec<Bar> {
        let Some(tier) = self.finest_tier(device) else { return Vec::new() };
        let period = period.max(1);
        let mut bars: Vec<Bar> = Vec::new();
        let mut previous: Option<f64> = None;
        let mut current: Option<(u64, f64)> = None; // (period start, last value in it)
        for (time, reading) in self.timeline(device, tier) {
            let Some(value) = register(reading) else { continue };
            let start = time - time % period;
            match current {
                Some((open, last)) if open != start => {
                    bars.push(Bar {
                        start: open,
                        amount: (last - previous.unwrap_or(last)).max(0.0),
                    });
                    previous = Some(last);
                    current = Some((start, value));
                }
                Some((open, _)) => current = Some((open, value)),
                None => {
                    previous = Some(value);
                    current = Some((start, value));
                }
            }
        }
        if let Some((open, last)) = current {
            bars.push(Bar { start: open, amount: (last - previous.unwrap_or(last)).max(0.0) });
        }
        bars
    }

    /// Every reading as CSV (header first), in device and stream order.
    pub fn csv(&self) -> String {
        let mut out = String::with_capacity(64 + self.rows.len() * 120);
        out.push_str(CSV_HEADER);
        out.push('\n');
        let join = |values: &[u64]| values.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
        for ((device, position), kept) in &self.rows {
            let r = &kept.reading;
            let phase = |i: usize| {
                r.phases.get(i).map_or(",".to_owned(), |p| {
                    format!("{},{}", p.power_import_w, p.power_export_w)
                })
            };
            let gas = r
                .gas
                .as_ref()
                .map_or(",".to_owned(), |g| format!("{},{}", g.volume_dm3, g.captured_at));
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                hex::encode(device.0),
                tier_name(position.tier),
                hex::encode(position.epoch.0),
                position.seq,
                if kept.verified { "verified" } else { "provisional" },
                r.timestamp,
                join(&r.energy_import_wh),
                join(&r.energy_export_wh),
                r.power_import_w,
                r.power_export_w,
                phase(0),
                phase(1),
                phase(2),
                gas,
            ));
        }
        out
    }
}

/// A tier's name as the provider tool and the agent spell it.
pub fn tier_name(tier: Tier) -> &'static str {
    match tier.resolution_secs() {
        1 => "second",
        10 => "ten-seconds",
        60 => "minute",
        900 => "fifteen-minutes",
        3_600 => "hour",
        _ => "day",
    }
}

/// A tier in words, for people.
pub fn tier_words(tier: Tier) -> &'static str {
    match tier.resolution_secs() {
        1 => "every second",
        10 => "every 10 seconds",
        60 => "every minute",
        900 => "every 15 minutes",
        3_600 => "every hour",
        _ => "every day",
    }
}
