//! Weekday/time windows on routes, such as `Mon-Fri 08:00-18:00`, `Sat,Sun`, `22:00-06:00`.
//! Parsed once when a snapshot is compiled; [`Window::contains`] is then a few integer compares.
//!
//! Pure. Evaluated in UTC (see docs/POLICY.md). Called by `policy::compile` and `policy::decide`.
//!
//! Rules:
//! - days: comma list of `Mon`..`Sun` (case-insensitive) or ranges `Fri-Mon` (ranges may wrap
//!   over the weekend); omitted = every day.
//! - time: `HH:MM-HH:MM`, end exclusive, end may be `24:00`; omitted = the whole day. A start
//!   later than the end is an overnight window: it opens on a listed day and the part after
//!   midnight belongs to that day, so `Fri 22:00-06:00` includes Saturday 03:00 but not
//!   Friday 03:00.

use super::time::{PolicyTime, MINUTES_PER_DAY};

/// Weekday names in [`PolicyTime::weekday`] order.
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Every day set in a [`Window::days`] mask.
const ALL_DAYS: u8 = 0x7f;

/// Why a window did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowParseError {
    #[error("empty window")]
    Empty,
    #[error("expected `DAYS HH:MM-HH:MM`, `DAYS` or `HH:MM-HH:MM`")]
    Shape,
    #[error("unknown weekday `{0}` (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")]
    UnknownDay(String),
    #[error("bad time `{0}` (use HH:MM, 00:00 to 24:00)")]
    BadTime(String),
    #[error("the time range starts and ends at the same minute (use 00:00-24:00 for all day)")]
    EmptyTimeRange,
}

/// A compiled window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Bit `d` set when weekday `d` (0 = Monday) opens the window.
    days: u8,
    /// Opening minute of the day, 0 ..= 1439.
    start: u16,
    /// Closing minute (exclusive), 1 ..= 1440; less than or equal to `start` means overnight.
    end: u16,
}

impl Window {
    /// Parses the text form described in the module header.
    pub fn parse(text: &str) -> Result<Self, WindowParseError> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (days, time) = match tokens.as_slice() {
            [] => return Err(WindowParseError::Empty),
            [one] if one.contains(':') => (None, Some(*one)),
            [one] => (Some(*one), None),
            [days, time] => (Some(*days), Some(*time)),
            _ => return Err(WindowParseError::Shape),
        };
        let days = match days {
            Some(days) => parse_days(days)?,
            None => ALL_DAYS,
        };
        let (start, end) = match time {
            Some(time) => parse_time_range(time)?,
            None => (0, MINUTES_PER_DAY),
        };
        Ok(Window { days, start, end })
    }

    /// True when `now` (UTC) falls inside the window.
    pub fn contains(&self, now: PolicyTime) -> bool {
        let day = now.weekday();
        let minute = now.minute_of_day();
        let opens_on = |d: u8| self.days & (1 << d) != 0;
        if self.start < self.end {
            opens_on(day) && (self.start..self.end).contains(&minute)
        } else {
            // Overnight: the evening part belongs to today, the morning part to yesterday.
            let yesterday = (day + 6) % 7;
            (opens_on(day) && minute >= self.start) || (opens_on(yesterday) && minute < self.end)
        }
    }
}

fn parse_days(text: &str) -> Result<u8, WindowParseError> {
    let mut mask = 0u8;
    for item in text.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day_index(first)?, day_index(last)?);
                let mut d = first;
                loop {
                    mask |= 1 << d;
                    if d == last {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(item)?,
        }
    }
    Ok(mask)
}

fn day_index(name: &str) -> Result<u8, WindowParseError> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .map(|i| i as u8)
        .ok_or_else(|| WindowParseError::UnknownDay(name.to_string()))
}

fn parse_time_range(text: &str) -> Result<(u16, u16), WindowParseError> {
    let bad = || WindowParseError::BadTime(text.to_string());
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        parse_minute(start).ok_or_else(bad)?,
        parse_minute(end).ok_or_else(bad)?,
    );
    if start == MINUTES_PER_DAY {
        return Err(bad());
    }
    if start == end {
        return Err(WindowParseError::EmptyTimeRange);
    }
    Ok((start, end))
}

/// `HH:MM` → minute of the day, `24:00` allowed (= 1440).
fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 is a Monday; `day` 0..6 picks Mon..Sun of that week.
    fn at(day: i64, hh: i64, mm: i64) -> PolicyTime {
        PolicyTime::from_unix(1_795_392_000 + day * 86_400 + hh * 3600 + mm * 60)
    }

    #[test]
    fn office_hours_are_weekday_and_end_exclusive() {
        let w = Window::parse("Mon-Fri 08:00-18:00").unwrap();
        assert!(w.contains(at(0, 8, 0)));
        assert!(w.contains(at(4, 17, 59)));
        assert!(!w.contains(at(4, 18, 0)));
        assert!(!w.contains(at(0, 7, 59)));
        assert!(!w.contains(at(5, 12, 0)));
    }

    #[test]
    fn overnight_belongs_to_the_opening_day() {
        let w = Window::parse("Fri 22:00-06:00").unwrap();
        assert!(w.contains(at(4, 22, 0)));
        assert!(w.contains(at(5, 5, 59)));
        assert!(!w.contains(at(5, 6, 0)));
        assert!(!w.contains(at(4, 3, 0)));
        assert!(!w.contains(at(5, 22, 30)));
    }

    #[test]
    fn days_only_time_only_lists_and_wrapping_ranges() {
        let weekend = Window::parse("sat,SUN").unwrap();
        assert!(weekend.contains(at(5, 0, 0)) && weekend.contains(at(6, 23, 59)));
        assert!(!weekend.contains(at(0, 12, 0)));
        let night = Window::parse("22:00-24:00").unwrap();
        assert!(night.contains(at(2, 23, 59)) && !night.contains(at(2, 21, 59)));
        let long_weekend = Window::parse("Fri-Mon").unwrap();
        assert!(long_weekend.contains(at(0, 1, 0)) && long_weekend.contains(at(4, 1, 0)));
        assert!(!long_weekend.contains(at(1, 1, 0)));
    }

    #[test]
    fn bad_windows_are_typed_errors() {
        assert_eq!(Window::parse("  "), Err(WindowParseError::Empty));
        assert_eq!(
            Window::parse("Mon-Fry 08:00-18:00"),
            Err(WindowParseError::UnknownDay("Fry".into()))
        );
        assert_eq!(
            Window::parse("Mon 8:00-18:00"),
            Err(WindowParseError::BadTime("8:00-18:00".into()))
        );
        assert_eq!(
            Window::parse("Mon 08:00-24:01"),
            Err(WindowParseError::BadTime("08:00-24:01".into()))
        );
        assert_eq!(
            Window::parse("Mon 08:00-08:00"),
            Err(WindowParseError::EmptyTimeRange)
        );
        assert_eq!(
            Window::parse("Mon 08:00-09:00 x"),
            Err(WindowParseError::Shape)
        );
        assert_eq!(
            Window::parse("Mon,"),
            Err(WindowParseError::UnknownDay("".into()))
        );
    }
}
