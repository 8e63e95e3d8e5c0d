//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use lis_templates::{Profiles, Template, load_file};

pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openelis")
}

/// The bytes of a reference instrument export, `path` under `tests/data/fixtures`.
pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fixtures")
            .join(path),
    )
    .unwrap()
}

pub fn profiles() -> Profiles {
    Profiles::Dir(data().join("analyzer-profiles"))
}

pub fn reference_template(name: &str) -> Template {
    load_file(&data().join(format!("templates/{name}.json")), &profiles()).unwrap()
}

pub fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").unwrap()
}
