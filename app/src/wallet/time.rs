//! Clock and dates for the wallet: the browser's clock in, UTC text out.

/// Seconds since the Unix epoch, from the browser's clock.
pub fn unix_now() -> u64 {
    (js_sys::Date::now() / 1000.0).max(0.0) as u64
}

/// `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar, from days since 1970-01-01).
pub fn format_utc(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3_600, of_day % 3_600 / 60)
}

/// Year, month, day of `days` after 1970-01-01 (Hinnant's `civil_from_days`, for
/// non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::format_utc;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 (a leap day in a century year divisible by 400).
        assert_eq!(format_utc(951_782_400 + 3_600 * 13 + 60 * 5), "2000-02-29 13:05 UTC");
        assert_eq!(format_utc(1_764_151_200), "2025-11-26 10:00 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59 UTC");
    }
}
