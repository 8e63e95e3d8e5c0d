//! Result files: delimited text (CSV/TSV with the template's delimiter), XLSX, and DT-Prime XML.

use chrono::NaiveDateTime;

use super::files::table::{Cell, Sheet};
use super::values::{Path, ResultValue};
use super::{Generator, Layout, ts};
use crate::GenerateError;
use crate::accession::Lane;
use crate::model::FileKind;

/// A generated file: a suggested name, its kind and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutput {
    /// Suggested file name (template name, accession or `qc`, extension); contains only ASCII
    /// letters, digits, `-`, `_` and `.`.
    pub file_name: String,
    /// Text (CSV/TSV/TXT), XLSX or XML.
    pub kind: FileKind,
    /// The content.
    pub bytes: Vec<u8>,
}

impl FileOutput {
    /// The content as text, for delimited and XML files.
    pub fn text(&self) -> Option<&str> {
        match self.kind {
            FileKind::Xls | FileKind::Xlsx => None,
            _ => std::str::from_utf8(&self.bytes).ok(),
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 4180 quoting: only when the value holds the delimiter, a quote or a line break.
fn quote(value: &str, delimiter: &str) -> String {
    if value.contains(delimiter)
        || value.contains('"')
        || value.contains('\n')
        || value.contains('\r')
    {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn delimited(rows: &[Vec<Cell>], delimiter: &str, preamble: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in preamble {
        out.push_str(line);
        out.push('\n');
    }
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| quote(c.as_str(), delimiter)).collect();
        out.push_str(&cells.join(delimiter));
        out.push('\n');
    }
    out.into_bytes()
}

/// An XLSX workbook with one sheet, written by the same code as the instrument layouts.
fn xlsx(rows: &[Vec<Cell>], sheet: &str, now: NaiveDateTime) -> Result<Vec<u8>, GenerateError> {
    let sheet = Sheet {
        name: sheet.to_owned(),
        rows: rows.to_vec(),
        header_row: 0,
    };
    super::files::table::xlsx(std::slice::from_ref(&sheet), now)
}

use super::files::xml_escape;

impl Generator<'_> {
    fn file_config(&self) -> crate::model::FileConfig {
        self.template.file_config.clone().unwrap_or_default()
    }

    fn mapped(&self, key: &str, default: &str) -> String {
        self.file_config()
            .column_mapping
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or(default)
            .to_owned()
    }

    fn delimiter(&self) -> String {
        let config = self.file_config();
        if self.layout == Layout::OpenElis {
            return match (config.format, config.delimiter) {
                (Some(FileKind::Tsv), _) => "\t".into(),
                (_, Some(d)) if !d.is_empty() => d,
                _ => ",".into(),
            };
        }
        let format_delimiter = self
            .template
            .file_format
            .as_ref()
            .and_then(|f| f.delimiter.clone());
        match (config.format, config.delimiter, format_delimiter) {
            (_, Some(d), _) if !d.is_empty() => d,
            (Some(FileKind::Tsv), _, _) => "\t".into(),
            (_, _, Some(d)) if !d.is_empty() => d,
            _ => ",".into(),
        }
    }

    fn cell(value: &ResultValue) -> Cell {
        match value.number {
            Some(n) => Cell::Number(n, value.text.clone()),
            None => Cell::Text(value.text.clone()),
        }
    }

    /// Lines before the header: the template's `metadataBlock` entries, as the instrument's
    /// export has them (Magellan, SkanIt: readers find the header after them, the profiles'
    /// `metadata_rows`), their dates and times from the clock; then, up to
    /// `file_config.skipRows`, a line naming the analyzer and empty lines.
    fn preamble(&self, delimiter: &str) -> Vec<String> {
        let skip = self.file_config().skip_rows.unwrap_or(0) as usize;
        let mut lines: Vec<String> = self
            .template
            .extra
            .get("metadataBlock")
            .and_then(serde_json::Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        let (key, value) = super::files::metadata_entry(e, self.now);
                        format!(
                            "{}{delimiter}{}",
                            quote(&key, delimiter),
                            quote(&value, delimiter)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if lines.len() < skip {
            let a = &self.template.analyzer;
            lines.push(quote(
                &format!(
                    "{} {} (generated by lis-templates)",
                    a.manufacturer, a.model
                ),
                delimiter,
            ));
        }
        while lines.len() < skip {
            lines.push(String::new());
        }
        lines
    }

    /// The result file: one row per field for one sample (accession on lane 99).
    pub fn file(&mut self) -> Result<FileOutput, GenerateError> {
        let template = self.template;
        let accession = self.accession(Lane::FILE)?;
        let now = ts(self.now);
        let config = self.file_config();
        let has_header = config.has_header.unwrap_or(true);
        let header = vec![
            Cell::Text(self.mapped("sample_id", "Sample Name")),
            Cell::Text(self.mapped("test_code", "Target")),
            Cell::Text(self.mapped("result", "Result")),
            Cell::Text("Timestamp".into()),
        ];
        let mut rows = Vec::new();
        if has_header {
            rows.push(header);
        }
        let mut results = Vec::new();
        for field in self.fields() {
            let value = self.field_value(field, Path::File);
            results.push((field.code.clone(), value.clone()));
            rows.push(vec![
                Cell::Text(accession.clone()),
                Cell::Text(field.code.clone()),
                Self::cell(&value),
                Cell::Text(now.clone()),
            ]);
        }
        let base = sanitize(&format!("{}-{accession}", template.name));
        if self.layout == Layout::OpenElis {
            let delimiter = self.delimiter();
            return Ok(FileOutput {
                file_name: format!("{base}.csv"),
                kind: FileKind::Csv,
                bytes: delimited(&rows, &delimiter, &[]),
            });
        }
        match config.format {
            Some(FileKind::Xls | FileKind::Xlsx) => {
                let sheet = config.sheet_name.unwrap_or_else(|| "Results".into());
                Ok(FileOutput {
                    file_name: format!("{base}.xlsx"),
                    kind: FileKind::Xlsx,
                    bytes: xlsx(&rows, &sheet, self.now)?,
                })
            }
            Some(FileKind::Xml) => Ok(self.dtprime_xml(&base, &accession, &results)),
            other => {
                let delimiter = self.delimiter();
                let preamble = self.preamble(&delimiter);
                let (kind, ext) = match other {
                    Some(FileKind::Tsv) => (FileKind::Tsv, "tsv"),
                    Some(FileKind::Txt) => (FileKind::Txt, "txt"),
                    _ => (FileKind::Csv, "csv"),
                };
                Ok(FileOutput {
                    file_name: format!("{base}.{ext}"),
                    kind,
                    bytes: delimited(&rows, &delimiter, &preamble),
                })
            }
        }
    }

    fn dtprime_xml(
        &self,
        base: &str,
        accession: &str,
        results: &[(String, ResultValue)],
    ) -> FileOutput {
        let mut body = String::new();
        for (i, (code, value)) in results.iter().enumerate() {
            body.push_str(&format!(
                "      <cell name=\"{}\" x=\"{}\" y=\"1\" state=\"1\"><test value=\"{}\"><result value=\"{}\"/></test></cell>\n",
                xml_escape(accession),
                i + 1,
                xml_escape(code),
                xml_escape(&value.text)
            ));
        }
        let declared = self
            .template
            .file_format
            .as_ref()
            .and_then(|f| f.encoding.clone())
            .unwrap_or_else(|| "UTF-8".into());
        // Only ASCII content is identical in every such encoding; otherwise say UTF-8.
        let encoding = if body.is_ascii() {
            declared
        } else {
            "UTF-8".into()
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"{}\"?>\n<package>\n  <data>\n    <plate>\n{body}    </plate>\n  </data>\n</package>\n",
            xml_escape(&encoding)
        );
        FileOutput {
            file_name: format!("{base}.xml"),
            kind: FileKind::Xml,
            bytes: xml.into_bytes(),
        }
    }

    /// The QC file: one row per control, sample name from `qc_sample_id_pattern` (default
    /// `QC-{lot}-{level}`), a Task column (`task`, default `STANDARD`); CSV, TSV, TXT or XLSX by
    /// `file_config.format` (XLS is written as XLSX, XML as CSV), with a header row unless
    /// `file_config.has_header` is false (standard layout).
    pub fn file_qc(&mut self) -> Result<FileOutput, GenerateError> {
        let template = self.template;
        let controls = self.qc_controls_asked()?;
        let pattern = match &template.qc_sample_id_pattern {
            Some(p) => qc_westgard_gen::SampleNamePattern::parse(p)?,
            None => qc_westgard_gen::SampleNamePattern::default(),
        };
        let now = ts(self.now);
        let mut rows = vec![vec![
            Cell::Text(self.mapped("sample_id", "Sample Name")),
            Cell::Text(self.mapped("test_code", "Target Name")),
            Cell::Text("Task".into()),
            Cell::Text(self.mapped("result", "Quantity Mean")),
            Cell::Text("Timestamp".into()),
        ]];
        for control in controls {
            let task = control.task.clone().unwrap_or_else(|| "STANDARD".into());
            let value = self.qc_value_checked(&control, Path::File)?;
            rows.push(vec![
                Cell::Text(pattern.render(&control.id(), &task)),
                Cell::Text(control.field_code.clone()),
                Cell::Text(task),
                Self::cell(&value),
                Cell::Text(now.clone()),
            ]);
        }
        let base = sanitize(&format!("qc-{}-{now}", template.name));
        let openelis = self.layout == Layout::OpenElis;
        let config = self.file_config();
        // As the patient file: a reader told there is no header takes the first row as data.
        if !openelis && config.has_header == Some(false) {
            rows.remove(0);
        }
        // The standard layout writes the QC file as the patient file: the template's sheet
        // name, and the metadata lines a reader configured with `skipRows` skips (without
        // them it took the header for metadata and the first control for the header).
        let preamble = |delimiter: &str| {
            if openelis {
                Vec::new()
            } else {
                self.preamble(delimiter)
            }
        };
        match config.format {
            Some(FileKind::Xls | FileKind::Xlsx) => {
                let sheet = config
                    .sheet_name
                    .filter(|_| !openelis)
                    .unwrap_or_else(|| "Results".into());
                Ok(FileOutput {
                    file_name: format!("{base}.xlsx"),
                    kind: FileKind::Xlsx,
                    bytes: xlsx(&rows, &sheet, self.now)?,
                })
            }
            Some(FileKind::Tsv) => Ok(FileOutput {
                file_name: format!("{base}.tsv"),
                kind: FileKind::Tsv,
                bytes: delimited(&rows, "\t", &preamble("\t")),
            }),
            format => {
                let delimiter = if openelis {
                    ",".to_owned()
                } else {
                    self.delimiter()
                };
                // A TXT template's QC file is named as its patient files are; XML (DT-Prime)
                // has no QC layout of its own and gets delimited text.
                let (kind, ext) = match format {
                    Some(FileKind::Txt) if !openelis => (FileKind::Txt, "txt"),
                    _ => (FileKind::Csv, "csv"),
                };
                Ok(FileOutput {
                    file_name: format!("{base}.{ext}"),
                    kind,
                    bytes: delimited(&rows, &delimiter, &preamble(&delimiter)),
                })
            }
        }
    }
}
