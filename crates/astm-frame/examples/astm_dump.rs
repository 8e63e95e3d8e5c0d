//! Prints what one direction of an ASTM E1381 link carried, one JSON object per line.
//!
//! ```text
//! cargo run -p astm-frame --example astm_dump -- [--lenient] [FILE]
//! ```
//!
//! Reads raw bytes from FILE (or stdin) and prints, in order: `{"event":"enq"}` (and `ack`,
//! `nak`, `eot`), `{"event":"frame","fn":1,"end":"ETX","checksum_ok":true,"text":"..."}`,
//! `{"event":"message","text":"..."}` after each end frame (made of the frames a receiver would
//! accept: a frame that fails its checks is listed but not part of the message, a repeat of the
//! frame before it within one transfer counts once), and `{"event":"error","detail":"..."}` for
//! bytes that are not part of a frame and for a message that ENQ or EOT (or, for bare records,
//! the next header) cut short. Text maps each byte to the character of the same
//! value. `--lenient` accepts every deviation real instruments need (lower-case checksums, no
//! CR LF, no frame numbers, bare records).

use std::io::{Read, Write};

use astm_frame::{
    Control, DecoderConfig, FrameDecoder, FrameEnd, Item, Leniency, is_header_record,
    is_terminator_record,
};

/// Writes a line to stdout or stderr. `println!` and `eprintln!` panic when the write fails,
/// as on a pipe whose reader has gone (`... | head -0`); the line is dropped instead, and the
/// exit status still tells.
fn say(mut to: impl Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(to, "{line}");
}

/// The bytes as a JSON string, each byte read as the character of the same value.
fn text(bytes: &[u8]) -> String {
    let latin1: String = bytes.iter().map(|&b| char::from(b)).collect();
    serde_json::to_string(&latin1).unwrap_or_default()
}

fn event(name: &str) -> String {
    format!(r#"{{"event":"{name}"}}"#)
}

fn message(bytes: &[u8]) -> String {
    format!(r#"{{"event":"message","text":{}}}"#, text(bytes))
}

fn error(detail: &str) -> String {
    let detail = serde_json::to_string(detail).unwrap_or_default();
    format!(r#"{{"event":"error","detail":{detail}}}"#)
}

fn main() {
    match run() {
        Ok(()) => {}
        // `astm_dump capture.bin | head` is normal use.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            say(std::io::stderr(), format_args!("astm_dump: {e}"));
            std::process::exit(1);
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lenient = false;
    let mut path = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--lenient" => lenient = true,
            "-h" | "--help" => {
                say(
                    std::io::stdout(),
                    format_args!("usage: astm_dump [--lenient] [FILE]"),
                );
                return Ok(());
            }
            _ => path = Some(arg),
        }
    }
    let mut input: Box<dyn Read> = match &path {
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {p}: {e}")))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let config = DecoderConfig {
        leniency: if lenient {
            Leniency::ALL
        } else {
            Leniency::STRICT
        },
        ..DecoderConfig::default()
    };
    let mut decoder = FrameDecoder::new(config);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut message_text = Vec::new();
    let mut records = Vec::new();
    // The previous frame, to spot a retransmission (same FN, same text) in a one-way capture.
    let mut previous: Option<(Option<u8>, Vec<u8>)> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    let source = path.as_deref().unwrap_or("stdin");
    loop {
        // A directory opens but cannot be read: say which path that was.
        let n = input
            .read(&mut chunk)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {source}: {e}")))?;
        if n == 0 {
            break;
        }
        decoder.push(&chunk[..n]);
        while let Some(item) = decoder.next_item() {
            let line = match item {
                Item::Control(c) => {
                    // ENQ and EOT bound a transfer: a receiver starts frame numbers afresh
                    // after them and drops a message cut short by them.
                    if matches!(c, Control::Enq | Control::Eot) {
                        previous = None;
                        for pending in [&mut message_text, &mut records] {
                            if !pending.is_empty() {
                                let detail = format!(
                                    "transfer ended inside a message: {} bytes dropped",
                                    pending.len()
                                );
                                pending.clear();
                                writeln!(out, "{}", error(&detail))?;
                            }
                        }
                    }
                    event(&c.name().to_ascii_lowercase())
                }
                Item::Frame(frame) => {
                    // A receiver NAKs a defective frame and the sender repeats it: only
                    // frames it would accept make up the message, a repeat of one only once.
                    let mut accepted = frame.is_valid();
                    if accepted {
                        let key = (frame.number(), frame.text().to_vec());
                        if previous.as_ref() == Some(&key) {
                            // A retransmission after a lost ACK: its text is in already, and
                            // a repeated end frame ends no new message.
                            accepted = false;
                        } else {
                            message_text.extend_from_slice(frame.text());
                        }
                        previous = Some(key);
                    }
                    let number = frame
                        .number()
                        .map_or_else(|| "null".to_string(), |n| n.to_string());
                    writeln!(
                        out,
                        r#"{{"event":"frame","fn":{number},"end":"{}","checksum_ok":{},"text":{}}}"#,
                        frame.end().name(),
                        frame.checksum_ok(),
                        text(frame.text()),
                    )?;
                    if !accepted || frame.end() != FrameEnd::End {
                        continue;
                    }
                    message(&std::mem::take(&mut message_text))
                }
                Item::Record(record) => {
                    if is_header_record(record) && !records.is_empty() {
                        let detail = format!(
                            "message without its L record: {} bytes dropped",
                            records.len()
                        );
                        records.clear();
                        writeln!(out, "{}", error(&detail))?;
                    }
                    records.extend_from_slice(record);
                    records.push(b'\r');
                    let line = format!(r#"{{"event":"record","text":{}}}"#, text(record));
                    if !is_terminator_record(record) {
                        line
                    } else {
                        writeln!(out, "{line}")?;
                        message(&std::mem::take(&mut records))
                    }
                }
                Item::Broken { bytes, reason } => {
                    error(&format!("{reason}: {} bytes {}", bytes.len(), text(bytes)))
                }
                Item::Junk(bytes) => error(&format!(
                    "{} bytes outside frames: {}",
                    bytes.len(),
                    text(bytes)
                )),
            };
            writeln!(out, "{line}")?;
        }
    }
    if decoder.buffered() > 0 {
        let detail = format!(
            "input ended inside a frame: {} bytes not decoded",
            decoder.buffered()
        );
        writeln!(out, "{}", error(&detail))?;
    }
    out.flush()
}
