//! Output generated from a template: ASTM messages, HL7 ORU^R01, result files, and their QC variants.

mod astm;
mod astm_orders;
mod encoding;
mod file;
pub mod files;
mod hl7;
mod order;
mod order_read;
mod values;

use chrono::{Datelike, NaiveDateTime};
use qc_westgard_gen::QcGenerator;

use crate::accession::{AccessionMinter, Lane};
use crate::model::{ProtocolKind, Template};
use crate::{AccessionError, GenerateError};

pub use astm::AstmMessage;
pub use astm_orders::{AstmOrders, AstmQuery, OrderedSamples};
pub use encoding::{TextEncoding, UnknownEncoding};
pub use file::FileOutput;
pub use hl7::Hl7Message;
pub use order::{NOT_PERFORMED, OrderGroup, OrderedPatient, OrderedSample};
pub use order_read::{Hl7Orders, WITHDRAWING_ORDER_CONTROLS};

/// Field positions and number spelling of the generated messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// LIS2-A2 and HL7 v2 positions: patient name in P.6, birth date P.8, sex P.9, completion time in
    /// R.13, specimen and tests in O.3 and O.5, values escaped, abnormal flags computed from the
    /// reference range, HL7 result status in OBR-25, unique MSH-10.
    #[default]
    Standard,
    /// The OpenELIS mock's positions and spelling, byte for byte, for pipelines that depend on them
    /// (name in P.5, sex in P.7, R time in R.10 for templates without `astm_config`, OBR-20 `F`,
    /// Python number spelling such as `1250.0`).
    OpenElis,
}

/// Where result values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueMode {
    /// The template's `seedValue` / `seedQualitative`; fields without one get a value drawn from the
    /// RNG within `normalRange` (reproducible with a seed).
    Template,
    /// Random: around `seedValue` (Gaussian, SD by category percentage), uniform within
    /// `normalRange`, or a random `possibleValues` entry.
    Random,
}

/// Options for one generation.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// RNG seed. With a seed and a fixed clock the output is byte-identical from run to run.
    pub seed: Option<u64>,
    /// Fixed clock (`now`); `None` uses local time.
    pub now: Option<NaiveDateTime>,
    /// Layout.
    pub layout: Layout,
    /// Value source; `None` means [`ValueMode::Template`] with a seed, [`ValueMode::Random`] without.
    pub values: Option<ValueMode>,
    /// QC: shift every control by exactly this many SD; `None` draws Gaussian values.
    pub qc_deviation: Option<f64>,
    /// Explicit accession instead of a minted one; must be a valid SiteYearNum.
    pub sample_id: Option<String>,
    /// Patient ID instead of the template's `testPatient.id` (or the generated one): P.4 in
    /// ASTM, PID-3 in HL7. Not used by QC output, whose patient is the control.
    pub patient_id: Option<String>,
    /// Only these tests (template field codes, matched exactly), in this order, instead of
    /// every field of the template. An unknown or repeated code is an error.
    pub tests: Option<Vec<String>>,
    /// The encoding messages are written in, instead of the template's (`protocol.encoding`,
    /// else UTF-8): text it cannot write becomes `?`, and an HL7 message holding non-ASCII
    /// text names it in MSH-18 (standard layout).
    pub encoding: Option<TextEncoding>,
}

/// What a template generates: ASTM messages, an HL7 message or a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// ASTM messages (one, or two when `astm_config.enable_qc` adds a QC message).
    Astm(Vec<AstmMessage>),
    /// One HL7 v2 message.
    Hl7(Hl7Message),
    /// One result file.
    File(FileOutput),
}

impl Output {
    /// The output as text for display: records or segments one per line, file content as is
    /// (XLSX as a note with its size).
    pub fn to_display_text(&self) -> String {
        match self {
            Self::Astm(messages) => messages.iter().map(AstmMessage::to_lines).collect(),
            Self::Hl7(message) => message.to_lines(),
            Self::File(file) => match file.text() {
                Some(text) => text.to_owned(),
                None => format!("<{} bytes of {}>\n", file.bytes.len(), file.file_name),
            },
        }
    }
}

/// Everything one generation needs: template, accession minter, RNG, options.
#[derive(Debug)]
pub struct Generator<'a> {
    template: &'a Template,
    minter: &'a AccessionMinter,
    rng: QcGenerator,
    now: NaiveDateTime,
    layout: Layout,
    values: ValueMode,
    qc_deviation: Option<f64>,
    sample_id: Option<String>,
    patient_id: Option<String>,
    /// Indexes into `template.fields` of the tests asked for, in the order asked.
    tests: Option<Vec<usize>>,
    encoding: TextEncoding,
}

impl<'a> Generator<'a> {
    /// Prepares a generation; validates the options.
    ///
    /// # Errors
    ///
    /// [`GenerateError::InvalidOption`] for a `qc_deviation` that is not finite or beyond
    /// ±1000 SD, a `patient_id` that is empty, over 64 characters or holds a control
    /// character, or `tests` naming an unknown code or one twice;
    /// [`GenerateError::Accession`] for a `sample_id` that is not a valid SiteYearNum of the
    /// minter; [`GenerateError::InvalidField`] for a template field whose values cannot be
    /// drawn.
    pub fn new(
        template: &'a Template,
        minter: &'a AccessionMinter,
        options: &GenerateOptions,
    ) -> Result<Self, GenerateError> {
        if let Some(k) = options.qc_deviation
            && !(k.is_finite() && k.abs() <= MAX_QC_DEVIATION)
        {
            return Err(GenerateError::InvalidOption {
                option: "qc_deviation",
                reason: format!(
                    "{k:?} is not a number of SD within -{MAX_QC_DEVIATION}..{MAX_QC_DEVIATION}"
                ),
            });
        }
        // Generated times reach a year before or after the clock (expiry, calibration, runs)
        // and XLSX dates stop at 1900 and 9999: a clock outside would overflow or fail late.
        if let Some(now) = options.now
            && !(1901..=9998).contains(&now.year())
        {
            return Err(GenerateError::InvalidOption {
                option: "now",
                reason: format!("{now} is outside the years 1901 to 9998"),
            });
        }
        values::check_draw_intervals(template)?;
        if let Some(id) = &options.sample_id {
            minter.validate(id, "sample_id")?;
        }
        if let Some(id) = &options.patient_id {
            check_patient_id(id)?;
        }
        let tests = options
            .tests
            .as_deref()
            .map(|codes| select_tests(template, codes))
            .transpose()?;
        let default_values = if options.seed.is_some() {
            ValueMode::Template
        } else {
            ValueMode::Random
        };
        let values = options.values.unwrap_or(default_values);
        Ok(Self {
            template,
            minter,
            rng: QcGenerator::new(options.seed),
            now: options
                .now
                .unwrap_or_else(|| chrono::Local::now().naive_local()),
            layout: options.layout,
            values,
            qc_deviation: options.qc_deviation,
            sample_id: options.sample_id.clone(),
            patient_id: options.patient_id.clone(),
            tests,
            encoding: options
                .encoding
                .or(template.protocol.encoding)
                .unwrap_or_default(),
        })
    }

    /// The template's fields to report: the tests asked for, in that order, or all of them.
    fn fields(&self) -> Vec<&'a crate::model::Field> {
        let all = &self.template.fields;
        match &self.tests {
            Some(indexes) => indexes.iter().map(|&i| &all[i]).collect(),
            None => all.iter().collect(),
        }
    }

    /// The template's lane (`testSample.id`, default `00`).
    fn lane(&self) -> Result<Lane, AccessionError> {
        Lane::parse(self.template.lane(), "testSample.id")
    }

    /// The explicit accession, or a fresh one on `lane`.
    fn accession(&self, lane: Lane) -> Result<String, AccessionError> {
        match &self.sample_id {
            Some(id) => Ok(id.clone()),
            None => self.minter.mint(lane),
        }
    }

    /// The template this generator writes for.
    #[must_use]
    pub fn template(&self) -> &'a Template {
        self.template
    }

    /// What the template's protocol generates: ASTM for ASTM and RS232 templates, HL7 ORU^R01 for
    /// HL7, a file for FILE; `qc` asks for the QC variant.
    ///
    /// # Errors
    ///
    /// [`GenerateError::NoQc`] when `qc` is asked of a template without usable `qc_controls`,
    /// [`GenerateError::Accession`] when the template's lane (`testSample.id`) is invalid or
    /// its counter is exhausted, [`GenerateError::Qc`] for a bad QC sample-name pattern,
    /// [`GenerateError::InvalidField`] for a field whose values cannot be drawn,
    /// [`GenerateError::InvalidOption`] for a template value that cannot be written, and,
    /// for file templates, [`GenerateError::Xlsx`] when the XLSX writer fails.
    pub fn generate(&mut self, qc: bool) -> Result<Output, GenerateError> {
        Ok(match (self.template.protocol.kind, qc) {
            (ProtocolKind::Astm | ProtocolKind::Rs232, false) => Output::Astm(self.astm()?),
            (ProtocolKind::Astm | ProtocolKind::Rs232, true) => Output::Astm(vec![self.astm_qc()?]),
            (ProtocolKind::Hl7, false) => Output::Hl7(self.hl7()?),
            (ProtocolKind::Hl7, true) => Output::Hl7(self.hl7_qc()?),
            (ProtocolKind::File, false) => Output::File(self.file()?),
            (ProtocolKind::File, true) => Output::File(self.file_qc()?),
        })
    }
}

/// Generates what `template`'s protocol produces (see [`Generator::generate`]).
///
/// # Errors
///
/// Those of [`Generator::new`] (the options) and of [`Generator::generate`].
///
/// ```
/// use lis_templates::{AccessionMinter, GenerateOptions, Output, TemplateSet, generate};
/// let templates = TemplateSet::embedded()?;
/// let minter = AccessionMinter::with("DEV01", 26)?;
/// let options = GenerateOptions {
///     seed: Some(1),
///     now: lis_templates::chrono::NaiveDate::from_ymd_opt(2026, 1, 2).and_then(|d| d.and_hms_opt(8, 0, 0)),
///     ..GenerateOptions::default()
/// };
/// let Output::Astm(messages) = generate(templates.get("horiba_micros60")?, &minter, &options, false)? else {
///     unreachable!()
/// };
/// let text = messages[0].to_lines();
/// assert!(text.starts_with("H|\\^&|"));
/// assert!(text.contains("P|1||PAT-2026-002||Rabe^Marie^B||19900620|F\n"));
/// assert!(text.contains("R|1|^^^WBC|6.2|10&S&3/uL|4.0-10.0|N||F||"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(
    template: &Template,
    minter: &AccessionMinter,
    options: &GenerateOptions,
    qc: bool,
) -> Result<Output, GenerateError> {
    Generator::new(template, minter, options)?.generate(qc)
}

/// Largest QC shift accepted, in SD: far beyond any real error, and small enough that
/// target + k × SD stays a finite number for any real control.
const MAX_QC_DEVIATION: f64 = 1000.0;

/// Longest patient ID accepted (PID-3's CX.1 is 15 characters in v2.3 and 20 later; LIS
/// identifiers are often longer, so this only stops absurd values).
const MAX_PATIENT_ID_LEN: usize = 64;

fn check_patient_id(id: &str) -> Result<(), GenerateError> {
    let reason = if id.trim().is_empty() {
        "is empty".to_owned()
    } else if id.chars().count() > MAX_PATIENT_ID_LEN {
        format!("is longer than {MAX_PATIENT_ID_LEN} characters")
    } else if id.chars().any(char::is_control) {
        "contains a control character".to_owned()
    } else {
        return Ok(());
    };
    Err(GenerateError::InvalidOption {
        option: "patient_id",
        reason: format!("{id:?} {reason}"),
    })
}

/// The positions in `template.fields` of `codes`, in the order given.
fn select_tests(template: &Template, codes: &[String]) -> Result<Vec<usize>, GenerateError> {
    let invalid = |reason: String| GenerateError::InvalidOption {
        option: "tests",
        reason,
    };
    if codes.is_empty() {
        return Err(invalid(
            "the list is empty; leave it out for every test".into(),
        ));
    }
    let mut indexes = Vec::with_capacity(codes.len());
    for code in codes {
        let Some(i) = template.fields.iter().position(|f| &f.code == code) else {
            let known: Vec<&str> = template.fields.iter().map(|f| f.code.as_str()).collect();
            return Err(invalid(format!(
                "template {} has no test {code:?}; its tests are {}",
                template.name,
                known.join(", ")
            )));
        };
        if indexes.contains(&i) {
            return Err(invalid(format!("test {code:?} is listed twice")));
        }
        indexes.push(i);
    }
    Ok(indexes)
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}
