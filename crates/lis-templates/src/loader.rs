//! Loading templates: files, directories, strings and the embedded set; profile resolution;
//! schema validation.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::TemplateError;
use crate::generate::files::MAX_METADATA_ROWS;
use crate::model::{FieldType, NormalRange, Template};
use crate::schema;

/// Where `"profile"` references (e.g. `hl7/mindray-bc5380`) are resolved.
#[derive(Debug, Clone, Default)]
pub enum Profiles {
    /// No profiles: a profile-backed template is an error.
    #[default]
    None,
    /// An analyzer-profiles directory (`{dir}/hl7/mindray-bc5380.json`).
    Dir(PathBuf),
    /// Profiles already in memory, keyed by reference (`hl7/mindray-bc5380`).
    Map(BTreeMap<String, Value>),
}

impl Profiles {
    fn resolve(&self, reference: &str) -> Result<Value, String> {
        let relative = Path::new(reference);
        let safe = !reference.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(format!(
                "profile reference {reference:?} must be a relative path like \"hl7/mindray-bc5380\""
            ));
        }
        match self {
            Self::None => Err(format!(
                "template is profile-backed ({reference:?}) but no analyzer-profiles directory was given"
            )),
            Self::Map(map) => map
                .get(reference)
                .cloned()
                .ok_or_else(|| format!("profile {reference:?} not found")),
            Self::Dir(dir) => {
                let path = dir.join(format!("{reference}.json"));
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    // The reference names the file without its extension, which is added.
                    let hint = match reference.strip_suffix(".json") {
                        Some(bare) => format!(" (write the reference without .json: {bare:?})"),
                        None => String::new(),
                    };
                    format!(
                        "profile {reference:?}: cannot read {}: {e}{hint}",
                        path.display()
                    )
                })?;
                let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
                serde_json::from_str(text).map_err(|e| {
                    format!(
                        "profile {reference:?}: {} is not valid json: {e}",
                        path.display()
                    )
                })
            }
        }
    }
}

const QUALITATIVE_TYPES: [&str; 6] = ["qualitative", "ordinal", "nominal", "ord", "nom", "qual"];

/// Derives `fields` from a profile's `default_test_mappings`, as the mock's `profile_adapter` does:
/// qualitative types get `possibleValues` and a negative-leaning `seedQualitative`, numerics get
/// `seedValue` from `seedValues` or 0; then `fieldOverrides` are merged over each field. A
/// `seedValues` or `fieldOverrides` key that is not one of the profile's test codes is an error.
fn derive_fields(profile: &Value, template: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let mappings = profile
        .get("default_test_mappings")
        .and_then(Value::as_array)
        .ok_or("profile has no default_test_mappings array")?;
    let empty = Map::new();
    let seeds = template
        .get("seedValues")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let overrides = template
        .get("fieldOverrides")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut fields = Vec::with_capacity(mappings.len());
    for (i, mapping) in mappings.iter().enumerate() {
        let text = |key: &str| {
            mapping
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let code = text("test_code")
            .or_else(|| text("obx_identifier"))
            .or_else(|| text("analyzer_code"))
            .ok_or_else(|| format!("default_test_mappings[{i}] has no test_code"))?;
        let mut field = Map::new();
        field.insert("code".into(), code.into());
        field.insert("name".into(), text("test_name_hint").unwrap_or(code).into());
        if let Some(loinc) = text("loinc") {
            field.insert("loinc".into(), loinc.into());
        }
        field.insert(
            "unit".into(),
            mapping
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        );
        let result_type = text("result_type").unwrap_or("").to_ascii_lowercase();
        if QUALITATIVE_TYPES.contains(&result_type.as_str()) {
            let values: Vec<String> = match mapping.get("values").and_then(Value::as_array) {
                Some(v) if !v.is_empty() => v
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => vec!["DETECTED".into(), "NOT DETECTED".into()],
            };
            let seed = match seeds.get(code).and_then(Value::as_str) {
                Some(s) => s.to_owned(),
                None => values
                    .iter()
                    .find(|v| {
                        let up = v.to_ascii_uppercase();
                        up.contains("NOT DETECTED") || up == "NEGATIVE" || up == "NEG"
                    })
                    .or_else(|| values.last())
                    .cloned()
                    .unwrap_or_default(),
            };
            field.insert("type".into(), "QUALITATIVE".into());
            field.insert("possibleValues".into(), values.into());
            field.insert("seedQualitative".into(), seed.into());
        } else {
            field.insert("type".into(), "NUMERIC".into());
            let seed = seeds
                .get(code)
                .filter(|v| v.is_number())
                .cloned()
                .unwrap_or_else(|| Value::from(0));
            field.insert("seedValue".into(), seed);
        }
        if let Some(Value::Object(patch)) = overrides.get(code) {
            for (k, v) in patch {
                field.insert(k.clone(), v.clone());
            }
        }
        fields.push(Value::Object(field));
    }
    // A key naming no test of the profile is a typo that would otherwise be ignored silently.
    for (key, map) in [("seedValues", seeds), ("fieldOverrides", overrides)] {
        if let Some(code) = map.keys().find(|code| {
            !fields
                .iter()
                .any(|f| f.get("code").and_then(Value::as_str) == Some(code.as_str()))
        }) {
            let known: Vec<&str> = fields
                .iter()
                .filter_map(|f| f.get("code").and_then(Value::as_str))
                .collect();
            return Err(format!(
                "{key} names test {code:?}, which the profile does not have; its tests are {}",
                known.join(", ")
            ));
        }
    }
    Ok(fields)
}

/// A profile-backed template without `analyzer` gets one from the profile, as the mock's
/// `profile_adapter` builds it: `name` (and, since the schema requires one, `model`) from
/// `analyzer_name`, `manufacturer`, and `category` when it is one the schema allows. Nothing
/// happens when the profile cannot be resolved or has no `analyzer_name` and `manufacturer`:
/// the schema then reports the missing `analyzer`, and the profile is resolved (and its
/// errors reported) with the fields.
fn analyzer_from_profile(raw: &mut Value, profiles: &Profiles) {
    let Value::Object(object) = raw else {
        return;
    };
    if object.contains_key("analyzer") {
        return;
    }
    let Some(profile) = object
        .get("profile")
        .and_then(Value::as_str)
        .and_then(|reference| profiles.resolve(reference).ok())
    else {
        return;
    };
    let text = |key: &str| {
        profile
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let (Some(name), Some(manufacturer)) = (text("analyzer_name"), text("manufacturer")) else {
        return;
    };
    let mut analyzer = Map::new();
    analyzer.insert("name".into(), name.into());
    analyzer.insert("model".into(), name.into());
    analyzer.insert("manufacturer".into(), manufacturer.into());
    if let Some(category) = text("category").filter(|c| schema::is_analyzer_category(c)) {
        analyzer.insert("category".into(), category.into());
    }
    object.insert("analyzer".into(), Value::Object(analyzer));
}

fn json_error(file: &Path, e: &serde_json::Error) -> TemplateError {
    // serde_json ends its message with the position, which the error states already.
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let reason = message
        .strip_suffix(&position)
        .unwrap_or(&message)
        .to_owned();
    TemplateError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        reason,
    }
}

/// Parses, validates and types one template. `file` names the source in errors and gives the
/// template its name (the file stem).
///
/// # Errors
///
/// [`TemplateError::Json`] when `text` is not JSON, [`TemplateError::Schema`] (with the JSON
/// path) when it breaks the template schema, [`TemplateError::Profile`] when its `"profile"`
/// cannot be resolved in `profiles` or is unusable; each names `file`.
pub fn load_str(text: &str, file: &Path, profiles: &Profiles) -> Result<Template, TemplateError> {
    let schema_error = |path: String, reason: String| TemplateError::Schema {
        file: file.to_owned(),
        path,
        reason,
    };
    // Notepad saves UTF-8 with a byte-order mark; serde_json refuses it ("expected value at
    // line 1, column 1"), which points at nothing one can see. It is skipped, as the router
    // skips it in its config files.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw: Value = serde_json::from_str(text).map_err(|e| json_error(file, &e))?;
    analyzer_from_profile(&mut raw, profiles);
    if let Some(v) = schema::validate_template(&raw).into_iter().next() {
        return Err(schema_error(v.path, v.reason));
    }
    let Value::Object(object) = &mut raw else {
        return Err(schema_error("$".into(), "expected an object".into()));
    };
    if let Some(reference) = object
        .get("profile")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        let profile_error = |reason: String| TemplateError::Profile {
            file: file.to_owned(),
            reason,
        };
        let profile = profiles.resolve(&reference).map_err(profile_error)?;
        let fields = derive_fields(&profile, object)
            .map_err(|reason| profile_error(format!("profile {reference:?}: {reason}")))?;
        for (i, field) in fields.iter().enumerate() {
            let path = format!("$.fields[{i}] (derived from profile {reference:?})");
            if let Some(v) = schema::validate_field(field, &path).into_iter().next() {
                return Err(schema_error(v.path, v.reason));
            }
        }
        if fields.is_empty() {
            return Err(profile_error(format!(
                "profile {reference:?} yields no fields"
            )));
        }
        object.insert("fields".into(), Value::Array(fields));
    }
    // What the schema lets through but the typed model refuses (a negative baud rate, a data
    // bits count over 255) is reported at its JSON path too, not at `$`.
    let mut template: Template = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let path = match path.as_str() {
            "." => "$".to_owned(),
            p if p.starts_with('[') => format!("${p}"),
            p => format!("$.{p}"),
        };
        schema_error(path, e.into_inner().to_string())
    })?;
    if let Some(pattern) = &template.qc_sample_id_pattern
        && let Err(e) = qc_westgard_gen::SampleNamePattern::parse(pattern)
    {
        return Err(schema_error("$.qc_sample_id_pattern".into(), e.to_string()));
    }
    for (i, control) in template.qc_controls.iter().enumerate() {
        if let Some(target) = control.target
            && !target.is_finite()
        {
            return Err(schema_error(
                format!("$.qc_controls[{i}].target"),
                "must be finite".into(),
            ));
        }
    }
    if let Some(rows) = template.file_config.as_ref().and_then(|c| c.skip_rows)
        && u64::from(rows) > MAX_METADATA_ROWS
    {
        // Each row is written out: u32::MAX of them asked for 100 GB.
        return Err(schema_error(
            "$.file_config.skipRows".into(),
            format!(
                "{rows} metadata rows before the header; at most {MAX_METADATA_ROWS} are supported"
            ),
        ));
    }
    let sheet_names = [
        (
            "$.file_config.sheetName",
            template
                .file_config
                .as_ref()
                .and_then(|c| c.sheet_name.clone()),
        ),
        (
            "$.excelFormat.sheetName",
            template
                .extra
                .get("excelFormat")
                .and_then(|e| e.get("sheetName"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
    ];
    for (path, name) in sheet_names {
        if let Some(reason) = name.as_deref().and_then(sheet_name_problem) {
            return Err(schema_error(path.into(), reason));
        }
    }
    if let Some((path, reason)) = check_fields(&template) {
        return Err(schema_error(path, reason));
    }
    template.name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("template")
        .to_owned();
    Ok(template)
}

/// Why Excel would refuse `name` as a worksheet name, if it would (the XLSX writer refuses it
/// then, long after the template was loaded, without naming the template or the key).
fn sheet_name_problem(name: &str) -> Option<String> {
    let reason = if name.is_empty() {
        "is empty".to_owned()
    } else if name.chars().count() > 31 {
        format!("has {} characters; Excel allows 31", name.chars().count())
    } else if let Some(c) = name.chars().find(|c| "[]:*?/\\".contains(*c)) {
        format!("holds {c:?}, which Excel does not allow in a sheet name")
    } else if name.starts_with('\'') || name.ends_with('\'') {
        "begins or ends with an apostrophe, which Excel does not allow".to_owned()
    } else {
        return None;
    };
    Some(format!("sheet name {name:?} {reason}"))
}

/// What the schema cannot say about `fields` and `qc_controls`, as `(JSON path, reason)`: codes
/// are unique (a second field of the same code would never be reported), every `normalRange`
/// parses to a range values can be drawn from (a reversed, decimal-comma or garbage range was
/// silently ignored, and an overflowing one made generation panic), and every
/// `qc_controls[].field_code` names a field (a typo dropped the control from the output).
fn check_fields(template: &Template) -> Option<(String, String)> {
    let fields = &template.fields;
    for (i, field) in fields.iter().enumerate() {
        // An empty code is sent as `^^^` and matched by no order, QC control or test list.
        if field.code.trim().is_empty() {
            return Some((
                format!("$.fields[{i}].code"),
                format!(
                    "{:?} is empty; a field needs the analyzer's test code",
                    field.code
                ),
            ));
        }
        if let Some(j) = fields[..i].iter().position(|f| f.code == field.code) {
            return Some((
                format!("$.fields[{i}].code"),
                format!("duplicate field code {:?} (also $.fields[{j}])", field.code),
            ));
        }
        // An empty range means none, as in the reference. Only a number is drawn from or
        // flagged against a range: a qualitative or text field's (`NEGATIVE` for a rapid
        // test, any string to the OpenELIS schema) is reported as written.
        let Some(text) = field
            .normal_range
            .as_deref()
            .filter(|t| !t.trim().is_empty() && field.kind == FieldType::Numeric)
        else {
            continue;
        };
        let problem = match NormalRange::parse_checked(text) {
            Err(reason) => Some(reason),
            Ok(range) if range.draw_interval().is_none() => {
                Some("overflows: no value can be drawn from it".to_owned())
            }
            Ok(_) => None,
        };
        if let Some(reason) = problem {
            return Some((
                format!("$.fields[{i}].normalRange"),
                format!("field {:?}: normalRange {text:?} {reason}", field.code),
            ));
        }
    }
    template
        .qc_controls
        .iter()
        .enumerate()
        .find(|(_, c)| template.field(&c.field_code).is_none())
        .map(|(i, c)| {
            let codes: Vec<&str> = fields.iter().map(|f| f.code.as_str()).collect();
            (
                format!("$.qc_controls[{i}].field_code"),
                format!(
                    "{:?} names no field; the fields are {}",
                    c.field_code,
                    codes.join(", ")
                ),
            )
        })
}

/// Loads one template file.
///
/// # Errors
///
/// [`TemplateError::Io`] when the file cannot be read (or is not UTF-8), then those of
/// [`load_str`].
pub fn load_file(path: &Path, profiles: &Profiles) -> Result<Template, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|error| TemplateError::Io {
        file: path.to_owned(),
        error,
    })?;
    load_str(&text, path, profiles)
}

/// The template files of a directory: `*.json`, not `*schema.json`, sorted by name.
///
/// # Errors
///
/// [`TemplateError::Io`] (naming the directory) when it cannot be read.
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let read = std::fs::read_dir(dir).map_err(|error| TemplateError::Io {
        file: dir.to_owned(),
        error,
    })?;
    let mut files: Vec<PathBuf> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| !s.ends_with("schema"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A named set of templates.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

/// Templates compiled into the crate from the workspace's `templates/` directory.
static EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

impl TemplateSet {
    /// The templates compiled into this crate (the workspace's `templates/`). They are validated by
    /// the crate's tests, so this cannot fail in a released build; a broken one is reported as an
    /// error all the same.
    ///
    /// # Errors
    ///
    /// Those of [`load_str`], for a broken embedded template.
    pub fn embedded() -> Result<Self, TemplateError> {
        let mut set = Self::default();
        for (name, text) in EMBEDDED {
            let file = PathBuf::from(format!("templates/{name}.json"));
            set.insert(load_str(text, &file, &Profiles::None)?);
        }
        Ok(set)
    }

    /// The raw JSON of the embedded templates, by name.
    pub fn embedded_sources() -> impl Iterator<Item = (&'static str, &'static str)> {
        EMBEDDED.iter().copied()
    }

    /// Every template file of a directory; the first failure stops the load.
    ///
    /// # Errors
    ///
    /// Those of [`template_files`] and then of [`load_file`] for the first file that fails.
    pub fn load_dir(dir: &Path, profiles: &Profiles) -> Result<Self, TemplateError> {
        let mut set = Self::default();
        for file in template_files(dir)? {
            set.insert(load_file(&file, profiles)?);
        }
        Ok(set)
    }

    /// Adds (or replaces) a template under its name.
    pub fn insert(&mut self, template: Template) {
        self.templates.insert(template.name.clone(), template);
    }

    /// The template called `name` (its file stem, as [`names`](Self::names) lists).
    ///
    /// # Errors
    ///
    /// [`TemplateError::NotFound`] when there is none.
    pub fn get(&self, name: &str) -> Result<&Template, TemplateError> {
        self.templates
            .get(name)
            .ok_or_else(|| TemplateError::NotFound {
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            })
    }

    /// Names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Templates, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}
