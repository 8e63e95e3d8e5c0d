//! Error types: one per failure area.

use std::path::PathBuf;

/// A template could not be loaded: unreadable, not JSON, against the schema, or its profile is
/// missing or broken. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("{file}: cannot read: {error}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error. It is in the message, so it is not also the `source()`: a printer
        /// of the error chain would show it twice.
        error: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{file}: invalid json at line {line}, column {column}: {reason}")]
    Json {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser says (without the position, given above).
        reason: String,
    },
    /// The template breaks the schema.
    #[error("{file}: {path}: {reason}")]
    Schema {
        /// The file.
        file: PathBuf,
        /// JSON path of the offending value (`$.fields[2].type`).
        path: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A `"profile"` reference could not be resolved or the profile is unusable.
    #[error("{file}: $.profile: {reason}")]
    Profile {
        /// The template file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// No template of that name.
    #[error("no template named {name:?}; the set has {}", known_names(known))]
    NotFound {
        /// The requested name.
        name: String,
        /// The names the set does have, sorted (for the message and for a "did you mean").
        known: Vec<String>,
    },
}

/// A SiteYearNum accession or lane code is invalid, or a lane's counter is exhausted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessionError {
    /// A lane code that is not two ASCII digits.
    #[error(
        "{context} must be a 2-digit lane code used to mint SiteYearNum accessions; got: {value:?}"
    )]
    InvalidLane {
        /// Where the value came from (`testSample.id`, `lane`).
        context: String,
        /// The rejected value.
        value: String,
    },
    /// An explicit accession that is not prefix + 15 digits.
    #[error(
        "{context} must be a valid SiteYearNum accession ({prefix} + 15 digits, total {total} chars); got: {value:?} ({reason})"
    )]
    InvalidAccession {
        /// Where the value came from (`sample_id`, `qcSample.id`).
        context: String,
        /// The rejected value.
        value: String,
        /// The configured site prefix.
        prefix: String,
        /// Expected total length.
        total: usize,
        /// What exactly is wrong.
        reason: String,
    },
    /// A site prefix that is empty or contains characters other than ASCII letters and digits.
    #[error("invalid site prefix {prefix:?}: use 1 to 10 ASCII letters or digits")]
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// A year that does not fit the accession's two digits.
    #[error("invalid year {year}: use the last two digits of the year, 0 to 99")]
    InvalidYear {
        /// The rejected year.
        year: u8,
    },
    /// A first sequence number outside 1 to 99,999,999,999.
    #[error("invalid first sequence number {first}: use 1 to 99999999999 (11 digits)")]
    InvalidSequence {
        /// The rejected number.
        first: u64,
    },
    /// A lane has minted all 99,999,999,999 sequence numbers.
    #[error("lane {lane} has no sequence numbers left")]
    Exhausted {
        /// The lane.
        lane: String,
    },
}

/// Output could not be generated from a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The template's protocol does not produce this kind of output.
    #[error("template {template} is {protocol}, not {wanted}")]
    WrongProtocol {
        /// Template name.
        template: String,
        /// Its protocol.
        protocol: String,
        /// What was asked for.
        wanted: &'static str,
    },
    /// QC was asked for but the template has no usable `qc_controls`.
    #[error("template {template}: {reason}")]
    NoQc {
        /// Template name.
        template: String,
        /// Why.
        reason: String,
    },
    /// A template field generation cannot use (e.g. a `normalRange` whose draw interval
    /// overflows; the loader refuses these, but a loaded template can be changed).
    #[error("template {template}: field {field}: {reason}")]
    InvalidField {
        /// Template name.
        template: String,
        /// The field's code.
        field: String,
        /// Why.
        reason: String,
    },
    /// An accession problem (bad override, bad lane).
    #[error(transparent)]
    Accession(#[from] AccessionError),
    /// A QC parameter problem (bad sample-name pattern).
    #[error(transparent)]
    Qc(#[from] qc_westgard_gen::QcError),
    /// The XLSX writer failed.
    #[error("cannot write xlsx: {0}")]
    Xlsx(String),
    /// An option is out of range (e.g. a non-finite QC deviation).
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// A result file could not be generated or written to its folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Generation failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The file system refused.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was attempted (`create folder`, `write`, `rename into`).
        action: &'static str,
        /// The operating system's error (in the message, so not also the `source()`).
        error: std::io::Error,
    },
}

/// An ASTM transfer from a LIS could not be read for its orders ([`crate::AstmOrders`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderReadError {
    /// More records than [`crate::AstmOrders::MAX_RECORDS`].
    #[error("{records} records, more than the {max} a transfer may hold")]
    TooManyRecords {
        /// Records in the transfer.
        records: usize,
        /// The most that are read.
        max: usize,
    },
    /// The text is not ASTM records (no H record first, unusable delimiters).
    #[error(transparent)]
    Astm(#[from] astm_records::MessageError),
}

/// The names a [`TemplateError::NotFound`] message lists: all of them, or none when the set is empty.
fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "no templates".to_owned()
    } else {
        known.join(", ")
    }
}
