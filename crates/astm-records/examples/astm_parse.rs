//! Reads E1394 message text and prints one JSON object per record.
//!
//! ```text
//! cargo run -p astm-records --example astm_parse -- [--roundtrip] [--check] [FILE]
//! ```
//!
//! Records are separated by CR, LF or CR LF; input is FILE or stdin. Each record prints as
//! `{"type":"R","fields":[...]}`, where element i of `fields` is field i+1 (element 0 is the record
//! type), each field an array of repeats, each repeat an array of components, each component an
//! unescaped string (UTF-8 when valid, Latin-1 otherwise). `--roundtrip` prints each record
//! re-serialised instead, one per line. `--check` adds `{"warning":...}` lines for hierarchy and
//! numbering violations after each message.

use std::io::{Read, Write};
use std::process::ExitCode;

use astm_records::{Charset, Message, Record, RecordBuf, Records, Validation, split_messages};
use serde_json::Value;

/// Writes a line to stdout or stderr. `println!` and `eprintln!` panic when the write fails,
/// as on a pipe whose reader has gone (`... | head -0`); the line is dropped instead, and the
/// exit status still tells.
fn say(mut to: impl Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(to, "{line}");
}

struct Options {
    roundtrip: bool,
    check: bool,
    file: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        roundtrip: false,
        check: false,
        file: None,
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--roundtrip" => options.roundtrip = true,
            "--check" => options.check = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if options.file.is_some() => return Err("more than one FILE given".to_owned()),
            _ => options.file = Some(arg),
        }
    }
    Ok(options)
}

/// `{"type":…,"fields":…}` with the keys in that order (serde_json's map would sort them).
fn record_json(record: &Record<'_>) -> String {
    let text = |bytes: &[u8]| Value::String(Charset::Auto.decode(bytes).into_owned());
    let fields: Vec<Value> = record
        .fields()
        .map(|field| {
            let repeats: Vec<Value> = field
                .repeats()
                .map(|repeat| {
                    Value::Array(repeat.components().map(|c| text(&c.unescaped())).collect())
                })
                .collect();
            Value::Array(repeats)
        })
        .collect();
    format!(
        "{{\"type\":{},\"fields\":{}}}",
        text(record.field(1).raw()),
        Value::Array(fields)
    )
}

fn run(options: &Options) -> Result<bool, String> {
    let mut input = Vec::new();
    match &options.file {
        Some(path) => {
            input = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut clean = true;
    let io = |e: std::io::Error| format!("cannot write output: {e}");
    for (number, text) in split_messages(&input).enumerate() {
        let mut records = Vec::new();
        for record in Records::new(text) {
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    say(
                        std::io::stderr(),
                        format_args!("message {}: {error}", number + 1),
                    );
                    clean = false;
                    continue;
                }
            };
            if options.roundtrip {
                let bytes = RecordBuf::from_record(&record)
                    .to_bytes(record.delimiters())
                    .map_err(|e| format!("message {}: {e}", number + 1))?;
                out.write_all(&bytes).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
            } else {
                writeln!(out, "{}", record_json(&record)).map_err(io)?;
            }
            records.push(record);
        }
        if options.check {
            let warnings: Vec<String> = match Message::from_records(records, Validation::Lenient) {
                Ok(message) => message
                    .violations()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                Err(error) => vec![error.to_string()],
            };
            for warning in warnings {
                writeln!(
                    out,
                    "{{\"warning\":{},\"message\":{}}}",
                    Value::String(warning),
                    number + 1
                )
                .map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(clean)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                say(std::io::stderr(), format_args!("astm_parse: {problem}"));
            }
            say(
                std::io::stderr(),
                format_args!("usage: astm_parse [--roundtrip] [--check] [FILE]"),
            );
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(problem) => {
            say(std::io::stderr(), format_args!("astm_parse: {problem}"));
            ExitCode::FAILURE
        }
    }
}
