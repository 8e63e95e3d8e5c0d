//! Analyzer categories and the SD each implies when a control has no SD of its own.

use crate::QcError;
use std::fmt;
use std::str::FromStr;

/// The analyzer category of an OpenELIS template (`analyzer.category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Category {
    /// Blood counts.
    Hematology,
    /// Clinical chemistry.
    Chemistry,
    /// Immunoassays.
    Immunology,
    /// Microbiology.
    Microbiology,
    /// Molecular (PCR) assays.
    Molecular,
    /// Coagulation.
    Coagulation,
}

impl Category {
    /// All categories, in schema order.
    pub const ALL: [Self; 6] = [
        Self::Hematology,
        Self::Chemistry,
        Self::Immunology,
        Self::Microbiology,
        Self::Molecular,
        Self::Coagulation,
    ];

    /// The schema spelling (`HEMATOLOGY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hematology => "HEMATOLOGY",
            Self::Chemistry => "CHEMISTRY",
            Self::Immunology => "IMMUNOLOGY",
            Self::Microbiology => "MICROBIOLOGY",
            Self::Molecular => "MOLECULAR",
            Self::Coagulation => "COAGULATION",
        }
    }

    /// SD as a fraction of the target when a control has no `sd`: hematology and chemistry 5 %,
    /// molecular and immunology 10 %, coagulation 8 %, anything else 5 % (the OpenELIS mock's table).
    pub fn sd_fraction(category: Option<Self>) -> f64 {
        match category {
            Some(Self::Molecular | Self::Immunology) => 0.10,
            Some(Self::Coagulation) => 0.08,
            Some(Self::Hematology | Self::Chemistry | Self::Microbiology) | None => 0.05,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = QcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| QcError::UnknownCategory { name: s.to_owned() })
    }
}

/// The SD of a control: its explicit `sd` when given and positive, else `|target| ×` the category's
/// fraction ([`Category::sd_fraction`]).
///
/// ```
/// use qc_westgard_gen::{Category, sd_for};
/// assert_eq!(sd_for(1250.0, None, Some(Category::Molecular)), 125.0);
/// assert_eq!(sd_for(100.0, Some(5.0), Some(Category::Chemistry)), 5.0);
/// assert_eq!(sd_for(12.5, None, Some(Category::Coagulation)), 1.0);
/// ```
pub fn sd_for(target: f64, explicit_sd: Option<f64>, category: Option<Category>) -> f64 {
    match explicit_sd {
        Some(sd) if sd.is_finite() && sd > 0.0 => sd,
        _ => target.abs() * Category::sd_fraction(category),
    }
}
