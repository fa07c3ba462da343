//! Civil time for the policy engine: a point in time as unix seconds, its UTC weekday and minute
//! of day, and the conversion between proleptic-Gregorian dates and unix seconds (Howard
//! Hinnant's `days_from_civil`, done here so the crate needs no date library).
//!
//! Pure: the engine never reads a clock. The caller (a worker thread, the fixture runner, an
//! admin `check` command) passes the time in as [`PolicyTime`]. All of it is UTC; there is no
//! time-zone or leap-second handling, on purpose (see docs/POLICY.md).

use std::fmt;

/// Seconds in a civil day (UTC, no leap seconds).
pub const SECS_PER_DAY: i64 = 86_400;

/// Minutes in a civil day; a window's end may be exactly this (written `24:00`).
pub const MINUTES_PER_DAY: u16 = 1_440;

/// Why a date or timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeParseError {
    /// Not of the shape `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)")]
    Format,
    /// The shape is right but a field is out of range (month 13, 31 April, hour 24, ...).
    #[error("{0} out of range")]
    OutOfRange(&'static str),
}

/// A point in time, as seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyTime {
    unix: i64,
}

impl PolicyTime {
    /// The time `secs` seconds after the unix epoch (negative is before it).
    pub fn from_unix(secs: i64) -> Self {
        PolicyTime { unix: secs }
    }

    /// Seconds since the unix epoch.
    pub fn unix(self) -> i64 {
        self.unix
    }

    /// Parses `YYYY-MM-DD` (meaning 00:00:00 UTC that day) or `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn parse_utc(text: &str) -> Result<Self, TimeParseError> {
        let (date, time) = match text.split_once('T') {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let days = parse_date(date)?;
        let secs = match time {
            None => 0,
            Some(time) => parse_time_of_day(time)?,
        };
        Ok(PolicyTime {
            unix: days * SECS_PER_DAY + secs,
        })
    }

    /// UTC weekday, 0 = Monday .. 6 = Sunday.
    pub fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        (self.unix.div_euclid(SECS_PER_DAY) + 3).rem_euclid(7) as u8
    }

    /// UTC minute of the day, 0 ..= 1439.
    pub fn minute_of_day(self) -> u16 {
        (self.unix.rem_euclid(SECS_PER_DAY) / 60) as u16
    }
}

/// Prints `YYYY-MM-DDTHH:MM:SSZ`, the form [`PolicyTime::parse_utc`] reads back.
impl fmt::Display for PolicyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.unix.div_euclid(SECS_PER_DAY));
        let secs = self.unix.rem_euclid(SECS_PER_DAY);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 of the proleptic-Gregorian date `y-m-d` (month 1..=12, day 1..=31;
/// the caller validates the day against the month).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0 ..= 399
    let mp = i64::from((m + 9) % 12); // March = 0, so the leap day is last
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // 0 ..= 365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0 ..= 146096
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days in month `m` of year `y`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` → days since the epoch.
fn parse_date(text: &str) -> Result<i64, TimeParseError> {
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TimeParseError::Format);
    };
    let y = i64::from(digits(y, 4)?);
    let m = digits(m, 2)?;
    let d = digits(d, 2)?;
    if !(1..=12).contains(&m) {
        return Err(TimeParseError::OutOfRange("month"));
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err(TimeParseError::OutOfRange("day"));
    }
    Ok(days_from_civil(y, m, d))
}

/// `HH:MM:SSZ` → seconds into the day.
fn parse_time_of_day(text: &str) -> Result<i64, TimeParseError> {
    let text = text.strip_suffix('Z').ok_or(TimeParseError::Format)?;
    let mut parts = text.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TimeParseError::Format);
    };
    let (h, m, s) = (digits(h, 2)?, digits(m, 2)?, digits(s, 2)?);
    if h > 23 {
        return Err(TimeParseError::OutOfRange("hour"));
    }
    if m > 59 {
        return Err(TimeParseError::OutOfRange("minute"));
    }
    if s > 59 {
        return Err(TimeParseError::OutOfRange("second"));
    }
    Ok(i64::from(h * 3600 + m * 60 + s))
}

/// Exactly `len` ASCII digits → their value (`len` ≤ 4, so it fits).
fn digits(text: &str, len: usize) -> Result<u32, TimeParseError> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeParseError::Format);
    }
    Ok(text
        .bytes()
        .fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(text: &str) -> PolicyTime {
        PolicyTime::parse_utc(text).unwrap()
    }

    #[test]
    fn known_dates_give_known_unix_seconds() {
        assert_eq!(t("1970-01-01").unix(), 0);
        assert_eq!(t("2000-03-01").unix(), 951_868_800);
        assert_eq!(t("2026-11-23T10:00:00Z").unix(), 1_795_428_000);
        assert_eq!(t("1969-12-31T23:59:59Z").unix(), -1);
        assert_eq!(t("2027-01-01").unix(), 1_798_761_600);
    }

    #[test]
    fn weekday_and_minute_are_utc() {
        // 2026-11-23 is a Monday; 1970-01-01 was a Thursday.
        assert_eq!(t("2026-11-23T10:00:00Z").weekday(), 0);
        assert_eq!(t("2026-11-29T23:59:00Z").weekday(), 6);
        assert_eq!(t("1970-01-01").weekday(), 3);
        assert_eq!(t("1969-12-31T12:00:00Z").weekday(), 2);
        assert_eq!(t("2026-11-23T10:07:59Z").minute_of_day(), 607);
    }

    #[test]
    fn leap_days_follow_the_gregorian_rules() {
        assert!(PolicyTime::parse_utc("2024-02-29").is_ok());
        assert!(PolicyTime::parse_utc("2000-02-29").is_ok());
        assert_eq!(
            PolicyTime::parse_utc("2023-02-29"),
            Err(TimeParseError::OutOfRange("day"))
        );
        assert_eq!(
            PolicyTime::parse_utc("1900-02-29"),
            Err(TimeParseError::OutOfRange("day"))
        );
    }

    #[test]
    fn malformed_text_is_a_typed_error() {
        for bad in [
            "",
            "2026-1-01",
            "2026-01-01T10:00:00",
            "2026-01-01T10:00Z",
            "2026-01-01 10:00:00Z",
            "2026-01-01-02",
            "+026-01-01",
            "２026-01-01",
        ] {
            assert_eq!(
                PolicyTime::parse_utc(bad),
                Err(TimeParseError::Format),
                "{bad}"
            );
        }
        assert_eq!(
            PolicyTime::parse_utc("2026-13-01"),
            Err(TimeParseError::OutOfRange("month"))
        );
        assert_eq!(
            PolicyTime::parse_utc("2026-01-01T24:00:00Z"),
            Err(TimeParseError::OutOfRange("hour"))
        );
    }

    #[test]
    fn display_reads_back() {
        assert_eq!(
            t("2026-11-23T10:00:00Z").to_string(),
            "2026-11-23T10:00:00Z"
        );
        assert_eq!(
            PolicyTime::from_unix(-1).to_string(),
            "1969-12-31T23:59:59Z"
        );
    }

    proptest! {
        #[test]
        fn civil_days_round_trip(days in -1_000_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m));
            prop_assert!(d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn display_then_parse_is_identity(secs in 0i64..253_402_300_800) {
            let time = PolicyTime::from_unix(secs);
            prop_assert_eq!(PolicyTime::parse_utc(&time.to_string()), Ok(time));
        }
    }
}
