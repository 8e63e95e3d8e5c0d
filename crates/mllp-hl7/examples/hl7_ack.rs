//! Reads one HL7 message (CR, LF or CR LF separated; FILE or stdin) and prints its ACK,
//! segments separated by CR.
//!
//! ```text
//! cargo run -p mllp-hl7 --example hl7_ack -- [--code AA|AE|AR|CA|CE|CR] [--force] [FILE]
//! ```
//!
//! Without `--code`: AA in original mode, CA in enhanced mode. When the message's
//! MSH-15 / MSH-16 say this acknowledgement is not wanted, nothing is printed (a note
//! goes to stderr) unless `--force` is given.

use std::io::{Read, Write};
use std::process::ExitCode;

use mllp_hl7::{AckBuilder, AckCode, ErrorDetail, Message, Severity};

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
            say(std::io::stderr(), format_args!("hl7_ack: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut code = None;
    let mut force = false;
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--code" => {
                let value = args
                    .next()
                    .ok_or("--code needs a value (AA, AE, AR, CA, CE, CR)")?;
                code = Some(value.parse::<AckCode>().map_err(|e| e.to_string())?);
            }
            "--force" => force = true,
            "-h" | "--help" => {
                say(
                    std::io::stdout(),
                    format_args!("usage: hl7_ack [--code AA|AE|AR|CA|CE|CR] [--force] [FILE]"),
                );
                return Ok(());
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => file = Some(arg),
        }
    }
    let mut raw = Vec::new();
    match &file {
        Some(path) => raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
        None => {
            std::io::stdin()
                .read_to_end(&mut raw)
                .map_err(|e| format!("stdin: {e}"))?;
        }
    }
    let message = Message::parse(&raw).map_err(|e| e.to_string())?;
    let mut builder = AckBuilder::new(&message);
    if let Some(code) = code {
        builder = builder.code(code);
        if !code.is_success() {
            builder = builder
                .text(format!("rejected with {code}"))
                .error(ErrorDetail::new(
                    207,
                    "application internal error",
                    Severity::Error,
                ));
        }
    }
    if !builder.is_required() && !force {
        say(
            std::io::stderr(),
            format_args!(
                "hl7_ack: MSH-15 {:?} / MSH-16 {:?}: the sender does not want a {} acknowledgement (use --force to print it anyway)",
                String::from_utf8_lossy(message.msh_field(15).raw()),
                String::from_utf8_lossy(message.msh_field(16).raw()),
                builder.ack_code()
            ),
        );
        return Ok(());
    }
    let ack = builder.build().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&ack)
        .map_err(|e| format!("stdout: {e}"))
}
