//! A template's `fixture`: a real instrument export that stands for the analyzer's output in
//! the OpenELIS mock's `/simulate/file` replies, and the results read from it as the mock's
//! `fixture_parser` reads them.

use std::io::Cursor;

use calamine::{Data, Reader};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::GenerateError;
use crate::model::{FileKind, Template};

/// Sample IDs starting with one of these (in any case) are controls, not results: the
/// reference's `fixture_parser` list, which the file layouts' control check extends.
pub(super) const CONTROL_PREFIXES: [&str; 10] = [
    "CNEG", "CPOS", "NTC", "PTC", "NEG", "POS", "NC", "PC", "BLANC", "BLANK",
];

/// Rows of each sheet searched for the header naming the sample ID column.
const HEADER_SEARCH_ROWS: usize = 50;

/// The fixtures compiled into this crate (`templates/fixtures/` of the workspace), by the path
/// the templates give (`fixtures/tecan-f50/results.csv`).
static EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/embedded_fixtures.rs"));

/// A template's `fixture` key: which export stands for the analyzer and how its results read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fixture {
    /// `file`: the export's path, relative to the folder that holds `templates/` (as in the
    /// OpenELIS mock's repository: `fixtures/tecan-f50/results.csv`).
    pub file: String,
    /// `format`: `CSV`, `XLSX` or `XLS` (upper case); the file's extension when absent.
    pub format: String,
    /// `delimiter` of a CSV export (`,` when absent).
    pub delimiter: u8,
    /// `skipRows`: lines before a CSV export's header.
    pub skip_rows: usize,
    /// `column_mapping.sampleId`: the header of the sample ID column.
    pub sample_id_column: String,
    /// `column_mapping.result`: the header of the result column.
    pub result_column: String,
    /// `column_mapping.testCode`: the header of the test code column, if the export has one.
    pub test_code_column: Option<String>,
    /// `testCodeFilter`: only rows with this test code are results.
    pub test_code_filter: Option<String>,
    /// `perFileTestCode`: the test code of every row of an export without a test column.
    pub per_file_test_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureKey {
    file: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    skip_rows: Option<usize>,
    #[serde(rename = "column_mapping")]
    column_mapping: ColumnMapping,
    #[serde(default)]
    test_code_filter: Option<String>,
    #[serde(default)]
    per_file_test_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ColumnMapping {
    sample_id: String,
    result: String,
    #[serde(default)]
    test_code: Option<String>,
}

/// One result row of a fixture.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FixtureResult {
    /// The sample ID, trimmed.
    pub sample_id: String,
    /// The result as the export holds it: text (trimmed) or a number.
    pub result: Value,
    /// The row's test code (or the file's `perFileTestCode`); `None` when neither is given.
    pub test_code: Option<String>,
}

impl FixtureResult {
    /// `{"sampleId", "result", "testCode"}`, as the mock's metadata lists results.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut row = Map::new();
        row.insert("sampleId".into(), Value::from(self.sample_id.clone()));
        row.insert("result".into(), self.result.clone());
        row.insert(
            "testCode".into(),
            self.test_code.clone().map_or(Value::Null, Value::from),
        );
        Value::Object(row)
    }
}

fn invalid(template: &str, reason: impl std::fmt::Display) -> GenerateError {
    GenerateError::InvalidOption {
        option: "fixture",
        reason: format!("template {template}: {reason}"),
    }
}

impl Fixture {
    /// The template's `fixture`, `None` when it has none.
    ///
    /// # Errors
    ///
    /// [`GenerateError::InvalidOption`] when the key is not a fixture (no `file` or
    /// `column_mapping`, a delimiter that is not one ASCII character) or its `file` leaves
    /// the template's folder (an absolute path, a `..` component).
    pub fn of(template: &Template) -> Result<Option<Self>, GenerateError> {
        let Some(value) = template.extra.get("fixture") else {
            return Ok(None);
        };
        let name = &template.name;
        let key = FixtureKey::deserialize(value).map_err(|e| invalid(name, e))?;
        let path = std::path::Path::new(&key.file);
        let inside = path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if key.file.is_empty() || !inside || key.file.contains('\\') {
            return Err(invalid(
                name,
                format!(
                    "fixture file {:?} must be a relative path inside the templates' folder",
                    key.file
                ),
            ));
        }
        let delimiter = match key.delimiter.as_deref() {
            None | Some("") => b',',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some("\\t") => b'\t',
            Some(d) => {
                return Err(invalid(
                    name,
                    format!("fixture delimiter {d:?} must be one ASCII character"),
                ));
            }
        };
        let format = match key.format {
            Some(f) if !f.is_empty() => f.to_ascii_uppercase(),
            _ => path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_uppercase())
                .unwrap_or_default(),
        };
        Ok(Some(Self {
            file: key.file,
            format,
            delimiter,
            skip_rows: key.skip_rows.unwrap_or(0),
            sample_id_column: key.column_mapping.sample_id,
            result_column: key.column_mapping.result,
            test_code_column: key.column_mapping.test_code,
            test_code_filter: key.test_code_filter,
            per_file_test_code: key.per_file_test_code,
        }))
    }

    /// The export compiled into this crate under [`Fixture::file`], if any (the embedded
    /// templates' fixtures are).
    #[must_use]
    pub fn embedded_bytes(&self) -> Option<&'static [u8]> {
        let wanted = self.file.trim_start_matches("./");
        EMBEDDED
            .iter()
            .find(|(path, _)| *path == wanted)
            .map(|(_, bytes)| *bytes)
    }

    /// The kind of file the export is, by [`Fixture::format`].
    #[must_use]
    pub fn kind(&self) -> FileKind {
        match self.format.as_str() {
            "XLSX" => FileKind::Xlsx,
            "XLS" => FileKind::Xls,
            "TSV" => FileKind::Tsv,
            "TXT" => FileKind::Txt,
            "XML" => FileKind::Xml,
            _ => FileKind::Csv,
        }
    }

    /// The results of the export `bytes`, as the OpenELIS mock's `fixture_parser` reads them:
    /// a CSV export after `skipRows` lines, its first row the header (a UTF-8 byte order mark
    /// dropped); a workbook's sheets in turn, each from the row (of its first 50) that holds
    /// the sample ID header. Rows without a sample ID or a result are skipped, and so are
    /// control rows (sample IDs starting with `CNEG`, `CPOS`, `NTC`, `PTC`, `NEG`, `POS`,
    /// `NC`, `PC`, `BLANC` or `BLANK`, in any case); then `testCodeFilter` applies.
    ///
    /// # Errors
    ///
    /// [`GenerateError::InvalidOption`] for an export that cannot be read (not UTF-8 text,
    /// a broken workbook) or that has no column named as `column_mapping` says.
    pub fn results(&self, bytes: &[u8]) -> Result<Vec<FixtureResult>, GenerateError> {
        let rows = match self.kind() {
            FileKind::Xlsx | FileKind::Xls => self.workbook_rows(bytes)?,
            _ => self.csv_rows(bytes)?,
        };
        Ok(rows
            .into_iter()
            .filter(|r| !is_control(&r.sample_id))
            .filter(|r| match &self.test_code_filter {
                Some(only) => r.test_code.as_deref() == Some(only.as_str()),
                None => true,
            })
            .collect())
    }

    fn csv_rows(&self, bytes: &[u8]) -> Result<Vec<FixtureResult>, GenerateError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| self.unreadable(format!("not UTF-8 text ({e})")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let body = skip_lines(text, self.skip_rows);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_reader(body.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| self.unreadable(e))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let columns = self.columns(&header)?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| self.unreadable(e))?;
            let cell = |i: Option<usize>| {
                i.and_then(|i| record.get(i))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            if let Some(row) = self.row(
                cell(Some(columns.sample_id)).map(str::to_owned),
                cell(Some(columns.result)).map(Value::from),
                cell(columns.test_code).map(str::to_owned),
            ) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn workbook_rows(&self, bytes: &[u8]) -> Result<Vec<FixtureResult>, GenerateError> {
        let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
            .map_err(|e| self.unreadable(format!("cannot read workbook: {e}")))?;
        let mut rows = Vec::new();
        let mut found_header = false;
        for sheet in book.sheet_names() {
            let range = book
                .worksheet_range(&sheet)
                .map_err(|e| self.unreadable(format!("sheet {sheet}: {e}")))?;
            let grid: Vec<&[Data]> = range.rows().collect();
            let Some(at) = grid.iter().take(HEADER_SEARCH_ROWS).position(|row| {
                row.iter()
                    .any(|c| cell_text(c).as_deref() == Some(&self.sample_id_column))
            }) else {
                continue;
            };
            found_header = true;
            let header: Vec<String> = grid[at]
                .iter()
                .map(|c| cell_text(c).unwrap_or_default())
                .collect();
            let columns = self.columns(&header)?;
            for row in &grid[at + 1..] {
                let cell = |i: Option<usize>| i.and_then(|i| row.get(i));
                if let Some(result) = self.row(
                    cell(Some(columns.sample_id)).and_then(cell_text),
                    cell(Some(columns.result)).and_then(cell_value),
                    cell(columns.test_code).and_then(cell_text),
                ) {
                    rows.push(result);
                }
            }
        }
        if !found_header {
            return Err(self.unreadable(format!(
                "no sheet has a {:?} header in its first {HEADER_SEARCH_ROWS} rows",
                self.sample_id_column
            )));
        }
        Ok(rows)
    }

    /// A result row, or `None` for a row without a sample ID or a result.
    fn row(
        &self,
        sample_id: Option<String>,
        result: Option<Value>,
        test_code: Option<String>,
    ) -> Option<FixtureResult> {
        Some(FixtureResult {
            sample_id: sample_id?,
            result: result?,
            test_code: test_code.or_else(|| self.per_file_test_code.clone()),
        })
    }

    fn columns(&self, header: &[String]) -> Result<Columns, GenerateError> {
        let find = |name: &str| header.iter().position(|h| h == name);
        let needed = |name: &str| {
            find(name).ok_or_else(|| {
                self.unreadable(format!(
                    "no column {name:?} (the header has {})",
                    header.join(", ")
                ))
            })
        };
        Ok(Columns {
            sample_id: needed(&self.sample_id_column)?,
            result: needed(&self.result_column)?,
            test_code: match &self.test_code_column {
                Some(name) => Some(needed(name)?),
                None => None,
            },
        })
    }

    fn unreadable(&self, why: impl std::fmt::Display) -> GenerateError {
        GenerateError::InvalidOption {
            option: "fixture",
            reason: format!("{}: {why}", self.file),
        }
    }
}

struct Columns {
    sample_id: usize,
    result: usize,
    test_code: Option<usize>,
}

fn is_control(sample_id: &str) -> bool {
    let upper = sample_id.to_ascii_uppercase();
    CONTROL_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// `text` after its first `n` lines.
fn skip_lines(text: &str, n: usize) -> &str {
    let mut rest = text;
    for _ in 0..n {
        match rest.find('\n') {
            Some(i) => rest = &rest[i + 1..],
            None => return "",
        }
    }
    rest
}

/// A cell as trimmed text; `None` when it is empty.
fn cell_text(cell: &Data) -> Option<String> {
    let text = match cell {
        Data::Empty => return None,
        Data::String(s) => s.trim().to_owned(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// A cell as the export holds it: a number stays a number, anything else is text.
fn cell_value(cell: &Data) -> Option<Value> {
    match cell {
        Data::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
        Data::Int(i) => Some(Value::from(*i)),
        other => cell_text(other).map(Value::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_known_by_prefix_in_any_case() {
        for control in [
            "CNEG", "cpos-1", "NTC", "Neg", "POS", "nc", "PC2", "Blanc", "BLANK",
        ] {
            assert!(is_control(control), "{control}");
        }
        for sample in ["DEV01265100000000101", "A1", "SPEC-1"] {
            assert!(!is_control(sample), "{sample}");
        }
    }

    #[test]
    fn skip_lines_drops_whole_lines() {
        assert_eq!(skip_lines("a\nb\r\nc", 0), "a\nb\r\nc");
        assert_eq!(skip_lines("a\nb\r\nc", 2), "c");
        assert_eq!(skip_lines("a\nb", 5), "");
    }
}
