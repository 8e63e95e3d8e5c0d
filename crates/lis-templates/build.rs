//! Embeds the workspace's `templates/*.json` so the library (and the simulator) run anywhere.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // In the workspace the templates live at the top level; a packaged crate carries a copy in
    // `templates/` next to this file.
    let candidates = [manifest.join("../../templates"), manifest.join("templates")];
    let dir = candidates.iter().find(|d| d.is_dir());
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    if let Some(dir) = dir {
        println!("cargo:rerun-if-changed={}", dir.display());
        if let Ok(read) = std::fs::read_dir(dir) {
            for entry in read.flatten() {
                let path = entry.path();
                let is_json = path.extension().is_some_and(|e| e == "json");
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                if is_json && !name.is_empty() && !name.ends_with("schema") {
                    entries.push((name, path.canonicalize().unwrap_or(path)));
                }
            }
        }
    }
    entries.sort();
    let mut code = String::from("&[\n");
    for (name, path) in &entries {
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
