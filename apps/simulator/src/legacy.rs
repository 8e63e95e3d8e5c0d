//! The reference's legacy `fields.json` generator: used by `--push` without `--template` (with
//! `--analyzer-type`) and by field queries on a port that has no template.

use anyhow::{Context, bail};
use rand::RngExt;
use serde::Deserialize;

/// `config/fields.json` of the reference, compiled in.
const FIELDS_JSON: &str = include_str!("../config/fields.json");

#[derive(Debug, Deserialize)]
struct LegacyField {
    name: String,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default, rename = "astmRef")]
    astm_ref: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default, rename = "normalRange")]
    normal_range: Option<String>,
    #[serde(default, rename = "possibleValues")]
    possible_values: Vec<String>,
}

/// The first category of `fields.json`, where the reference falls back to.
const FALLBACK_CATEGORY: &str = "HEMATOLOGY";

/// The fields of `category` (case ignored) and the category they belong to. An unknown
/// category falls back to the first of `fields.json` with a warning, as the reference does
/// (`--analyzer-type MOLECULAR` sends the HEMATOLOGY message there).
fn fields(category: &str) -> anyhow::Result<(String, Vec<LegacyField>)> {
    let mut all: std::collections::BTreeMap<String, Vec<LegacyField>> =
        serde_json::from_str(FIELDS_JSON).context("embedded fields.json")?;
    let key = category.to_ascii_uppercase();
    if let Some(f) = all.remove(&key) {
        return Ok((key, f));
    }
    tracing::warn!(
        "analyzer type {category:?} is not in fields.json (known: {}); using {FALLBACK_CATEGORY}",
        all.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    match all.remove(FALLBACK_CATEGORY) {
        Some(f) => Ok((FALLBACK_CATEGORY.to_owned(), f)),
        None => bail!("embedded fields.json has no {FALLBACK_CATEGORY} category"),
    }
}

fn analyzer_name(category: &str) -> String {
    match category.to_ascii_uppercase().as_str() {
        "HEMATOLOGY" => "Sysmex^XN-1000^V1.0".into(),
        "CHEMISTRY" => "Beckman^AU5800^V2.1".into(),
        "IMMUNOLOGY" => "Roche^Cobas^V1.5".into(),
        "MICROBIOLOGY" => "BD^Phoenix^V2.0".into(),
        other => format!("MockAnalyzer^{other}^1.0"),
    }
}

fn panel(category: &str) -> String {
    match category.to_ascii_uppercase().as_str() {
        "HEMATOLOGY" => "CBC".into(),
        "CHEMISTRY" => "CHEM".into(),
        other => other.to_owned(),
    }
}

fn test_id(field: &LegacyField) -> String {
    let base = field
        .astm_ref
        .clone()
        .unwrap_or_else(|| format!("^^^{}", field.name));
    match (
        &field.display_name,
        base.trim_start_matches('^').contains('^'),
    ) {
        (Some(d), false) => format!("{base}^{d}"),
        _ => base,
    }
}

/// The test id of a field-query reply: `astmRef` as it is (`^^^WBC`), else `^^^name`, with
/// `^displayName` only when `astmRef` has no `^` at all (the reference's wire:
/// `R|1|^^^WBC||10^3/μL|||NUMERIC`).
fn query_test_id(field: &LegacyField) -> String {
    match (&field.astm_ref, &field.display_name) {
        (Some(r), Some(d)) if !r.contains('^') => format!("{r}^{d}"),
        (Some(r), _) => r.clone(),
        (None, _) => format!("^^^{}", field.name),
    }
}

/// The field-query reply without a template (§2.6 of the reference notes): H, one R per field
/// with its unit and type, L. Records are returned without terminators.
pub(crate) fn field_query_reply(category: &str) -> anyhow::Result<Vec<String>> {
    let mut records = vec!["H|\\^&|||MockAnalyzer^ASTM-Mock^1.0|||||||LIS2-A2".to_owned()];
    let (_, fields) = fields(category)?;
    for (i, f) in fields.iter().enumerate() {
        records.push(format!(
            "R|{}|{}||{}|||{}",
            i + 1,
            query_test_id(f),
            f.unit.clone().unwrap_or_default(),
            f.kind.clone().unwrap_or_else(|| "NUMERIC".into())
        ));
    }
    records.push("L|1|N".into());
    Ok(records)
}

/// A result message from the `fields.json` category: H, P, O, one R per field, L.
pub(crate) fn message(
    category: &str,
    accession: &str,
    now: chrono::NaiveDateTime,
    rng: &mut impl rand::Rng,
) -> anyhow::Result<Vec<String>> {
    let ts = now.format("%Y%m%d%H%M%S").to_string();
    let (category, fields) = fields(category)?;
    let category = category.as_str();
    let mut records = vec![
        format!("H|\\^&|||{}|||||||LIS2-A2|{ts}", analyzer_name(category)),
        format!(
            "P|1||PAT-{}-{:03}|DOE^JANE||F|19800101",
            now.format("%Y%m%d"),
            rng.random_range(1..1000)
        ),
        format!("O|1|{accession}^LAB|{}||{ts}", panel(category)),
    ];
    for (i, f) in fields.iter().enumerate() {
        let kind = f.kind.clone().unwrap_or_else(|| "NUMERIC".into());
        let value = match kind.as_str() {
            "NUMERIC" => {
                let (lo, hi) = f
                    .normal_range
                    .as_deref()
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, b)| {
                        Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?))
                    })
                    .filter(|(a, b)| b > a)
                    .unwrap_or((1.0, 100.0));
                format!("{:.2}", rng.random_range(lo..hi))
            }
            "QUALITATIVE" if !f.possible_values.is_empty() => {
                f.possible_values[rng.random_range(0..f.possible_values.len())].clone()
            }
            _ => format!(
                "Sample result for {}",
                f.display_name.as_deref().unwrap_or(&f.name)
            ),
        };
        records.push(format!(
            "R|{}|{}|{value}|{}|{}|N||F|{ts}",
            i + 1,
            test_id(f),
            f.unit.clone().unwrap_or_default(),
            f.normal_range.clone().unwrap_or_default()
        ));
    }
    records.push("L|1|N".into());
    Ok(records)
}
