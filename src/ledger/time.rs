//! UTC timestamps as RFC 3339 text (`2025-01-31T09:05:00Z`), by civil-date arithmetic.
//!
//! Written out (Howard Hinnant's `days_from_civil`) instead of pulling in a date crate: the
//! ledger needs only whole-second UTC stamps and a date filter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before 1970).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - i64::from(e.duration().subsec_nanos() > 0),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, truncated to the second.
pub fn rfc3339(t: SystemTime) -> String {
    format_unix(unix_seconds(t))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A ledger stamp, `YYYY-MM-DDTHH:MM:SSZ` and nothing else, as seconds since the epoch; what
/// `verify` demands of `started`, `ended` and `origin.merged` (a bare date is not a stamp).
pub fn parse_stamp(text: &str) -> Option<i64> {
    (text.len() == 20).then(|| parse(text))?
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ` into seconds since the epoch.
pub fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    match b.len() {
        10 => {}
        20 if b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z' => {
            let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
            if h > 23 || mi > 59 || s > 59 {
                return None;
            }
            secs += h * 3600 + mi * 60 + s;
        }
        _ => return None,
    }
    Some(secs)
}

/// The `SystemTime` of seconds since the epoch.
pub fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(format_unix(-1), "1969-12-31T23:59:59Z");
        assert_eq!(parse("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(parse("2000-03-01"), Some(951_868_800));
    }

    #[test]
    fn every_day_for_two_centuries_round_trips() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2100, 12, 31);
        let mut prev = None;
        for day in start..=end {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            assert!(d >= 1 && d <= days_in_month(y, m));
            if let Some((py, pm, pd)) = prev {
                assert!((y, m, d) > (py, pm, pd));
            }
            prev = Some((y, m, d));
            let secs = day * 86_400 + 3723;
            assert_eq!(parse(&format_unix(secs)), Some(secs));
        }
    }

    #[test]
    fn rejects_malformed_stamps() {
        for bad in [
            "",
            "2024-2-29",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024/01/01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stamp_is_a_full_time_not_a_date() {
        assert_eq!(
            parse_stamp("2025-01-31T09:05:00Z"),
            parse("2025-01-31T09:05:00Z")
        );
        assert!(parse_stamp("2025-01-31T09:05:00Z").is_some());
        assert_eq!(
            parse("2025-01-31"),
            Some(days_from_civil(2025, 1, 31) * 86_400)
        );
        assert_eq!(parse_stamp("2025-01-31"), None);
    }

    #[test]
    fn system_time_round_trips() {
        let t = from_unix(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(unix_seconds(from_unix(-5)), -5);
    }
}
