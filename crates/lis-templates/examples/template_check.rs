//! `template_check [--profiles DIR] PATH...`
//!
//! Loads every template file given (directories: their `*.json` except `*schema.json`) and prints
//! one JSON line per file: `{"file":"...","ok":true}` or `{"file":"...","ok":false,"error":"..."}`.
//! Exits with status 1 when any file fails, 2 on bad usage.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use lis_templates::{Profiles, load_file, template_files};

fn quoted(path: &std::path::Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}

/// `{"file":…,"ok":false,"error":…}` with the keys in that order.
fn failure(path: &std::path::Path, error: &str) -> String {
    format!(
        "{{\"file\":{},\"ok\":false,\"error\":{}}}",
        quoted(path),
        serde_json::Value::String(error.to_owned())
    )
}

/// `println!` / `eprintln!` that cannot panic: they do when the write fails, as on a pipe whose
/// reader has gone (`template_check dir | head -1`). A line that cannot be written is dropped;
/// the exit status still says whether every file loaded.
macro_rules! say {
    (out, $($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
    (err, $($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let mut profiles = Profiles::None;
    let mut paths = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--profiles" {
            match args.next() {
                Some(dir) => profiles = Profiles::Dir(PathBuf::from(dir)),
                None => {
                    say!(err, "template_check: --profiles needs a directory");
                    return ExitCode::from(2);
                }
            }
        } else if arg == "-h" || arg == "--help" {
            say!(out, "usage: template_check [--profiles DIR] PATH...");
            return ExitCode::SUCCESS;
        } else {
            paths.push(PathBuf::from(arg));
        }
    }
    if paths.is_empty() {
        say!(err, "usage: template_check [--profiles DIR] PATH...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for path in paths {
        let files = if path.is_dir() {
            match template_files(&path) {
                Ok(files) => files,
                Err(e) => {
                    say!(out, "{}", failure(&path, &e.to_string()));
                    failed = true;
                    continue;
                }
            }
        } else {
            vec![path]
        };
        for file in files {
            let line = match load_file(&file, &profiles) {
                Ok(_) => format!("{{\"file\":{},\"ok\":true}}", quoted(&file)),
                Err(e) => {
                    failed = true;
                    failure(&file, &e.to_string())
                }
            };
            say!(out, "{line}");
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
