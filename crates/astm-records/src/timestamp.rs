//! `YYYYMMDD[HHMM[SS]]` timestamps (E1394 §7.1.8), parsed with nom and checked with chrono.

use std::cmp::Ordering;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use nom::bytes::complete::take_while_m_n;
use nom::combinator::{all_consuming, map, opt};
use nom::{IResult, Parser};

use crate::error::TimestampError;

/// A parsed E1394 date or date-time.
///
/// Ordered by instant, a bare date counting as its midnight; at the same instant a date sorts before
/// a date-time (they are not equal, so the order agrees with `==`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// `YYYYMMDD`.
    Date(NaiveDate),
    /// `YYYYMMDDHHMM` (seconds zero) or `YYYYMMDDHHMMSS`.
    DateTime(NaiveDateTime),
}

impl Timestamp {
    /// The date part.
    pub fn date(&self) -> NaiveDate {
        match self {
            Self::Date(date) => *date,
            Self::DateTime(date_time) => date_time.date(),
        }
    }

    /// As a date-time; a bare date is midnight.
    pub fn to_naive_datetime(&self) -> NaiveDateTime {
        match self {
            Self::Date(date) => date.and_time(NaiveTime::MIN),
            Self::DateTime(date_time) => *date_time,
        }
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        let precision = |t: &Self| match t {
            Self::Date(_) => 0,
            Self::DateTime(_) => 1,
        };
        self.to_naive_datetime()
            .cmp(&other.to_naive_datetime())
            .then_with(|| precision(self).cmp(&precision(other)))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<NaiveDate> for Timestamp {
    fn from(date: NaiveDate) -> Self {
        Self::Date(date)
    }
}

impl From<NaiveDateTime> for Timestamp {
    fn from(date_time: NaiveDateTime) -> Self {
        Self::DateTime(date_time)
    }
}

/// Formats as E1394 text: `YYYYMMDD` or `YYYYMMDDHHMMSS`. A year outside 0–9999 comes out in a
/// form [`parse_timestamp`] refuses; [`FieldBuf::timestamp`](crate::FieldBuf::timestamp) refuses
/// to write one.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = self.date();
        write!(f, "{:04}{:02}{:02}", date.year(), date.month(), date.day())?;
        if let Self::DateTime(t) = self {
            write!(f, "{:02}{:02}{:02}", t.hour(), t.minute(), t.second())?;
        }
        Ok(())
    }
}

type Parts = (u32, u32, u32, Option<(u32, u32, Option<u32>)>);

fn digits(count: usize) -> impl FnMut(&[u8]) -> IResult<&[u8], u32> {
    move |input| {
        map(
            take_while_m_n(count, count, |b: u8| b.is_ascii_digit()),
            |d: &[u8]| d.iter().fold(0, |acc, &b| acc * 10 + u32::from(b - b'0')),
        )
        .parse(input)
    }
}

fn grammar(input: &[u8]) -> IResult<&[u8], Parts> {
    all_consuming((
        digits(4),
        digits(2),
        digits(2),
        opt((digits(2), digits(2), opt(digits(2)))),
    ))
    .parse(input)
}

/// Parses `YYYYMMDD[HHMM[SS]]` (surrounding spaces ignored).
///
/// ```
/// use astm_records::{Timestamp, parse_timestamp};
/// let t = parse_timestamp(b"20091116104731")?;
/// assert_eq!(t.to_naive_datetime().to_string(), "2009-11-16 10:47:31");
/// assert!(matches!(parse_timestamp(b"20240101")?, Timestamp::Date(_)));
/// assert!(parse_timestamp(b"20241301").is_err());
/// # Ok::<(), astm_records::TimestampError>(())
/// ```
pub fn parse_timestamp(text: &[u8]) -> Result<Timestamp, TimestampError> {
    let trimmed = text.trim_ascii();
    let lossy = || String::from_utf8_lossy(text).into_owned();
    let (_, (year, month, day, time)) =
        grammar(trimmed).map_err(|_| TimestampError::Syntax { text: lossy() })?;
    let out_of_range = || TimestampError::OutOfRange { text: lossy() };
    let date = i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
        .ok_or_else(out_of_range)?;
    Ok(match time {
        None => Timestamp::Date(date),
        Some((hour, minute, second)) => Timestamp::DateTime(
            date.and_hms_opt(hour, minute, second.unwrap_or(0))
                .ok_or_else(out_of_range)?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_order_by_instant_and_a_date_before_its_midnight() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let date_2025 = Timestamp::Date(day(2025, 1, 1));
        let midnight_2025 = Timestamp::DateTime(day(2025, 1, 1).and_hms_opt(0, 0, 0).unwrap());
        let morning_2025 = Timestamp::DateTime(day(2025, 1, 1).and_hms_opt(8, 0, 0).unwrap());
        let date_2000 = Timestamp::DateTime(day(2000, 1, 1).and_hms_opt(0, 0, 0).unwrap());
        assert!(date_2025 > date_2000);
        assert!(date_2025 < morning_2025);
        assert!(date_2025 < midnight_2025 && date_2025 != midnight_2025);
        assert_eq!(date_2025.cmp(&date_2025), Ordering::Equal);
        let mut sorted = [morning_2025, midnight_2025, date_2025, date_2000];
        sorted.sort();
        assert_eq!(sorted, [date_2000, date_2025, midnight_2025, morning_2025]);
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_timestamp(b"20240102").unwrap().to_string(),
            "20240102"
        );
        assert_eq!(
            parse_timestamp(b"202401021314").unwrap().to_string(),
            "20240102131400"
        );
        assert_eq!(
            parse_timestamp(b" 20240102131415 ").unwrap().to_string(),
            "20240102131415"
        );
        for bad in [
            &b""[..],
            b"2024",
            b"2024010213",
            b"202401021314151",
            b"2024-01-02",
            b"20240102131a",
        ] {
            assert!(
                matches!(parse_timestamp(bad), Err(TimestampError::Syntax { .. })),
                "{bad:?}"
            );
        }
        for bad in [&b"20240230"[..], b"20240102250000", b"20240102126000"] {
            assert!(
                matches!(parse_timestamp(bad), Err(TimestampError::OutOfRange { .. })),
                "{bad:?}"
            );
        }
    }
}
