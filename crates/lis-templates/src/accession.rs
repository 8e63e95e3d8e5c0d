//! SiteYearNum accessions: site prefix + two-digit year + two-digit lane + 11-digit sequence.
//!
//! OpenELIS's `SiteYearAccessionValidator` wants prefix + YY + a 13-digit increment; the mock
//! fills the increment with a lane (2) and a sequence (11). One counter per lane, shared by every
//! protocol, so ASTM and HL7 never hand out the same accession (the reference kept two tables).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Datelike;

use crate::AccessionError;

/// The harness site prefix the OpenELIS mock uses.
pub const DEFAULT_PREFIX: &str = "DEV01";
/// Largest sequence number (11 digits).
pub const MAX_SEQUENCE: u64 = 99_999_999_999;

/// A two-digit lane code (`00`–`99`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane(u8);

impl Lane {
    /// Default lane (templates without `testSample.id`).
    pub const DEFAULT: Self = Self(0);
    /// ASTM `qc_controls` QC.
    pub const ASTM_QC: Self = Self(98);
    /// Auto-minted file rows.
    pub const FILE: Self = Self(99);

    /// Parses exactly two ASCII digits; `context` names the source in the error.
    pub fn parse(value: &str, context: &str) -> Result<Self, AccessionError> {
        let bytes = value.as_bytes();
        if bytes.len() == 2 && bytes.iter().all(u8::is_ascii_digit) {
            Ok(Self((bytes[0] - b'0') * 10 + (bytes[1] - b'0')))
        } else {
            Err(AccessionError::InvalidLane {
                context: context.to_owned(),
                value: value.to_owned(),
            })
        }
    }

    /// The lane number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// Mints and validates accessions. Thread-safe; share one per process (e.g. in an `Arc`).
#[derive(Debug)]
pub struct AccessionMinter {
    prefix: String,
    year: Year,
    counters: Mutex<HashMap<Lane, u64>>,
    /// The sequence number of each lane's first accession.
    first: u64,
    /// The next message number (see [`AccessionMinter::next_message_number`]).
    messages: AtomicU64,
}

/// The year in minted accessions: fixed, or read from the clock at each minting.
#[derive(Debug, Clone, Copy)]
enum Year {
    Fixed(u8),
    Clock(fn() -> u8),
}

impl AccessionMinter {
    /// Prefix `DEV01`, the current year: the year of the clock when each accession is minted,
    /// so a process running over New Year mints the new year's accessions (OpenELIS refuses
    /// any other year with `YEAR_FAIL`).
    pub fn new() -> Self {
        Self::following(current_year)
    }

    /// Prefix `DEV01`, the year `clock` gives at each minting, a random first message number.
    fn following(clock: fn() -> u8) -> Self {
        // Two simulators started in the same second should not count from the same number.
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            year: Year::Clock(clock),
            counters: Mutex::default(),
            first: 1,
            messages: AtomicU64::new(rand::random::<u64>()),
        }
    }

    /// A given prefix (1–10 ASCII letters or digits) and two-digit year (0–99), e.g. for
    /// reproducible tests.
    pub fn with(prefix: &str, year: u8) -> Result<Self, AccessionError> {
        let valid =
            (1..=10).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(AccessionError::InvalidPrefix {
                prefix: prefix.to_owned(),
            });
        }
        if year > 99 {
            return Err(AccessionError::InvalidYear { year });
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            year: Year::Fixed(year),
            counters: Mutex::default(),
            first: 1,
            messages: AtomicU64::new(0),
        })
    }

    /// Starts every lane at sequence number `first` instead of 1: a second batch of files
    /// for the same import folder continues where the first stopped, instead of repeating
    /// accessions the LIS has already seen.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, Lane};
    /// let minter = AccessionMinter::with("DEV01", 27)?.first_sequence(501)?;
    /// let lane = Lane::parse("61", "testSample.id")?;
    /// assert_eq!(minter.mint(lane)?, "DEV01276100000000501");
    /// # Ok::<(), lis_templates::AccessionError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`AccessionError::InvalidSequence`] unless `first` is 1 to [`MAX_SEQUENCE`].
    pub fn first_sequence(mut self, first: u64) -> Result<Self, AccessionError> {
        if !(1..=MAX_SEQUENCE).contains(&first) {
            return Err(AccessionError::InvalidSequence { first });
        }
        self.first = first;
        Ok(self)
    }

    /// A number for message control IDs (HL7 MSH-10): consecutive per minter, so no two
    /// messages of one process share one. [`AccessionMinter::new`] starts at a random
    /// number, [`AccessionMinter::with`] at 0 (reproducible).
    ///
    /// ```
    /// use lis_templates::AccessionMinter;
    /// let minter = AccessionMinter::with("DEV01", 26).unwrap();
    /// assert_eq!(minter.next_message_number(), 0);
    /// assert_eq!(minter.next_message_number(), 1);
    /// ```
    pub fn next_message_number(&self) -> u64 {
        self.messages.fetch_add(1, Ordering::Relaxed)
    }

    /// The site prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The two-digit year: the fixed one, or the current one (see [`AccessionMinter::new`]).
    pub fn year(&self) -> u8 {
        match self.year {
            Year::Fixed(year) => year,
            Year::Clock(clock) => clock(),
        }
    }

    /// The next accession on `lane`: sequences start at 1 per lane (see
    /// [`first_sequence`](Self::first_sequence)).
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, Lane};
    /// let minter = AccessionMinter::with("DEV01", 27).unwrap();
    /// let lane = Lane::parse("61", "testSample.id").unwrap();
    /// assert_eq!(minter.mint(lane).unwrap(), "DEV01276100000000001");
    /// assert_eq!(minter.mint(lane).unwrap(), "DEV01276100000000002");
    /// ```
    pub fn mint(&self, lane: Lane) -> Result<String, AccessionError> {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counter = counters.entry(lane).or_insert(self.first - 1);
        if *counter >= MAX_SEQUENCE {
            return Err(AccessionError::Exhausted {
                lane: lane.to_string(),
            });
        }
        *counter += 1;
        Ok(format!(
            "{}{:02}{lane}{:011}",
            self.prefix,
            self.year(),
            *counter
        ))
    }

    /// The lane of `accession` when it has this minter's shape (its prefix, two year
    /// digits, the lane, 11 sequence digits), else `None`.
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, Lane};
    /// let minter = AccessionMinter::with("DEV01", 27)?;
    /// assert_eq!(minter.lane_of("DEV01276100000000501"), Some(Lane::parse("61", "lane")?));
    /// assert_eq!(minter.lane_of("NEG"), None);
    /// # Ok::<(), lis_templates::AccessionError>(())
    /// ```
    pub fn lane_of(&self, accession: &str) -> Option<Lane> {
        let digits = accession.strip_prefix(self.prefix.as_str())?;
        if digits.len() != 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Lane::parse(&digits[2..4], "accession").ok()
    }

    /// How many accessions each lane can mint: the sequence numbers from the first
    /// ([`first_sequence`](Self::first_sequence)) to [`MAX_SEQUENCE`].
    ///
    /// ```
    /// use lis_templates::{AccessionMinter, MAX_SEQUENCE};
    /// let minter = AccessionMinter::with("DEV01", 27)?.first_sequence(MAX_SEQUENCE - 9)?;
    /// assert_eq!(minter.sequences_per_lane(), 10);
    /// # Ok::<(), lis_templates::AccessionError>(())
    /// ```
    pub fn sequences_per_lane(&self) -> u64 {
        MAX_SEQUENCE - self.first + 1
    }

    /// Checks an explicit accession: this minter's prefix followed by exactly 15 digits. The year
    /// inside is not checked against the minter's, so fixtures from other years stay usable.
    pub fn validate(&self, value: &str, context: &str) -> Result<(), AccessionError> {
        let total = self.prefix.len() + 15;
        let fail = |reason: String| AccessionError::InvalidAccession {
            context: context.to_owned(),
            value: value.to_owned(),
            prefix: self.prefix.clone(),
            total,
            reason,
        };
        if value.len() != total {
            return Err(fail(format!(
                "length {} instead of {total}",
                value.chars().count()
            )));
        }
        if !value.starts_with(&self.prefix) {
            return Err(fail(format!("does not start with {}", self.prefix)));
        }
        if !value.as_bytes()[self.prefix.len()..]
            .iter()
            .all(u8::is_ascii_digit)
        {
            return Err(fail(format!(
                "characters after {} are not all digits",
                self.prefix
            )));
        }
        Ok(())
    }
}

impl Default for AccessionMinter {
    fn default() -> Self {
        Self::new()
    }
}

fn current_year() -> u8 {
    u8::try_from(chrono::Local::now().year().rem_euclid(100)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::{AccessionMinter, Lane};

    static YEAR: AtomicU8 = AtomicU8::new(26);

    fn clock() -> u8 {
        YEAR.load(Ordering::Relaxed)
    }

    /// A minter made once at start-up (the simulator's) must mint the new year's accessions
    /// after New Year: OpenELIS's `SiteYearAccessionValidator` refuses any other year.
    #[test]
    fn a_clock_minter_follows_the_year_over_new_year() {
        let minter = AccessionMinter::following(clock);
        let lane = Lane::parse("61", "lane").unwrap();
        assert_eq!(minter.mint(lane).unwrap(), "DEV01266100000000001");
        YEAR.store(27, Ordering::Relaxed);
        assert_eq!(minter.year(), 27);
        assert_eq!(minter.mint(lane).unwrap(), "DEV01276100000000002");
        // A fixed year stays fixed.
        let fixed = AccessionMinter::with("DEV01", 26).unwrap();
        assert_eq!(fixed.mint(lane).unwrap(), "DEV01266100000000001");
    }
}
