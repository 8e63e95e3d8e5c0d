//! Series of QC runs with injected error patterns.

use chrono::{Duration, NaiveDateTime};
use rand::RngExt;

use crate::{QcError, QcGenerator};

/// One control level of a series (e.g. "low", "high").
#[derive(Debug, Clone, PartialEq)]
pub struct ControlLevel {
    /// Name (free text, e.g. `N` or `HIGH`).
    pub name: String,
    /// Target mean.
    pub mean: f64,
    /// Standard deviation of the in-control process.
    pub sd: f64,
}

impl ControlLevel {
    /// A level from its name, mean and SD.
    pub fn new(name: impl Into<String>, mean: f64, sd: f64) -> Self {
        Self {
            name: name.into(),
            mean,
            sd,
        }
    }
}

/// An error pattern injected into a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DisturbanceKind {
    /// Systematic error: every value from the start run is moved by `k_sd` SD.
    Shift {
        /// Size of the shift in SD (negative moves down).
        k_sd: f64,
    },
    /// Drift: the value of run `from_run + j` is moved by `(j + 1) × sd_per_run` SD.
    Trend {
        /// Drift per run in SD.
        sd_per_run: f64,
    },
    /// Increased random error: the scatter's SD is multiplied by `factor`.
    Imprecision {
        /// Multiplier of the SD (> 0; 2.0 doubles the scatter).
        factor: f64,
    },
    /// Random outliers: each value from the start run is, with `probability`, moved by `k_sd` SD
    /// up or down (sign drawn at random).
    Outliers {
        /// Chance per value, 0 to 1.
        probability: f64,
        /// Size of an outlier in SD.
        k_sd: f64,
    },
}

/// An error pattern, the run it starts at and the level(s) it affects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disturbance {
    /// What happens.
    pub kind: DisturbanceKind,
    /// Zero-based run index from which it applies.
    pub from_run: usize,
    /// Only this level (index into [`SeriesSpec::levels`]); `None` affects every level.
    pub level: Option<usize>,
}

impl Disturbance {
    /// A shift of `k_sd` SD from run `from_run`, on every level.
    pub fn shift(from_run: usize, k_sd: f64) -> Self {
        Self {
            kind: DisturbanceKind::Shift { k_sd },
            from_run,
            level: None,
        }
    }

    /// A trend of `sd_per_run` SD per run from run `from_run`, on every level.
    pub fn trend(from_run: usize, sd_per_run: f64) -> Self {
        Self {
            kind: DisturbanceKind::Trend { sd_per_run },
            from_run,
            level: None,
        }
    }

    /// Scatter multiplied by `factor` from run `from_run`, on every level.
    pub fn imprecision(from_run: usize, factor: f64) -> Self {
        Self {
            kind: DisturbanceKind::Imprecision { factor },
            from_run,
            level: None,
        }
    }

    /// Outliers of `k_sd` SD with `probability` per value, from run `from_run`, on every level.
    pub fn outliers(from_run: usize, probability: f64, k_sd: f64) -> Self {
        Self {
            kind: DisturbanceKind::Outliers { probability, k_sd },
            from_run,
            level: None,
        }
    }

    /// The same disturbance restricted to one level.
    pub fn on_level(mut self, level: usize) -> Self {
        self.level = Some(level);
        self
    }

    fn applies(&self, run: usize, level: usize) -> bool {
        run >= self.from_run && self.level.is_none_or(|l| l == level)
    }

    fn validate(&self, levels: usize) -> Result<(), QcError> {
        let bad = |reason: &str| QcError::InvalidDisturbance {
            what: format!("{self:?}"),
            reason: reason.to_owned(),
        };
        if let Some(level) = self.level
            && level >= levels
        {
            return Err(bad("level index out of range"));
        }
        match self.kind {
            DisturbanceKind::Shift { k_sd } if !k_sd.is_finite() => Err(bad("k_sd must be finite")),
            DisturbanceKind::Trend { sd_per_run } if !sd_per_run.is_finite() => {
                Err(bad("sd_per_run must be finite"))
            }
            DisturbanceKind::Imprecision { factor } if !(factor.is_finite() && factor > 0.0) => {
                Err(bad("factor must be a finite number greater than 0"))
            }
            DisturbanceKind::Outliers { probability, k_sd }
                if !((0.0..=1.0).contains(&probability) && k_sd.is_finite()) =>
            {
                Err(bad("probability must be within 0..=1 and k_sd finite"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether values scatter around their (disturbed) target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scatter {
    /// Gaussian noise with the level's SD (times any imprecision factor).
    #[default]
    Gaussian,
    /// No noise: values are exactly the target plus the injected errors (for tests and demos).
    None,
}

/// A series to generate: N runs of every level, with disturbances.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    /// Number of runs (e.g. 30 for a month of daily QC).
    pub runs: usize,
    /// Control levels measured in every run.
    pub levels: Vec<ControlLevel>,
    /// Injected error patterns; several may overlap and add up.
    pub disturbances: Vec<Disturbance>,
    /// Noise model.
    pub scatter: Scatter,
    /// Time of the first run.
    pub start: NaiveDateTime,
    /// Time between runs.
    pub interval: Duration,
}

/// The most values (runs × levels) one [`SeriesSpec`] may ask for: 10 million, about
/// 27,000 years of daily runs at one level.
pub const MAX_SERIES_VALUES: usize = 10_000_000;

impl SeriesSpec {
    /// `runs` daily runs of `levels`, starting `start`, Gaussian scatter, no disturbances.
    pub fn daily(runs: usize, levels: Vec<ControlLevel>, start: NaiveDateTime) -> Self {
        Self {
            runs,
            levels,
            disturbances: Vec::new(),
            scatter: Scatter::Gaussian,
            start,
            interval: Duration::days(1),
        }
    }

    /// Adds a disturbance.
    pub fn with(mut self, disturbance: Disturbance) -> Self {
        self.disturbances.push(disturbance);
        self
    }

    fn validate(&self) -> Result<(), QcError> {
        let values = self.runs.saturating_mul(self.levels.len().max(1));
        if values > MAX_SERIES_VALUES {
            // Allocated up front, such a series aborted the process instead of failing.
            return Err(QcError::InvalidSeries {
                reason: format!(
                    "{} runs of {} level(s) are {values} values, more than the \
                     {MAX_SERIES_VALUES} a series may hold",
                    self.runs,
                    self.levels.len()
                ),
            });
        }
        for (index, level) in self.levels.iter().enumerate() {
            // A level without a name is named by its position.
            let what = if level.name.trim().is_empty() {
                format!("level {index} (counting from 0)")
            } else {
                format!("level {}", level.name)
            };
            if !level.mean.is_finite() {
                return Err(QcError::InvalidMean {
                    what,
                    mean: level.mean,
                });
            }
            if !(level.sd.is_finite() && level.sd > 0.0) {
                return Err(QcError::InvalidSd { what, sd: level.sd });
            }
        }
        self.disturbances
            .iter()
            .try_for_each(|d| d.validate(self.levels.len()))?;
        // Times grow linearly, so the last run's fitting means every run's does.
        self.run_time(self.runs.saturating_sub(1)).map(|_| ())
    }

    /// When run `run` takes place: `start + run × interval`.
    fn run_time(&self, run: usize) -> Result<NaiveDateTime, QcError> {
        i32::try_from(run)
            .ok()
            .and_then(|n| self.interval.checked_mul(n))
            .and_then(|offset| self.start.checked_add_signed(offset))
            .ok_or_else(|| QcError::InvalidSeries {
                reason: format!(
                    "run {run} would be {} after {}, beyond the dates that can be represented",
                    self.interval, self.start
                ),
            })
    }
}

/// One run: its index, time and one value per level (in [`SeriesSpec::levels`] order).
#[derive(Debug, Clone, PartialEq)]
pub struct QcRun {
    /// Zero-based run index.
    pub index: usize,
    /// When the run happened.
    pub timestamp: NaiveDateTime,
    /// One value per level.
    pub values: Vec<f64>,
}

impl QcGenerator {
    /// Generates a series: `spec.runs` runs, each with one value per level. Values are not
    /// rounded; the caller rounds to the instrument's precision.
    ///
    /// # Errors
    ///
    /// Checked before any value is drawn: [`QcError::InvalidMean`] or [`QcError::InvalidSd`]
    /// for a level whose mean is not finite or whose SD is not a finite number greater than 0,
    /// [`QcError::InvalidDisturbance`] for a disturbance on a level that does not exist or with
    /// a parameter out of its domain, and [`QcError::InvalidSeries`] when the last run's time
    /// (`start + (runs - 1) × interval`) cannot be represented or the series would hold more
    /// than [`MAX_SERIES_VALUES`] values. While drawing, [`QcError::InvalidSeries`] again for a
    /// value that is not finite: parameters each finite may still overflow together.
    ///
    /// ```
    /// use qc_westgard_gen::chrono::NaiveDate;
    /// use qc_westgard_gen::{ControlLevel, Disturbance, QcGenerator, Scatter, SeriesSpec};
    ///
    /// let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(8, 0, 0).unwrap();
    /// let mut spec = SeriesSpec::daily(30, vec![ControlLevel::new("N", 100.0, 5.0)], start)
    ///     .with(Disturbance::shift(20, 2.5));
    /// spec.scatter = Scatter::None;
    /// let runs = QcGenerator::seeded(1).series(&spec).unwrap();
    /// assert_eq!(runs[19].values[0], 100.0);
    /// assert_eq!(runs[20].values[0], 112.5);
    /// ```
    pub fn series(&mut self, spec: &SeriesSpec) -> Result<Vec<QcRun>, QcError> {
        spec.validate()?;
        let mut runs = Vec::with_capacity(spec.runs);
        for run in 0..spec.runs {
            let timestamp = spec.run_time(run)?;
            let values = spec
                .levels
                .iter()
                .enumerate()
                .map(|(level, control)| {
                    let value = self.disturbed_value(spec, run, level, control);
                    // Finite parameters can still overflow together (shifts of 1e308 SD).
                    if value.is_finite() {
                        Ok(value)
                    } else {
                        Err(QcError::InvalidSeries {
                            reason: format!(
                                "run {run}, level {level} ({}): the disturbances give {value}, \
                                 not a finite number",
                                control.name
                            ),
                        })
                    }
                })
                .collect::<Result<_, _>>()?;
            runs.push(QcRun {
                index: run,
                timestamp,
                values,
            });
        }
        Ok(runs)
    }

    fn disturbed_value(
        &mut self,
        spec: &SeriesSpec,
        run: usize,
        level: usize,
        control: &ControlLevel,
    ) -> f64 {
        let mut offset_sd = 0.0;
        let mut scatter_factor = 1.0;
        for d in spec.disturbances.iter().filter(|d| d.applies(run, level)) {
            match d.kind {
                DisturbanceKind::Shift { k_sd } => offset_sd += k_sd,
                DisturbanceKind::Trend { sd_per_run } => {
                    offset_sd += sd_per_run * (run - d.from_run + 1) as f64;
                }
                DisturbanceKind::Imprecision { factor } => scatter_factor *= factor,
                DisturbanceKind::Outliers { probability, k_sd } => {
                    if self.outlier_rng().random_bool(probability) {
                        let sign = if self.outlier_rng().random_bool(0.5) {
                            1.0
                        } else {
                            -1.0
                        };
                        offset_sd += sign * k_sd;
                    }
                }
            }
        }
        let noise_sd = match spec.scatter {
            Scatter::Gaussian => self.standard_normal() * scatter_factor,
            Scatter::None => 0.0,
        };
        control.mean + (offset_sd + noise_sd) * control.sd
    }
}
