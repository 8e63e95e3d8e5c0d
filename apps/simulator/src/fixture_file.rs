//! `/simulate/file/{template}` for a template with a `fixture` (a real instrument export), as
//! the reference answers it: the export's results as `metadata`, and the export itself as the
//! file written or uploaded, since that is the layout the bridge's importer reads.

use std::borrow::Cow;
use std::path::Path;

use lis_templates::files::Fixture;
use lis_templates::{FileKind, FileOutput, Template};
use serde_json::{Map, Value, json};

use crate::app::App;

/// Largest export read from `--templates-dir` (instrument exports are kilobytes).
const MAX_FIXTURE_BYTES: u64 = 64 << 20;

/// Why a template's fixture cannot be served.
#[derive(Debug)]
pub(crate) enum FixtureError {
    /// No file under the path the template names (the reference's 404).
    Missing(String),
    /// The template's `fixture` key or the export cannot be read.
    Broken(String),
}

/// A template's fixture export and the reference's `metadata` for it.
pub(crate) struct FixtureFile {
    /// `{"analyzerName", "format", "fixture", "results": [{"sampleId", "result", "testCode"}]}`.
    pub(crate) metadata: Value,
    /// The export, named as in the template's `fixture.file` (`results.csv`).
    pub(crate) file: FileOutput,
}

impl FixtureFile {
    /// The fixture of `template`, `None` when it has none. The export is looked up under
    /// `--templates-dir` (the reference's layout, `fixtures/` beside `templates/`, then inside
    /// it), then among the embedded templates' fixtures.
    pub(crate) fn of(app: &App, template: &Template) -> Result<Option<Self>, FixtureError> {
        let fixture = match Fixture::of(template) {
            Ok(Some(fixture)) => fixture,
            Ok(None) => return Ok(None),
            Err(e) => return Err(FixtureError::Broken(e.to_string())),
        };
        let bytes = match app.cli.templates_dir.as_deref().and_then(|dir| {
            [dir.join("..").join(&fixture.file), dir.join(&fixture.file)]
                .into_iter()
                .find(|p| p.is_file())
        }) {
            Some(path) => Cow::Owned(read_capped(&path)?),
            None => Cow::Borrowed(
                fixture
                    .embedded_bytes()
                    .ok_or_else(|| FixtureError::Missing(fixture.file.clone()))?,
            ),
        };
        let results = fixture
            .results(&bytes)
            .map_err(|e| FixtureError::Broken(e.to_string()))?;
        let mut metadata = Map::new();
        metadata.insert("analyzerName".into(), json!(template.analyzer.name));
        metadata.insert("format".into(), json!(fixture.format));
        metadata.insert("fixture".into(), json!(fixture.file));
        metadata.insert(
            "results".into(),
            results.iter().map(|r| r.to_json()).collect(),
        );
        let file_name = Path::new(&fixture.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Some(Self {
            metadata: Value::Object(metadata),
            file: FileOutput {
                file_name,
                kind: fixture.kind(),
                bytes: bytes.into_owned(),
            },
        }))
    }

    /// The export as written to `target_dir`: a text export gets a line `\n{epoch_ms}`, as the
    /// reference appends it, so that the bridge's de-duplication by content hash does not drop
    /// a re-run.
    pub(crate) fn to_write(&self, name: String) -> FileOutput {
        let mut bytes = self.file.bytes.clone();
        if matches!(
            self.file.kind,
            FileKind::Csv | FileKind::Tsv | FileKind::Txt
        ) {
            bytes.extend_from_slice(
                format!("\n{}", chrono::Utc::now().timestamp_millis()).as_bytes(),
            );
        }
        FileOutput {
            file_name: name,
            kind: self.file.kind,
            bytes,
        }
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, FixtureError> {
    let cannot = |e: std::io::Error| FixtureError::Broken(format!("{}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_FIXTURE_BYTES {
        return Err(FixtureError::Broken(format!(
            "{}: {size} bytes; a fixture may have at most {MAX_FIXTURE_BYTES}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(cannot)
}
