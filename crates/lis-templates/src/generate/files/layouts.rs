//! One builder per instrument layout; all draw values from the generator's RNG so a seed and a
//! fixed clock give identical files.

use chrono::Duration;
use qc_westgard_gen::{SampleNamePattern, round_to};
use rand::RngExt;
use serde_json::{Map, Value};

use super::table::{Cell, LineEnding, Sheet, delimited, encode, encode_text, xlsx};
use super::{DEFAULT_SAMPLES, FileLayout, FileOptions, RenderedFile, file_name};
use crate::GenerateError;
use crate::accession::Lane;
use crate::generate::values::Path;
use crate::generate::{FileOutput, Generator, ValueMode};
use crate::model::{Field, FieldType, FileKind, QcControl, Template};

/// What a control well holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Negative,
    Positive,
    Standard,
}

/// A control row: its name as the instrument writes it, its kind, its task or type label, and the
/// template's own values for it (`testSamples` entry), if any.
#[derive(Debug, Clone)]
struct Control {
    name: String,
    kind: Kind,
    task: String,
    data: Map<String, Value>,
}

#[derive(Debug, Clone)]
enum Role {
    Patient,
    Control(Control),
    Qc { control: QcControl, task: String },
}

impl Role {
    /// The task or type label of the row: a control's or QC's own, `patient` for a patient.
    fn task_or(&self, patient: &str) -> String {
        match self {
            Self::Patient => patient.to_owned(),
            Self::Control(c) => c.task.clone(),
            Self::Qc { task, .. } => task.clone(),
        }
    }
}

/// What a molecular run says of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Detected,
    NotDetected,
    /// The run cannot be read (its internal control failed).
    Invalid,
    /// A signal too weak or late to call either way.
    Indeterminate,
}

/// What a column of the generic layout holds.
#[derive(Debug, Clone, Copy)]
enum GenericColumn {
    Sample,
    Test,
    Result,
    Well,
    /// The sample's task or type: `UNKNOWN` for a patient, the control's or QC's own.
    Task,
    Other,
}

/// One well (or one run, for readers without a plate).
#[derive(Debug, Clone)]
struct Specimen {
    id: String,
    role: Role,
    well: usize,
}

const PLATE_COLUMNS: usize = 12;

/// Cut-off of the Magellan and SkanIt well lists: a (corrected) OD at or above it is reactive.
const READER_CUTOFF: f64 = 0.5;

fn well_row(well: usize) -> char {
    char::from(b'A' + u8::try_from((well / PLATE_COLUMNS) % 26).unwrap_or(0))
}

fn well_col(well: usize) -> usize {
    well % PLATE_COLUMNS + 1
}

fn well_name(well: usize, padded: bool) -> String {
    if padded {
        format!("{}{:02}", well_row(well), well_col(well))
    } else {
        format!("{}{}", well_row(well), well_col(well))
    }
}

fn test_samples(template: &Template) -> Vec<Map<String, Value>> {
    template
        .extra
        .get("testSamples")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default()
}

fn str_of<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// Whether `s` is shaped like a SiteYearNum accession (prefix + 15 digits, 20 characters).
pub(super) fn looks_like_accession(s: &str) -> bool {
    s.len() == 20
        && s.is_ascii()
        && s[5..].bytes().all(|b| b.is_ascii_digit())
        && s[..5].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether the template's own well names are zero-padded (`A01`).
fn padded_wells(template: &Template, default: bool) -> bool {
    for sample in test_samples(template) {
        for key in ["WellPosition", "position", "Position", "Well"] {
            if let Some(w) = str_of(&sample, key) {
                let b = w.as_bytes();
                return b.len() == 3 && b[1] == b'0';
            }
        }
    }
    default
}

fn kind_of(name: &str, hint: &str) -> Kind {
    let n = name.to_ascii_lowercase();
    let h = hint.to_ascii_lowercase();
    if h.contains("standard") || n.starts_with("std") {
        Kind::Standard
    } else if h.contains("ntc")
        || h.contains("negative")
        || n.contains("neg")
        || n.contains("ntc")
        || n == "nc"
        || n.ends_with('-')
    {
        Kind::Negative
    } else {
        Kind::Positive
    }
}

/// Control rows as importers recognise them (the reference's prefix list plus standards, QC
/// and DT-Prime's `C-`/`C+`); an empty name is a SkanIt control well without an ID.
fn is_control_name(name: &str) -> bool {
    const MORE_PREFIXES: [&str; 5] = ["BLAN", "STD", "QC", "C-", "C+"];
    let upper = name.to_ascii_uppercase();
    name.is_empty()
        || super::fixture::CONTROL_PREFIXES
            .iter()
            .chain(&MORE_PREFIXES)
            .any(|p| upper.starts_with(p))
}

fn control(name: &str, kind: Kind, task: &str) -> Control {
    Control {
        name: name.to_owned(),
        kind,
        task: task.to_owned(),
        data: Map::new(),
    }
}

/// The control rows a layout writes: the template's own (non-accession `testSamples` entries)
/// where it lists them, else the instrument's usual pair.
fn controls(layout: FileLayout, template: &Template) -> Vec<Control> {
    let from_template = |name_key: &str, task_key: &str| -> Vec<Control> {
        test_samples(template)
            .into_iter()
            .filter_map(|s| {
                let name = str_of(&s, name_key)?.to_owned();
                if !is_control_name(&name) {
                    return None;
                }
                let task = str_of(&s, task_key).unwrap_or_default().to_owned();
                Some(Control {
                    kind: kind_of(&name, &task),
                    name,
                    task,
                    data: s,
                })
            })
            .collect()
    };
    let listed = match layout {
        FileLayout::QuantStudioExport => from_template("sampleName", "task"),
        FileLayout::BrukerFluoroCycler => from_template("SampleID", "Interpretation"),
        FileLayout::MagellanWells => from_template("SampleID", "Interpretation"),
        FileLayout::MultiskanWells => from_template("Sample ID", "Content"),
        FileLayout::DtPrimeXml => from_template("name", "result"),
        _ => Vec::new(),
    };
    if !listed.is_empty() {
        return listed;
    }
    let tecan = template.analyzer.model.to_ascii_lowercase().contains("f50");
    match layout {
        FileLayout::QuantStudioResults | FileLayout::QuantStudioExport => vec![
            control("CPOS", Kind::Positive, "STANDARD"),
            control("CNEG", Kind::Negative, "NTC"),
        ],
        FileLayout::HainFluoroCycler | FileLayout::BrukerFluoroCycler => vec![
            control("NTC", Kind::Negative, "Negative Control"),
            control("PTC", Kind::Positive, "Positive Control"),
        ],
        FileLayout::ElisaWells | FileLayout::MagellanWells | FileLayout::PlateGrid if tecan => {
            vec![
                control("NEG", Kind::Negative, "Negative Control"),
                control("POS", Kind::Positive, "Positive Control"),
            ]
        }
        FileLayout::ElisaWells | FileLayout::MagellanWells | FileLayout::PlateGrid => vec![
            control("NC", Kind::Negative, "Negative Control"),
            control("PC", Kind::Positive, "Positive Control"),
        ],
        FileLayout::MultiskanWells => vec![
            control("", Kind::Positive, "Positive Control"),
            control("", Kind::Negative, "Negative Control"),
        ],
        FileLayout::DtPrimeXml => vec![
            control("C-", Kind::Negative, "-"),
            control("C+", Kind::Positive, "+"),
        ],
        FileLayout::Finecare | FileLayout::Generic => Vec::new(),
    }
}

/// Metadata rows from a `metadataBlock` array: `[key, value]`, with dates and times taken from the
/// generation clock.
fn metadata_rows(block: Option<&Value>, now: chrono::NaiveDateTime) -> Vec<Vec<Cell>> {
    block
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let (key, value) = metadata_entry(e, now);
                    vec![Cell::text(key), Cell::text(value)]
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One `metadataBlock` entry as key and value, a date or time key valued from the generation
/// clock rather than the template's fixed example (which would contradict the file's readings).
pub(crate) fn metadata_entry(entry: &Value, now: chrono::NaiveDateTime) -> (String, String) {
    let key = entry.get("key").and_then(Value::as_str).unwrap_or_default();
    let value = entry
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let k = key.to_ascii_lowercase();
    let value = if k.contains("time") && k.contains("date") || k.contains("end time") {
        now.format("%Y-%m-%d %H:%M:%S").to_string()
    } else if k.contains("date") {
        now.format("%Y-%m-%d").to_string()
    } else if k == "time" {
        now.format("%H:%M:%S").to_string()
    } else {
        value.to_owned()
    };
    (key.to_owned(), value)
}

/// A plate grid: the header (`corner`, then columns 1–12) and rows A–H.
fn push_grid(rows: &mut Vec<Vec<Cell>>, corner: String, grid: Vec<Vec<Cell>>) {
    let mut header = vec![Cell::text(corner)];
    header.extend((1..=PLATE_COLUMNS).map(|c| Cell::text(c.to_string())));
    rows.push(header);
    for (r, cells) in grid.into_iter().enumerate() {
        let mut row = vec![Cell::text(well_row(r * PLATE_COLUMNS).to_string())];
        row.extend(cells);
        rows.push(row);
    }
}

fn column_names(template: &Template) -> Vec<String> {
    let mut columns = template.columns.clone();
    columns.sort_by_key(|c| c.index);
    columns.into_iter().map(|c| c.name).collect()
}

const QUANTSTUDIO_COLUMNS: [&str; 11] = [
    "Well",
    "Well Position",
    "Sample Name",
    "Target Name",
    "Task",
    "Reporter",
    "Quencher",
    "Quantity Mean",
    "CT",
    "Ct Mean",
    "Ct SD",
];

const HAIN_XLSX_COLUMNS: [&str; 6] = ["Row", "Col", "Sample ID", "Type", "Calc. Conc.", "Result"];

const ELISA_COLUMNS: [&str; 4] = ["WellPosition", "SampleID", "Interpretation", "TestCode"];

const FINECARE_COLUMNS: [&str; 40] = [
    "Serial Number",
    "Sample Number",
    "Sample Type",
    "Test Name",
    "Result",
    "Unit",
    "Reference Range",
    "Method",
    "Calibration Date",
    "Calibration Lot",
    "Control Level",
    "Control Result",
    "Control Expected",
    "Control SD",
    "Control Status",
    "Operator ID",
    "Department",
    "Instrument Model",
    "Instrument SN",
    "Software Version",
    "Firmware Version",
    "Date/Time",
    "Run Number",
    "Reagent Lot",
    "Reagent Expiry",
    "Patient Name",
    "Age",
    "Gender",
    "Doctor",
    "Ward",
    "Bed",
    "Diagnosis",
    "Remarks",
    "Flag",
    "Dilution Factor",
    "Dilution Result",
    "Linearity Min",
    "Linearity Max",
    "Cartridge Type",
    "Internal Temp",
];

/// Most metadata rows a template may ask for before the header: far more than any instrument
/// writes, and few enough that a mistyped count is an error rather than an attempt to build
/// billions of rows (an XLSX sheet holds 1,048,576 rows in all).
pub(crate) const MAX_METADATA_ROWS: u64 = 10_000;

/// Fields of the Finecare metadata line (one more than the header, as the instrument writes it).
const FINECARE_METADATA_FIELDS: usize = 41;

/// The QuantStudio values of one well and target.
struct QuantStudioWell {
    task: String,
    ct: Cell,
    ct_mean: Cell,
    ct_sd: Cell,
    quantity: Cell,
}

fn json_cell(value: Option<&Value>) -> Cell {
    match value {
        Some(Value::Number(n)) => n.as_f64().map_or(Cell::Empty, Cell::number),
        Some(Value::String(s)) if s.is_empty() => Cell::Empty,
        Some(Value::String(s)) => Cell::text(s.clone()),
        _ => Cell::Empty,
    }
}

impl Generator<'_> {
    fn draw(&mut self, lo: f64, hi: f64, decimals: u32) -> f64 {
        let v = if hi > lo {
            self.rng.rng().random_range(lo..hi)
        } else {
            lo
        };
        round_to(v, decimals)
    }

    /// A patient value of a numeric field: the template's seed value or range where it has one,
    /// else a draw in the instrument's typical interval.
    fn numeric(&mut self, field: &Field, lo: f64, hi: f64, decimals: u32) -> f64 {
        if field.kind == FieldType::Numeric
            && (field.seed_value.is_some() || field.range().is_some())
        {
            self.field_value(field, Path::File).number.unwrap_or(lo)
        } else {
            self.draw(lo, hi, decimals)
        }
    }

    /// A patient value of a qualitative field: the seed value with a seed, else one of
    /// `possibleValues`.
    fn qualitative(&mut self, field: &Field) -> String {
        match (self.values, &field.seed_qualitative) {
            (ValueMode::Template, Some(s)) if field.possible_values.is_empty() => s.clone(),
            _ if !field.possible_values.is_empty() => {
                let i = self.rng.rng().random_range(0..field.possible_values.len());
                field.possible_values[i].clone()
            }
            _ => self.field_value(field, Path::File).text,
        }
    }

    fn qc_number(&mut self, control: &QcControl) -> f64 {
        self.qc_value(control, Path::File).number.unwrap_or(0.0)
    }

    /// The lane patient accessions are minted on: `testSample.id`, else the lane of the
    /// template's own sample accessions, else the file lane 99.
    fn file_lane(&self) -> Result<Lane, GenerateError> {
        if self
            .template
            .test_sample
            .as_ref()
            .and_then(|s| s.id.as_ref())
            .is_some()
        {
            return Ok(Lane::parse(self.template.lane(), "testSample.id")?);
        }
        for sample in test_samples(self.template) {
            for value in sample.values() {
                if let Some(s) = value.as_str()
                    && looks_like_accession(s)
                {
                    return Ok(Lane::parse(&s[7..9], "testSamples")?);
                }
            }
        }
        Ok(Lane::FILE)
    }

    fn specimens(
        &mut self,
        layout: FileLayout,
        samples: usize,
        qc: bool,
    ) -> Result<Vec<Specimen>, GenerateError> {
        let template = self.template;
        let capacity = layout.capacity();
        let check = |total: usize, what: &str| match capacity {
            Some(wells) if total > wells => Err(GenerateError::InvalidOption {
                option: "samples",
                reason: format!(
                    "{} ({}) has {wells} wells; {total} {what} do not fit",
                    template.name,
                    layout.name()
                ),
            }),
            _ => Ok(()),
        };
        if qc {
            self.check_qc_controls()?;
            check(template.qc_controls.len(), "QC controls")?;
            let pattern = match &template.qc_sample_id_pattern {
                Some(p) => SampleNamePattern::parse(p)?,
                None => SampleNamePattern::default(),
            };
            return Ok(template
                .qc_controls
                .iter()
                .enumerate()
                .map(|(well, c)| {
                    let task = c.task.clone().unwrap_or_else(|| "STANDARD".into());
                    Specimen {
                        id: pattern.render(&c.id(), &task),
                        role: Role::Qc {
                            control: c.clone(),
                            task,
                        },
                        well,
                    }
                })
                .collect());
        }
        if samples == 0 {
            return Err(GenerateError::InvalidOption {
                option: "samples",
                reason: "a file needs at least one sample".into(),
            });
        }
        let controls = controls(layout, template);
        check(samples + controls.len(), "samples and controls")?;
        if capacity.is_none() && samples > 100_000 {
            return Err(GenerateError::InvalidOption {
                option: "samples",
                reason: format!("{samples} is more than 100000 rows per file"),
            });
        }
        let lane = self.file_lane()?;
        let mut out = Vec::with_capacity(samples + controls.len());
        for well in 0..samples {
            out.push(Specimen {
                id: self.minter.mint(lane)?,
                role: Role::Patient,
                well,
            });
        }
        for (i, c) in controls.into_iter().enumerate() {
            out.push(Specimen {
                id: c.name.clone(),
                role: Role::Control(c),
                well: samples + i,
            });
        }
        Ok(out)
    }

    /// Fields a specimen has rows for: all of them, or the QC control's own.
    fn fields_of(&self, specimen: &Specimen) -> Vec<Field> {
        match &specimen.role {
            Role::Qc { control, .. } => self
                .template
                .field(&control.field_code)
                .cloned()
                .into_iter()
                .collect(),
            _ => self.template.fields.clone(),
        }
    }

    pub(super) fn instrument_file(
        &mut self,
        options: &FileOptions,
    ) -> Result<RenderedFile, GenerateError> {
        let template = self.template;
        let layout = FileLayout::of(template);
        let kind = match (options.format, layout) {
            (None, _) => layout.native_kind(template),
            (Some(FileKind::Xml), FileLayout::DtPrimeXml) => FileKind::Xml,
            (Some(_), FileLayout::DtPrimeXml) | (Some(FileKind::Xml), _) => {
                return Err(GenerateError::InvalidOption {
                    option: "format",
                    reason: format!(
                        "{} writes {}; {:?} is not available",
                        template.name,
                        if layout == FileLayout::DtPrimeXml {
                            "XML only"
                        } else {
                            "CSV, TSV or XLSX"
                        },
                        options.format.unwrap_or(FileKind::Xml)
                    ),
                });
            }
            (Some(FileKind::Xls | FileKind::Xlsx), _) => FileKind::Xlsx,
            (Some(k), _) => k,
        };
        self.check_metadata_rows(layout)?;
        let specimens = self.specimens(
            layout,
            options.samples.unwrap_or(DEFAULT_SAMPLES),
            options.qc,
        )?;
        let stamp = self.now.format("%Y%m%d-%H%M%S").to_string();
        // QC files are marked inside the pattern's wildcard, so that an importer watching for
        // the template's file_pattern still picks them up.
        let marker = if options.qc { "-QC" } else { "" };
        let accessions = specimens
            .iter()
            .filter(|s| matches!(s.role, Role::Patient))
            .map(|s| s.id.clone())
            .collect();
        let controls = specimens
            .iter()
            .filter(|s| !matches!(s.role, Role::Patient))
            .map(|s| s.id.clone())
            .collect();
        if layout == FileLayout::DtPrimeXml {
            let (bytes, encoding, rows) = self.dtprime(&specimens)?;
            return Ok(RenderedFile {
                file: FileOutput {
                    file_name: file_name(template, &stamp, options.sequence, marker, "xml"),
                    kind: FileKind::Xml,
                    bytes,
                },
                layout,
                encoding: Some(encoding),
                line_ending: Some(layout.line_ending()),
                delimiter: None,
                sheet: None,
                header_row: 1,
                header_written: true,
                columns: vec!["cell".into(), "test".into(), "result".into()],
                accessions,
                controls,
                data_rows: rows,
            });
        }
        let mut sheet = match layout {
            FileLayout::QuantStudioResults => self.quantstudio_results(&specimens),
            FileLayout::QuantStudioExport => self.quantstudio_export(&specimens),
            FileLayout::HainFluoroCycler if kind == FileKind::Xlsx => self.hain_xlsx(&specimens),
            FileLayout::HainFluoroCycler => self.hain_text(&specimens),
            FileLayout::BrukerFluoroCycler => self.bruker(&specimens),
            FileLayout::ElisaWells => self.elisa_wells(&specimens),
            FileLayout::MagellanWells | FileLayout::MultiskanWells => {
                self.reader_wells(layout, &specimens)
            }
            FileLayout::PlateGrid => self.plate_grid(&specimens),
            FileLayout::Finecare => self.finecare(&specimens, options.sequence),
            FileLayout::DtPrimeXml | FileLayout::Generic => self.generic(&specimens),
        };
        self.check_finite(&sheet, &specimens)?;
        let columns = sheet
            .rows
            .get(sheet.header_row)
            .map(|r| r.iter().map(|c| c.as_str().to_owned()).collect())
            .unwrap_or_default();
        let data_rows = sheet.rows.len().saturating_sub(sheet.header_row + 1);
        // A reader told the file has no header takes its first line as data: the generic
        // layout leaves the header out then (the instrument layouts write what the
        // instrument does).
        let header_written = layout != FileLayout::Generic || self.has_header();
        if !header_written && sheet.header_row < sheet.rows.len() {
            sheet.rows.remove(sheet.header_row);
        }
        let ext = match kind {
            FileKind::Xlsx | FileKind::Xls => "xlsx",
            FileKind::Tsv => "tsv",
            FileKind::Txt => "txt",
            _ => "csv",
        };
        let name = file_name(template, &stamp, options.sequence, marker, ext);
        let mut rendered = RenderedFile {
            file: FileOutput {
                file_name: name,
                kind,
                bytes: Vec::new(),
            },
            layout,
            encoding: None,
            line_ending: None,
            delimiter: None,
            sheet: None,
            header_row: sheet.header_row,
            header_written,
            columns,
            accessions,
            controls,
            data_rows,
        };
        if kind == FileKind::Xlsx {
            rendered.file.bytes = xlsx(std::slice::from_ref(&sheet), self.now)?;
            rendered.sheet = Some(sheet.name);
        } else {
            let delimiter = match kind {
                FileKind::Tsv => "\t".to_owned(),
                // CSV asked of a template whose files are TSV: commas, as the name says (a
                // template that writes tabs into `.csv` files keeps them).
                FileKind::Csv if layout.native_kind(template) == FileKind::Tsv => ",".to_owned(),
                _ => self.template_delimiter(),
            };
            let line_ending = layout.line_ending();
            let text = delimited(&sheet, &delimiter, line_ending);
            let (bytes, encoding) = encode_text(&text, &self.encoding_label());
            rendered.file.bytes = bytes;
            rendered.encoding = Some(encoding);
            rendered.line_ending = Some(line_ending);
            rendered.delimiter = Some(delimiter);
        }
        Ok(rendered)
    }

    /// Refuses a sheet holding a number that is not finite: a template whose QC target and SD (or
    /// whose field) are so large that a value overflows would otherwise write `inf` or `NaN`
    /// where the importer expects a result.
    fn check_finite(&self, sheet: &Sheet, specimens: &[Specimen]) -> Result<(), GenerateError> {
        let header = sheet.rows.get(sheet.header_row);
        for (r, row) in sheet.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let Cell::Number(n, _) = cell else { continue };
                if n.is_finite() {
                    continue;
                }
                let column = header
                    .and_then(|h| h.get(c))
                    .map(|h| h.as_str().to_owned())
                    .unwrap_or_else(|| format!("{}", c + 1));
                let sample = row
                    .iter()
                    .map(Cell::as_str)
                    .find(|t| specimens.iter().any(|s| s.id == *t))
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                return Err(GenerateError::InvalidField {
                    template: self.template.name.clone(),
                    field: column,
                    reason: format!(
                        "row {}{sample} would hold {n}, not a finite number; check the \
                         qc_controls target and sd, or the field's range",
                        r + 1
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses a declared metadata row count above [`MAX_METADATA_ROWS`] (the layouts pad the
    /// metadata to that many rows before the header).
    fn check_metadata_rows(&self, layout: FileLayout) -> Result<(), GenerateError> {
        let (key, declared) = match layout {
            FileLayout::ElisaWells | FileLayout::Generic => (
                "file_config.skipRows",
                self.template
                    .file_config
                    .as_ref()
                    .and_then(|c| c.skip_rows)
                    .map(u64::from),
            ),
            FileLayout::QuantStudioExport => (
                "excelFormat.metadataRowCount",
                self.template
                    .extra
                    .get("excelFormat")
                    .and_then(|e| e.get("metadataRowCount"))
                    .and_then(Value::as_u64),
            ),
            _ => return Ok(()),
        };
        match declared {
            Some(n) if n > MAX_METADATA_ROWS => Err(GenerateError::InvalidOption {
                option: key,
                reason: format!(
                    "template {} asks for {n} metadata rows before the header; at most \
                     {MAX_METADATA_ROWS} are supported",
                    self.template.name
                ),
            }),
            _ => Ok(()),
        }
    }

    fn template_delimiter(&self) -> String {
        let config = self.template.file_config.clone().unwrap_or_default();
        let format = self
            .template
            .file_format
            .as_ref()
            .and_then(|f| f.delimiter.clone());
        match (config.delimiter, format) {
            (Some(d), _) if !d.is_empty() => d,
            (_, Some(d)) if !d.is_empty() => d,
            _ if config.format == Some(FileKind::Tsv) => "\t".into(),
            _ => ",".into(),
        }
    }

    fn encoding_label(&self) -> String {
        self.template
            .file_format
            .as_ref()
            .and_then(|f| f.encoding.clone())
            .unwrap_or_else(|| "UTF-8".into())
    }

    fn mapped_column(&self, key: &str, default: &str) -> String {
        self.template
            .file_config
            .as_ref()
            .and_then(|c| c.column_mapping.get(key))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    }

    fn quantstudio_well(
        &mut self,
        specimen: &Specimen,
        field: &Field,
        default_quantity: (f64, f64),
    ) -> QuantStudioWell {
        let ct_unit = field.unit_str().eq_ignore_ascii_case("ct");
        let number = |v: f64| Cell::fixed(v, 2);
        match &specimen.role {
            Role::Patient => {
                let ct = self.draw(15.0, 38.0, 2);
                let (ct, quantity) = if ct_unit {
                    let v = self.numeric(field, 15.0, 38.0, 2);
                    (v, v)
                } else {
                    let q = self.numeric(field, default_quantity.0, default_quantity.1, 1);
                    (ct, q)
                };
                let sd = self.draw(0.02, 0.3, 2);
                QuantStudioWell {
                    task: "UNKNOWN".into(),
                    ct: number(ct),
                    ct_mean: number(ct),
                    ct_sd: number(sd),
                    quantity: Cell::number(quantity),
                }
            }
            Role::Control(c) => {
                let task = if c.task.is_empty() {
                    "UNKNOWN".to_owned()
                } else {
                    c.task.clone()
                };
                // As the QuantStudio 5 fixtures write a no-template control: no amplification,
                // a quantity of 0 (a QC rule on the control reads it), no mean or SD. A
                // template's own values for the control come first.
                if c.kind == Kind::Negative {
                    let ct = match c.data.get("ct") {
                        Some(v) => json_cell(Some(v)),
                        None => Cell::text("Undetermined"),
                    };
                    return QuantStudioWell {
                        task,
                        ct,
                        ct_mean: Cell::Empty,
                        ct_sd: Cell::Empty,
                        quantity: match c.data.get("quantityMean") {
                            Some(v) => json_cell(Some(v)),
                            None => Cell::number(0.0),
                        },
                    };
                }
                let ct = match c.data.get("ct").and_then(Value::as_f64) {
                    Some(v) => v,
                    None => self.draw(19.0, 22.0, 2),
                };
                let quantity = match c.data.get("quantityMean") {
                    Some(v) => json_cell(Some(v)),
                    None => Cell::number(50_000.0),
                };
                let sd = self.draw(0.02, 0.1, 2);
                QuantStudioWell {
                    task,
                    ct: number(ct),
                    ct_mean: number(ct),
                    ct_sd: number(sd),
                    quantity,
                }
            }
            Role::Qc { control, task } => {
                let v = self.qc_number(control);
                let ct_qc = ct_unit || control.unit.as_deref().is_some_and(|u| u == "Ct");
                let ct = if ct_qc { v } else { self.draw(15.0, 38.0, 2) };
                QuantStudioWell {
                    task: task.clone(),
                    ct: number(ct),
                    ct_mean: number(ct),
                    ct_sd: Cell::Empty,
                    quantity: Cell::number(v),
                }
            }
        }
    }

    fn quantstudio_results(&mut self, specimens: &[Specimen]) -> Sheet {
        let mut header: Vec<Cell> = QUANTSTUDIO_COLUMNS.iter().map(|c| Cell::text(*c)).collect();
        header[2] = Cell::text(self.mapped_column("sample_id", "Sample Name"));
        header[3] = Cell::text(self.mapped_column("test_code", "Target Name"));
        header[7] = Cell::text(self.mapped_column("result", "Quantity Mean"));
        let mut rows = vec![header];
        for specimen in specimens {
            for (i, field) in self.fields_of(specimen).iter().enumerate() {
                let w = self.quantstudio_well(specimen, field, (50.0, 1_000_000.0));
                rows.push(vec![
                    Cell::number((specimen.well + 1) as f64),
                    Cell::text(well_name(specimen.well, false)),
                    Cell::text(specimen.id.clone()),
                    Cell::text(field.code.clone()),
                    Cell::text(w.task),
                    Cell::text(reporter(i)),
                    Cell::text("NFQ"),
                    w.quantity,
                    w.ct,
                    w.ct_mean,
                    w.ct_sd,
                ]);
            }
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: 0,
        }
    }

    fn sheet_name(&self) -> String {
        self.template
            .file_config
            .as_ref()
            .and_then(|c| c.sheet_name.clone())
            .unwrap_or_else(|| "Results".into())
    }

    fn quantstudio_export(&mut self, specimens: &[Specimen]) -> Sheet {
        let excel = self.template.extra.get("excelFormat");
        let mut rows = metadata_rows(excel.and_then(|e| e.get("metadataBlock")), self.now);
        let declared = excel
            .and_then(|e| e.get("metadataRowCount"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(rows.len() + 1);
        while rows.len() < declared {
            rows.push(Vec::new());
        }
        let columns = column_names(self.template);
        let header_row = rows.len();
        rows.push(columns.iter().map(|c| Cell::text(c.clone())).collect());
        for specimen in specimens {
            for (i, field) in self.fields_of(specimen).iter().enumerate() {
                let w = self.quantstudio_well(specimen, field, (50.0, 1_000_000.0));
                let undetermined = w.ct.as_str() == "Undetermined";
                let row = columns
                    .iter()
                    .map(|name| match name.as_str() {
                        "Well" => Cell::number((specimen.well + 1) as f64),
                        "Well Position" => Cell::text(well_name(specimen.well, false)),
                        "Omit" => Cell::text("false"),
                        "Sample Name" => Cell::text(specimen.id.clone()),
                        "Target Name" => Cell::text(field.code.clone()),
                        "Task" => Cell::text(w.task.clone()),
                        "Reporter" => Cell::text(reporter(i)),
                        "Quencher" => Cell::text("NFQ"),
                        "CT" => w.ct.clone(),
                        "Ct Mean" => w.ct_mean.clone(),
                        "Ct SD" => w.ct_sd.clone(),
                        "Quantity" | "Quantity Mean" => w.quantity.clone(),
                        "Automatic Ct Threshold" | "Automatic Baseline" => Cell::text("true"),
                        "Ct Threshold" => Cell::number(0.2),
                        "Baseline Start" => Cell::number(3.0),
                        "Baseline End" => Cell::number(15.0),
                        "NOAMP" if undetermined => Cell::text("Y"),
                        "NOAMP" | "EXPFAIL" | "THOLDFAIL" | "HIGHSD" | "PRFLOW" | "CQCONF" => {
                            Cell::text("N")
                        }
                        "Amp Score" if !undetermined => Cell::number(1.2),
                        "Y-Intercept" => Cell::number(38.5),
                        "R²" => Cell::number(0.998),
                        "Slope" => Cell::number(-3.32),
                        "Efficiency" => Cell::number(100.1),
                        _ => Cell::Empty,
                    })
                    .collect();
                rows.push(row);
            }
        }
        let name = excel
            .and_then(|e| e.get("sheetName"))
            .and_then(Value::as_str)
            .map_or_else(|| self.sheet_name(), str::to_owned);
        Sheet {
            name,
            rows,
            header_row,
        }
    }

    /// A molecular call for a specimen: patient draws, controls by kind, QC positive.
    fn call(&mut self, specimen: &Specimen, field: Option<&Field>) -> Call {
        let detected = |yes: bool| {
            if yes {
                Call::Detected
            } else {
                Call::NotDetected
            }
        };
        match &specimen.role {
            Role::Patient => {
                let value = field.map(|f| self.qualitative(f)).unwrap_or_default();
                let v = value.to_ascii_lowercase();
                if v.contains("invalid") {
                    Call::Invalid
                } else if v.contains("indeterminate") || v.contains("equivocal") {
                    Call::Indeterminate
                } else {
                    detected(!(v.contains("not") || v.contains("neg") || v == "-"))
                }
            }
            Role::Control(c) => detected(c.kind != Kind::Negative),
            Role::Qc { control, .. } => detected(!qc_control_is_negative(control)),
        }
    }

    fn hain_xlsx(&mut self, specimens: &[Specimen]) -> Sheet {
        let mut rows = vec![HAIN_XLSX_COLUMNS.iter().map(|c| Cell::text(*c)).collect()];
        let result_field = self.template.fields.first().cloned();
        for specimen in specimens {
            let call = self.call(specimen, result_field.as_ref());
            let positive = call == Call::Detected;
            let concentration = match &specimen.role {
                Role::Qc { control, .. } if positive => Cell::number(self.qc_number(control)),
                _ if positive => Cell::number(self.draw(50.0, 1_000_000.0, 0)),
                _ => Cell::Empty,
            };
            let (interpretation, internal_control) = match call {
                Call::Detected => ("Positive", "Valid"),
                Call::NotDetected => ("Negative", "Valid"),
                // The run cannot be read: the internal control failed.
                Call::Invalid | Call::Indeterminate => ("Invalid", "Invalid"),
            };
            let kind = specimen.role.task_or("Unknown");
            let row = Cell::text(well_row(specimen.well).to_string());
            let col = Cell::number(well_col(specimen.well) as f64);
            let id = Cell::text(specimen.id.clone());
            rows.push(vec![
                row.clone(),
                col.clone(),
                id.clone(),
                Cell::text(kind.clone()),
                concentration,
                Cell::text(interpretation),
            ]);
            // The internal-control channel of the same well.
            rows.push(vec![
                row,
                col,
                id,
                Cell::text(kind),
                Cell::Empty,
                Cell::text(internal_control),
            ]);
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: 0,
        }
    }

    fn hain_text(&mut self, specimens: &[Specimen]) -> Sheet {
        let mut columns = column_names(self.template);
        if columns.is_empty() {
            columns = ["Position", "Sample ID", "Result", "Interpretation"]
                .map(String::from)
                .to_vec();
        }
        let padded = padded_wells(self.template, true);
        let result_field = self.template.fields.first().cloned();
        let mut rows = vec![columns.iter().map(|c| Cell::text(c.clone())).collect()];
        for specimen in specimens {
            let (result, interpretation) = match self.call(specimen, result_field.as_ref()) {
                Call::Detected => ("Detected", "Positive"),
                Call::NotDetected => ("Not Detected", "Negative"),
                Call::Invalid | Call::Indeterminate => ("Invalid", "Invalid"),
            };
            rows.push(
                columns
                    .iter()
                    .map(|name| match name.as_str() {
                        "Position" | "Well" | "WellPosition" => {
                            Cell::text(well_name(specimen.well, padded))
                        }
                        "Sample ID" | "SampleID" => Cell::text(specimen.id.clone()),
                        "Result" => Cell::text(result),
                        "Interpretation" => Cell::text(interpretation),
                        _ => Cell::Empty,
                    })
                    .collect(),
            );
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: 0,
        }
    }

    fn bruker(&mut self, specimens: &[Specimen]) -> Sheet {
        let columns = column_names(self.template);
        let first_patient = test_samples(self.template)
            .into_iter()
            .find(|s| str_of(s, "SampleID").is_some_and(looks_like_accession));
        let assay = first_patient
            .as_ref()
            .and_then(|s| str_of(s, "AssayName"))
            .unwrap_or("FluoroType MTBDR 2.0")
            .to_owned();
        let target = first_patient
            .as_ref()
            .and_then(|s| str_of(s, "TargetName"))
            .unwrap_or("MTB")
            .to_owned();
        let interpretation_field = self
            .template
            .fields
            .iter()
            .find(|f| f.kind == FieldType::Qualitative)
            .cloned();
        let run_date = self.now.format("%Y-%m-%d").to_string();
        let run_id = format!("RUN-{}-001", self.now.format("%Y%m%d"));
        let mut rows = vec![columns.iter().map(|c| Cell::text(c.clone())).collect()];
        for specimen in specimens {
            let call = self.call(specimen, interpretation_field.as_ref());
            let cp = match (&specimen.role, call) {
                (Role::Qc { control, .. }, Call::Detected) => self.qc_number(control),
                (_, Call::Detected) => self.draw(12.0, 35.0, 2),
                // A late, weak curve the software will not call either way.
                (_, Call::Indeterminate) => self.draw(38.0, 40.0, 2),
                (_, Call::NotDetected | Call::Invalid) => -1.0,
            };
            // An invalid run is one whose internal control did not come up.
            let (ic_cp, ic_call) = if call == Call::Invalid {
                (-1.0, Call::NotDetected)
            } else {
                (self.draw(20.0, 25.0, 2), Call::Detected)
            };
            for (target_name, target_no, cp, call) in [
                (target.as_str(), 0.0, cp, call),
                ("IC", 1.0, ic_cp, ic_call),
            ] {
                rows.push(
                    columns
                        .iter()
                        .map(|name| match name.as_str() {
                            "SampleID" => Cell::text(specimen.id.clone()),
                            "WellPosition" => Cell::text(well_name(specimen.well, false)),
                            "AssayName" => Cell::text(assay.clone()),
                            "TargetName" => Cell::text(target_name),
                            "TargetNo" => Cell::number(target_no),
                            "CP" => Cell::fixed(cp, 2),
                            "Interpretation" => Cell::text(match call {
                                Call::Detected => "DETECTED",
                                Call::NotDetected => "NOT DETECTED",
                                Call::Invalid => "INVALID",
                                Call::Indeterminate => "INDETERMINATE",
                            }),
                            "RunDate" => Cell::text(run_date.clone()),
                            "RunID" => Cell::text(run_id.clone()),
                            _ => Cell::Empty,
                        })
                        .collect(),
                );
            }
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: 0,
        }
    }

    /// An ELISA reading (S/CO or OD) of a specimen for `field`, and whether it is reactive.
    fn elisa_reading(&mut self, specimen: &Specimen, field: &Field, cutoff: f64) -> (f64, bool) {
        let v = match &specimen.role {
            Role::Patient => self.numeric(field, 0.03, 3.0, 3),
            Role::Control(c) if c.kind == Kind::Negative => self.draw(0.03, 0.08, 3),
            Role::Control(_) => self.draw(2.0, 2.6, 3),
            Role::Qc { control, .. } => self.qc_number(control),
        };
        (v, v >= cutoff)
    }

    /// `file_config.has_header`, else `fileFormat.hasHeader`, else true.
    fn has_header(&self) -> bool {
        let template = self.template;
        template
            .file_config
            .as_ref()
            .and_then(|c| c.has_header)
            .or_else(|| template.file_format.as_ref().and_then(|f| f.has_header))
            .unwrap_or(true)
    }

    /// `file_config.skipRows`: lines before the header a reader set up from the template skips.
    fn skip_rows(&self) -> usize {
        self.template
            .file_config
            .as_ref()
            .and_then(|c| c.skip_rows)
            .unwrap_or(0) as usize
    }

    fn elisa_wells(&mut self, specimens: &[Specimen]) -> Sheet {
        let skip = self.skip_rows();
        let a = &self.template.analyzer;
        let instrument = format!("{} {}", a.manufacturer, a.model);
        let mut rows: Vec<Vec<Cell>> = (0..skip)
            .map(|i| {
                if i == 0 {
                    vec![
                        Cell::text(instrument.clone()),
                        Cell::text(self.now.format("%Y-%m-%d %H:%M:%S").to_string()),
                    ]
                } else {
                    Vec::new()
                }
            })
            .collect();
        rows.push(ELISA_COLUMNS.iter().map(|c| Cell::text(*c)).collect());
        for specimen in specimens {
            for field in self.fields_of(specimen) {
                let (_, reactive) = self.elisa_reading(specimen, &field, 1.0);
                rows.push(vec![
                    Cell::text(well_name(specimen.well, false)),
                    Cell::text(specimen.id.clone()),
                    Cell::text(if reactive { "Positive" } else { "Negative" }),
                    Cell::text(field.code.clone()),
                ]);
            }
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: skip,
        }
    }

    /// Magellan and SkanIt well lists: metadata block, blank line, the template's columns.
    fn reader_wells(&mut self, layout: FileLayout, specimens: &[Specimen]) -> Sheet {
        let mut rows = metadata_rows(self.template.extra.get("metadataBlock"), self.now);
        rows.push(Vec::new());
        let header_row = rows.len();
        let columns = column_names(self.template);
        rows.push(columns.iter().map(|c| Cell::text(c.clone())).collect());
        let padded = padded_wells(self.template, layout == FileLayout::MagellanWells);
        let fields = self.template.fields.clone();
        for specimen in specimens {
            let mut readings: Vec<(String, f64)> = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                let v = if i == 0 {
                    self.elisa_reading(specimen, field, READER_CUTOFF).0
                } else {
                    // Reference wavelength: plate background.
                    self.numeric(field, 0.040, 0.060, 3)
                };
                readings.push((field.code.clone(), v));
            }
            let corrected = match readings.as_slice() {
                [(_, a), (_, b), ..] => round_to(a - b, 3),
                [(_, a)] => *a,
                [] => 0.0,
            };
            // The reader interprets the blank-corrected reading it reports, not the raw OD.
            let reactive = corrected >= READER_CUTOFF;
            let label = match &specimen.role {
                Role::Patient if layout == FileLayout::MultiskanWells => "Unknown".to_owned(),
                Role::Patient if reactive => "Reactive".to_owned(),
                Role::Patient => "Non-Reactive".to_owned(),
                Role::Control(c) => c.task.clone(),
                Role::Qc { task, .. } => task.clone(),
            };
            let row = columns
                .iter()
                .map(|name| {
                    if let Some((_, v)) = readings.iter().find(|(code, _)| code == name) {
                        return Cell::fixed(*v, 3);
                    }
                    match name.as_str() {
                        "WellPosition" | "Well" | "Position" => {
                            Cell::text(well_name(specimen.well, padded))
                        }
                        "SampleID" | "Sample ID" => Cell::text(specimen.id.clone()),
                        "CorrectedOD" => Cell::fixed(corrected, 3),
                        "Interpretation" | "Content" => Cell::text(label.clone()),
                        n if n.starts_with("Absorbance") => readings
                            .first()
                            .map_or(Cell::Empty, |(_, v)| Cell::fixed(*v, 3)),
                        _ => Cell::Empty,
                    }
                })
                .collect();
            rows.push(row);
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row,
        }
    }

    /// Magellan and SkanIt plate exports: metadata block, blank line, an 8 × 12 grid of OD
    /// readings. SkanIt (Multiskan) follows it with a second grid of the wells' sample IDs
    /// (the profile's `dual_grid`, headed `Abs` and `Echantillon`), which is how a reader
    /// knows whose reading each well holds; Magellan's export has no IDs (the plate map
    /// stays in the LIS).
    fn plate_grid(&mut self, specimens: &[Specimen]) -> Sheet {
        let dual = self
            .template
            .analyzer
            .model
            .to_ascii_lowercase()
            .contains("multiskan");
        let mut rows = metadata_rows(self.template.extra.get("metadataBlock"), self.now);
        rows.push(Vec::new());
        let header_row = rows.len();
        let corner = self
            .template
            .columns
            .iter()
            .find(|c| c.index == 0)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| if dual { "Abs".into() } else { String::new() });
        let mut readings = vec![vec![Cell::Empty; PLATE_COLUMNS]; 8];
        let mut ids = readings.clone();
        let field = self.template.fields.first().cloned();
        for specimen in specimens {
            let Some(field) = &field else { break };
            let (v, _) = self.elisa_reading(specimen, field, 0.5);
            let (row, column) = (specimen.well / PLATE_COLUMNS, specimen.well % PLATE_COLUMNS);
            if let (Some(reading), Some(id)) = (readings.get_mut(row), ids.get_mut(row)) {
                reading[column] = Cell::fixed(v, 3);
                id[column] = Cell::text(specimen.id.clone());
            }
        }
        push_grid(&mut rows, corner, readings);
        if dual {
            rows.push(Vec::new());
            push_grid(&mut rows, "Echantillon".into(), ids);
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row,
        }
    }

    fn finecare(&mut self, specimens: &[Specimen], sequence: u32) -> Sheet {
        let model = self.template.analyzer.model.clone();
        let serial = format!("SN-{}-0001", model.replace(['-', ' '], ""));
        let mut metadata = vec![Cell::Empty; FINECARE_METADATA_FIELDS];
        metadata[0] = Cell::text("Finecare FIA Meter III Plus");
        metadata[1] = Cell::text(model.clone());
        metadata[2] = Cell::text(serial.clone());
        // One test every 7 minutes, the last one finished now: the session opened (the
        // metadata time, as in the fixture) 7 minutes per result ago, so no result is dated
        // in the future, which an importer may refuse.
        let results: usize = specimens.iter().map(|s| self.fields_of(s).len()).sum();
        let started = self.now - Duration::minutes(7 * i64::try_from(results).unwrap_or(0));
        metadata[20] = Cell::date_time(started);
        let mut rows = vec![
            metadata,
            FINECARE_COLUMNS.iter().map(|c| Cell::text(*c)).collect(),
        ];
        let year = self.now.format("%Y").to_string();
        let calibrated = (self.now - Duration::days(30)).date();
        let expiry = (self.now + Duration::days(180)).date();
        let mut n = 0usize;
        for specimen in specimens {
            for field in self.fields_of(specimen) {
                n += 1;
                let lot_code: String = field
                    .code
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_uppercase();
                let (value, control) = match &specimen.role {
                    Role::Qc { control, .. } => (self.qc_number(control), Some(control.clone())),
                    _ => (self.numeric(&field, 0.5, 50.0, 2), None),
                };
                let flag = field.range().map_or("", |r| match r.flag(value) {
                    "N" => "",
                    f => f,
                });
                let at = started + Duration::minutes(7 * i64::try_from(n).unwrap_or(0));
                let mut row = vec![Cell::Empty; FINECARE_COLUMNS.len()];
                let mut set = |name: &str, cell: Cell| {
                    if let Some(i) = FINECARE_COLUMNS.iter().position(|c| *c == name) {
                        row[i] = cell;
                    }
                };
                // The importer's duplicate key is Serial Number + Date/Time + Test Name: a
                // serial restarting in every file of a batch (whose times come from one clock)
                // made the second file's rows duplicates of the first's.
                set(
                    "Serial Number",
                    Cell::text(format!("FC{sequence:04}{n:05}")),
                );
                set("Sample Number", Cell::text(specimen.id.clone()));
                set(
                    "Sample Type",
                    Cell::text(if control.is_some() {
                        "Control"
                    } else {
                        "Serum"
                    }),
                );
                set("Test Name", Cell::text(field.code.clone()));
                set("Result", Cell::number(value));
                set("Unit", Cell::text(field.unit_str()));
                set(
                    "Reference Range",
                    Cell::text(field.normal_range.clone().unwrap_or_default()),
                );
                set("Method", Cell::text("FIA"));
                set("Calibration Date", Cell::date(calibrated));
                set(
                    "Calibration Lot",
                    Cell::text(format!("CAL-{lot_code}-{year}A")),
                );
                match &control {
                    Some(c) => {
                        set("Control Level", Cell::text(c.level()));
                        set("Control Result", Cell::number(value));
                        set(
                            "Control Expected",
                            c.target.map_or(Cell::Empty, Cell::number),
                        );
                        set("Control SD", c.sd.map_or(Cell::Empty, Cell::number));
                    }
                    None => set("Control Level", Cell::text("N/A")),
                }
                set("Operator ID", Cell::text("OP01"));
                set("Department", Cell::text("Immunology"));
                set("Instrument Model", Cell::text(model.clone()));
                set("Instrument SN", Cell::text(serial.clone()));
                set("Software Version", Cell::text("V3.2.1"));
                set("Firmware Version", Cell::text("V1.8.0"));
                set("Date/Time", Cell::date_time(at));
                set("Run Number", Cell::text(format!("R{n:03}")));
                set("Reagent Lot", Cell::text(format!("LOT-{lot_code}-{year}A")));
                set("Reagent Expiry", Cell::date(expiry));
                set("Gender", Cell::text("U"));
                set("Flag", Cell::text(flag));
                set("Dilution Factor", Cell::fixed(1.0, 1));
                set("Linearity Min", Cell::fixed(0.05, 2));
                set("Linearity Max", Cell::fixed(100.0, 1));
                set("Cartridge Type", Cell::text(field.code.clone()));
                set("Internal Temp", Cell::fixed(36.8, 1));
                rows.push(row);
            }
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row: 1,
        }
    }

    fn generic(&mut self, specimens: &[Specimen]) -> Sheet {
        let sample_col = self.mapped_column("sample_id", "Sample Name");
        let test_col = self.mapped_column("test_code", "Target");
        let result_col = self.mapped_column("result", "Result");
        let mut columns = column_names(self.template);
        if columns.is_empty() {
            columns = vec![sample_col.clone(), test_col.clone(), result_col.clone()];
        }
        // `skipRows` lines before the header, as a reader set up from the template skips
        // them: the metadata block, then an instrument line and empty lines.
        let skip = self.skip_rows();
        let mut rows = metadata_rows(self.template.extra.get("metadataBlock"), self.now);
        if rows.len() < skip {
            let a = &self.template.analyzer;
            rows.push(vec![Cell::text(format!(
                "{} {} (generated by lis-templates)",
                a.manufacturer, a.model
            ))]);
        }
        rows.resize(rows.len().max(skip), Vec::new());
        let header_row = rows.len();
        rows.push(columns.iter().map(|c| Cell::text(c.clone())).collect());
        // What a column holds: the names `column_mapping` gives first (a `Test Result` column
        // mapped as the result holds the value), then guesses from the name.
        let role = |name: &str| {
            if *name == result_col {
                return GenericColumn::Result;
            }
            if *name == test_col {
                return GenericColumn::Test;
            }
            if *name == sample_col {
                return GenericColumn::Sample;
            }
            let n = name.to_ascii_lowercase();
            if n.contains("sample") {
                GenericColumn::Sample
            } else if n.contains("test") || n.contains("target") {
                GenericColumn::Test
            } else if n.contains("result") {
                GenericColumn::Result
            } else if n.contains("well") || n.contains("position") {
                GenericColumn::Well
            } else if n.contains("task") {
                GenericColumn::Task
            } else {
                GenericColumn::Other
            }
        };
        let roles: Vec<GenericColumn> = columns.iter().map(|c| role(c)).collect();
        for specimen in specimens {
            for field in self.fields_of(specimen) {
                let value = match &specimen.role {
                    Role::Qc { control, .. } => Cell::number(self.qc_number(control)),
                    _ => {
                        let v = self.field_value(&field, Path::File);
                        match v.number {
                            Some(n) => Cell::Number(n, v.text),
                            None => Cell::Text(v.text),
                        }
                    }
                };
                rows.push(
                    roles
                        .iter()
                        .map(|role| match role {
                            GenericColumn::Sample => Cell::text(specimen.id.clone()),
                            GenericColumn::Test => Cell::text(field.code.clone()),
                            GenericColumn::Result => value.clone(),
                            GenericColumn::Well => Cell::text(well_name(specimen.well, true)),
                            GenericColumn::Task => Cell::text(specimen.role.task_or("UNKNOWN")),
                            GenericColumn::Other => Cell::Empty,
                        })
                        .collect(),
                );
            }
        }
        Sheet {
            name: self.sheet_name(),
            rows,
            header_row,
        }
    }

    /// DT-Prime XML: returns the bytes in the template's character set, its name and the cell count.
    fn dtprime(
        &mut self,
        specimens: &[Specimen],
    ) -> Result<(Vec<u8>, &'static str, usize), GenerateError> {
        let xml_format = self.template.extra.get("xmlFormat");
        let root = xml_format
            .and_then(|x| x.get("root"))
            .and_then(Value::as_str)
            .unwrap_or("package")
            .to_owned();
        let label = xml_format
            .and_then(|x| x.get("encoding"))
            .and_then(Value::as_str)
            .map_or_else(|| self.encoding_label(), str::to_owned);
        let path = xml_format
            .and_then(|x| x.pointer("/structure/protocol_path"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let version = self.template.protocol.version.clone().unwrap_or_default();
        let nl = LineEnding::CrLf.as_str();
        let fields = self.template.fields.clone();
        let mut cells = String::new();
        let mut count = 0;
        for specimen in specimens {
            let x = well_col(specimen.well);
            let y = specimen.well / PLATE_COLUMNS + 1;
            cells.push_str(&format!(
                "      <cell name=\"{}\" x=\"{x}\" y=\"{y}\" state=\"1\">{nl}",
                xml_escape(&specimen.id)
            ));
            for field in &fields {
                let result = match &specimen.role {
                    Role::Patient => self.qualitative(field),
                    Role::Control(c) => control_result(field, c),
                    // A qualitative test (DT-Prime's `-`/`+`) takes a call, as a control does:
                    // a number there is no result the instrument could give.
                    Role::Qc { control, .. }
                        if control.field_code == field.code
                            && !field.possible_values.is_empty() =>
                    {
                        qualitative_call(field, qc_control_is_negative(control))
                    }
                    Role::Qc { control, .. } if control.field_code == field.code => {
                        self.qc_value_checked(control, Path::File)?.text
                    }
                    Role::Qc { .. } => continue,
                };
                cells.push_str(&format!(
                    "        <test value=\"{}\" name=\"{}\"><result value=\"{}\"/></test>{nl}",
                    xml_escape(&field.code),
                    xml_escape(&field.name),
                    xml_escape(&result)
                ));
            }
            cells.push_str(&format!("      </cell>{nl}"));
            count += 1;
        }
        // The declaration names the set the bytes are in; encode first to learn its name.
        let (_, name) = encode("", &label);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"{name}\"?>{nl}<{root} version=\"{}\">{nl}  <protocol path=\"{}\" date=\"{}\" device=\"{}\"/>{nl}  <data>{nl}    <plate rows=\"8\" columns=\"12\">{nl}{cells}    </plate>{nl}  </data>{nl}</{root}>{nl}",
            xml_escape(&version),
            xml_escape(&path),
            self.now.format("%d.%m.%Y %H:%M:%S"),
            xml_escape(&self.template.analyzer.model),
        );
        let (bytes, name) = encode(&xml, &label);
        Ok((bytes, name, count))
    }
}

fn control_result(field: &Field, control: &Control) -> String {
    if let Some(r) = str_of(&control.data, "result") {
        return r.to_owned();
    }
    qualitative_call(field, control.kind == Kind::Negative)
}

/// The field's negative value (`-`, `Negative`, `Not detected`) or its first other one.
fn qualitative_call(field: &Field, negative: bool) -> String {
    let is_negative = |v: &&String| {
        let v = v.to_ascii_lowercase();
        v == "-" || v.contains("neg") || v.contains("not")
    };
    let pick = if negative {
        field.possible_values.iter().find(is_negative)
    } else {
        field.possible_values.iter().find(|v| !is_negative(v))
    };
    pick.cloned().unwrap_or_default()
}

fn reporter(target: usize) -> &'static str {
    ["FAM", "VIC", "ROX", "Cy5"][target % 4]
}

/// Text for an XML attribute value. Tab, CR and LF become character references (a reader
/// turns them into spaces otherwise); the other C0 controls, U+FFFE and U+FFFF, which XML 1.0
/// does not allow at all, become U+FFFD.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether a QC control of a detection assay (PCR, line probe) is the negative one: its
/// level, level name or task says so, or its target is zero. Such a control is reported
/// as not detected, with no concentration or CP, like a negative patient.
fn qc_control_is_negative(control: &QcControl) -> bool {
    let says_negative = [&control.level, &control.level_name, &control.task]
        .into_iter()
        .flatten()
        .any(|text| text.to_ascii_lowercase().contains("neg"));
    says_negative || control.target == Some(0.0)
}
