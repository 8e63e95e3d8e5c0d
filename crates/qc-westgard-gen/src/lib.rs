//! Quality-control (QC) values that follow real statistics, Westgard rules that judge them the way
//! OpenELIS does, and Levey-Jennings charts a person can read at a glance.
//!
//! ```
//! use qc_westgard_gen::{Deviation, Evaluator, QcGenerator, RuleSet, Status};
//!
//! // A glucose control: mean 100 mg/dL, SD 5.
//! let mut generator = QcGenerator::seeded(42);
//! let mut evaluator = Evaluator::new(100.0, 5.0, RuleSet::openelis()).unwrap();
//!
//! // Ten in-control runs alternating half an SD below and above, then a value 3.5 SD high.
//! for run in 0..10 {
//!     let k = if run % 2 == 1 { 0.5 } else { -0.5 };
//!     let value = generator.value(100.0, 5.0, Deviation::Shift(k));
//!     assert_eq!(evaluator.push(value)?.status, Status::Accepted);
//! }
//! let outlier = generator.value(100.0, 5.0, Deviation::Shift(3.5));
//! let judged = evaluator.push(outlier)?;
//! assert_eq!(outlier, 117.5);
//! assert_eq!(judged.z, 3.5);
//! assert_eq!(judged.status, Status::Rejected);
//! assert_eq!(judged.violation_names(), vec!["1-2s", "1-3s"]);
//! # Ok::<(), qc_westgard_gen::QcError>(())
//! ```
//!
//! - [`sd_for`] and [`Category`]: the standard deviation of a control, from its own `sd` or a
//!   percentage of the target by analyzer category (the OpenELIS mock's table).
//! - [`QcGenerator`]: seeded Gaussian scatter, or an exact shift of k SD ([`Deviation`]).
//! - [`SeriesSpec`]: N runs of one or more control levels with injected error patterns (shift, trend,
//!   increased imprecision, random outliers) — what QC software is tested with.
//! - [`Evaluator`] and [`RuleSet`]: Westgard evaluation of each value against the history of its control
//!   lot (`1-2s`, `1-3s`, `2-2s`, `R-4s`, `3-1s`, `4-1s`, `7T`, `10x`, and optional `2of3-2s`, `6x`,
//!   `8x`, `9x`, `12x`); [`MultiLevelEvaluator`] applies them per level and across levels.
//! - [`ControlId`] and [`SampleNamePattern`]: the labels QC travels under (ASTM `Q.3`, HL7 specimen ID,
//!   QC file sample names).
//! - [`levey_jennings_svg`]: the chart.

/// The `chrono` crate, whose [`NaiveDateTime`](chrono::NaiveDateTime) and
/// [`Duration`](chrono::Duration) [`SeriesSpec`] takes (`start`, `interval`) and [`QcRun`]
/// returns (`timestamp`), so a caller needs no `chrono` dependency of its own (nor the same
/// version) to generate a series.
///
/// ```
/// use qc_westgard_gen::chrono::{Duration, NaiveDate};
/// use qc_westgard_gen::{ControlLevel, QcGenerator, SeriesSpec};
///
/// let start = NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(8, 0, 0)).unwrap();
/// let mut spec = SeriesSpec::daily(3, vec![ControlLevel::new("N", 100.0, 5.0)], start);
/// spec.interval = Duration::hours(8);
/// let runs = QcGenerator::seeded(1).series(&spec)?;
/// assert_eq!(runs[2].timestamp, start + Duration::hours(16));
/// # Ok::<(), qc_westgard_gen::QcError>(())
/// ```
pub use chrono;

/// The `rand` this crate is built with: [`QcGenerator::rng`] hands out its generator, and
/// the traits to draw from it (`Rng`, `RngExt`) come from here, so a caller needs no `rand`
/// dependency of its own (nor the same version) to draw IDs or choices from the seeded stream.
///
/// ```
/// use qc_westgard_gen::QcGenerator;
/// use qc_westgard_gen::rand::RngExt;
///
/// let mut first = QcGenerator::seeded(7);
/// let mut again = QcGenerator::seeded(7);
/// let pick: u32 = first.rng().random_range(0..1000);
/// assert_eq!(pick, again.rng().random_range(0..1000));
/// ```
pub use rand;

mod category;
mod chart;
mod control;
mod error;
mod generator;
mod series;
mod westgard;

pub use category::{Category, sd_for};
pub use chart::{ChartSpec, levey_jennings_svg};
pub use control::{ControlId, SampleNamePattern};
pub use error::QcError;
pub use generator::{Deviation, QcGenerator, decimals_for_sd, python_round, round_to};
pub use series::{
    ControlLevel, Disturbance, DisturbanceKind, MAX_SERIES_VALUES, QcRun, Scatter, SeriesSpec,
};
pub use westgard::{
    Evaluation, Evaluator, MultiLevelEvaluator, RangeScope, Rule, RuleSet, Severity, Status,
    ZeroSide,
};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
