//! Replaying a real instrument export with fresh accessions.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use calamine::{Data, Reader};
use chrono::NaiveDateTime;

use super::file_name;
use super::layouts::looks_like_accession;
use super::table::{Cell, Sheet, xlsx};
use crate::GenerateError;
use crate::accession::{AccessionMinter, Lane};
use crate::generate::FileOutput;
use crate::model::{FileKind, Template};

/// A replayed fixture: the new file and which accession replaced which.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReplayedFile {
    /// The rewritten file (CSV/TSV/TXT as text, byte for byte apart from the accessions;
    /// XLSX/XLS as an XLSX workbook with the same sheets and cells).
    pub file: FileOutput,
    /// `(old, new)` pairs in order of first appearance. Every occurrence of an old accession gets
    /// the same new one, so multi-row samples stay together; control rows are untouched.
    pub replaced: Vec<(String, String)>,
}

/// Mints one fresh accession per distinct old one, on the old one's lane, never one the fixture
/// already holds (a new counter would otherwise hand the fixture's own numbers back).
struct Renamer<'a> {
    minter: &'a AccessionMinter,
    map: BTreeMap<String, String>,
    order: Vec<(String, String)>,
    existing: BTreeSet<String>,
}

/// Byte ranges of accession-shaped tokens (prefix + 15 digits, not inside a longer word). Works
/// on bytes, so text in any ASCII-compatible character set (UTF-8, Windows code pages) is
/// searched alike.
fn accession_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i + 20 <= b.len() {
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let ends = i + 20 == b.len() || !b[i + 20].is_ascii_alphanumeric();
        if starts && ends && std::str::from_utf8(&b[i..i + 20]).is_ok_and(looks_like_accession) {
            spans.push((i, i + 20));
            i += 20;
        } else {
            i += 1;
        }
    }
    spans
}

impl Renamer<'_> {
    fn note_existing(&mut self, text: &[u8]) {
        for (a, b) in accession_spans(text) {
            // The span is ASCII (checked by `accession_spans`).
            self.existing
                .insert(String::from_utf8_lossy(&text[a..b]).into_owned());
        }
    }

    fn fresh(&mut self, old: &str) -> Result<String, GenerateError> {
        if let Some(new) = self.map.get(old) {
            return Ok(new.clone());
        }
        let lane = Lane::parse(&old[7..9], "fixture accession")?;
        let mut new = self.minter.mint(lane)?;
        while self.existing.contains(&new) {
            new = self.minter.mint(lane)?;
        }
        self.map.insert(old.to_owned(), new.clone());
        self.order.push((old.to_owned(), new.clone()));
        Ok(new)
    }

    /// Replaces every accession-shaped token; every other byte is kept.
    fn rewrite_bytes(&mut self, text: &[u8]) -> Result<Vec<u8>, GenerateError> {
        let mut out = Vec::with_capacity(text.len());
        let mut last = 0;
        for (a, b) in accession_spans(text) {
            out.extend_from_slice(&text[last..a]);
            let old = String::from_utf8_lossy(&text[a..b]).into_owned();
            out.extend_from_slice(self.fresh(&old)?.as_bytes());
            last = b;
        }
        out.extend_from_slice(&text[last..]);
        Ok(out)
    }

    /// [`Renamer::rewrite_bytes`] for text.
    fn rewrite(&mut self, text: &str) -> Result<String, GenerateError> {
        let bytes = self.rewrite_bytes(text.as_bytes())?;
        // ASCII replaced ASCII at ASCII boundaries, so the text is still UTF-8.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A date, time or duration cell as a cell of the same kind in the written (1900-epoch) workbook.
/// Without a date number format a reader would see the bare serial number.
fn date_cell(d: &calamine::ExcelDateTime) -> Cell {
    let value = d.as_f64();
    if d.is_duration() {
        return Cell::Date {
            serial: value,
            format: "[h]:mm:ss",
            text: format!("{value}"),
        };
    }
    if (0.0..1.0).contains(&value) {
        // A time of day: the same fraction in either epoch.
        let (_, _, _, h, m, s, _) = d.to_ymd_hms_milli();
        return Cell::Date {
            serial: value,
            format: "hh:mm:ss",
            text: format!("{h:02}:{m:02}:{s:02}"),
        };
    }
    // Through the calendar date, so that a 1904-epoch workbook's dates keep their day.
    let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
    let serial = rust_xlsxwriter::ExcelDateTime::from_ymd(y, mo, da)
        .and_then(|t| t.and_hms_milli(u16::from(h), mi, s, ms))
        .map_or(value, |t| t.to_excel());
    let (format, text) = if value.fract() == 0.0 {
        ("yyyy-mm-dd", format!("{y:04}-{mo:02}-{da:02}"))
    } else {
        (
            "yyyy-mm-dd hh:mm:ss",
            format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}"),
        )
    };
    Cell::Date {
        serial,
        format,
        text,
    }
}

/// Most cells a replayed sheet may span, counted as the grid from A1 to its last row and
/// column (the grid the replay reads and writes): far beyond any instrument export (a 384-well
/// plate's results are some 20,000), and small enough to hold in memory.
const MAX_REPLAY_CELLS: u64 = 1_000_000;

/// Refuses a sheet whose cells span more than [`MAX_REPLAY_CELLS`]. The extent comes from the
/// cells themselves, read one at a time: reading the sheet as a grid first allocates the grid,
/// and one value in A1 and one in XFD1048576 (a few hundred bytes of file) asked for 17 billion
/// cells, which aborted the process.
fn check_extent<RS: std::io::Read + std::io::Seek>(
    book: &mut calamine::Xlsx<RS>,
    sheet: &str,
    fixture_name: &str,
) -> Result<(), GenerateError> {
    let cannot_read =
        |e: calamine::XlsxError| invalid(format!("{fixture_name}: sheet {sheet}: {e}"));
    let mut cells = match book.worksheet_cells_reader(sheet) {
        Ok(cells) => cells,
        // A chart sheet: no cells (the grid read skips it the same way).
        Err(calamine::XlsxError::NotAWorksheet(_)) => return Ok(()),
        Err(e) => return Err(cannot_read(e)),
    };
    let (mut rows, mut columns) = (0_u64, 0_u64);
    while let Some(cell) = cells.next_cell().map_err(cannot_read)? {
        if matches!(cell.get_value(), calamine::DataRef::Empty) {
            continue;
        }
        let (row, column) = cell.get_position();
        rows = rows.max(u64::from(row) + 1);
        columns = columns.max(u64::from(column) + 1);
    }
    extent_within_limit(rows, columns, sheet, fixture_name)
}

fn extent_within_limit(
    rows: u64,
    columns: u64,
    sheet: &str,
    fixture_name: &str,
) -> Result<(), GenerateError> {
    if rows * columns > MAX_REPLAY_CELLS {
        return Err(invalid(format!(
            "{fixture_name}: sheet {sheet} spans {rows} rows by {columns} columns from A1 \
             ({} cells); a replayed sheet may span at most {MAX_REPLAY_CELLS}",
            rows * columns
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> GenerateError {
    GenerateError::InvalidOption {
        option: "fixture",
        reason,
    }
}

/// Rewrites a real export (`fixture_name` tells the format by its extension: `.csv`, `.tsv`,
/// `.txt`, `.xlsx`, `.xls`) with fresh SiteYearNum accessions from `minter`, keeping everything
/// else — control rows, metadata, values. Legacy `.xls` is written back as XLSX. The file name
/// follows the template's `file_pattern` like generated files.
pub fn replay_fixture(
    template: &Template,
    fixture_name: &str,
    bytes: &[u8],
    minter: &AccessionMinter,
    sequence: u32,
    now: Option<NaiveDateTime>,
) -> Result<ReplayedFile, GenerateError> {
    let now = now.unwrap_or_else(|| chrono::Local::now().naive_local());
    let stamp = now.format("%Y%m%d-%H%M%S").to_string();
    let ext = fixture_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mut renamer = Renamer {
        minter,
        map: BTreeMap::new(),
        order: Vec::new(),
        existing: BTreeSet::new(),
    };
    let file = match ext.as_str() {
        "csv" | "tsv" | "txt" => {
            let kind = match ext.as_str() {
                "tsv" => FileKind::Tsv,
                "txt" => FileKind::Txt,
                _ => FileKind::Csv,
            };
            // Bytes, not text: exports in a Windows code page are kept byte for byte too.
            renamer.note_existing(bytes);
            FileOutput {
                file_name: file_name(template, &stamp, sequence, "", &ext),
                kind,
                bytes: renamer.rewrite_bytes(bytes)?,
            }
        }
        "xlsx" | "xls" | "xlsm" => {
            let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec()))
                .map_err(|e| invalid(format!("{fixture_name}: cannot read workbook: {e}")))?;
            if let calamine::Sheets::Xlsx(xlsx) = &mut book {
                for name in xlsx.sheet_names() {
                    check_extent(xlsx, &name, fixture_name)?;
                }
            }
            let mut ranges = Vec::new();
            for name in book.sheet_names() {
                let range = book
                    .worksheet_range(&name)
                    .map_err(|e| invalid(format!("{fixture_name}: sheet {name}: {e}")))?;
                // Legacy .xls is read whole at open (bounded by its 65,536 x 256 cells); the
                // grid below must stay within the limit all the same.
                if let Some((row, column)) = range.end() {
                    extent_within_limit(
                        u64::from(row) + 1,
                        u64::from(column) + 1,
                        &name,
                        fixture_name,
                    )?;
                }
                for cell in range.used_cells() {
                    if let (_, _, Data::String(s)) = cell {
                        renamer.note_existing(s.as_bytes());
                    }
                }
                ranges.push((name, range));
            }
            let mut sheets = Vec::new();
            for (name, range) in ranges {
                let (row0, col0) = range.start().unwrap_or((0, 0));
                let mut rows: Vec<Vec<Cell>> = vec![Vec::new(); row0 as usize];
                for data in range.rows() {
                    let mut row = vec![Cell::Empty; col0 as usize];
                    for cell in data {
                        row.push(match cell {
                            Data::Empty => Cell::Empty,
                            Data::String(s) => Cell::Text(renamer.rewrite(s)?),
                            Data::Float(f) => Cell::number(*f),
                            Data::Int(i) => Cell::number(*i as f64),
                            Data::Bool(b) => Cell::Bool(*b),
                            Data::DateTime(d) => date_cell(d),
                            Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::text(s.clone()),
                            Data::Error(e) => Cell::text(e.to_string()),
                        });
                    }
                    rows.push(row);
                }
                sheets.push(Sheet {
                    name,
                    rows,
                    header_row: 0,
                });
            }
            FileOutput {
                file_name: file_name(template, &stamp, sequence, "", "xlsx"),
                kind: FileKind::Xlsx,
                bytes: xlsx(&sheets, now)?,
            }
        }
        other => {
            return Err(invalid(format!(
                "{fixture_name}: cannot replay .{other} files (csv, tsv, txt, xlsx, xls)"
            )));
        }
    };
    Ok(ReplayedFile {
        file,
        replaced: renamer.order,
    })
}
