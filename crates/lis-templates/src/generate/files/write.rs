//! Publishing a file into a folder an importer polls: write under a hidden temporary name, flush
//! to disk, then link or rename it into place, so the importer never sees half a file.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::sanitize;
use crate::FileError;
use crate::generate::FileOutput;

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |error| FileError::Io {
        path,
        action,
        error,
    }
}

/// End of the first `YYYYMMDD-HHMMSS-NNNN` token (date, time, four or more digits of sequence)
/// in `name`: the part the generated names put where the template's `file_pattern` has its `*`.
fn generated_part_end(name: &str) -> Option<usize> {
    const SHAPE: &[u8] = b"dddddddd-dddddd-dddd";
    let b = name.as_bytes();
    let fits = |i: usize| {
        b.len() >= i + SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(s, c)| {
                if *s == b'd' {
                    c.is_ascii_digit()
                } else {
                    c == s
                }
            })
    };
    let start = (0..b.len()).find(|&i| fits(i))?;
    let mut end = start + SHAPE.len();
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    Some(end)
}

/// The `n`-th alternative name. The `-n` goes right after the generated
/// `YYYYMMDD-HHMMSS-NNNN` part where the name has one, i.e. inside what the template's
/// `file_pattern` matches with its `*` (`tecan_…-0001_grid.csv` becomes
/// `tecan_…-0001-1_grid.csv`, still `tecan_*_grid.csv`); otherwise before the extension
/// (`stem-n.ext`).
fn numbered(name: &str, n: u32) -> String {
    if let Some(end) = generated_part_end(name) {
        return format!("{}-{n}{}", &name[..end], &name[end..]);
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}-{n}.{ext}"),
        None => format!("{name}-{n}"),
    }
}

/// Numbers the temporaries of one process, so that concurrent calls writing the same name never
/// share (and never delete) each other's temporary.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh hidden temporary for `name` in `dir`. A name already taken (a leftover of a
/// crashed process that had the same PID) is skipped, not reused or removed.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, fs::File), FileError> {
    let pid = std::process::id();
    let mut attempts = 0;
    loop {
        let n = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{pid}.{n}.tmp"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(f) => return Ok((temp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 1_000 => attempts += 1,
            Err(e) => return Err(io(&temp, "write")(e)),
        }
    }
}

/// Writes `file` into `dir` (created if missing) and returns the final path.
///
/// The bytes go to a hidden `.NAME.PID.N.tmp` first (N distinguishes concurrent calls), are
/// synced, and are then hard-linked (or, where the file system has no links, renamed) to the final
/// name, and the folder is synced; an existing file is never
/// overwritten — the name gets a `-1`, `-2`, … suffix instead, right after a generated
/// `YYYYMMDD-HHMMSS-NNNN` part (so the name still matches the template's `file_pattern`), else
/// before the extension. The file name is sanitised (ASCII letters, digits, `-`, `_`, `.`,
/// space; no leading dot).
pub fn write_output(file: &FileOutput, dir: &Path) -> Result<PathBuf, FileError> {
    let (temp, name) = write_temp(file, dir)?;
    let published = publish(&temp, dir, &name);
    let _ = fs::remove_file(&temp);
    sync_dir(dir);
    published
}

/// Like [`write_output`], but a file already under the name is replaced (atomically, by a
/// rename), as an exporter that overwrites its last result does. Whatever is under the name,
/// a symbolic link included, is replaced and never written through.
pub fn replace_output(file: &FileOutput, dir: &Path) -> Result<PathBuf, FileError> {
    let (temp, name) = write_temp(file, dir)?;
    let target = dir.join(name);
    let renamed = fs::rename(&temp, &target).map_err(io(&target, "rename into"));
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    sync_dir(dir);
    renamed.map(|()| target)
}

/// Makes the new name durable: without syncing the folder, a crash soon after can leave the
/// synced contents with no name (or the old file under it). Best effort: some platforms
/// cannot open a folder as a file, and the file itself is already written.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes and syncs `file` to a fresh temporary in `dir` (created if missing); returns the
/// temporary and the sanitised final name.
fn write_temp(file: &FileOutput, dir: &Path) -> Result<(PathBuf, String), FileError> {
    fs::create_dir_all(dir).map_err(|e| {
        // On an existing file the system says "File exists", which reads as if the folder
        // were there.
        let e = if dir.exists() && !dir.is_dir() {
            std::io::Error::other("it exists and is not a folder")
        } else {
            e
        };
        io(dir, "create folder")(e)
    })?;
    let name = sanitize(&file.file_name);
    let name = if name.is_empty() {
        "result".to_owned()
    } else {
        name
    };
    let (temp, mut f) = create_temp(dir, &name)?;
    let written = f.write_all(&file.bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io(&temp, "write")(e));
    }
    Ok((temp, name))
}

fn publish(temp: &Path, dir: &Path, name: &str) -> Result<PathBuf, FileError> {
    for n in 0..10_000 {
        let target = dir.join(if n == 0 {
            name.to_owned()
        } else {
            numbered(name, n)
        });
        match fs::hard_link(temp, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(_) if target.exists() => {}
            Err(_) => {
                fs::rename(temp, &target).map_err(io(&target, "rename into"))?;
                return Ok(target);
            }
        }
    }
    Err(FileError::Io {
        path: dir.join(name),
        action: "find a free name for",
        error: std::io::Error::from(ErrorKind::AlreadyExists),
    })
}
