//! A sheet of cells and its encodings: delimited text (delimiter, line ending, character set) and
//! XLSX workbooks.

use chrono::{Datelike, NaiveDateTime, Timelike};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

use crate::GenerateError;

/// One cell of a generated sheet.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::generate) enum Cell {
    /// Nothing written (an empty field in text, no cell in XLSX).
    Empty,
    /// Text.
    Text(String),
    /// A number and its spelling in text files.
    Number(f64, String),
    /// A date, time or duration: an Excel serial number (1900 epoch), the number format that
    /// makes a reader see it as one, and its spelling in text files.
    Date {
        /// Days since the 1900 epoch, the time of day as the fraction.
        serial: f64,
        /// Excel number format (`yyyy-mm-dd hh:mm:ss`, `[h]:mm:ss`, ...).
        format: &'static str,
        /// The value as text.
        text: String,
    },
    /// A boolean (`TRUE`/`FALSE` in text files).
    Bool(bool),
}

impl Cell {
    pub(super) fn text(value: impl Into<String>) -> Self {
        Self::Text(value.into())
    }

    /// A number spelled with `decimals` digits after the point.
    pub(super) fn fixed(value: f64, decimals: usize) -> Self {
        Self::Number(value, format!("{value:.decimals$}"))
    }

    /// A number spelled with the shortest round-trip digits.
    pub(super) fn number(value: f64) -> Self {
        let text = if value == 0.0 {
            "0".to_owned()
        } else {
            format!("{value}")
        };
        Self::Number(value, text)
    }

    /// A date and time, `yyyy-mm-dd hh:mm:ss` in both text and XLSX (where it is a date a
    /// reader sees as one); text where Excel has no serial for it (before 1900, after 9999).
    pub(super) fn date_time(at: NaiveDateTime) -> Self {
        Self::calendar(at, "yyyy-mm-dd hh:mm:ss", "%Y-%m-%d %H:%M:%S")
    }

    /// A calendar day, `yyyy-mm-dd`, as [`date_time`](Self::date_time).
    pub(super) fn date(day: chrono::NaiveDate) -> Self {
        Self::calendar(
            day.and_time(chrono::NaiveTime::MIN),
            "yyyy-mm-dd",
            "%Y-%m-%d",
        )
    }

    fn calendar(at: NaiveDateTime, format: &'static str, spelling: &str) -> Self {
        let text = at.format(spelling).to_string();
        match excel_date_time(at) {
            Ok(serial) => Self::Date {
                serial: serial.to_excel(),
                format,
                text,
            },
            Err(_) => Self::Text(text),
        }
    }

    pub(in crate::generate) fn as_str(&self) -> &str {
        match self {
            Self::Empty => "",
            Self::Text(t) | Self::Number(_, t) | Self::Date { text: t, .. } => t,
            Self::Bool(true) => "TRUE",
            Self::Bool(false) => "FALSE",
        }
    }
}

/// Line ending of a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n` (the reference fixtures).
    Lf,
    /// `\r\n` (Windows instrument software).
    CrLf,
}

impl LineEnding {
    /// The bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lf => "\n",
            Self::CrLf => "\r\n",
        }
    }
}

/// A sheet: its name (XLSX) and rows; `header_row` is the index of the column-header row (the
/// rows before it are metadata a reader skips).
#[derive(Debug, Clone, PartialEq)]
pub(in crate::generate) struct Sheet {
    pub(in crate::generate) name: String,
    pub(in crate::generate) rows: Vec<Vec<Cell>>,
    pub(in crate::generate) header_row: usize,
}

/// RFC 4180 quoting: only when the value holds the delimiter, a quote or a line break.
fn quote(value: &str, delimiter: &str) -> String {
    if (!delimiter.is_empty() && value.contains(delimiter))
        || value.contains('"')
        || value.contains('\n')
        || value.contains('\r')
    {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The sheet as delimited text.
pub(super) fn delimited(sheet: &Sheet, delimiter: &str, line_ending: LineEnding) -> String {
    let mut out = String::new();
    for row in &sheet.rows {
        let cells: Vec<String> = row.iter().map(|c| quote(c.as_str(), delimiter)).collect();
        out.push_str(&cells.join(delimiter));
        out.push_str(line_ending.as_str());
    }
    out
}

/// The character set a label names (an Encoding Standard label such as `windows-1251`);
/// unknown labels and UTF-16 write UTF-8.
fn output_encoding(label: &str) -> &'static encoding_rs::Encoding {
    encoding_rs::Encoding::for_label(label.trim().as_bytes())
        .unwrap_or(encoding_rs::UTF_8)
        .output_encoding()
}

/// XML in the named character set (see [`output_encoding`]); characters the set cannot hold
/// become numeric character references, which XML reads back as the characters. Returns the
/// bytes and the canonical name written.
pub(super) fn encode(text: &str, label: &str) -> (Vec<u8>, &'static str) {
    let (bytes, used, _) = output_encoding(label).encode(text);
    (bytes.into_owned(), used.name())
}

/// Delimited text in the named character set (see [`output_encoding`]); characters the set
/// cannot hold become `?`, as a spreadsheet's "save as" does. A numeric character reference
/// (`&#946;`) would have held the `;` that ends a cell in a `;`-delimited file.
pub(super) fn encode_text(text: &str, label: &str) -> (Vec<u8>, &'static str) {
    let encoding = output_encoding(label);
    if encoding == encoding_rs::UTF_8 || text.is_ascii() {
        return (text.as_bytes().to_vec(), encoding.name());
    }
    let mut buffer = [0; 4];
    let holdable: String = text
        .chars()
        .map(|c| {
            // ASCII is in every output encoding; only the others need a look.
            let held = c.is_ascii() || !encoding.encode(c.encode_utf8(&mut buffer)).2;
            if held { c } else { '?' }
        })
        .collect();
    let (bytes, used, _) = encoding.encode(&holdable);
    (bytes.into_owned(), used.name())
}

fn excel_date_time(at: NaiveDateTime) -> Result<ExcelDateTime, rust_xlsxwriter::XlsxError> {
    let year = u16::try_from(at.year()).unwrap_or(0);
    ExcelDateTime::from_ymd(year, at.month() as u8, at.day() as u8)
        .and_then(|d| d.and_hms(at.hour() as u16, at.minute() as u8, f64::from(at.second())))
}

/// An XLSX workbook. The document's creation time is the generation clock, so a fixed clock gives
/// identical bytes.
pub(in crate::generate) fn xlsx(
    sheets: &[Sheet],
    now: NaiveDateTime,
) -> Result<Vec<u8>, GenerateError> {
    let err = |e: rust_xlsxwriter::XlsxError| GenerateError::Xlsx(e.to_string());
    let mut workbook = Workbook::new();
    let created = excel_date_time(now).map_err(err)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    for sheet in sheets {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(&sheet.name).map_err(err)?;
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = u32::try_from(r).map_err(|_| GenerateError::Xlsx("too many rows".into()))?;
            for (c, cell) in row.iter().enumerate() {
                let c =
                    u16::try_from(c).map_err(|_| GenerateError::Xlsx("too many columns".into()))?;
                match cell {
                    Cell::Empty => {}
                    Cell::Text(t) => {
                        worksheet.write_string(r, c, t.as_str()).map_err(err)?;
                    }
                    Cell::Number(n, _) => {
                        worksheet.write_number(r, c, *n).map_err(err)?;
                    }
                    Cell::Date { serial, format, .. } => {
                        let format = Format::new().set_num_format(*format);
                        worksheet
                            .write_number_with_format(r, c, *serial, &format)
                            .map_err(err)?;
                    }
                    Cell::Bool(b) => {
                        worksheet.write_boolean(r, c, *b).map_err(err)?;
                    }
                }
            }
        }
    }
    workbook.save_to_buffer().map_err(err)
}
