//! The meter's local time: DSMR meters print CET/CEST wall-clock time with an S/W flag.
//!
//! Going from UTC to the meter's clock (simulated meters, day windows) uses the same EU rule as
//! `protocol::p1::time` does for the other direction: a candidate local time is built for each
//! offset and the one `protocol` maps back to the same instant, with a flag the rule allows,
//! wins. No time-zone database is needed, and both directions agree by construction.

use crate::p1::{DstFlag, Timestamp, UtcTime};

/// The meter's UTC offset (3600 or 7200 s) at a UTC instant, by the EU rule.
pub fn utc_offset(utc: u64) -> u64 {
    if meter_timestamp(utc).ends_with('S') { 7200 } else { 3600 }
}

/// Local wall-clock digits `YYMMDDhhmmss` of `utc` shifted by `offset` seconds.
fn local_digits(utc: i64, offset: i64) -> String {
    // "YYYY-MM-DDTHH:MM:SSZ" of the shifted instant is the local wall-clock time.
    UtcTime(utc + offset)
        .to_string()
        .chars()
        .skip(2)
        .filter(char::is_ascii_digit)
        .take(12)
        .collect()
}

/// The meter's `TST` text (`YYMMDDhhmmssX`) for a UTC instant.
pub fn meter_timestamp(utc: u64) -> String {
    let utc = i64::try_from(utc).unwrap_or(i64::MAX);
    for (flag, letter) in [(DstFlag::Winter, 'W'), (DstFlag::Summer, 'S')] {
        let tst = format!("{}{letter}", local_digits(utc, flag.utc_offset_seconds()));
        if Timestamp::parse(&tst).is_ok_and(|stamp| {
            stamp.flag_agrees_with_eu_rule() && stamp.to_utc().unix_seconds() == utc
        }) {
            return tst;
        }
    }
    // Only reachable for instants the EU rule does not cover (before 1996): winter time.
    format!("{}W", local_digits(utc, DstFlag::Winter.utc_offset_seconds()))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn local_time_follows_the_eu_rule() {
        // 2026-07-01 12:00:00 UTC is 14:00 summer time; 2026-01-15 12:00 UTC is 13:00 winter.
        assert_eq!(meter_timestamp(1_782_907_200), "260701140000S");
        assert_eq!(meter_timestamp(1_768_478_400), "260115130000W");
        // 2026-10-25 00:30 UTC = 02:30 S (first pass); 01:30 UTC = 02:30 W (second pass).
        assert_eq!(meter_timestamp(1_792_888_200), "261025023000S");
        assert_eq!(meter_timestamp(1_792_891_800), "261025023000W");
    }
}
