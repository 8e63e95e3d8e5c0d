//! The typed template model. Field names follow Rust style; the JSON spelling is in each doc line.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

pub use qc_westgard_gen::Category;

/// An analyzer template: what the analyzer is, how it talks, which results it sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Template {
    /// Template name (the file stem, e.g. `horiba_micros60`); not part of the JSON.
    #[serde(skip)]
    pub name: String,
    /// `analyzer`.
    pub analyzer: Analyzer,
    /// `protocol`.
    pub protocol: Protocol,
    /// `identification`.
    #[serde(default)]
    pub identification: Identification,
    /// `fields`, or the fields derived from `profile`.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// `profile`: the canonical profile the fields were derived from, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// `astm_config`.
    #[serde(default)]
    pub astm_config: Option<AstmConfig>,
    /// `qcSample`.
    #[serde(default, rename = "qcSample")]
    pub qc_sample: Option<QcSample>,
    /// `qc_controls`.
    #[serde(default)]
    pub qc_controls: Vec<QcControl>,
    /// `qc_sample_id_pattern` (QC file sample names).
    #[serde(default)]
    pub qc_sample_id_pattern: Option<String>,
    /// `serial_config`.
    #[serde(default)]
    pub serial_config: Option<SerialConfig>,
    /// `file_config`.
    #[serde(default)]
    pub file_config: Option<FileConfig>,
    /// `fileFormat`.
    #[serde(default, rename = "fileFormat")]
    pub file_format: Option<FileFormat>,
    /// `columns`.
    #[serde(default)]
    pub columns: Vec<Column>,
    /// `testPatient`.
    #[serde(default, rename = "testPatient")]
    pub test_patient: Option<TestPatient>,
    /// `testSample`.
    #[serde(default, rename = "testSample")]
    pub test_sample: Option<TestSample>,
    /// Every other key, kept verbatim (`testSamples`, `fixture`, `metadataBlock`, `layout`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `analyzer`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Analyzer {
    /// `name`, as registered in OpenELIS.
    pub name: String,
    /// `model`.
    pub model: String,
    /// `manufacturer`.
    pub manufacturer: String,
    /// `category`.
    #[serde(default)]
    pub category: Option<Category>,
}

/// `protocol.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum ProtocolKind {
    /// ASTM E1394 / LIS2-A2 records.
    Astm,
    /// HL7 v2.
    Hl7,
    /// ASTM records over a serial line.
    Rs232,
    /// Result files.
    File,
}

impl ProtocolKind {
    /// Whether the template produces ASTM records (ASTM or RS232).
    pub fn is_astm(self) -> bool {
        matches!(self, Self::Astm | Self::Rs232)
    }

    /// The schema spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Astm => "ASTM",
            Self::Hl7 => "HL7",
            Self::Rs232 => "RS232",
            Self::File => "FILE",
        }
    }
}

/// `protocol.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Transport {
    /// TCP.
    Tcp,
    /// HTTP.
    Http,
    /// Serial line.
    Serial,
    /// Files.
    File,
}

/// `protocol`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Protocol {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: ProtocolKind,
    /// `version` (e.g. `LIS2-A2`, `2.5.1`).
    #[serde(default)]
    pub version: Option<String>,
    /// `transport`.
    #[serde(default)]
    pub transport: Option<Transport>,
    /// `encoding` (this toolkit's extension): the character encoding the instrument writes
    /// its ASTM or HL7 messages in, `UTF-8` (the default), `ISO-8859-1`, `ISO-8859-15` or
    /// `US-ASCII` (see [`TextEncoding`](crate::TextEncoding) for the names read).
    #[serde(default)]
    pub encoding: Option<crate::TextEncoding>,
}

/// `identification`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Identification {
    /// `astm_header`: H.5 sender.
    #[serde(default)]
    pub astm_header: Option<String>,
    /// `msh_sender`: legacy MSH-3.
    #[serde(default)]
    pub msh_sender: Option<String>,
    /// `hl7_sending_app`: MSH-3.
    #[serde(default)]
    pub hl7_sending_app: Option<String>,
    /// `hl7_sending_facility`: MSH-4.
    #[serde(default)]
    pub hl7_sending_facility: Option<String>,
    /// `ip_pattern`.
    #[serde(default)]
    pub ip_pattern: Option<String>,
    /// `file_pattern` (glob).
    #[serde(default)]
    pub file_pattern: Option<String>,
}

/// `fields[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum FieldType {
    /// A number.
    #[default]
    Numeric,
    /// One of `possibleValues`.
    Qualitative,
    /// Free text.
    Text,
}

/// A reference range: `lo-hi`, `<x` or `>x`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum NormalRange {
    /// `lo-hi`.
    Between(f64, f64),
    /// `<x`.
    Below(f64),
    /// `>x`.
    Above(f64),
}

impl NormalRange {
    /// Parses `4.0-10.0`, `<5`, `>1.5`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_checked(text).ok()
    }

    /// Like [`parse`](Self::parse), but says why a text is refused (lowercase, for errors that
    /// also name the file and the field). A range from which no value can be drawn
    /// ([`draw_interval`](Self::draw_interval) is `None`) parses: it is a valid range to report.
    pub fn parse_checked(text: &str) -> Result<Self, String> {
        if text.contains(',') {
            return Err("uses a decimal comma; write the numbers with a point (4.0-10.0)".into());
        }
        let t = text.trim();
        let number = |s: &str| -> Result<f64, String> {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| "is not lo-hi, <x or >x with decimal numbers".to_owned())?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!(
                    "has a bound {:?} that is not a finite number",
                    s.trim()
                ))
            }
        };
        if let Some(x) = t.strip_prefix('<') {
            return number(x).map(Self::Below);
        }
        if let Some(x) = t.strip_prefix('>') {
            return number(x).map(Self::Above);
        }
        // Split at a '-' that is not a leading sign.
        let split = t
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '-')
            .map(|(i, _)| i)
            .ok_or_else(|| "is not lo-hi, <x or >x with decimal numbers".to_owned())?;
        let lo = number(&t[..split])?;
        let hi = number(&t[split + 1..])?;
        if lo > hi {
            return Err(format!(
                "is reversed: the low bound {lo} is above the high bound {hi}"
            ));
        }
        Ok(Self::Between(lo, hi))
    }

    /// The interval random values are drawn from, every value of it normal: `lo-hi` itself;
    /// for a positive `x` the reference's rule, `<x` → 0..0.9x and `>x` → 1.1x..2x; for any `x`,
    /// `<x` → x−s..x−0.1s and `>x` → x+0.1s..x+s with s = |x| (1 for 0), which is the same
    /// rule for a positive `x`. (The reference's formulas put every draw of `>-5` below −5.)
    /// `None` when an end or the width is not a finite number: finite bounds can still
    /// overflow (`>1e308` gives 2x = inf, `-1e308-1e308` a width of inf), and no value can be
    /// drawn from such an interval.
    pub fn draw_interval(self) -> Option<(f64, f64)> {
        let span = |x: f64| if x == 0.0 { 1.0 } else { x.abs() };
        let (lo, hi) = match self {
            Self::Between(lo, hi) => (lo, hi),
            Self::Below(x) if x > 0.0 => (0.0, 0.9 * x),
            Self::Above(x) if x > 0.0 => (1.1 * x, 2.0 * x),
            Self::Below(x) => (x - span(x), x - 0.1 * span(x)),
            Self::Above(x) => (x + 0.1 * span(x), x + span(x)),
        };
        (lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()).then_some((lo, hi))
    }

    /// ASTM/HL7 abnormal flag for `value`: `L`, `H` or `N`. `lo-hi` includes its bounds;
    /// `<x` and `>x` are strict, so `x` itself is abnormal (`H` for `<x`, `L` for `>x`).
    pub fn flag(self, value: f64) -> &'static str {
        match self {
            Self::Between(lo, _) if value < lo => "L",
            Self::Between(_, hi) if value > hi => "H",
            Self::Above(x) if value <= x => "L",
            Self::Below(x) if value >= x => "H",
            _ => "N",
        }
    }
}

/// `fields[].complementaryResults[]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ComplementaryResult {
    /// `name` (e.g. `Conc/LOG`).
    pub name: String,
    /// `unit`.
    #[serde(default)]
    pub unit: Option<String>,
    /// `seedValue`.
    #[serde(default, rename = "seedValue")]
    pub seed_value: Option<Number>,
}

/// `fields[]`: one result the analyzer reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Field {
    /// `code`: the analyzer's test code.
    pub code: String,
    /// `name`.
    pub name: String,
    /// `type`.
    #[serde(default, rename = "type")]
    pub kind: FieldType,
    /// `loinc`.
    #[serde(default)]
    pub loinc: Option<String>,
    /// `unit` (empty and null both mean none).
    #[serde(default)]
    pub unit: Option<String>,
    /// `normalRange`, as written.
    #[serde(default, rename = "normalRange")]
    pub normal_range: Option<String>,
    /// `seedValue`: the deterministic value (the JSON number, so `198` and `198.0` stay apart).
    #[serde(default, rename = "seedValue")]
    pub seed_value: Option<Number>,
    /// `seedQualitative`.
    #[serde(default, rename = "seedQualitative")]
    pub seed_qualitative: Option<String>,
    /// `possibleValues`.
    #[serde(default, rename = "possibleValues")]
    pub possible_values: Vec<String>,
    /// `version`: assay version (ASTM R.3 component 6).
    #[serde(default)]
    pub version: Option<String>,
    /// `complementaryResults`.
    #[serde(default, rename = "complementaryResults")]
    pub complementary_results: Vec<ComplementaryResult>,
}

impl Field {
    /// The parsed `normalRange`, if it parses.
    pub fn range(&self) -> Option<NormalRange> {
        self.normal_range.as_deref().and_then(NormalRange::parse)
    }

    /// The unit, `""` when absent.
    pub fn unit_str(&self) -> &str {
        self.unit.as_deref().unwrap_or("")
    }
}

/// `astm_config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct AstmConfig {
    /// `processing_id` (H.12, default `P`).
    #[serde(default)]
    pub processing_id: Option<String>,
    /// `version_number` (H.13).
    #[serde(default)]
    pub version_number: Option<String>,
    /// `receiver_id` (H.10).
    #[serde(default)]
    pub receiver_id: Option<String>,
    /// `specimen_descriptor` (O.16).
    #[serde(default)]
    pub specimen_descriptor: Option<String>,
    /// `enable_isid`: put an instrument specimen ID in O.4.
    #[serde(default)]
    pub enable_isid: bool,
    /// `enable_qc`: follow the patient message with a `qcSample` message.
    #[serde(default)]
    pub enable_qc: bool,
    /// `proactive_enq` (not in the OpenELIS schema): the analyzer opens with ENQ on connect.
    #[serde(default)]
    pub proactive_enq: bool,
}

/// `qcSample.fields[]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct QcSampleField {
    /// `code`.
    pub code: String,
    /// `seedQualitative`.
    #[serde(default, rename = "seedQualitative")]
    pub seed_qualitative: Option<String>,
    /// `seedValue`.
    #[serde(default, rename = "seedValue")]
    pub seed_value: Option<Number>,
}

/// `qcSample`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct QcSample {
    /// `id`: full SiteYearNum accession.
    #[serde(default)]
    pub id: Option<String>,
    /// `actionCode` (O.12, default `Q`).
    #[serde(default, rename = "actionCode")]
    pub action_code: Option<String>,
    /// `fields`.
    #[serde(default)]
    pub fields: Vec<QcSampleField>,
}

/// `qc_controls[]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct QcControl {
    /// `field_code`.
    pub field_code: String,
    /// `lot_number` (default `LOT-{code}-N`).
    #[serde(default)]
    pub lot_number: Option<String>,
    /// `level` (default `N`).
    #[serde(default)]
    pub level: Option<String>,
    /// `level_name`.
    #[serde(default)]
    pub level_name: Option<String>,
    /// `target`.
    #[serde(default)]
    pub target: Option<f64>,
    /// `sd`: absolute SD.
    #[serde(default)]
    pub sd: Option<f64>,
    /// `unit`.
    #[serde(default)]
    pub unit: Option<String>,
    /// `task` (QC files' Task column, default `STANDARD`).
    #[serde(default)]
    pub task: Option<String>,
}

impl QcControl {
    /// `lot_number`, or `LOT-{code}-N`.
    pub fn lot(&self) -> String {
        self.lot_number
            .clone()
            .unwrap_or_else(|| format!("LOT-{}-N", self.field_code))
    }

    /// `level`, or `N`.
    pub fn level(&self) -> &str {
        self.level.as_deref().unwrap_or("N")
    }

    /// The control as `qc-westgard-gen` labels it.
    pub fn id(&self) -> qc_westgard_gen::ControlId {
        qc_westgard_gen::ControlId::new(self.field_code.clone(), self.lot(), self.level())
    }
}

/// `serial_config.parity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum Parity {
    /// None.
    #[default]
    None,
    /// Even.
    Even,
    /// Odd.
    Odd,
}

/// `serial_config`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SerialConfig {
    /// `baud_rate` (9600).
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// `data_bits` (8).
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// `parity` (NONE).
    #[serde(default)]
    pub parity: Parity,
    /// `stop_bits` (1).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: f64,
}

fn default_baud() -> u32 {
    9600
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> f64 {
    1.0
}

/// `file_config.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum FileKind {
    /// Comma (or template-delimited) text.
    Csv,
    /// Tab-separated text.
    Tsv,
    /// Delimited text with a `.txt` name.
    Txt,
    /// Legacy Excel (written as XLSX).
    Xls,
    /// Excel 2007+.
    Xlsx,
    /// XML (DT-Prime).
    Xml,
}

/// `file_config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct FileConfig {
    /// `format`.
    #[serde(default)]
    pub format: Option<FileKind>,
    /// `delimiter`.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// `has_header` (true).
    #[serde(default)]
    pub has_header: Option<bool>,
    /// `skipRows`: metadata lines before the header.
    #[serde(default, rename = "skipRows")]
    pub skip_rows: Option<u32>,
    /// `sheetName`.
    #[serde(default, rename = "sheetName")]
    pub sheet_name: Option<String>,
    /// `column_mapping` (`sample_id`, `test_code`, `result`).
    #[serde(default)]
    pub column_mapping: Map<String, Value>,
}

/// `fileFormat` (used by the reference's stand-alone file generator).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct FileFormat {
    /// `delimiter`.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// `hasHeader`.
    #[serde(default, rename = "hasHeader")]
    pub has_header: Option<bool>,
    /// `encoding`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `extension`.
    #[serde(default)]
    pub extension: Option<String>,
}

/// `columns[]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Column {
    /// `index`.
    pub index: u32,
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
}

/// `testPatient`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TestPatient {
    /// `id`.
    #[serde(default)]
    pub id: Option<String>,
    /// `name` (`Last^First^Middle`).
    #[serde(default)]
    pub name: Option<String>,
    /// `sex` (M, F, U).
    #[serde(default)]
    pub sex: Option<String>,
    /// `dob` (YYYYMMDD).
    #[serde(default)]
    pub dob: Option<String>,
}

/// `testSample`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TestSample {
    /// `id`: the two-digit lane code.
    #[serde(default)]
    pub id: Option<String>,
    /// `type`: `CODE^Label` panel.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Template {
    /// The field with this code.
    pub fn field(&self, code: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.code == code)
    }

    /// The two-digit lane of `testSample.id` (`00` without one).
    pub fn lane(&self) -> &str {
        self.test_sample
            .as_ref()
            .and_then(|s| s.id.as_deref())
            .unwrap_or("00")
    }
}
