//! A simulated household on a DSMR 5 meter, so a newcomer sees live data without a meter.
//!
//! Each second it draws what a home plausibly does: a base load, a fridge cycling, random
//! appliances (kettle, washing machine, oven, an EV charging in the evening), solar panels
//! following the sun (exporting at midday), and gas for heating and hot water. Energy registers
//! integrate the net power exactly (in mWh), on the Dutch tariffs (1 = low: nights and
//! weekends). Timestamps are the meter's local time (CET/CEST with the S/W flag, decided by the
//! EU rule in `protocol::p1::time`), and every telegram carries a valid CRC, so it travels the
//! same parser as a real one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::meter_time::meter_timestamp;

use super::{Source, SourceError, seal_telegram};

/// A deterministic xorshift64* generator: a household must be reproducible in tests, and this
/// is a load model, not cryptography.
#[derive(Debug, Clone)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Appliance {
    name: &'static str,
    watts: u32,
    /// Seconds it runs once started.
    duration: u64,
    /// Chance per second of starting (per million), during waking hours.
    start_ppm: u64,
    phase: usize,
}

const APPLIANCES: [Appliance; 4] = [
    Appliance { name: "kettle", watts: 2_000, duration: 180, start_ppm: 300, phase: 0 },
    Appliance { name: "washing machine", watts: 1_900, duration: 3_600, start_ppm: 20, phase: 1 },
    Appliance { name: "oven", watts: 2_400, duration: 2_400, start_ppm: 15, phase: 2 },
    Appliance { name: "induction hob", watts: 3_000, duration: 900, start_ppm: 60, phase: 2 },
];

/// The household's state: registers and running appliances.
#[derive(Debug, Clone)]
pub struct Household {
    dice: Dice,
    /// Imported energy per tariff (low, normal), mWh.
    import_mwh: [u64; 2],
    /// Exported energy per tariff, mWh.
    export_mwh: [u64; 2],
    /// Gas, cm³ (the meter reports dm³ = litres with 3 decimals of m³).
    gas_cm3: u64,
    /// Gas register at the last 5-minute capture, and when.
    gas_capture: (u64, u64),
    /// Until when each appliance runs.
    running_until: [u64; APPLIANCES.len()],
    /// Solar panel peak, W.
    solar_peak_w: u32,
    /// Cloud cover 0–100, drifting.
    clouds: u64,
    equipment_id: String,
}

/// Midnight-relative local hour as a fraction (0.0–24.0).
fn local_hour(local_secs: i64) -> f64 {
    (local_secs.rem_euclid(86_400)) as f64 / 3600.0
}

impl Household {
    /// A household seeded with `seed` (the same seed gives the same day).
    pub fn new(seed: u64) -> Self {
        let mut dice = Dice(seed.max(1) ^ 0x9E37_79B9_7F4A_7C15);
        let import =
            [3_000_000_000 + dice.below(2_000_000_000), 3_000_000_000 + dice.below(2_000_000_000)];
        let gas = 2_000_000_000 + dice.below(1_000_000_000);
        let id: String = (0..17).map(|_| format!("{:02X}", 0x30 + dice.below(10))).collect();
        Self {
            dice,
            import_mwh: import,
            export_mwh: [dice_export(seed), 0],
            gas_cm3: gas,
            gas_capture: (gas, 0),
            running_until: [0; APPLIANCES.len()],
            solar_peak_w: 2_800,
            clouds: 30,
            equipment_id: id,
        }
    }

    /// Advances one second to `utc` and returns the telegram the meter sends then.
    pub fn telegram_at(&mut self, utc: u64) -> Vec<u8> {
        let tst = meter_timestamp(utc);
        let offset = if tst.ends_with('S') { 7200 } else { 3600 };
        let local = i64::try_from(utc).unwrap_or(0) + offset;
        let hour = local_hour(local);
        let weekday = (local.div_euclid(86_400) + 4).rem_euclid(7); // 0 = Sunday
        let awake = (6.5..23.5).contains(&hour);

        // Consumption per phase, W.
        let mut phase_w = [0u32; 3];
        phase_w[0] += 140 + u32::try_from(self.dice.below(40)).unwrap_or(0); // base load
        if (utc / 60) % 40 < 15 {
            phase_w[0] += 120; // fridge compressor
        }
        for (i, appliance) in APPLIANCES.iter().enumerate() {
            if self.running_until[i] <= utc
                && awake
                && self.dice.below(1_000_000) < appliance.start_ppm
            {
                self.running_until[i] = utc + appliance.duration;
                tracing::debug!(appliance = appliance.name, "simulated appliance starts");
            }
            if self.running_until[i] > utc {
                phase_w[appliance.phase] += appliance.watts;
            }
        }
        if (18.0..22.0).contains(&hour) && weekday != 0 && (utc / 3600).is_multiple_of(3) {
            for w in &mut phase_w {
                *w += 3_680; // EV on a 3-phase 11 kW charger, every third evening hour
            }
        }
        // Solar on L1: a sine from 07:00 to 19:00, dimmed by drifting clouds.
        if self.dice.below(60) == 0 {
            self.clouds = (self.clouds + self.dice.below(21)).saturating_sub(10).min(95);
        }
        let solar_w = if (7.0..19.0).contains(&hour) {
            let sun = ((hour - 7.0) / 12.0 * std::f64::consts::PI).sin();
            (f64::from(self.solar_peak_w) * sun * (100 - self.clouds) as f64 / 100.0) as u32
        } else {
            0
        };
        let phase_net: [(u32, u32); 3] = [
            (phase_w[0].saturating_sub(solar_w), solar_w.saturating_sub(phase_w[0])),
            (phase_w[1], 0),
            (phase_w[2], 0),
        ];
        let import_w: u32 = phase_net.iter().map(|p| p.0).sum();
        let export_w: u32 = phase_net.iter().map(|p| p.1).sum();
        let net = i64::from(import_w) - i64::from(export_w);
        let weekend = weekday == 0 || weekday == 6;
        let tariff = usize::from(!weekend && (7.0..23.0).contains(&hour)); // 0 low, 1 normal
        // Wh in one second = W / 3600, kept in mWh: W × 1000 / 3600.
        if net > 0 {
            self.import_mwh[tariff] += u64::try_from(net).unwrap_or(0) * 1000 / 3600;
        } else {
            self.export_mwh[tariff] += u64::try_from(-net).unwrap_or(0) * 1000 / 3600;
        }
        // Gas: heating in cold hours, hot water in the morning; cm³ per second.
        let heating = if !(10.0..17.0).contains(&hour) { 150 } else { 40 };
        let shower = if (7.0..7.5).contains(&hour) { 300 } else { 0 };
        self.gas_cm3 += (heating + shower) * u64::from(self.dice.below(3) != 0);
        if utc.is_multiple_of(300) || self.gas_capture.1 == 0 {
            self.gas_capture = (self.gas_cm3, utc - utc % 300);
        }
        let gas_tst = meter_timestamp(self.gas_capture.1);

        let volts: [u32; 3] = [
            2_290 + u32::try_from(self.dice.below(30)).unwrap_or(0),
            2_300 + u32::try_from(self.dice.below(30)).unwrap_or(0),
            2_295 + u32::try_from(self.dice.below(30)).unwrap_or(0),
        ];
        let mut body = String::with_capacity(900);
        body.push_str("/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n");
        body.push_str(&format!("0-0:1.0.0({tst})\r\n0-0:96.1.1({})\r\n", self.equipment_id));
        for (i, reg) in self.import_mwh.iter().enumerate() {
            body.push_str(&format!(
                "1-0:1.8.{}({:06}.{:03}*kWh)\r\n",
                i + 1,
                reg / 1_000_000,
                reg / 1000 % 1000
            ));
        }
        for (i, reg) in self.export_mwh.iter().enumerate() {
            body.push_str(&format!(
                "1-0:2.8.{}({:06}.{:03}*kWh)\r\n",
                i + 1,
                reg / 1_000_000,
                reg / 1000 % 1000
            ));
        }
        body.push_str(&format!("0-0:96.14.0({:04})\r\n", tariff + 1));
        body.push_str(&format!("1-0:1.7.0({:02}.{:03}*kW)\r\n", import_w / 1000, import_w % 1000));
        body.push_str(&format!("1-0:2.7.0({:02}.{:03}*kW)\r\n", export_w / 1000, export_w % 1000));
        body.push_str("0-0:96.7.21(00005)\r\n0-0:96.7.9(00003)\r\n");
        for (i, v) in volts.iter().enumerate() {
            body.push_str(&format!("1-0:{}.7.0({}.{}*V)\r\n", 32 + 20 * i, v / 10, v % 10));
        }
        for (i, (imp, exp)) in phase_net.iter().enumerate() {
            let amps = (imp + exp) * 10 / volts[i].max(1);
            body.push_str(&format!("1-0:{}.7.0({:03}*A)\r\n", 31 + 20 * i, amps));
        }
        for (i, (imp, _)) in phase_net.iter().enumerate() {
            body.push_str(&format!(
                "1-0:{}.7.0({:02}.{:03}*kW)\r\n",
                21 + 20 * i,
                imp / 1000,
                imp % 1000
            ));
        }
        for (i, (_, exp)) in phase_net.iter().enumerate() {
            body.push_str(&format!(
                "1-0:{}.7.0({:02}.{:03}*kW)\r\n",
                22 + 20 * i,
                exp / 1000,
                exp % 1000
            ));
        }
        let gas = self.gas_capture.0 / 1000; // litres = dm³
        body.push_str(&format!(
            "0-1:24.1.0(003)\r\n0-1:96.1.0(4730303339303031363532303530323136)\r\n0-1:24.2.1({gas_tst})({:05}.{:03}*m3)\r\n!",
            gas / 1000,
            gas % 1000
        ));
        seal_telegram(&body)
    }
}

fn dice_export(seed: u64) -> u64 {
    1_000_000_000 + (seed % 1000) * 1_000_000
}

/// Emits one telegram per second of the wall clock (or of a fixed start time in tests).
#[derive(Debug)]
pub struct SimulatorSource {
    household: Household,
    /// Next telegram's UTC second.
    next: u64,
    /// Pace with the wall clock (false: as fast as asked, for tests and benchmarks).
    real_time: bool,
    interval: Duration,
}

impl SimulatorSource {
    /// A household following the wall clock, one telegram per second.
    pub fn live(seed: u64) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            household: Household::new(seed),
            next: now,
            real_time: true,
            interval: Duration::from_secs(1),
        }
    }

    /// A household starting at `start` (UTC seconds), producing telegrams without waiting.
    pub fn fast(seed: u64, start: u64) -> Self {
        Self {
            household: Household::new(seed),
            next: start,
            real_time: false,
            interval: Duration::ZERO,
        }
    }
}

impl Source for SimulatorSource {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        if self.real_time {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let due = Duration::from_secs(self.next);
            if due > now {
                tokio::time::sleep(due - now).await;
            } else if now.as_secs() > self.next + 5 {
                self.next = now.as_secs(); // the process was suspended: do not burst
            }
        } else if !self.interval.is_zero() {
            tokio::time::sleep(self.interval).await;
        }
        let telegram = self.household.telegram_at(self.next);
        self.next += 1;
        Ok(Some(telegram))
    }

    fn describe(&self) -> String {
        "simulated household (DSMR 5, 1 Hz)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::p1::{Framer, Readings, Telegram};

    #[test]
    fn a_simulated_day_parses_with_valid_crcs_and_monotonic_registers() {
        let start = 1_782_864_000; // 2026-07-01 00:00 UTC
        let mut household = Household::new(7);
        let mut framer = Framer::default();
        let mut last_import = 0;
        let mut saw_export = false;
        for second in (0..86_400).step_by(37) {
            let bytes = household.telegram_at(start + second);
            framer.feed(&bytes);
            let frame = framer.next_frame().unwrap().unwrap();
            let telegram = Telegram::parse(frame).unwrap();
            assert!(telegram.crc().is_valid(), "{}", telegram.text());
            let readings = Readings::from_telegram(&telegram);
            let reading =
                crate::reading::reading_from_telegram(&telegram, &readings, false).unwrap();
            assert_eq!(reading.timestamp, start + second);
            let total: u64 = reading.energy_import_wh.iter().sum();
            assert!(total >= last_import);
            last_import = total;
            saw_export |= reading.power_export_w > 0;
            assert!(reading.gas.is_some());
            assert_eq!(reading.phases.len(), 3);
        }
        assert!(saw_export, "a July day exports solar power at noon");
    }

    #[tokio::test]
    async fn the_fast_source_emits_consecutive_seconds() {
        let start = 1_782_864_000;
        let mut source = SimulatorSource::fast(3, start);
        let mut framer = Framer::default();
        for second in 0..5 {
            framer.feed(&source.next_chunk().await.unwrap().unwrap());
            let frame = framer.next_frame().unwrap().unwrap();
            let telegram = Telegram::parse(frame).unwrap();
            let readings = Readings::from_telegram(&telegram);
            let at = readings.meter_time.unwrap().to_utc().unix_seconds();
            assert_eq!(at, i64::try_from(start + second).unwrap());
        }
    }
}
