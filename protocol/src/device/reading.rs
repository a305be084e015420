//! From a parsed P1 telegram to the channel's [`Reading`]: exact integer units, UTC time.
//!
//! The P1 parser keeps every value as the digits the meter printed; this module is where they
//! become integers (Wh, W, 0.1 V, mA, dm³). Conversions are exact: a value with more decimals
//! than the target unit can hold (`0.0005 kWh`) is refused rather than rounded, because a
//! provider must be able to check every reading against the telegram it came from.

use crate::channel::{GasReading, PhaseReading, Reading};
use crate::p1::readings::MbusKind;
use crate::p1::{Direction, Quantity, Readings, Telegram, Unit, Untrusted};

/// Why a telegram produced no reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The CRC did not match: the bytes were damaged on the line.
    #[error("CRC mismatch: the telegram was damaged in transit")]
    BadCrc,
    /// No CRC, and the telegram is not well-formed enough to be believed (line noise that
    /// happens to frame as a telegram).
    #[error("{0}")]
    Untrusted(Untrusted),
    /// No `0-0:1.0.0` timestamp (DSMR 2.2/3 meters do not send one; the agent's clock is not a
    /// substitute for the meter's).
    #[error("the telegram carries no timestamp")]
    NoTimestamp,
    /// A value has a unit or precision that cannot be represented exactly.
    #[error("{what}: {value} cannot be represented exactly in {target}")]
    Inexact {
        /// Which value.
        what: &'static str,
        /// As sent.
        value: String,
        /// The target unit.
        target: &'static str,
    },
}

/// `value × 10^target_decimals` as an integer, or `None` when that is not exact or negative.
fn scaled(quantity: &Quantity<'_>, target_decimals: u32) -> Option<u64> {
    let (mantissa, scale) = quantity.value.mantissa_and_scale()?;
    let mantissa = u64::try_from(mantissa).ok()?;
    if scale <= target_decimals {
        mantissa.checked_mul(10u64.checked_pow(target_decimals - scale)?)
    } else {
        let divisor = 10u64.checked_pow(scale - target_decimals)?;
        (mantissa % divisor == 0).then_some(mantissa / divisor)
    }
}

fn inexact(what: &'static str, quantity: &Quantity<'_>, target: &'static str) -> ConversionError {
    ConversionError::Inexact { what, value: quantity.value.as_str().to_owned(), target }
}

/// Energy in Wh from `kWh` (3 decimals → ×1000) or `Wh`.
fn energy_wh(what: &'static str, quantity: &Quantity<'_>) -> Result<u64, ConversionError> {
    let decimals = match quantity.unit_kind() {
        Some(Unit::WattHour) => 0,
        _ => 3, // kWh, also when the unit is missing (DSMR's defined unit)
    };
    scaled(quantity, decimals).ok_or_else(|| inexact(what, quantity, "Wh"))
}

/// Power in W from `kW` or `W`.
fn power_w(what: &'static str, quantity: &Quantity<'_>) -> Result<u32, ConversionError> {
    let decimals = match quantity.unit_kind() {
        Some(Unit::Watt) => 0,
        _ => 3,
    };
    scaled(quantity, decimals)
        .and_then(|w| u32::try_from(w).ok())
        .ok_or_else(|| inexact(what, quantity, "W"))
}

/// Converts one parsed telegram. The CRC must be valid (or absent, as on DSMR 2.2/3).
pub fn reading_from_telegram(
    telegram: &Telegram<'_>,
    readings: &Readings<'_>,
    include_raw: bool,
) -> Result<Reading, ConversionError> {
    match telegram.trusted() {
        Ok(()) => {}
        Err(Untrusted::CrcMismatch) => return Err(ConversionError::BadCrc),
        Err(noise) => return Err(ConversionError::Untrusted(noise)),
    }
    let time = readings.meter_time.ok_or(ConversionError::NoTimestamp)?;
    let timestamp =
        u64::try_from(time.to_utc().unix_seconds()).map_err(|_| ConversionError::NoTimestamp)?;

    // Tariff registers 1..=n in order; a meter with only totals (x.8.0) gives one tariff.
    let mut import = Vec::new();
    let mut export = Vec::new();
    let tariffs: Vec<Option<u8>> = {
        let mut t: Vec<Option<u8>> = readings
            .energy
            .iter()
            .filter(|r| r.direction == Direction::Import)
            .map(|r| r.tariff)
            .collect();
        if t.iter().any(Option::is_some) {
            t.retain(Option::is_some);
        }
        t.sort_unstable();
        t.dedup();
        t
    };
    for tariff in &tariffs {
        let import_reg = readings.energy(Direction::Import, *tariff);
        let export_reg = readings.energy(Direction::Export, *tariff);
        import.push(match import_reg {
            Some(r) => energy_wh("energy import", &r.energy)?,
            None => 0,
        });
        export.push(match export_reg {
            Some(r) => energy_wh("energy export", &r.energy)?,
            None => 0,
        });
    }
    let power_import_w = match &readings.power_import {
        Some(q) => power_w("power import", q)?,
        None => 0,
    };
    let power_export_w = match &readings.power_export {
        Some(q) => power_w("power export", q)?,
        None => 0,
    };
    let mut phases = Vec::new();
    for phase in &readings.phases {
        if phase.voltage.is_none() && phase.current.is_none() && phase.power_import.is_none() {
            continue;
        }
        let voltage_dv = match &phase.voltage {
            Some(q) => Some(
                scaled(q, 1)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| inexact("voltage", q, "0.1 V"))?,
            ),
            None => None,
        };
        let current_ma = match &phase.current {
            Some(q) => Some(
                scaled(q, 3)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| inexact("current", q, "mA"))?,
            ),
            None => None,
        };
        phases.push(PhaseReading {
            voltage_dv,
            current_ma,
            power_import_w: match &phase.power_import {
                Some(q) => power_w("phase power import", q)?,
                None => 0,
            },
            power_export_w: match &phase.power_export {
                Some(q) => power_w("phase power export", q)?,
                None => 0,
            },
        });
    }
    let gas = readings
        .mbus
        .iter()
        .find(|d| d.kind == Some(MbusKind::Gas) && d.reading.is_some())
        .and_then(|d| Some((d.reading?, d.captured_at?)))
        .map(|(q, at)| -> Result<GasReading, ConversionError> {
            let volume_dm3 = scaled(&q, 3).ok_or_else(|| inexact("gas", &q, "dm³"))?;
            let captured_at = u64::try_from(at.to_utc().unix_seconds()).unwrap_or(0);
            Ok(GasReading { volume_dm3, captured_at })
        })
        .transpose()?;
    Ok(Reading {
        timestamp,
        energy_import_wh: import,
        energy_export_wh: export,
        power_import_w,
        power_export_w,
        phases,
        gas,
        raw_telegram: include_raw.then(|| telegram.text().as_bytes().to_vec()),
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::p1::Framer;

    const TELEGRAM: &[u8] =
        b"/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(190324150519W)\r\n\
1-0:1.8.1(003432.827*kWh)\r\n1-0:1.8.2(003224.632*kWh)\r\n1-0:2.8.1(000000.001*kWh)\r\n\
1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n1-0:1.7.0(00.378*kW)\r\n1-0:2.7.0(00.000*kW)\r\n\
1-0:32.7.0(237.1*V)\r\n1-0:31.7.0(002*A)\r\n1-0:21.7.0(00.378*kW)\r\n1-0:22.7.0(00.000*kW)\r\n\
0-1:24.1.0(003)\r\n0-1:96.1.0(4730)\r\n0-1:24.2.1(190324150000W)(02017.101*m3)\r\n!";

    fn with_crc(body: &[u8]) -> Vec<u8> {
        let crc = crate::p1::crc::crc16_arc(body);
        let mut out = body.to_vec();
        out.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
        out
    }

    #[test]
    fn converts_registers_exactly_to_integer_units() {
        let bytes = with_crc(TELEGRAM);
        let mut framer = Framer::default();
        framer.feed(&bytes);
        let frame = framer.next_frame().unwrap().unwrap();
        let telegram = Telegram::parse(frame).unwrap();
        let readings = Readings::from_telegram(&telegram);
        let reading = reading_from_telegram(&telegram, &readings, false).unwrap();
        // 2019-03-24 15:05:19 CET = 14:05:19 UTC
        assert_eq!(reading.timestamp, 1_553_436_319);
        assert_eq!(reading.energy_import_wh, vec![3_432_827, 3_224_632]);
        assert_eq!(reading.energy_export_wh, vec![1, 0]);
        assert_eq!(reading.power_import_w, 378);
        assert_eq!(reading.phases.len(), 1);
        assert_eq!(reading.phases[0].voltage_dv, Some(2371));
        assert_eq!(reading.phases[0].current_ma, Some(2000));
        let gas = reading.gas.unwrap();
        assert_eq!(gas.volume_dm3, 2_017_101);
        assert_eq!(gas.captured_at, 1_553_436_000);
    }

    #[test]
    fn a_damaged_telegram_is_refused() {
        let mut bytes = with_crc(TELEGRAM);
        let pos = bytes.iter().position(|b| *b == b'7').unwrap();
        bytes[pos] = b'8';
        let mut framer = Framer::default();
        framer.feed(&bytes);
        let frame = framer.next_frame().unwrap().unwrap();
        let telegram = Telegram::parse(frame).unwrap();
        let readings = Readings::from_telegram(&telegram);
        assert_eq!(
            reading_from_telegram(&telegram, &readings, false),
            Err(ConversionError::BadCrc)
        );
    }
}
