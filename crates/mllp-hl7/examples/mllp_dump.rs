//! Reads a raw MLLP byte stream (FILE or stdin) and prints one JSON object per line:
//!
//! - `{"event":"message","len":N,"msh10":"..."}`: a frame; `len` is the payload size.
//! - `{"event":"commit","ack":true}`: an MLLP release 2 commit ACK (false for a NAK).
//! - `{"event":"junk","len":N,"offset":O}`: bytes outside any frame were skipped.
//! - `{"event":"error","detail":"..."}`: a frame was refused (over `--max-size`,
//!   interrupted, truncated); decoding goes on after every error.
//!
//! ```text
//! cargo run -p mllp-hl7 --example mllp_dump -- [--max-size N] [--lenient] [FILE]
//! ```

use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

use bytes::BytesMut;
use mllp_hl7::{Message, MllpConfig, MllpDecoder, MllpFrame};

/// Writes a line to stdout or stderr. `println!` and `eprintln!` panic when the write fails,
/// as on a pipe whose reader has gone (`... | head -0`); the line is dropped instead, and the
/// exit status still tells.
fn say(mut to: impl Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(to, "{line}");
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            say(std::io::stderr(), format_args!("mllp_dump: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut config = MllpConfig::default();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-size" => {
                let value = args.next().ok_or("--max-size needs a number of bytes")?;
                let max = value
                    .parse()
                    .map_err(|_| format!("--max-size {value:?} is not a number"))?;
                config = config.with_max_message_size(max);
            }
            "--lenient" => config = config.with_lenient(true),
            "-h" | "--help" => {
                say(
                    std::io::stdout(),
                    format_args!("usage: mllp_dump [--max-size N] [--lenient] [FILE]"),
                );
                return Ok(());
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => file = Some(arg),
        }
    }
    let mut input: Box<dyn Read> = match &file {
        Some(path) => Box::new(std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?),
        None => Box::new(std::io::stdin()),
    };
    let mut decoder = MllpDecoder::with_config(config).map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = input
            .read(&mut chunk)
            .map_err(|e| format!("cannot read {}: {e}", file.as_deref().unwrap_or("stdin")))?;
        if n == 0 {
            while let Some(frame) = decoder.decode_eof(&mut buf) {
                print_event(&mut out, &frame)?;
            }
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = decoder.decode(&mut buf) {
            print_event(&mut out, &frame)?;
        }
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn print_event(out: &mut impl Write, frame: &MllpFrame) -> Result<(), String> {
    // Written by hand so keys keep the documented order; serde_json escapes the strings.
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let line = match frame {
        MllpFrame::Message(payload) => {
            let msh10 = Message::parse(payload)
                .map(|m| quote(&String::from_utf8_lossy(m.control_id().raw())))
                .unwrap_or_else(|_| "null".to_owned());
            format!(
                r#"{{"event":"message","len":{},"msh10":{msh10}}}"#,
                payload.len()
            )
        }
        MllpFrame::Commit(commit) => format!(r#"{{"event":"commit","ack":{}}}"#, commit.is_ack()),
        MllpFrame::Junk { len, offset } => {
            format!(r#"{{"event":"junk","len":{len},"offset":{offset}}}"#)
        }
        MllpFrame::Error(error) => format!(
            r#"{{"event":"error","detail":{}}}"#,
            quote(&error.to_string())
        ),
        other => format!(
            r#"{{"event":"other","detail":{}}}"#,
            quote(&format!("{other:?}"))
        ),
    };
    writeln!(out, "{line}").map_err(|e| format!("stdout: {e}"))
}
