//! DSMR timestamps (`TST`): local wall-clock time as the meter shows it, turned into UTC.
//!
//! The wire format is `YYMMDDhhmmssX`, where `X` is `S` (summer time, UTC+2) or `W` (winter
//! time, UTC+1); DSMR 2.2/3 send the same twelve digits without the flag. The zone itself is never
//! transmitted: every DSMR country (NL, BE, LU, and the DSMR-derived SE/HU/AT telegrams) runs on
//! Central European Time.
//!
//! Why not a time-zone database: the only rule needed is the EU one (since 1996 every member state
//! switches at 01:00 UTC on the last Sunday of March and of October), so it is computed here with
//! integer arithmetic. That keeps `protocol` free of clocks, files and a tz dependency, and makes
//! the result identical natively and in the browser.
//!
//! How a timestamp becomes UTC: the EU rule gives the offset of the local time; the flag only
//! decides where the rule cannot, in the repeated 02:00–03:00 hour of the October change (`S` is
//! the first pass, `W` the second) and in the skipped hour of the March change. Without a flag
//! (DSMR 2.2/3) the repeated hour is read as the first pass and the skipped hour as winter time.
//! This is what the reference parser (dsmr_parser, Europe/Amsterdam) does, and it keeps a sloppy
//! flag (the e-MUCS example telegrams put `S` on March dates) from shifting readings by an hour.
//! [`Timestamp::flag_agrees_with_eu_rule`] reports such contradictions so a caller can show them.

use core::fmt;

use thiserror::Error;

/// Summer/winter flag carried by DSMR 4+ timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstFlag {
    /// `S`: the meter's clock shows summer time, UTC+2.
    Summer,
    /// `W`: the meter's clock shows winter (normal) time, UTC+1.
    Winter,
}

impl DstFlag {
    /// Offset from UTC in seconds.
    #[must_use]
    pub const fn utc_offset_seconds(self) -> i64 {
        match self {
            DstFlag::Summer => 2 * 3600,
            DstFlag::Winter => 3600,
        }
    }
}

/// Why a `TST` value was not a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimestampError {
    /// Not 12 digits optionally followed by `S` or `W`.
    #[error("a timestamp is 12 digits (YYMMDDhhmmss) optionally followed by S or W")]
    Syntax,
    /// Digits in the right places but not a date or time of day (month 13, 31 April, 24:00, …).
    #[error("timestamp fields out of range (month, day, hour, minute or second)")]
    OutOfRange,
}

/// A validated DSMR timestamp: the meter's local date and time plus its summer/winter flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Full year. Two-digit years follow POSIX `%y`: 69–99 are 19xx, 00–68 are 20xx, so the
    /// `700101…` "no value" sentinels some meters send stay in 1970.
    pub year: i32,
    /// 1–12.
    pub month: u8,
    /// 1–31, valid for the month.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
    /// `None` for DSMR 2.2/3 timestamps.
    pub flag: Option<DstFlag>,
}

impl Timestamp {
    /// Parses `YYMMDDhhmmss` with an optional `S`/`W` flag (lower case accepted).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let bytes = text.as_bytes();
        let (digits, flag) = match bytes.len() {
            12 => (bytes, None),
            13 => {
                let flag = match bytes[12] {
                    b'S' | b's' => DstFlag::Summer,
                    b'W' | b'w' => DstFlag::Winter,
                    _ => return Err(TimestampError::Syntax),
                };
                (&bytes[..12], Some(flag))
            }
            _ => return Err(TimestampError::Syntax),
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(TimestampError::Syntax);
        }
        let two = |i: usize| (digits[i] - b'0') * 10 + (digits[i + 1] - b'0');
        let yy = i32::from(two(0));
        let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
        let stamp = Timestamp {
            year,
            month: two(2),
            day: two(4),
            hour: two(6),
            minute: two(8),
            second: two(10),
            flag,
        };
        let month_ok = (1..=12).contains(&stamp.month);
        if !month_ok
            || stamp.day == 0
            || stamp.day > days_in_month(year, stamp.month)
            || stamp.hour > 23
            || stamp.minute > 59
            || stamp.second > 59
        {
            return Err(TimestampError::OutOfRange);
        }
        Ok(stamp)
    }

    /// The local time as seconds since 1970-01-01T00:00:00 *without* any offset applied.
    fn local_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The UTC offset of this local time: from the EU rule, with the flag deciding in the
    /// repeated and the skipped hour (see the module docs).
    #[must_use]
    pub fn utc_offset_seconds(&self) -> i64 {
        let summer = DstFlag::Summer.utc_offset_seconds();
        let winter = DstFlag::Winter.utc_offset_seconds();
        let local = self.local_seconds();
        let (start, end) = eu_summer_time_utc(self.year);
        let can_be_summer = (start..end).contains(&(local - summer));
        let can_be_winter = !(start..end).contains(&(local - winter));
        match (can_be_summer, can_be_winter) {
            (true, false) => summer,
            (false, true) => winter,
            // The repeated October hour: the flag tells which pass; without one, the first.
            (true, true) => self.flag.map_or(summer, DstFlag::utc_offset_seconds),
            // The skipped March hour: only a clock that has not switched yet shows it.
            (false, false) => self.flag.map_or(winter, DstFlag::utc_offset_seconds),
        }
    }

    /// Whether the `S`/`W` flag is one the EU rule allows for this local time (always true
    /// without a flag). In the repeated October hour both flags are allowed.
    #[must_use]
    pub fn flag_agrees_with_eu_rule(&self) -> bool {
        let Some(flag) = self.flag else { return true };
        let utc = self.local_seconds() - flag.utc_offset_seconds();
        let (start, end) = eu_summer_time_utc(self.year);
        let summer = (start..end).contains(&utc);
        summer == (flag == DstFlag::Summer)
    }

    /// The instant this timestamp denotes.
    #[must_use]
    pub fn to_utc(&self) -> UtcTime {
        UtcTime(self.local_seconds() - self.utc_offset_seconds())
    }
}

/// An instant as whole seconds since the Unix epoch. `Display` gives ISO-8601 with `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub i64);

impl UtcTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[must_use]
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Start (inclusive) and end (exclusive) of EU summer time in `year`, as UTC seconds: from
/// 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October.
fn eu_summer_time_utc(year: i32) -> (i64, i64) {
    let start = last_sunday(year, 3) * 86_400 + 3600;
    let end = last_sunday(year, 10) * 86_400 + 3600;
    (start, end)
}

/// Days since the epoch of the last Sunday of a 31-day month (March, October).
fn last_sunday(year: i32, month: u8) -> i64 {
    let last = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday; with Monday = 0, Thursday = 3 and Sunday = 6.
    let weekday = (last + 3).rem_euclid(7);
    last - (weekday - 6).rem_euclid(7)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{DstFlag, Timestamp, TimestampError, UtcTime};

    fn utc(text: &str) -> String {
        Timestamp::parse(text).unwrap().to_utc().to_string()
    }

    #[test]
    fn winter_and_summer_flags_give_their_offsets() {
        assert_eq!(utc("170102192002W"), "2017-01-02T18:20:02Z");
        assert_eq!(utc("200512135409S"), "2020-05-12T11:54:09Z");
    }

    #[test]
    fn the_repeated_october_hour_is_told_apart_by_the_flag() {
        // 2023-10-29: clocks go from 03:00 CEST back to 02:00 CET at 01:00 UTC.
        assert_eq!(utc("231029023000S"), "2023-10-29T00:30:00Z");
        assert_eq!(utc("231029023000W"), "2023-10-29T01:30:00Z");
        // Without a flag the rule takes the first (summer) instance.
        assert_eq!(utc("231029023000"), "2023-10-29T00:30:00Z");
        // Both flags are legitimate in that hour.
        assert!(Timestamp::parse("231029023000S").unwrap().flag_agrees_with_eu_rule());
        assert!(Timestamp::parse("231029023000W").unwrap().flag_agrees_with_eu_rule());
    }

    #[test]
    fn flagless_times_follow_the_eu_rule_around_the_march_change() {
        // 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        assert_eq!(utc("240331015959"), "2024-03-31T00:59:59Z");
        assert_eq!(utc("240331030000"), "2024-03-31T01:00:00Z");
        // 02:30 does not exist on that day; read as winter time.
        assert_eq!(utc("240331023000"), "2024-03-31T01:30:00Z");
        assert_eq!(utc("240715120000"), "2024-07-15T10:00:00Z");
        assert_eq!(utc("241231235959"), "2024-12-31T22:59:59Z");
    }

    #[test]
    fn a_flag_against_the_rule_is_reported_and_the_rule_wins() {
        let stamp = Timestamp::parse("240715120000W").unwrap();
        assert!(!stamp.flag_agrees_with_eu_rule());
        assert_eq!(stamp.to_utc().to_string(), "2024-07-15T10:00:00Z");
        assert_eq!(stamp.utc_offset_seconds(), DstFlag::Summer.utc_offset_seconds());
        // The e-MUCS example's March date marked S.
        let sloppy = Timestamp::parse("200305122139S").unwrap();
        assert!(!sloppy.flag_agrees_with_eu_rule());
        assert_eq!(sloppy.to_utc().to_string(), "2020-03-05T11:21:39Z");
        // In the skipped hour the flag is all there is.
        assert_eq!(utc("240331023000S"), "2024-03-31T00:30:00Z");
    }

    #[test]
    fn last_sundays_match_known_dates() {
        // Known EU change dates (UTC 01:00): 2021-03-28, 2021-10-31, 2025-03-30, 2025-10-26.
        let (start, end) = super::eu_summer_time_utc(2021);
        assert_eq!(UtcTime(start).to_string(), "2021-03-28T01:00:00Z");
        assert_eq!(UtcTime(end).to_string(), "2021-10-31T01:00:00Z");
        let (start, end) = super::eu_summer_time_utc(2025);
        assert_eq!(UtcTime(start).to_string(), "2025-03-30T01:00:00Z");
        assert_eq!(UtcTime(end).to_string(), "2025-10-26T01:00:00Z");
    }

    #[test]
    fn sentinels_and_century_rule() {
        assert_eq!(utc("000101000001W"), "1999-12-31T23:00:01Z");
        assert_eq!(utc("700101010000W"), "1970-01-01T00:00:00Z");
        assert_eq!(utc("680229120000W"), "2068-02-29T11:00:00Z");
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        assert_eq!(Timestamp::parse("17010219200"), Err(TimestampError::Syntax));
        assert_eq!(Timestamp::parse("170102192002X"), Err(TimestampError::Syntax));
        assert_eq!(Timestamp::parse("1701021920a2W"), Err(TimestampError::Syntax));
        assert_eq!(Timestamp::parse("171302192002W"), Err(TimestampError::OutOfRange));
        assert_eq!(Timestamp::parse("230229120000W"), Err(TimestampError::OutOfRange));
        assert_eq!(Timestamp::parse("170102242002W"), Err(TimestampError::OutOfRange));
        assert_eq!(Timestamp::parse("170100192002W"), Err(TimestampError::OutOfRange));
    }

    #[test]
    fn epoch_round_trips_through_civil_dates() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = super::civil_from_days(days);
            let back = super::days_from_civil(
                i32::try_from(y).unwrap(),
                u8::try_from(m).unwrap(),
                u8::try_from(d).unwrap(),
            );
            assert_eq!(back, days);
        }
    }
}
