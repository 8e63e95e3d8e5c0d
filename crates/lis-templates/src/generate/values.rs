//! Choosing and spelling result values.

use qc_westgard_gen::{Category, Deviation, decimals_for_sd, python_round, round_to, sd_for};
use rand::RngExt;
use serde_json::Number;

use super::{Generator, Layout, ValueMode};
use crate::GenerateError;
use crate::model::{Field, FieldType, NormalRange, QcControl};

/// A result value: its text and, for numbers, the number.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ResultValue {
    pub(super) text: String,
    pub(super) number: Option<f64>,
}

/// Python's `str(float)`: the shortest round-trip digits, whole numbers with `.0`.
pub(super) fn python_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The shortest round-trip digits, whole numbers without a decimal point.
pub(super) fn plain_number(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else {
        format!("{v}")
    }
}

/// A template number as the reference prints it on the ASTM path (`str()` of the JSON value:
/// `198` stays `198`, `198.0` stays `198.0`).
pub(super) fn json_number(n: &Number) -> String {
    n.to_string()
}

/// A template number as the reference prints it on the HL7 path (whole floats as integers).
pub(super) fn hl7_number(n: &Number) -> String {
    match n.as_f64() {
        Some(v) if n.is_f64() && v.fract() == 0.0 && v.abs() < 1e16 => format!("{v:.0}"),
        _ => n.to_string(),
    }
}

/// Every field whose `normalRange` parses must have a finite draw interval: the loader refuses
/// such templates, but a [`Template`](crate::Template)'s fields are public and can be changed
/// after loading, so generation checks again and answers with an error instead of drawing.
/// Where a field with neither range nor seed value draws from: what its unit can hold
/// (a Ct of 81 is no PCR's), else 1–100.
fn unit_interval(unit: &str) -> (f64, f64) {
    match unit.trim().to_ascii_lowercase().as_str() {
        // PCR cycle thresholds: a positive comes up within the usual 40 to 45 cycles.
        "ct" | "cp" | "cycles" => (15.0, 38.0),
        // Optical densities of an ELISA plate reader.
        "od" | "abs" => (0.03, 3.0),
        // Signal to cut-off ratios.
        "s/co" | "coi" | "index" => (0.1, 10.0),
        "copies/ml" | "cp/ml" | "iu/ml" => (50.0, 1_000_000.0),
        "%" => (0.0, 100.0),
        _ => (1.0, 100.0),
    }
}

pub(super) fn check_draw_intervals(template: &crate::Template) -> Result<(), GenerateError> {
    for field in &template.fields {
        if let Some(range) = field.range()
            && range.draw_interval().is_none()
        {
            return Err(GenerateError::InvalidField {
                template: template.name.clone(),
                field: field.code.clone(),
                reason: format!(
                    "normalRange {:?} overflows: no value can be drawn from it",
                    field.normal_range.as_deref().unwrap_or("")
                ),
            });
        }
    }
    Ok(())
}

/// Which output path asks for a value; the reference spells values differently per path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    Astm,
    Hl7,
    File,
}

impl Generator<'_> {
    /// A uniform draw in `lo..hi`. `random_range` panics on an interval whose ends or width are
    /// not finite; such an interval is refused by [`Generator::new`] (see [`check_draw_intervals`]),
    /// and is answered with `lo` here all the same so that no input can make generation panic.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi > lo && lo.is_finite() && hi.is_finite() && (hi - lo).is_finite() {
            self.rng.rng().random_range(lo..hi)
        } else {
            lo
        }
    }

    /// A value inside the field's normal range, so flagged `N`. It is rounded to two decimals
    /// as the reference does, or to as many more (up to six) as bounds such as `0.001-0.004`
    /// need to keep it inside: two decimals would give 0 or 0.01, both flagged.
    fn drawn_in_range(&mut self, field: &Field) -> f64 {
        let range = field.range();
        let (lo, hi) = range
            .and_then(NormalRange::draw_interval)
            .unwrap_or_else(|| unit_interval(field.unit_str()));
        let v = self.uniform(lo, hi);
        let normal = |value: f64| range.is_none_or(|r| r.flag(value) == "N");
        (2..=6)
            .map(|decimals| self.round(v, decimals))
            .find(|&rounded| normal(rounded))
            .unwrap_or(v)
    }

    /// Two decimals: Python's rounding in the OpenELIS layout, decimal half-up otherwise.
    fn round2(&self, v: f64) -> f64 {
        self.round(v, 2)
    }

    fn round(&self, v: f64, decimals: u32) -> f64 {
        if self.layout == Layout::OpenElis {
            python_round(v, decimals)
        } else {
            round_to(v, decimals)
        }
    }

    fn category(&self) -> Option<Category> {
        self.template.analyzer.category
    }

    /// The value of `field` for a patient result.
    pub(super) fn field_value(&mut self, field: &Field, path: Path) -> ResultValue {
        let openelis = self.layout == Layout::OpenElis;
        match field.kind {
            FieldType::Numeric => {
                let seed = field.seed_value.as_ref();
                match (self.values, seed) {
                    (ValueMode::Template, Some(n)) => {
                        let text = match (openelis, path) {
                            (true, Path::Hl7) => hl7_number(n),
                            (true, _) => json_number(n),
                            (false, _) => plain_number(n.as_f64().unwrap_or(0.0)),
                        };
                        ResultValue {
                            text,
                            number: n.as_f64(),
                        }
                    }
                    (ValueMode::Template, None) if openelis && path == Path::Hl7 => ResultValue {
                        text: "0".into(),
                        number: Some(0.0),
                    },
                    (ValueMode::Random, Some(n)) => {
                        let target = n.as_f64().unwrap_or(0.0);
                        let sd = sd_for(target, None, self.category());
                        let drawn = self.rng.value(target, sd, Deviation::Random);
                        let mut v = self.round2(drawn);
                        if target >= 0.0 && v < 0.0 {
                            v = 0.0;
                        }
                        self.number_value(v)
                    }
                    _ => {
                        let v = self.drawn_in_range(field);
                        self.number_value(v)
                    }
                }
            }
            FieldType::Qualitative => {
                let first = field.possible_values.first().cloned();
                let text = match self.values {
                    ValueMode::Template if openelis && path == Path::Hl7 => first,
                    ValueMode::Template => field.seed_qualitative.clone().or(first),
                    ValueMode::Random if !field.possible_values.is_empty() => {
                        let i = self.rng.rng().random_range(0..field.possible_values.len());
                        Some(field.possible_values[i].clone())
                    }
                    ValueMode::Random => field.seed_qualitative.clone(),
                };
                // Neither possibleValues nor a seed: the reference's defaults, NEGATIVE on HL7
                // and POSITIVE or NEGATIVE at random on ASTM (its `possibleValues` fallbacks).
                let text = match (text, path) {
                    (Some(text), _) => text,
                    (None, Path::Hl7) => "NEGATIVE".to_owned(),
                    (None, Path::Astm) => {
                        const DEFAULTS: [&str; 2] = ["POSITIVE", "NEGATIVE"];
                        let i = self.rng.rng().random_range(0..DEFAULTS.len());
                        DEFAULTS[i].to_owned()
                    }
                    (None, Path::File) => String::new(),
                };
                ResultValue { text, number: None }
            }
            FieldType::Text => {
                let text = match (&field.seed_value, path) {
                    (Some(n), _) => n.to_string(),
                    (None, Path::Astm) if openelis => format!("Sample result for {}", field.name),
                    (None, _) => format!("Result for {}", field.code),
                };
                ResultValue { text, number: None }
            }
        }
    }

    fn number_value(&self, v: f64) -> ResultValue {
        let text = if self.layout == Layout::OpenElis {
            python_float(v)
        } else {
            plain_number(v)
        };
        ResultValue {
            text,
            number: Some(v),
        }
    }

    /// The value of a QC control. ASTM in the OpenELIS layout takes the SD from the category table
    /// and clamps negatives to 0; HL7 and files in that layout take the control's `sd` (default 0)
    /// and do not clamp, as the reference does. The standard layout uses the control's `sd`, else
    /// the category table, and clamps negatives to 0 everywhere.
    pub(super) fn qc_value(&mut self, control: &QcControl, path: Path) -> ResultValue {
        let field = self.template.field(&control.field_code).cloned();
        let target = match (
            control.target,
            field.as_ref().and_then(|f| f.seed_value.as_ref()),
        ) {
            (Some(t), _) => t,
            (None, Some(n)) => n.as_f64().unwrap_or(0.0),
            (None, None) => field.as_ref().map_or(50.0, |f| self.drawn_in_range(f)),
        };
        let openelis = self.layout == Layout::OpenElis;
        let sd = match (openelis, path) {
            (true, Path::Astm) => target.abs() * Category::sd_fraction(self.category()),
            (true, _) => control.sd.unwrap_or(0.0),
            (false, _) => sd_for(target, control.sd, self.category()),
        };
        let deviation = match self.qc_deviation {
            // The mock's ASTM path shifts only a non-zero target (its SD is a share of the
            // target, so zero anyway); its HL7 and FILE paths, and ours, always shift.
            Some(_) if openelis && path == Path::Astm && target == 0.0 => Deviation::Shift(0.0),
            Some(k) => Deviation::Shift(k),
            None => Deviation::Random,
        };
        let drawn = self.rng.value(target, sd, deviation);
        // The reference rounds to 2 decimals whatever the SD; a control at 0.05 ± 0.004
        // would then read 0.06 for k = 2 and for k = 3 alike (z 2.5).
        let mut v = if openelis {
            self.round2(drawn)
        } else {
            // Adding 0.0 turns the -0.0 that rounds from a tiny negative value (written
            // `-0.00`, which the clamp below lets through) into 0.
            round_to(drawn, decimals_for_sd(sd, 2)) + 0.0
        };
        let clamp = !openelis || path == Path::Astm;
        if clamp && v < 0.0 {
            v = 0.0;
        }
        self.number_value_qc(v)
    }

    /// [`Self::qc_value`] for messages: a value that is not a finite number (a target and SD
    /// so large that target + k × SD overflows) is an error naming the control's field, where
    /// it was written as `inf` into the result (files check their sheets the same way).
    pub(super) fn qc_value_checked(
        &mut self,
        control: &QcControl,
        path: Path,
    ) -> Result<ResultValue, GenerateError> {
        let value = self.qc_value(control, path);
        match value.number {
            Some(n) if !n.is_finite() => Err(GenerateError::InvalidField {
                template: self.template.name.clone(),
                field: control.field_code.clone(),
                reason: format!(
                    "the QC value would be {n}, not a finite number; check the qc_controls \
                     target and sd"
                ),
            }),
            _ => Ok(value),
        }
    }

    fn number_value_qc(&self, v: f64) -> ResultValue {
        let text = if self.layout == Layout::OpenElis {
            python_float(v)
        } else {
            plain_number(v)
        };
        ResultValue {
            text,
            number: Some(v),
        }
    }
}
