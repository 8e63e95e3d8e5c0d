//! `YYYYMMDD[HHMM[SS]]` timestamps (E1394 §7.1.8), parsed with nom and checked with chrono.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use nom::bytes::complete::take_while_m_n;
use nom::combinator::{all_consuming, map, opt};
use nom::{IResult, Parser};

use crate::error::TimestampError;

/// A parsed E1394 date or date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Formats as E1394 text: `YYYYMMDD` or `YYYYMMDDHHMMSS`.
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
