//! The reading record carried in data messages, and its compact binary encoding.
//!
//! This is deliberately independent of the P1 parser's types: a reading here is what a provider
//! receives, with integer units so the encoding is exact and deterministic.
//!
//! ```text
//! Reading v1 (all integers unsigned LEB128 varints unless noted, minimal encodings only)
//!   u8      version = 1
//!   varint  timestamp            UTC seconds since 1970 (the meter's telegram time)
//!   u8      tariffs T (0..=8)
//!   varint  × T  energy_import_wh[t]   delivered to the home, Wh, per tariff
//!   varint  × T  energy_export_wh[t]   returned to the grid, Wh, per tariff
//!   varint  power_import_w       W
//!   varint  power_export_w       W
//!   u8      phases P (0..=3)
//!   P × { u8 presence (bit0 voltage, bit1 current, other bits 0)
//!         [varint voltage_dv]    0.1 V, if bit0
//!         [varint current_ma]    mA, if bit1
//!         varint power_import_w, varint power_export_w }
//!   u8      gas present (0|1) → varint volume_dm3, varint captured_at (UTC seconds)
//!   u8      raw telegram present (0|1) → varint length (≤ 8192), bytes
//! ```
//!
//! A typical 1 s DSMR 5 reading (2 tariffs, 3 phases with voltage and current, gas, no raw
//! telegram) is about 50 bytes.

use super::codec::{DecodeError, Reader, Writer};

const READING_VERSION: u8 = 1;
/// Most tariff registers a reading may carry (DSMR has 2; headroom for dynamic tariffs).
pub const MAX_TARIFFS: usize = 8;
/// Most phases.
pub const MAX_PHASES: usize = 3;
/// Longest raw telegram carried (DSMR telegrams are ≈ 1 kB).
pub const MAX_RAW_TELEGRAM: usize = 8192;

/// One phase's instantaneous values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhaseReading {
    /// Voltage in 0.1 V, if the meter reports it.
    pub voltage_dv: Option<u32>,
    /// Current in mA, if the meter reports it.
    pub current_ma: Option<u32>,
    /// Power drawn on this phase, W.
    pub power_import_w: u32,
    /// Power returned on this phase, W.
    pub power_export_w: u32,
}

/// A gas meter register and when the meter captured it (DSMR reports gas every 5 min).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasReading {
    /// Cumulative volume in dm³ (litres).
    pub volume_dm3: u64,
    /// UTC seconds when the gas meter value was captured.
    pub captured_at: u64,
}

/// One typed meter reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// UTC seconds of the telegram.
    pub timestamp: u64,
    /// Cumulative energy delivered to the home per tariff, Wh.
    pub energy_import_wh: Vec<u64>,
    /// Cumulative energy returned to the grid per tariff, Wh (same length as import).
    pub energy_export_wh: Vec<u64>,
    /// Total power drawn, W.
    pub power_import_w: u32,
    /// Total power returned, W.
    pub power_export_w: u32,
    /// Per-phase values (0 to 3 phases).
    pub phases: Vec<PhaseReading>,
    /// Gas register, if a gas meter is attached.
    pub gas: Option<GasReading>,
    /// The raw telegram bytes, if the device shares them.
    pub raw_telegram: Option<Vec<u8>>,
}

/// A reading that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadingError {
    /// Import and export registers must have the same number of tariffs.
    #[error("import has {import} tariffs but export has {export}")]
    TariffMismatch {
        /// Import tariff count.
        import: usize,
        /// Export tariff count.
        export: usize,
    },
    /// More tariffs, phases or raw bytes than the format allows.
    #[error("too many {what} (at most {max})")]
    TooMany {
        /// What overflowed.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

impl Reading {
    /// Checks the limits [`Reading::encode_into`] relies on.
    pub fn validate(&self) -> Result<(), ReadingError> {
        if self.energy_import_wh.len() != self.energy_export_wh.len() {
            return Err(ReadingError::TariffMismatch {
                import: self.energy_import_wh.len(),
                export: self.energy_export_wh.len(),
            });
        }
        if self.energy_import_wh.len() > MAX_TARIFFS {
            return Err(ReadingError::TooMany { what: "tariffs", max: MAX_TARIFFS });
        }
        if self.phases.len() > MAX_PHASES {
            return Err(ReadingError::TooMany { what: "phases", max: MAX_PHASES });
        }
        if self.raw_telegram.as_ref().is_some_and(|raw| raw.len() > MAX_RAW_TELEGRAM) {
            return Err(ReadingError::TooMany {
                what: "raw telegram bytes",
                max: MAX_RAW_TELEGRAM,
            });
        }
        Ok(())
    }

    /// Encodes a validated reading (see the module docs for the layout).
    pub fn encode(&self) -> Result<Vec<u8>, ReadingError> {
        let mut writer = Writer::new();
        self.encode_into(&mut writer)?;
        Ok(writer.finish())
    }

    pub(crate) fn encode_into(&self, w: &mut Writer) -> Result<(), ReadingError> {
        self.validate()?;
        w.u8(READING_VERSION).varint(self.timestamp);
        // Lengths are bounded by `validate` (≤ 8 and ≤ 3), so they fit a byte.
        w.u8(self.energy_import_wh.len() as u8);
        for value in self.energy_import_wh.iter().chain(&self.energy_export_wh) {
            w.varint(*value);
        }
        w.varint(self.power_import_w.into()).varint(self.power_export_w.into());
        w.u8(self.phases.len() as u8);
        for phase in &self.phases {
            let presence =
                u8::from(phase.voltage_dv.is_some()) | (u8::from(phase.current_ma.is_some()) << 1);
            w.u8(presence);
            if let Some(voltage) = phase.voltage_dv {
                w.varint(voltage.into());
            }
            if let Some(current) = phase.current_ma {
                w.varint(current.into());
            }
            w.varint(phase.power_import_w.into()).varint(phase.power_export_w.into());
        }
        match &self.gas {
            Some(gas) => w.u8(1).varint(gas.volume_dm3).varint(gas.captured_at),
            None => w.u8(0),
        };
        match &self.raw_telegram {
            Some(raw) => w.u8(1).length_prefixed(raw),
            None => w.u8(0),
        };
        Ok(())
    }

    /// Decodes exactly one reading; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let reading = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(reading)
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("reading version")?;
        if version != READING_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "reading", version });
        }
        let timestamp = r.varint("timestamp")?;
        let tariffs = usize::from(r.u8("tariff count")?);
        if tariffs > MAX_TARIFFS {
            return Err(DecodeError::InvalidValue { field: "tariff count" });
        }
        let mut energy_import_wh = Vec::with_capacity(tariffs);
        for _ in 0..tariffs {
            energy_import_wh.push(r.varint("energy import")?);
        }
        let mut energy_export_wh = Vec::with_capacity(tariffs);
        for _ in 0..tariffs {
            energy_export_wh.push(r.varint("energy export")?);
        }
        let power_import_w = read_u32(r, "power import")?;
        let power_export_w = read_u32(r, "power export")?;
        let phase_count = usize::from(r.u8("phase count")?);
        if phase_count > MAX_PHASES {
            return Err(DecodeError::InvalidValue { field: "phase count" });
        }
        let mut phases = Vec::with_capacity(phase_count);
        for _ in 0..phase_count {
            let presence = r.u8("phase presence")?;
            if presence & !0b11 != 0 {
                return Err(DecodeError::InvalidValue { field: "phase presence" });
            }
            let voltage_dv = if presence & 1 != 0 { Some(read_u32(r, "voltage")?) } else { None };
            let current_ma = if presence & 2 != 0 { Some(read_u32(r, "current")?) } else { None };
            phases.push(PhaseReading {
                voltage_dv,
                current_ma,
                power_import_w: read_u32(r, "phase power import")?,
                power_export_w: read_u32(r, "phase power export")?,
            });
        }
        let gas = if r.bool("gas present")? {
            Some(GasReading {
                volume_dm3: r.varint("gas volume")?,
                captured_at: r.varint("gas capture time")?,
            })
        } else {
            None
        };
        let raw_telegram = if r.bool("raw telegram present")? {
            Some(r.length_prefixed(MAX_RAW_TELEGRAM, "raw telegram")?.to_vec())
        } else {
            None
        };
        Ok(Self {
            timestamp,
            energy_import_wh,
            energy_export_wh,
            power_import_w,
            power_export_w,
            phases,
            gas,
            raw_telegram,
        })
    }
}

fn read_u32(r: &mut Reader<'_>, field: &'static str) -> Result<u32, DecodeError> {
    let value = r.varint_max(u32::MAX.into(), field)?;
    u32::try_from(value).map_err(|_| DecodeError::InvalidValue { field })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn sample() -> Reading {
        Reading {
            timestamp: 1_764_151_200,
            energy_import_wh: vec![12_345_678, 9_876_543],
            energy_export_wh: vec![1_234, 56_789],
            power_import_w: 1_520,
            power_export_w: 0,
            phases: vec![
                PhaseReading {
                    voltage_dv: Some(2_301),
                    current_ma: Some(3_000),
                    power_import_w: 700,
                    power_export_w: 0,
                },
                PhaseReading {
                    voltage_dv: Some(2_298),
                    current_ma: None,
                    power_import_w: 520,
                    power_export_w: 0,
                },
                PhaseReading {
                    voltage_dv: None,
                    current_ma: Some(1_000),
                    power_import_w: 300,
                    power_export_w: 0,
                },
            ],
            gas: Some(GasReading { volume_dm3: 4_567_890, captured_at: 1_764_150_900 }),
            raw_telegram: Some(b"/ISK5\\2M550T-1012\r\n".to_vec()),
        }
    }

    #[test]
    fn round_trips_and_rejects_every_truncation() {
        let reading = sample();
        let bytes = reading.encode().unwrap();
        assert_eq!(Reading::decode(&bytes).unwrap(), reading);
        for cut in 0..bytes.len() {
            assert!(Reading::decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut extended = bytes;
        extended.push(0);
        assert_eq!(Reading::decode(&extended), Err(DecodeError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn invalid_readings_are_refused() {
        let mut reading = sample();
        reading.energy_export_wh.pop();
        assert!(matches!(reading.encode(), Err(ReadingError::TariffMismatch { .. })));
        let mut reading = sample();
        reading.phases.push(PhaseReading::default());
        assert!(matches!(reading.encode(), Err(ReadingError::TooMany { what: "phases", .. })));
    }

    #[test]
    fn unknown_version_and_bad_presence_bits_are_rejected() {
        let mut bytes = Reading::default().encode().unwrap();
        bytes[0] = 2;
        assert_eq!(
            Reading::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { what: "reading", version: 2 })
        );
        let reading = Reading { phases: vec![PhaseReading::default()], ..Reading::default() };
        let mut bytes = reading.encode().unwrap();
        // version, timestamp 0, tariffs 0, power 0, power 0, phases 1, presence
        bytes[6] = 0b100;
        assert_eq!(
            Reading::decode(&bytes),
            Err(DecodeError::InvalidValue { field: "phase presence" })
        );
    }
}
