//! Test helpers: reading fixtures and stripping E1381 framing without the link-layer crate.

#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

use std::path::PathBuf;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const ETB: u8 = 0x17;

pub fn data(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// The texts of the E1381 messages in a byte stream: each frame's text is what lies between STX + FN
/// and ETX/ETB; an ETB chain is joined with its final ETX frame. Checksums are the link layer's job.
pub fn deframe(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut text = Vec::new();
    let mut at = 0;
    while let Some(start) = memchr::memchr(STX, &bytes[at..]).map(|n| at + n) {
        let Some(end) = memchr::memchr2(ETX, ETB, &bytes[start..]).map(|n| start + n) else {
            break;
        };
        text.extend_from_slice(&bytes[(start + 2).min(end)..end]);
        if bytes[end] == ETX {
            messages.push(std::mem::take(&mut text));
        }
        at = end + 1;
    }
    messages
}

/// Record types of a record list as a compact string, e.g. `HPOR{3}L`.
pub fn type_string<'a>(records: impl IntoIterator<Item = &'a astm_records::Record<'a>>) -> String {
    let letters: Vec<char> = records
        .into_iter()
        .map(|r| r.kind().letter().map_or('?', char::from))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i < letters.len() {
        let run = letters[i..]
            .iter()
            .take_while(|&&c| c == letters[i])
            .count();
        out.push(letters[i]);
        if run > 2 {
            out.push_str(&format!("{{{run}}}"));
            i += run;
        } else {
            i += 1;
        }
    }
    out
}
