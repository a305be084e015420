//! P1 (DSMR) telegrams: framing, CRC, line parsing and typed readings.

pub mod crc;
