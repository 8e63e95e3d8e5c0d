//! `render NAME [--templates-dir DIR] [--profiles DIR] [--seed N] [--now YYYYMMDDHHMMSS] [--qc]
//! [--qc-deviation SD] [--layout standard|openelis] [--values template|random] [--sample-id ID]
//! [--patient-id ID] [--tests CODE,CODE...] [--prefix SITE] [--year YY] [--out FILE]`
//!
//! Prints what the template generates: ASTM records or HL7 segments one per line, or the file
//! content (binary files such as XLSX are written with `--out`, else summarised).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use lis_templates::{
    AccessionMinter, GenerateOptions, Layout, Output, Profiles, TemplateSet, ValueMode, generate,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    Standard,
    Openelis,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ValuesArg {
    Template,
    Random,
}

#[derive(Debug, Parser)]
#[command(about = "Render the message or file an analyzer template generates")]
struct Args {
    /// Template name (file stem), e.g. horiba_micros60.
    name: String,
    /// Load templates from this directory instead of the embedded set.
    #[arg(long)]
    templates_dir: Option<PathBuf>,
    /// Analyzer-profiles directory for profile-backed templates.
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// RNG seed (fixes every random choice).
    #[arg(long)]
    seed: Option<u64>,
    /// Fixed clock, YYYYMMDDHHMMSS.
    #[arg(long)]
    now: Option<String>,
    /// Generate the QC variant.
    #[arg(long)]
    qc: bool,
    /// QC: shift every control by exactly this many SD.
    #[arg(long, allow_hyphen_values = true)]
    qc_deviation: Option<f64>,
    /// Field layout.
    #[arg(long, value_enum, default_value = "standard")]
    layout: LayoutArg,
    /// Value source (default: template with --seed, random without).
    #[arg(long, value_enum)]
    values: Option<ValuesArg>,
    /// Explicit SiteYearNum accession.
    #[arg(long)]
    sample_id: Option<String>,
    /// Patient ID instead of the template's.
    #[arg(long)]
    patient_id: Option<String>,
    /// Only these tests (template field codes), in this order.
    #[arg(long, value_delimiter = ',')]
    tests: Option<Vec<String>>,
    /// Site prefix for minted accessions.
    #[arg(long, default_value = "DEV01")]
    prefix: String,
    /// Two-digit year for minted accessions (default: current year).
    #[arg(long)]
    year: Option<u8>,
    /// Encoding of the messages (utf-8, latin-1, latin-9, ascii) instead of the template's:
    /// the text shows `?` where it cannot write a character, and HL7 names it in MSH-18.
    #[arg(long)]
    charset: Option<lis_templates::TextEncoding>,
    /// Write the output to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let templates = match &args.templates_dir {
        Some(dir) => {
            let profiles = args.profiles.clone().map_or(Profiles::None, Profiles::Dir);
            TemplateSet::load_dir(dir, &profiles)?
        }
        None => TemplateSet::embedded()?,
    };
    let template = templates.get(&args.name)?;
    let minter = match args.year {
        Some(year) => AccessionMinter::with(&args.prefix, year)?,
        None => AccessionMinter::with(&args.prefix, AccessionMinter::new().year())?,
    };
    let now = match &args.now {
        Some(text) => Some(
            chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
                .map_err(|e| format!("--now {text:?}: expected YYYYMMDDHHMMSS: {e}"))?,
        ),
        None => None,
    };
    let options = GenerateOptions {
        seed: args.seed,
        now,
        layout: match args.layout {
            LayoutArg::Standard => Layout::Standard,
            LayoutArg::Openelis => Layout::OpenElis,
        },
        values: args.values.map(|v| match v {
            ValuesArg::Template => ValueMode::Template,
            ValuesArg::Random => ValueMode::Random,
        }),
        qc_deviation: args.qc_deviation,
        sample_id: args.sample_id.clone(),
        patient_id: args.patient_id.clone(),
        tests: args.tests.clone(),
        encoding: args.charset,
    };
    let output = generate(template, &minter, &options, args.qc)?;
    let written = match (&args.out, &output) {
        (Some(path), Output::File(file)) => std::fs::write(path, &file.bytes),
        (Some(path), other) => std::fs::write(path, other.to_display_text()),
        (None, other) => {
            // Not `print!`, which panics when stdout is a pipe whose reader has gone
            // (`render NAME | head -1`): that is normal use, and ends the output quietly.
            let mut out = std::io::stdout().lock();
            match out
                .write_all(other.to_display_text().as_bytes())
                .and_then(|()| out.flush())
            {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(format!("stdout: cannot write: {e}").into()),
                Ok(()) => Ok(()),
            }
        }
    };
    if let (Err(e), Some(path)) = (written, &args.out) {
        return Err(format!("--out {}: cannot write: {e}", path.display()).into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`, which panics on a stderr pipe whose reader has gone.
            let _ = writeln!(std::io::stderr(), "render: {e}");
            ExitCode::FAILURE
        }
    }
}
