//! Embeds the analyzer templates (`templates/*.json`) and the instrument exports they name as
//! fixtures (`templates/fixtures/`) so the library (and the simulator) run anywhere.
//!
//! `templates/` beside this file is, in the workspace, a symbolic link to the top-level
//! `templates/` (which `cargo package` follows, so a packaged crate carries real copies).
//! Without it (a checkout where symbolic links became plain files) the top-level folder is
//! read directly. Finding no template at all fails the build: a library that silently
//! embedded none would only fail at run time, in its users' hands.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let candidates = [manifest.join("templates"), manifest.join("../../templates")];
    let Some(dir) = candidates.iter().find(|d| d.is_dir()) else {
        panic!(
            "no analyzer templates: neither {} nor {} is a folder",
            candidates[0].display(),
            candidates[1].display()
        );
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = match templates_in(dir) {
        Ok(entries) if entries.is_empty() => {
            panic!("no analyzer templates (*.json) in {}", dir.display())
        }
        Ok(entries) => entries,
        Err(e) => panic!(
            "cannot list the analyzer templates in {}: {e}",
            dir.display()
        ),
    };
    write_table("embedded.rs", "include_str", &entries);
    let mut fixtures = Vec::new();
    if let Err(e) = files_under(&dir.join("fixtures"), "fixtures", &mut fixtures) {
        panic!("cannot list the fixtures in {}: {e}", dir.display());
    }
    fixtures.sort();
    write_table("embedded_fixtures.rs", "include_bytes", &fixtures);
}

/// Writes `OUT_DIR/name`: a slice of `(name, include(path))` for `entries`.
fn write_table(name: &str, include: &str, entries: &[(String, PathBuf)]) {
    let mut code = String::from("&[\n");
    for (entry, path) in entries {
        let _ = writeln!(
            code,
            "    ({entry:?}, {include}!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join(name);
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}

/// Every file under `dir` (none if it does not exist), named by its path from the templates'
/// folder with `/` between components (`fixtures/tecan-f50/results.csv`), as templates name
/// their fixtures.
fn files_under(dir: &Path, name: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let child = format!("{name}/{file}");
        if path.is_dir() {
            files_under(&path, &child, out)?;
        } else {
            let path = path.canonicalize().unwrap_or(path);
            out.push((child, path));
        }
    }
    Ok(())
}

/// The templates in `dir` by name (file stem), sorted; `*schema.json` files are not
/// templates.
fn templates_in(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_json = path.extension().is_some_and(|e| e == "json");
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if is_json && !name.is_empty() && !name.ends_with("schema") {
            let path = path.canonicalize().unwrap_or(path);
            entries.push((name, path));
        }
    }
    entries.sort();
    Ok(entries)
}
