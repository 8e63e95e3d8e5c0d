//! Configuration problems: where they are and what is allowed.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// One problem (or warning) in a config file, located as precisely as known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when the problem is tied to one.
    pub line: Option<usize>,
    /// The section, when the problem is inside one.
    pub section: Option<String>,
    /// The key, when the problem is about one.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(":")?;
        if let Some(section) = &self.section {
            write!(f, " [{section}]")?;
        }
        if let Some(key) = &self.key {
            write!(f, " {key}:")?;
        } else if self.section.is_some() {
            f.write_str(":")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error. It is in the message, so it is not also the `source()`: a printer
        /// of the error chain would show it twice.
        error: std::io::Error,
    },
    /// The file is not valid INI or not a valid router configuration.
    #[error("{}", render(problems, warnings))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Diagnostic>,
        /// The warnings, which may explain a problem (an indented line taken as the
        /// continuation of a value, say).
        warnings: Vec<Diagnostic>,
    },
}

fn render(problems: &[Diagnostic], warnings: &[Diagnostic]) -> String {
    let mut out = format!("invalid configuration ({} problem(s))", problems.len());
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    if !warnings.is_empty() {
        out.push_str("\nwarnings:");
        for warning in warnings {
            out.push_str("\n  ");
            out.push_str(&warning.to_string());
        }
    }
    out
}
