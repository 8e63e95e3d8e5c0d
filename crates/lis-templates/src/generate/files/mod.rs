//! Result files as the instruments write them.
//!
//! [`crate::generate`] gives the OpenELIS mock's one-sample file (four generic columns, or a basic
//! XML cell list). This module writes a whole run the way the instrument exports it: the
//! instrument's columns, metadata rows, control rows, plate grid, delimiter, character set and line
//! endings ([`FileLayout`], chosen from the template). [`render`] builds the bytes,
//! [`write_output`] puts them in a folder under a temporary name and renames them, and
//! [`write_file`] does both — the entry point for the `filegen` app and the simulator's
//! `--generate-files`. [`replay_fixture`] rewrites a real export with fresh accessions.
//!
//! ```
//! use lis_templates::files::{self, FileLayout, FileOptions};
//! use lis_templates::{AccessionMinter, GenerateOptions, TemplateSet};
//!
//! let templates = TemplateSet::embedded()?;
//! let wondfo = templates.get("wondfo_finecare")?;
//! let options = FileOptions {
//!     samples: Some(3),
//!     generate: GenerateOptions { seed: Some(7), ..GenerateOptions::default() },
//!     ..FileOptions::default()
//! };
//! let file = files::render(wondfo, &AccessionMinter::new(), &options)?;
//! assert_eq!(file.layout, FileLayout::Finecare);
//! let text = std::str::from_utf8(&file.file.bytes)?;
//! let lines: Vec<&str> = text.lines().collect();
//! assert!(lines[0].starts_with("Finecare FIA Meter III Plus;FS-205;"));
//! assert_eq!(lines[1].split(';').count(), 40);
//! assert_eq!(file.data_rows, 3 * 2); // three samples, TSH and β-hCG each
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fixture;
mod layouts;
pub(crate) use layouts::metadata_entry;
pub(crate) use layouts::{MAX_METADATA_ROWS, xml_escape};
mod replay;
pub(in crate::generate) mod table;
mod write;

use std::path::{Path, PathBuf};

use crate::accession::AccessionMinter;
use crate::model::{FileKind, ProtocolKind, Template};
use crate::{FileError, GenerateError};

use super::{FileOutput, GenerateOptions, Generator};

pub use fixture::{Fixture, FixtureResult};
pub use replay::{ReplayedFile, replay_fixture};
pub use table::LineEnding;
pub use write::{replace_output, write_output};

/// How an instrument lays out its result file. [`FileLayout::of`] picks it from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileLayout {
    /// QuantStudio 5 / 7 "Results" table: `Well, Well Position, Sample Name, Target Name, Task,
    /// Reporter, Quencher, Quantity Mean, CT, Ct Mean, Ct SD`; one row per well and target;
    /// controls `CPOS` (Task `STANDARD`) and `CNEG` (Task `NTC`, CT `Undetermined`). XLSX.
    QuantStudioResults,
    /// QuantStudio 7 Flex export: the template's metadata block padded to `metadataRowCount`
    /// rows, then the template's 31 columns; standards and controls from `testSamples`. XLSX.
    QuantStudioExport,
    /// Hain FluoroCycler XT: XLSX `Row, Col, Sample ID, Type, Calc. Conc., Result` (target and
    /// internal-control row per well, `NTC`/`PTC` controls); as CSV/TSV the template's `columns`
    /// (`Position;Sample ID;Result;Interpretation`) with its `fileFormat` delimiter.
    HainFluoroCycler,
    /// Bruker FluoroCycler XT: the template's 12 columns (`SampleID, WellPosition, AssayName,
    /// TargetName, TargetNo, CP, Interpretation, …`), target and IC row per well. XLSX.
    BrukerFluoroCycler,
    /// ELISA reader well list (Tecan Infinite F50, Thermo Multiskan FC main-line templates):
    /// `WellPosition, SampleID, Interpretation, TestCode` with the template's delimiter, `skipRows`
    /// metadata lines first; controls `NEG`/`POS` (Tecan) or `NC`/`PC` (Multiskan).
    ElisaWells,
    /// Tecan Magellan export: metadata block, blank line, the template's columns
    /// (`WellPosition, SampleID, OD_450, OD_620, CorrectedOD, Interpretation`), tab-separated, CRLF.
    MagellanWells,
    /// Multiskan FC (SkanIt) well list: metadata block, blank line, `Well, Sample ID,
    /// Absorbance (450 nm), Content`; controls have no Sample ID. CRLF.
    MultiskanWells,
    /// Plate grid (Tecan / Multiskan `plate_grid`): metadata block, blank line, a column-number
    /// header and rows A–H of twelve readings. Tab-separated, CRLF.
    PlateGrid,
    /// Wondfo Finecare FS-205: one metadata line (41 fields), a 40-column header, `;`, UTF-8.
    Finecare,
    /// DNA-Technology DT-Prime: XML `<package>` with the protocol path and one `<cell>` per well,
    /// in the template's character set (windows-1251), CRLF.
    DtPrimeXml,
    /// Any other FILE template: the template's `columns` (or its `column_mapping` names), one row
    /// per sample and field.
    Generic,
}

impl FileLayout {
    /// The layout a template's instrument writes: an explicit `"fileLayout"` key (the names of
    /// [`FileLayout::name`]) wins; otherwise it is recognised from the template's format, `layout`,
    /// metadata and analyzer.
    pub fn of(template: &Template) -> Self {
        if let Some(name) = template.extra.get("fileLayout").and_then(|v| v.as_str())
            && let Some(layout) = Self::ALL.iter().find(|l| l.name() == name)
        {
            return *layout;
        }
        let config = template.file_config.clone().unwrap_or_default();
        let model = template.analyzer.model.to_ascii_lowercase();
        let manufacturer = template.analyzer.manufacturer.to_ascii_lowercase();
        let layout_key = template.extra.get("layout").and_then(|v| v.as_str());
        let has_metadata = template.extra.contains_key("metadataBlock");
        if config.format == Some(FileKind::Xml) {
            return Self::DtPrimeXml;
        }
        if layout_key == Some("plate_grid") {
            return Self::PlateGrid;
        }
        if model.contains("qs5") || model.contains("7 flex") || model.contains("quantstudio") {
            return if template.extra.contains_key("excelFormat") && !template.columns.is_empty() {
                Self::QuantStudioExport
            } else {
                Self::QuantStudioResults
            };
        }
        if model.contains("fluorocycler") {
            return if manufacturer.contains("hain") {
                Self::HainFluoroCycler
            } else {
                Self::BrukerFluoroCycler
            };
        }
        if model.contains("infinite f50") || model.contains("multiskan") {
            return match (layout_key, has_metadata) {
                (Some("well_per_row"), _) => Self::MagellanWells,
                (_, true) => Self::MultiskanWells,
                _ => Self::ElisaWells,
            };
        }
        if model.contains("fs-205") || template.analyzer.name.contains("Finecare") {
            return Self::Finecare;
        }
        Self::Generic
    }

    const ALL: [Self; 11] = [
        Self::QuantStudioResults,
        Self::QuantStudioExport,
        Self::HainFluoroCycler,
        Self::BrukerFluoroCycler,
        Self::ElisaWells,
        Self::MagellanWells,
        Self::MultiskanWells,
        Self::PlateGrid,
        Self::Finecare,
        Self::DtPrimeXml,
        Self::Generic,
    ];

    /// The layout's name (also accepted in a template's `"fileLayout"` key).
    pub fn name(self) -> &'static str {
        match self {
            Self::QuantStudioResults => "quantstudio_results",
            Self::QuantStudioExport => "quantstudio_export",
            Self::HainFluoroCycler => "hain_fluorocycler",
            Self::BrukerFluoroCycler => "bruker_fluorocycler",
            Self::ElisaWells => "elisa_wells",
            Self::MagellanWells => "magellan_wells",
            Self::MultiskanWells => "multiskan_wells",
            Self::PlateGrid => "plate_grid",
            Self::Finecare => "finecare",
            Self::DtPrimeXml => "dtprime_xml",
            Self::Generic => "generic",
        }
    }

    /// Wells on the instrument's plate (`None`: no plate, e.g. a point-of-care reader).
    pub fn capacity(self) -> Option<usize> {
        match self {
            Self::Finecare | Self::Generic => None,
            _ => Some(96),
        }
    }

    /// What the instrument exports when no format is asked for.
    pub fn native_kind(self, template: &Template) -> FileKind {
        match self {
            Self::QuantStudioResults
            | Self::QuantStudioExport
            | Self::HainFluoroCycler
            | Self::BrukerFluoroCycler => FileKind::Xlsx,
            Self::DtPrimeXml => FileKind::Xml,
            _ => match template.file_config.as_ref().and_then(|c| c.format) {
                Some(FileKind::Xls | FileKind::Xlsx) => FileKind::Xlsx,
                Some(FileKind::Tsv) => FileKind::Tsv,
                Some(FileKind::Txt) => FileKind::Txt,
                _ => FileKind::Csv,
            },
        }
    }

    /// Line ending of the text the instrument writes: LF where the reference fixtures show it,
    /// CRLF for the Windows exports (Magellan, SkanIt, DT-Prime).
    pub fn line_ending(self) -> LineEnding {
        match self {
            Self::MagellanWells | Self::MultiskanWells | Self::PlateGrid | Self::DtPrimeXml => {
                LineEnding::CrLf
            }
            _ => LineEnding::Lf,
        }
    }
}

/// Options for one instrument file.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Seed, clock, value mode and QC deviation (see [`GenerateOptions`]; `sample_id` and `layout`
    /// are not used here).
    pub generate: GenerateOptions,
    /// Patient samples in the file (default 8); control rows come on top.
    pub samples: Option<usize>,
    /// Container: `Csv`, `Tsv` or `Xlsx` instead of what the instrument exports (`Xls` means
    /// `Xlsx`; DT-Prime writes only XML).
    pub format: Option<FileKind>,
    /// A QC file: one row per `qc_controls` entry, sample names from `qc_sample_id_pattern`,
    /// values from `qc-westgard-gen` (target + k × SD with `generate.qc_deviation`).
    pub qc: bool,
    /// Number of this file in a batch; part of the file name.
    pub sequence: u32,
}

/// Default patient samples per file.
pub const DEFAULT_SAMPLES: usize = 8;

/// A generated instrument file and what is in it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RenderedFile {
    /// Name, kind and bytes.
    pub file: FileOutput,
    /// The layout written.
    pub layout: FileLayout,
    /// Character set of text files (`UTF-8`, `windows-1251`); `None` for XLSX.
    pub encoding: Option<&'static str>,
    /// Line ending of text files; `None` for XLSX.
    pub line_ending: Option<LineEnding>,
    /// Delimiter of delimited text; `None` for XLSX and XML.
    pub delimiter: Option<String>,
    /// Sheet name of XLSX files.
    pub sheet: Option<String>,
    /// Rows (lines) before the column header (or, without one, before the data): the
    /// metadata a reader skips.
    pub header_row: usize,
    /// Whether the column header is in the file: the generic layout leaves it out when the
    /// template's `has_header` is false.
    pub header_written: bool,
    /// The column header as written, or as the template names the columns when it is not
    /// (for XML: the element names of one cell).
    pub columns: Vec<String>,
    /// Patient accessions (SiteYearNum), in well order. A Magellan plate grid holds readings
    /// only; there these are the plate map (wells A1, A2, … in order).
    pub accessions: Vec<String>,
    /// Control and QC sample names as written (empty where the instrument writes none).
    pub controls: Vec<String>,
    /// Data rows after the header (grid: plate rows).
    pub data_rows: usize,
}

/// Builds one instrument file for `template` (see [`FileLayout`]).
///
/// Errors: the template is not a FILE template, QC without `qc_controls`, more samples than the
/// plate holds, `tests` or `patient_id` set in `generate`, a format the instrument cannot write, bad QC deviation or accession problems.
pub fn render(
    template: &Template,
    minter: &AccessionMinter,
    options: &FileOptions,
) -> Result<RenderedFile, GenerateError> {
    if template.protocol.kind != ProtocolKind::File {
        return Err(GenerateError::WrongProtocol {
            template: template.name.clone(),
            protocol: template.protocol.kind.as_str().to_owned(),
            wanted: "FILE",
        });
    }
    // Instrument layouts report every field and have no patient; say so rather than ignore.
    for (option, set) in [
        ("tests", options.generate.tests.is_some()),
        ("patient_id", options.generate.patient_id.is_some()),
    ] {
        if set {
            return Err(GenerateError::InvalidOption {
                option,
                reason: "instrument file layouts do not support it".into(),
            });
        }
    }
    let mut generator = Generator::new(template, minter, &options.generate)?;
    generator.instrument_file(options)
}

/// Renders a file and writes it into `dir` (see [`write_output`]); returns its path and contents.
///
/// ```
/// use lis_templates::files::{self, FileOptions};
/// use lis_templates::{AccessionMinter, TemplateSet};
///
/// let dir = std::env::temp_dir().join(format!("lis-templates-doc-{}", std::process::id()));
/// let templates = TemplateSet::embedded()?;
/// let (path, file) =
///     files::write_file(templates.get("tecan_f50")?, &AccessionMinter::new(), &FileOptions::default(), &dir)?;
/// assert_eq!(std::fs::read(&path)?, file.file.bytes);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_file(
    template: &Template,
    minter: &AccessionMinter,
    options: &FileOptions,
    dir: &Path,
) -> Result<(PathBuf, RenderedFile), FileError> {
    let rendered = render(template, minter, options)?;
    let path = write_output(&rendered.file, dir)?;
    Ok((path, rendered))
}

/// Characters kept in generated file names; everything else becomes `_`.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_. ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    cleaned.trim_start_matches(['.', ' ']).to_owned()
}

/// A file name the template's `file_pattern` glob matches where possible: the first `*` becomes
/// `stamp-sequence`, the extension is the one written. A pattern whose only wildcard is in
/// its extension (`aux.*`) gets `-stamp-sequence` after its stem: every file was named the
/// same (`aux.csv`, then `aux-1.csv`, ...), without time or QC marker, and `aux`, `con` or
/// `nul` alone is a Windows device name.
fn file_name(template: &Template, stamp: &str, sequence: u32, marker: &str, ext: &str) -> String {
    let unique = format!("{stamp}-{sequence:04}{marker}");
    let stem = match template.identification.file_pattern.as_deref() {
        Some(pattern) if pattern.contains('*') => {
            let base = pattern.rsplit_once('.').map_or(pattern, |(b, _)| b);
            if base.contains('*') {
                base.replacen('*', &unique, 1)
                    .replace(['*', '?', '[', ']'], "")
            } else {
                format!("{}-{unique}", base.replace(['?', '[', ']'], ""))
            }
        }
        _ => format!("{}-{unique}", template.name),
    };
    let stem = sanitize(&stem);
    let stem = if stem.is_empty() { unique } else { stem };
    format!("{stem}.{ext}")
}
