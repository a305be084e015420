//! Typed readings: what a household and its providers want from a telegram, with meanings that
//! depend on the country where they differ.
//!
//! Built from a [`Telegram`] in one pass over its objects. Values stay exact ([`Quantity`] keeps
//! the printed digits and unit); a known object whose value does not fit its definition is not
//! guessed at but listed in [`Readings::problems`].

use thiserror::Error;

use super::telegram::{DataObject, Telegram};
use super::time::Timestamp;
use super::value::{ObisCode, Quantity, RawValue, ValueError};

/// Where the meter is, as far as it changes what the numbers mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Country {
    /// DSMR (Netome): tariff 1 is the low (night/weekend) tariff, 2 the normal one.
    Netherlands,
    /// e-MUCS (Fluvius, ORES, Sibelga): tariff 1 is **day**, 2 is **night** — the reverse of the
    /// Dutch meaning, and the most common cause of swapped Belgian dashboards.
    Belgium,
    /// Smarty: single totals (1.8.0), encrypted.
    Luxembourg,
    /// Sagemcom T210-D-r (Energienetze Steiermark): integer Wh/W, encrypted.
    Austria,
    /// DSMR 5-based HAN port with totals only.
    Sweden,
    /// E.ON Hungary: four tariffs.
    Hungary,
    /// Not recognised (or a non-DSMR D0 meter): tariffs are reported by number only.
    Other,
}

impl Country {
    /// Picks the country from the manufacturer id in the header and the objects present.
    #[must_use]
    pub fn detect(telegram: &Telegram<'_>) -> Self {
        let header = telegram.header();
        // One pass over the objects for the few codes that tell countries apart.
        let (mut be_version, mut total, mut tariff_1, mut dsmr_version) =
            (false, false, false, false);
        for object in telegram.objects() {
            match (object.obis.a, object.obis.b, object.obis.cde()) {
                (0, 0, (96, 1, 4)) => be_version = true,
                (1, 0, (1, 8, 0)) => total = true,
                (1, 0, (1, 8, 1)) => tariff_1 = true,
                (1, 3, (0, 2, 8)) => dsmr_version = true,
                _ => {}
            }
        }
        if header.starts_with("FLU") || be_version {
            Country::Belgium
        } else if header.starts_with("Lux") {
            Country::Luxembourg
        } else if header.starts_with("EST") {
            Country::Austria
        } else if header.starts_with("SAG5SAG-METER") {
            Country::Hungary
        } else if header.starts_with("ESY") {
            Country::Other
        } else if total && !tariff_1 && !dsmr_version {
            Country::Sweden
        } else {
            Country::Netherlands
        }
    }

    /// What tariff register `number` means here.
    #[must_use]
    pub const fn tariff_meaning(self, number: u8) -> TariffMeaning {
        match (self, number) {
            (Country::Netherlands, 1) => TariffMeaning::Low,
            (Country::Netherlands, 2) => TariffMeaning::Normal,
            (Country::Belgium, 1) => TariffMeaning::Day,
            (Country::Belgium, 2) => TariffMeaning::Night,
            _ => TariffMeaning::Unspecified,
        }
    }
}

/// The meaning of a tariff number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TariffMeaning {
    /// NL tariff 1 ("dal"): nights and weekends.
    Low,
    /// NL tariff 2 ("normaal").
    Normal,
    /// BE tariff 1 ("dag").
    Day,
    /// BE tariff 2 ("nacht").
    Night,
    /// No country-specific meaning.
    Unspecified,
}

/// Energy direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Taken from the grid (OBIS C = 1).
    Import,
    /// Delivered to the grid (OBIS C = 2).
    Export,
}

/// A cumulative energy register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergyRegister<'a> {
    /// Import or export.
    pub direction: Direction,
    /// Tariff number 1–4, or `None` for the total register (x.8.0).
    pub tariff: Option<u8>,
    /// What the tariff means in the meter's country.
    pub meaning: TariffMeaning,
    /// The reading.
    pub energy: Quantity<'a>,
}

/// Per-phase instantaneous values (L1, L2, L3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phase<'a> {
    /// Voltage.
    pub voltage: Option<Quantity<'a>>,
    /// Current (integer amperes on DSMR 5, two decimals in Belgium).
    pub current: Option<Quantity<'a>>,
    /// Power taken.
    pub power_import: Option<Quantity<'a>>,
    /// Power delivered.
    pub power_export: Option<Quantity<'a>>,
    /// Number of voltage sags.
    pub voltage_sags: Option<u64>,
    /// Number of voltage swells.
    pub voltage_swells: Option<u64>,
}

/// One entry of the long power-failure log (1-0:99.97.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerFailure<'a> {
    /// When power came back (meters send sentinels such as `000101000001W` for empty slots).
    pub ended: Timestamp,
    /// How long it lasted (seconds).
    pub duration: Quantity<'a>,
}

/// A demand peak (Belgian capacity tariff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peak<'a> {
    /// Start of the month the peak belongs to (history entries only).
    pub month: Option<Timestamp>,
    /// When the peak quarter-hour happened; `None` for months without one (e-MUCS meters send
    /// the impossible time `632525252525W` there).
    pub at: Option<Timestamp>,
    /// Average power over that quarter-hour.
    pub demand: Quantity<'a>,
}

/// M-Bus device types (0-n:24.1.0), as DSMR lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MbusKind {
    /// 2: a slave electricity meter.
    Electricity,
    /// 3
    Gas,
    /// 4
    Heat,
    /// 6
    WarmWater,
    /// 7
    Water,
    /// Any other type number.
    Other(u64),
}

impl MbusKind {
    fn from_number(number: u64) -> Self {
        match number {
            2 => MbusKind::Electricity,
            3 => MbusKind::Gas,
            4 => MbusKind::Heat,
            6 => MbusKind::WarmWater,
            7 => MbusKind::Water,
            other => MbusKind::Other(other),
        }
    }
}

/// A device on an M-Bus channel: gas, water or heat meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbusDevice<'a> {
    /// Channel 1–4 (OBIS B).
    pub channel: u8,
    /// Device type, if sent.
    pub kind: Option<MbusKind>,
    /// Equipment id as sent (normally hex-encoded ASCII), if not empty.
    pub equipment_id: Option<&'a str>,
    /// Last reading and when the device captured it (its clock, not the telegram's).
    pub reading: Option<Quantity<'a>>,
    /// Capture time of `reading`; `None` when the meter sent its "no capture" sentinel.
    pub captured_at: Option<Timestamp>,
    /// Valve or breaker position, if sent.
    pub valve: Option<&'a str>,
}

/// A known object whose value did not fit its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{obis}: {error}")]
pub struct ReadingProblem {
    /// The object.
    pub obis: ObisCode,
    /// What was wrong.
    pub error: ValueError,
}

/// Everything typed that a telegram says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readings<'a> {
    /// The country used to interpret tariffs.
    pub country: Country,
    /// P1 version (`50`, `42`, `50217`).
    pub version: Option<&'a str>,
    /// When the meter produced the telegram.
    pub meter_time: Option<Timestamp>,
    /// The meter's equipment id as sent (normally hex-encoded ASCII).
    pub equipment_id: Option<&'a str>,
    /// Cumulative energy registers, in telegram order.
    pub energy: Vec<EnergyRegister<'a>>,
    /// Tariff currently applied, as sent (`0001`) and decoded.
    pub tariff_indicator: Option<(&'a str, Option<u8>, TariffMeaning)>,
    /// Power taken from the grid.
    pub power_import: Option<Quantity<'a>>,
    /// Power delivered to the grid.
    pub power_export: Option<Quantity<'a>>,
    /// L1, L2, L3.
    pub phases: [Phase<'a>; 3],
    /// Power failures in any phase.
    pub power_failures: Option<u64>,
    /// Long power failures in any phase.
    pub long_power_failures: Option<u64>,
    /// The long power-failure log.
    pub power_failure_log: Vec<PowerFailure<'a>>,
    /// Text message, decoded from hex when it is text.
    pub text_message: Option<String>,
    /// BE: current quarter-hour average demand (1-0:1.4.0).
    pub demand_current: Option<Quantity<'a>>,
    /// BE: this month's peak (1-0:1.6.0).
    pub demand_month_peak: Option<Peak<'a>>,
    /// BE: peaks of the last 13 months (0-0:98.1.0).
    pub demand_peak_history: Vec<Peak<'a>>,
    /// Breaker state (0-0:96.3.10).
    pub breaker_state: Option<&'a str>,
    /// Power limiter threshold (0-0:17.0.0).
    pub limiter_threshold: Option<Quantity<'a>>,
    /// M-Bus devices by channel.
    pub mbus: Vec<MbusDevice<'a>>,
    /// Known objects whose values did not fit.
    pub problems: Vec<ReadingProblem>,
}

impl<'a> Readings<'a> {
    /// Readings with the country detected from the telegram.
    #[must_use]
    pub fn from_telegram(telegram: &Telegram<'a>) -> Self {
        Self::with_country(telegram, Country::detect(telegram))
    }

    /// Readings interpreted for `country`.
    #[must_use]
    pub fn with_country(telegram: &Telegram<'a>, country: Country) -> Self {
        let mut readings = Readings {
            country,
            version: None,
            meter_time: None,
            equipment_id: None,
            energy: Vec::with_capacity(4),
            tariff_indicator: None,
            power_import: None,
            power_export: None,
            phases: [Phase::default(); 3],
            power_failures: None,
            long_power_failures: None,
            power_failure_log: Vec::new(),
            text_message: None,
            demand_current: None,
            demand_month_peak: None,
            demand_peak_history: Vec::new(),
            breaker_state: None,
            limiter_threshold: None,
            mbus: Vec::new(),
            problems: Vec::new(),
        };
        for object in telegram.objects() {
            if let Err(error) = readings.absorb(object) {
                readings.problems.push(ReadingProblem { obis: object.obis, error });
            }
        }
        readings
    }

    /// Takes what this object says, if it is one the readings know.
    fn absorb(&mut self, object: &DataObject<'a>) -> Result<(), ValueError> {
        let obis = object.obis;
        let first = || object.value(0).ok_or(ValueError::Missing);
        if obis.a == 0 && obis.b != 0 {
            return self.absorb_mbus(object);
        }
        match (obis.a, obis.c, obis.d, obis.e) {
            (1, 0, 2, 8) | (0, 96, 1, 4) => self.version = Some(first()?.text),
            (0, 1, 0, 0) => self.meter_time = Some(first()?.timestamp()?),
            // 96.1.1 is the equipment id; Luxembourg and Hungary send 42.0.0 instead.
            // Usually hex-encoded ASCII, but meters send plain text too (`serienummer`, odd
            // lengths): kept as sent.
            (0, 96, 1, 1) => self.equipment_id = Some(first()?.text),
            (0, 42, 0, 0) if self.equipment_id.is_none() => self.equipment_id = Some(first()?.text),
            (1, c @ (1 | 2), 8, tariff @ 0..=4) => {
                let direction = if c == 1 { Direction::Import } else { Direction::Export };
                let tariff = (tariff != 0).then_some(tariff);
                let meaning =
                    tariff.map_or(TariffMeaning::Unspecified, |t| self.country.tariff_meaning(t));
                let energy = first()?.quantity()?;
                self.energy.push(EnergyRegister { direction, tariff, meaning, energy });
            }
            (0, 96, 14, 0) => {
                let text = first()?.text;
                let number = text.parse::<u8>().ok();
                let meaning =
                    number.map_or(TariffMeaning::Unspecified, |n| self.country.tariff_meaning(n));
                self.tariff_indicator = Some((text, number, meaning));
            }
            (1, 1, 7, 0) => self.power_import = Some(first()?.quantity()?),
            (1, 2, 7, 0) => self.power_export = Some(first()?.quantity()?),
            (1, c @ (21 | 41 | 61), 7, 0) => {
                self.phase(c, 21).power_import = Some(first()?.quantity()?);
            }
            (1, c @ (22 | 42 | 62), 7, 0) => {
                self.phase(c, 22).power_export = Some(first()?.quantity()?);
            }
            (1, c @ (32 | 52 | 72), 7, 0) => self.phase(c, 32).voltage = Some(first()?.quantity()?),
            (1, c @ (31 | 51 | 71), 7, 0) => self.phase(c, 31).current = Some(first()?.quantity()?),
            (1, c @ (32 | 52 | 72), 32, 0) => {
                self.phase(c, 32).voltage_sags = Some(count(first()?)?)
            }
            (1, c @ (32 | 52 | 72), 36, 0) => {
                self.phase(c, 32).voltage_swells = Some(count(first()?)?);
            }
            (0, 96, 7, 21) => self.power_failures = Some(count(first()?)?),
            (0, 96, 7, 9) => self.long_power_failures = Some(count(first()?)?),
            (1, 99, 97, 0) => self.power_failure_log = failure_log(object)?,
            (0, 96, 13, 0) => self.text_message = decode_text(first()?)?,
            (1, 1, 4, 0) => self.demand_current = Some(first()?.quantity()?),
            (1, 1, 6, 0) => {
                let at = Some(first()?.timestamp()?);
                let demand = object.value(1).ok_or(ValueError::Missing)?.quantity()?;
                self.demand_month_peak = Some(Peak { month: None, at, demand });
            }
            (0, 98, 1, 0) if self.country == Country::Belgium => {
                self.demand_peak_history = peak_history(object)?;
            }
            (0, 96, 3, 10) => self.breaker_state = Some(first()?.text),
            (0, 17, 0, 0) => self.limiter_threshold = Some(first()?.quantity()?),
            _ => {}
        }
        Ok(())
    }

    fn absorb_mbus(&mut self, object: &DataObject<'a>) -> Result<(), ValueError> {
        let channel = object.obis.b;
        let first = || object.value(0).ok_or(ValueError::Missing);
        let device = match self.mbus.iter().position(|device| device.channel == channel) {
            Some(index) => &mut self.mbus[index],
            None => {
                self.mbus.push(MbusDevice {
                    channel,
                    kind: None,
                    equipment_id: None,
                    reading: None,
                    captured_at: None,
                    valve: None,
                });
                let last = self.mbus.len() - 1;
                &mut self.mbus[last]
            }
        };
        match object.obis.cde() {
            (24, 1, 0) => device.kind = Some(MbusKind::from_number(count(first()?)?)),
            (96, 1, 0 | 1) => {
                let id = first()?;
                device.equipment_id = (!id.is_empty()).then_some(id.text);
            }
            (24, 2, 1 | 3) => {
                // Empty slots carry an impossible time (`632525252525S`) or `700101…`.
                device.captured_at = first()?.timestamp().ok();
                device.reading = Some(object.value(1).ok_or(ValueError::Missing)?.quantity()?);
            }
            (24, 3, 0) => {
                // DSMR 2.2/3: (capture TST)(period)(…)(…)(OBIS of the value)(unit) then the value
                // in its own group, usually on the next line.
                let mut values = object.values();
                device.captured_at = Some(values.next().ok_or(ValueError::Missing)?.timestamp()?);
                let unit = values.clone().nth(4).ok_or(ValueError::Missing)?.text;
                let reading = values.nth(5).ok_or(ValueError::Missing)?.quantity()?;
                device.reading = Some(Quantity { value: reading.value, unit: Some(unit) });
            }
            (24, 4, 0) | (96, 3, 10) => device.valve = Some(first()?.text),
            _ => {}
        }
        Ok(())
    }

    /// Phase index from the C group: L1 at `base`, L2 at `base + 20`, L3 at `base + 40`.
    fn phase(&mut self, c: u8, base: u8) -> &mut Phase<'a> {
        &mut self.phases[usize::from((c - base) / 20)]
    }

    /// Energy register for a direction and tariff (`None` = total).
    #[must_use]
    pub fn energy(&self, direction: Direction, tariff: Option<u8>) -> Option<&EnergyRegister<'a>> {
        self.energy.iter().find(|r| r.direction == direction && r.tariff == tariff)
    }
}

fn count(value: RawValue<'_>) -> Result<u64, ValueError> {
    value.quantity()?.value.to_u64().ok_or(ValueError::NotDecimal)
}

/// `(count)(0-0:96.7.19)(end)(duration)…`
fn failure_log<'a>(object: &DataObject<'a>) -> Result<Vec<PowerFailure<'a>>, ValueError> {
    let mut values = object.values().skip(2);
    let mut log = Vec::new();
    while let Some(end) = values.next() {
        let duration = values.next().ok_or(ValueError::Missing)?.quantity()?;
        log.push(PowerFailure { ended: end.timestamp()?, duration });
    }
    Ok(log)
}

/// `(count)(1-0:1.6.0)(1-0:1.6.0)` then `(month)(peak time)(demand)` per month.
fn peak_history<'a>(object: &DataObject<'a>) -> Result<Vec<Peak<'a>>, ValueError> {
    let mut values = object.values().skip(3);
    let mut peaks = Vec::new();
    while let Some(month) = values.next() {
        let at = values.next().ok_or(ValueError::Missing)?.timestamp().ok();
        let demand = values.next().ok_or(ValueError::Missing)?.quantity()?;
        peaks.push(Peak { month: Some(month.timestamp()?), at, demand });
    }
    Ok(peaks)
}

/// Text messages are hex-encoded octets; decoded when they are UTF-8 text, `None` when empty.
fn decode_text(value: RawValue<'_>) -> Result<Option<String>, ValueError> {
    let hex = value.hex()?;
    if hex.is_empty() {
        return Ok(None);
    }
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let nibble = |digit: u8| (digit as char).to_digit(16).unwrap_or(0) as u8;
            nibble(pair[0]) << 4 | nibble(pair[1])
        })
        .collect();
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{Country, Direction, MbusKind, Readings, TariffMeaning};
    use crate::p1::telegram::Telegram;
    use crate::p1::value::ValueError;

    fn readings_of(lines: &str) -> (String, Country) {
        let text = format!("/{lines}!\r\n");
        let telegram = Telegram::parse_bytes(text.as_bytes()).unwrap();
        (text.clone(), Country::detect(&telegram))
    }

    #[test]
    fn belgian_tariff_one_is_day_and_dutch_tariff_one_is_low() {
        let (_, be) = readings_of("FLU5\\253769484_A\r\n\r\n0-0:96.1.4(50217)\r\n");
        assert_eq!(be, Country::Belgium);
        let text =
            b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n0-0:96.14.0(0001)\r\n!\r\n";
        let telegram = Telegram::parse_bytes(text).unwrap();
        let nl = Readings::from_telegram(&telegram);
        assert_eq!(nl.country, Country::Netherlands);
        let register = nl.energy(Direction::Import, Some(1)).unwrap();
        assert_eq!(register.meaning, TariffMeaning::Low);
        assert_eq!(register.energy.value.as_str(), "000004.426");
        let be = Readings::with_country(&telegram, Country::Belgium);
        assert_eq!(be.energy(Direction::Import, Some(1)).unwrap().meaning, TariffMeaning::Day);
        assert_eq!(be.tariff_indicator, Some(("0001", Some(1), TariffMeaning::Day)));
    }

    #[test]
    fn failure_log_text_message_and_mbus() {
        let text = b"/ISk5\\2MT382-1000\r\n\r\n\
1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)\r\n\
0-0:96.13.0(48656C6C6F)\r\n\
0-1:24.1.0(003)\r\n\
0-1:96.1.0(3232323241424344313233343536373839)\r\n\
0-1:24.2.1(101209112500W)(12785.123*m3)\r\n\
1-0:32.7.0(230.1*V)\r\n1-0:51.7.0(001*A)\r\n1-0:72.36.0(00002)\r\n\
!\r\n";
        let telegram = Telegram::parse_bytes(text).unwrap();
        let readings = Readings::from_telegram(&telegram);
        assert!(readings.problems.is_empty(), "{:?}", readings.problems);
        assert_eq!(readings.power_failure_log.len(), 2);
        assert_eq!(
            readings.power_failure_log[1].ended.to_utc().to_string(),
            "2010-12-08T14:10:04Z"
        );
        assert_eq!(readings.power_failure_log[1].duration.value.as_str(), "0000000301");
        assert_eq!(readings.text_message.as_deref(), Some("Hello"));
        let gas = &readings.mbus[0];
        assert_eq!((gas.channel, gas.kind), (1, Some(MbusKind::Gas)));
        assert_eq!(gas.reading.unwrap().to_string(), "12785.123 m3");
        assert_eq!(gas.captured_at.unwrap().to_utc().to_string(), "2010-12-09T10:25:00Z");
        assert_eq!(readings.phases[0].voltage.unwrap().to_string(), "230.1 V");
        assert_eq!(readings.phases[1].current.unwrap().value.as_str(), "001");
        assert_eq!(readings.phases[2].voltage_swells, Some(2));
    }

    #[test]
    fn a_known_object_with_a_bad_value_is_a_problem_not_a_guess() {
        let text =
            b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(12,5*kWh)\r\n0-0:1.0.0(171302192002W)\r\n!\r\n";
        let telegram = Telegram::parse_bytes(text).unwrap();
        let readings = Readings::from_telegram(&telegram);
        assert!(readings.energy.is_empty());
        assert_eq!(readings.meter_time, None);
        let errors: Vec<_> = readings.problems.iter().map(|p| p.error).collect();
        assert_eq!(errors[0], ValueError::NotDecimal);
        assert!(matches!(errors[1], ValueError::Timestamp(_)));
    }
}
