//! `westgard --mean M --sd S [--rules openelis|seed-config|extended] [--svg FILE] [--title T]
//! [--unit U]`
//!
//! Reads one value per line from stdin (oldest first) and prints one JSON line per value:
//! `{"value":111.0,"z":2.2,"violations":["1-2s"],"status":"warning"}`. Blank lines and lines
//! starting with `#` are skipped; CRLF line ends and a UTF-8 byte order mark at the start are
//! accepted. A line that is not a number is reported on stderr with its line number and the
//! program exits with status 2 after printing the values before it. A z too large for a double
//! (a finite value over a vanishingly small SD) is printed as `null`: JSON has no infinity.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use qc_westgard_gen::{ChartSpec, Evaluator, RuleSet, levey_jennings_svg};

/// Writes a line to stdout or stderr. `println!` and `eprintln!` panic when the write fails,
/// as on a pipe whose reader has gone (`... | head -0`); the line is dropped instead, and the
/// exit status still tells.
fn say(mut to: impl Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(to, "{line}");
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rules {
    /// The eight OpenELIS rules with the evaluator's severities (4-1s rejects).
    Openelis,
    /// As openelis, but 4-1s is a warning (the mock's seed SQL and README).
    SeedConfig,
    /// openelis plus 2of3-2s, 6x, 8x, 9x, 12x on the single series, no history limit.
    Extended,
}

#[derive(Debug, Parser)]
#[command(about = "Westgard evaluation of QC values read from stdin, one per line, oldest first")]
struct Args {
    /// Target mean of the control lot.
    #[arg(long, allow_hyphen_values = true)]
    mean: f64,
    /// Standard deviation of the control lot (> 0). A negative one is read as a number, so that
    /// it is refused as an invalid SD rather than as an unknown option.
    #[arg(long, allow_negative_numbers = true)]
    sd: f64,
    /// Rule set.
    #[arg(long, value_enum, default_value = "openelis")]
    rules: Rules,
    /// Also write a Levey-Jennings chart to this SVG file.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// Chart title.
    #[arg(long, default_value = "QC")]
    title: String,
    /// Unit shown on the chart.
    #[arg(long, default_value = "")]
    unit: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rules = match args.rules {
        Rules::Openelis => RuleSet::openelis(),
        Rules::SeedConfig => RuleSet::openelis_seed_config(),
        Rules::Extended => RuleSet::extended(),
    };
    let mut evaluator = match Evaluator::new(args.mean, args.sd, rules) {
        Ok(e) => e,
        Err(e) => {
            say(std::io::stderr(), format_args!("westgard: {e}"));
            return ExitCode::from(2);
        }
    };
    let mut evaluations = Vec::new();
    let mut status = ExitCode::SUCCESS;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                say(
                    std::io::stderr(),
                    format_args!("westgard: stdin line {}: {e}", n + 1),
                );
                status = ExitCode::from(2);
                break;
            }
        };
        // A UTF-8 byte order mark (Notepad, PowerShell 5) may precede the first line.
        let line = if n == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(&line)
        } else {
            &line
        };
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let value = match text.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                say(
                    std::io::stderr(),
                    format_args!(
                        "westgard: stdin line {}: not a finite number: {text:?}",
                        n + 1
                    ),
                );
                status = ExitCode::from(2);
                break;
            }
        };
        let Ok(evaluation) = evaluator.push(value) else {
            // Unreachable: the line was checked to be a finite number above.
            status = ExitCode::from(2);
            break;
        };
        let json = serde_json::to_string(&evaluation).unwrap_or_default();
        if writeln!(out, "{json}").is_err() {
            return ExitCode::from(1);
        }
        evaluations.push(evaluation);
    }
    if let Some(path) = args.svg {
        let spec = ChartSpec {
            title: args.title,
            mean: args.mean,
            sd: args.sd,
            unit: args.unit,
        };
        if let Err(e) = std::fs::write(&path, levey_jennings_svg(&spec, &evaluations)) {
            say(
                std::io::stderr(),
                format_args!("westgard: cannot write {}: {e}", path.display()),
            );
            return ExitCode::from(1);
        }
    }
    status
}
