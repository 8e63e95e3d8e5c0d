//! The labels a QC result travels under: ASTM `Q.3`, HL7 specimen IDs, QC file sample names.

use crate::QcError;

/// One control: the analyte code, the control lot and its level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlId {
    /// Analyzer test code (e.g. `GLU`).
    pub field_code: String,
    /// Lot number (e.g. `LOT-GLU-N`).
    pub lot: String,
    /// Level as the lab names it (`N`, `NORMAL`, `LPC`, ...), passed through verbatim.
    pub level: String,
}

impl ControlId {
    /// A control from its three parts.
    pub fn new(
        field_code: impl Into<String>,
        lot: impl Into<String>,
        level: impl Into<String>,
    ) -> Self {
        Self {
            field_code: field_code.into(),
            lot: lot.into(),
            level: level.into(),
        }
    }

    /// ASTM `Q.3` as the OpenELIS GenericASTM convention and the bridge read it: `code^lot^level`,
    /// each part escaped for the recommended delimiters (`|\^&`), so that a `^` in a lot
    /// number cannot add a component.
    ///
    /// ```
    /// # use qc_westgard_gen::ControlId;
    /// assert_eq!(ControlId::new("GLU", "LOT-GLU-N", "NORMAL").astm_q3(), "GLU^LOT-GLU-N^NORMAL");
    /// assert_eq!(ControlId::new("GLU", "LOT^26", "N").astm_q3(), "GLU^LOT&S&26^N");
    /// ```
    pub fn astm_q3(&self) -> String {
        format!(
            "{}^{}^{}",
            astm_escape(&self.field_code),
            astm_escape(&self.lot),
            astm_escape(&self.level)
        )
    }

    /// HL7 QC specimen ID (ORC-2/3, OBR-2/3): `QC-{lot}-{level}`, as text, not escaped:
    /// unlike [`astm_q3`](Self::astm_q3), which builds components and so must escape its
    /// parts, this is one value, and the delimiters to escape it for are the message's
    /// (MSH-1 and MSH-2), which the caller knows. Escape it before putting it in a field,
    /// or a `^` in a lot number adds a component.
    ///
    /// ```
    /// # use qc_westgard_gen::ControlId;
    /// assert_eq!(ControlId::new("GLU", "LOT-GLU-N", "NORMAL").hl7_specimen_id(), "QC-LOT-GLU-N-NORMAL");
    /// assert_eq!(ControlId::new("GLU", "LOT^26", "N").hl7_specimen_id(), "QC-LOT^26-N");
    /// ```
    pub fn hl7_specimen_id(&self) -> String {
        format!("QC-{}-{}", self.lot, self.level)
    }
}

/// A QC file sample-name pattern with placeholders `{lot}`, `{level}`, `{field_code}` and `{task}`
/// (the template key `qc_sample_id_pattern`; default `QC-{lot}-{level}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleNamePattern {
    pattern: String,
}

const PLACEHOLDERS: [&str; 4] = ["lot", "level", "field_code", "task"];

impl SampleNamePattern {
    /// The default pattern, `QC-{lot}-{level}`.
    pub const DEFAULT: &'static str = "QC-{lot}-{level}";

    /// Checks every `{placeholder}` is known and every brace is closed.
    ///
    /// # Errors
    ///
    /// [`QcError::InvalidPattern`] for an unknown placeholder (the known ones are `{lot}`,
    /// `{level}`, `{field_code}` and `{task}`), an unterminated `{` or an unmatched `}`.
    ///
    /// ```
    /// # use qc_westgard_gen::{ControlId, SampleNamePattern};
    /// let pattern = SampleNamePattern::parse("{level}-{lot}-001").unwrap();
    /// let control = ControlId::new("VIH-1", "LOT-LPC-26B", "LPC");
    /// assert_eq!(pattern.render(&control, "STANDARD"), "LPC-LOT-LPC-26B-001");
    /// assert!(SampleNamePattern::parse("{colour}").is_err());
    /// ```
    pub fn parse(pattern: &str) -> Result<Self, QcError> {
        let invalid = |reason: String| QcError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let mut rest = pattern;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(invalid("unmatched '}'".into()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| invalid("unterminated '{'".into()))?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(invalid(format!(
                    "unknown placeholder {{{name}}}; known: {{lot}}, {{level}}, {{field_code}}, {{task}}"
                )));
            }
            rest = &after[close + 1..];
        }
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The sample name for one control and task. Substituted text is not scanned again, so a
    /// lot named `LOT{level}` stays as written.
    pub fn render(&self, control: &ControlId, task: &str) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 32);
        let mut rest = self.pattern.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            // `parse` checked that every brace closes on a known name.
            let close = after.find('}').unwrap_or(after.len());
            out.push_str(match &after[..close] {
                "lot" => &control.lot,
                "level" => &control.level,
                "field_code" => &control.field_code,
                "task" => task,
                other => other,
            });
            rest = after.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }
}

impl Default for SampleNamePattern {
    fn default() -> Self {
        Self {
            pattern: Self::DEFAULT.to_owned(),
        }
    }
}

/// `text` escaped for the recommended delimiters (`astm-records` does the escaping).
fn astm_escape(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    // The standard delimiters have an escape character, so every byte can be written.
    let _ = astm_records::escape_into(
        text.as_bytes(),
        &astm_records::Delimiters::STANDARD,
        &mut out,
    );
    String::from_utf8_lossy(&out).into_owned()
}
