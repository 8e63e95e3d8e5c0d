//! Laboratory analyzers as data.
//!
//! ```
//! use lis_templates::{AccessionMinter, GenerateOptions, Layout, Output, TemplateSet, generate};
//!
//! let templates = TemplateSet::embedded()?;
//! let bs200 = templates.get("mindray_bs200")?;
//! let minter = AccessionMinter::with("DEV01", 26)?;
//! let options = GenerateOptions {
//!     seed: Some(7),
//!     now: lis_templates::chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
//!         .and_then(|d| d.and_hms_opt(8, 59, 41)),
//!     layout: Layout::OpenElis,
//!     qc_deviation: Some(3.5),
//!     ..GenerateOptions::default()
//! };
//! let Output::Hl7(qc) = generate(bs200, &minter, &options, true)? else { unreachable!() };
//! assert_eq!(qc.segments[4], "OBX|1|NM|^^^GLU^LOT-GLU-N^NORMAL||117.5|mg/dL||N|||C|||||");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An analyzer is a JSON template in the OpenELIS analyzer mock's format. This crate loads
//! templates (files, directories, or the set compiled in from the workspace's `templates/`),
//! resolves profile-backed ones against an analyzer-profiles directory, validates them against the
//! template schema with errors that name the file, the JSON path and the reason, and exposes a typed
//! [`Template`]. From a template it generates:
//!
//! - ASTM E1394 / LIS2-A2 messages (built with [`astm_records`]),
//! - HL7 v2 ORU^R01 messages (values escaped with [`mllp_hl7`]),
//! - result files (CSV/TSV with the template's delimiter, XLSX, DT-Prime XML), and in [`files`]
//!   whole runs in each instrument's own layout, published atomically into a folder,
//! - and the QC variant of each, with values from [`qc_westgard_gen`].
//!
//! The default [`Layout::Standard`] follows LIS2-A2 field positions; [`Layout::OpenElis`]
//! reproduces the reference mock's output byte for byte. A seed and a fixed clock make output
//! byte-identical. Accessions are SiteYearNum ([`AccessionMinter`]).

/// The `chrono` crate, whose [`NaiveDateTime`](chrono::NaiveDateTime) sets
/// [`GenerateOptions::now`], so a caller needs no `chrono` dependency of its own (nor the
/// same version) for a fixed clock.
pub use chrono;

mod accession;
mod error;
mod generate;
mod loader;
mod model;
mod pattern;
mod schema;

pub use accession::{AccessionMinter, DEFAULT_PREFIX, Lane, MAX_SEQUENCE};
pub use error::{AccessionError, FileError, GenerateError, OrderReadError, TemplateError};
pub use generate::files;
pub use generate::{
    AstmMessage, AstmOrders, AstmQuery, FileOutput, GenerateOptions, Generator, Hl7Message,
    Hl7Orders, Layout, NOT_PERFORMED, OrderGroup, OrderedPatient, OrderedSample, OrderedSamples,
    Output, TextEncoding, UnknownEncoding, ValueMode, WITHDRAWING_ORDER_CONTROLS, generate,
};
pub use loader::{Profiles, TemplateSet, load_file, load_str, template_files};
pub use model::{
    Analyzer, AstmConfig, Category, Column, ComplementaryResult, Field, FieldType, FileConfig,
    FileFormat, FileKind, Identification, NormalRange, Parity, Protocol, ProtocolKind, QcControl,
    QcSample, QcSampleField, SerialConfig, Template, TestPatient, TestSample, Transport,
};
pub use schema::{EXTENSIONS_SCHEMA, TEMPLATE_SCHEMA};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
