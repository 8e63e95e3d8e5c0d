//! The one error type of this crate.

/// What can go wrong when generating or evaluating QC values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QcError {
    /// A standard deviation that is zero, negative or not a finite number.
    #[error("invalid standard deviation {sd} for {what}: must be a finite number greater than 0")]
    InvalidSd {
        /// What the SD belongs to (a control level, an evaluator).
        what: String,
        /// The rejected value.
        sd: f64,
    },
    /// A mean or target that is not a finite number.
    #[error("invalid mean {mean} for {what}: must be a finite number")]
    InvalidMean {
        /// What the mean belongs to.
        what: String,
        /// The rejected value.
        mean: f64,
    },
    /// A disturbance parameter outside its domain.
    #[error("invalid disturbance {what}: {reason}")]
    InvalidDisturbance {
        /// The disturbance, as written by the caller.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A QC sample-name pattern with an unknown or unterminated placeholder.
    #[error("invalid qc sample name pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A result that is not a finite number (NaN or infinite): it cannot be judged, and
    /// would spoil the history the next results are judged against.
    #[error("invalid result {value}: must be a finite number")]
    InvalidValue {
        /// The rejected value.
        value: f64,
    },
    /// A result of one level of a multi-level run that is not a finite number.
    #[error("invalid result {value} for level {level} (counting from 0): must be a finite number")]
    InvalidLevelValue {
        /// The level's position in the run.
        level: usize,
        /// The rejected value.
        value: f64,
    },
    /// A series whose run times fall outside the calendar that can be represented.
    #[error("invalid series: {reason}")]
    InvalidSeries {
        /// Why it is rejected.
        reason: String,
    },
    /// A Westgard rule name that [`Rule`](crate::Rule)'s `FromStr` does not know.
    #[error("unknown westgard rule {name:?} (known: {}, or OpenELIS's codes)", crate::Rule::ALL.map(crate::Rule::name).join(", "))]
    UnknownRule {
        /// The name as given.
        name: String,
    },
    /// An analyzer category that [`Category`](crate::Category)'s `FromStr` does not know.
    #[error("unknown analyzer category {name:?} (known: {}; any case)", crate::Category::ALL.map(crate::Category::as_str).join(", "))]
    UnknownCategory {
        /// The name as given.
        name: String,
    },
    /// A run whose number of values differs from the number of control levels.
    #[error("run has {got} values but {expected} control levels are configured")]
    LevelCount {
        /// Levels configured.
        expected: usize,
        /// Values supplied.
        got: usize,
    },
}
