//! Owned snapshots of a decoded telegram, for display.
//!
//! [`protocol::p1::Readings`] borrows from the framer's buffer, which the next chunk of bytes
//! overwrites; the page keeps what it shows as a [`Snapshot`], copied out once per telegram
//! (about one per second). Values stay the meter's exact digits for display; the `f64` beside
//! them is only for the chart and today's totals.

use protocol::p1::readings::MbusKind;
use protocol::p1::{CrcCheck, Direction, Quantity, Readings, TariffMeaning, Telegram, Timestamp};

/// A quantity as the meter printed it, plus its value for arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// The exact digits, leading zeros trimmed (`"0.345"`).
    pub digits: String,
    /// The unit as printed (`"kW"`), empty if none.
    pub unit: String,
    /// The value as a float (for charts and differences only).
    pub value: f64,
}

impl Measure {
    fn from_quantity(quantity: &Quantity<'_>) -> Self {
        let value = quantity
            .value
            .mantissa_and_scale()
            .map(|(mantissa, scale)| mantissa as f64 / 10f64.powi(scale as i32))
            .unwrap_or(f64::NAN);
        Measure {
            digits: quantity.value.trimmed().to_string(),
            unit: quantity.unit.unwrap_or_default().to_owned(),
            value,
        }
    }

    /// The value in kilo-units when the unit is W or Wh (Austrian meters send integer W/Wh),
    /// otherwise as printed.
    pub fn kilo(&self) -> f64 {
        match self.unit.as_str() {
            "W" | "Wh" => self.value / 1000.0,
            _ => self.value,
        }
    }

    /// `"0.345 kW"`.
    pub fn display(&self) -> String {
        if self.unit.is_empty() {
            self.digits.clone()
        } else {
            format!("{} {}", self.digits, self.unit)
        }
    }
}

/// The CRC verdict, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcStatus {
    /// Present and correct.
    Valid(u16),
    /// The meter sends none (DSMR 2.2/3): nothing guards the content.
    Absent,
    /// Present and wrong: the telegram was corrupted on the way.
    Mismatch {
        /// As printed.
        given: u16,
        /// As computed.
        computed: u16,
    },
}

impl CrcStatus {
    fn of(check: CrcCheck) -> Self {
        match check {
            CrcCheck::Valid { value, .. } => CrcStatus::Valid(value),
            CrcCheck::Absent { .. } => CrcStatus::Absent,
            CrcCheck::Mismatch { given, computed, .. } => CrcStatus::Mismatch { given, computed },
        }
    }

    /// Whether the values may be used (a valid CRC, or a meter that sends none).
    pub fn trusted(self) -> bool {
        !matches!(self, CrcStatus::Mismatch { .. })
    }

    /// Words for the raw-telegram panel.
    pub fn describe(self) -> String {
        match self {
            CrcStatus::Valid(crc) => format!("CRC {crc:04X} correct"),
            CrcStatus::Absent => "no CRC (older meter): content not verified".to_owned(),
            CrcStatus::Mismatch { given, computed } => {
                format!("CRC mismatch: telegram says {given:04X}, content gives {computed:04X}")
            }
        }
    }
}

/// One phase's instantaneous values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhaseSnapshot {
    pub voltage: Option<Measure>,
    pub current: Option<Measure>,
    pub power_import: Option<Measure>,
    pub power_export: Option<Measure>,
}

/// A cumulative energy register.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub direction: Direction,
    pub tariff: Option<u8>,
    pub meaning: TariffMeaning,
    pub energy: Measure,
}

impl Register {
    /// `"Import, tariff 1 (low)"`.
    pub fn label(&self) -> String {
        let direction = match self.direction {
            Direction::Import => "Import",
            Direction::Export => "Export",
        };
        match self.tariff {
            None => format!("{direction}, total"),
            Some(number) => format!("{direction}, tariff {number}{}", meaning_suffix(self.meaning)),
        }
    }
}

fn meaning_suffix(meaning: TariffMeaning) -> &'static str {
    match meaning {
        TariffMeaning::Low => " (low)",
        TariffMeaning::Normal => " (normal)",
        TariffMeaning::Day => " (day)",
        TariffMeaning::Night => " (night)",
        TariffMeaning::Unspecified => "",
    }
}

/// The gas meter's last reading (DSMR sends it every 5 minutes or hourly, with its own time).
#[derive(Debug, Clone, PartialEq)]
pub struct GasSnapshot {
    pub volume: Measure,
    pub captured_at: Option<String>,
}

/// Everything the Meter page shows about one telegram.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The telegram text from `/` through the CRC digits.
    pub raw: String,
    pub crc: CrcStatus,
    pub header: String,
    pub version: Option<String>,
    pub equipment_id: Option<String>,
    /// Meter time as UTC seconds (for the chart's time axis).
    pub meter_time_utc: Option<i64>,
    /// Meter time as printed by the meter (local), `YYYY-MM-DD hh:mm:ss`.
    pub meter_time_local: Option<String>,
    /// The meter's local calendar day, for "today's energy".
    pub meter_day: Option<(i32, u8, u8)>,
    pub power_import: Option<Measure>,
    pub power_export: Option<Measure>,
    pub phases: [PhaseSnapshot; 3],
    pub registers: Vec<Register>,
    pub tariff: Option<String>,
    pub gas: Option<GasSnapshot>,
}

fn local_time(timestamp: &Timestamp) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        timestamp.year,
        timestamp.month,
        timestamp.day,
        timestamp.hour,
        timestamp.minute,
        timestamp.second
    )
}

impl Snapshot {
    /// Copies what the page shows out of a parsed telegram.
    pub fn of(telegram: &Telegram<'_>, crc_digits: &str) -> Self {
        let readings = Readings::from_telegram(telegram);
        let measure = |q: &Option<Quantity<'_>>| q.as_ref().map(Measure::from_quantity);
        let phases = readings.phases.each_ref().map(|phase| PhaseSnapshot {
            voltage: measure(&phase.voltage),
            current: measure(&phase.current),
            power_import: measure(&phase.power_import),
            power_export: measure(&phase.power_export),
        });
        let registers = readings
            .energy
            .iter()
            .map(|r| Register {
                direction: r.direction,
                tariff: r.tariff,
                meaning: r.meaning,
                energy: Measure::from_quantity(&r.energy),
            })
            .collect();
        let tariff = readings.tariff_indicator.map(|(text, number, meaning)| match number {
            Some(number) => format!("{number}{}", meaning_suffix(meaning)),
            None => text.to_owned(),
        });
        let gas = readings
            .mbus
            .iter()
            .find(|device| device.kind == Some(MbusKind::Gas) && device.reading.is_some())
            .and_then(|device| {
                Some(GasSnapshot {
                    volume: Measure::from_quantity(device.reading.as_ref()?),
                    captured_at: device.captured_at.as_ref().map(local_time),
                })
            });
        Snapshot {
            raw: format!("{}{crc_digits}", telegram.text()),
            crc: CrcStatus::of(telegram.crc()),
            header: telegram.header().to_owned(),
            version: readings.version.map(str::to_owned),
            equipment_id: readings.equipment_id.map(str::to_owned),
            meter_time_utc: readings.meter_time.map(|t| t.to_utc().unix_seconds()),
            meter_time_local: readings.meter_time.as_ref().map(local_time),
            meter_day: readings.meter_time.map(|t| (t.year, t.month, t.day)),
            power_import: measure(&readings.power_import),
            power_export: measure(&readings.power_export),
            phases,
            registers,
            tariff,
            gas,
        }
    }

    /// Total energy in one direction, in kWh: the total register if the meter sends one,
    /// otherwise the sum of its tariff registers.
    pub fn energy_total_kwh(&self, direction: Direction) -> Option<f64> {
        let of_direction = || self.registers.iter().filter(move |r| r.direction == direction);
        if let Some(total) = of_direction().find(|r| r.tariff.is_none()) {
            return Some(total.energy.kilo());
        }
        let mut tariffs = of_direction().peekable();
        tariffs.peek()?;
        Some(tariffs.map(|r| r.energy.kilo()).sum())
    }

    /// Net power in kW (import minus export), for the chart.
    pub fn net_power_kw(&self) -> Option<f64> {
        let import = self.power_import.as_ref().map(Measure::kilo);
        let export = self.power_export.as_ref().map(Measure::kilo);
        match (import, export) {
            (None, None) => None,
            (i, e) => Some(i.unwrap_or(0.0) - e.unwrap_or(0.0)),
        }
    }
}
