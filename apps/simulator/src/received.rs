//! Everything the simulator received, bounded, most recent first (`GET /received`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::SerializeStruct;

/// One received message.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedEntry {
    /// When it arrived (RFC 3339, local time).
    pub(crate) time: String,
    /// Local port it arrived on (0 for the API).
    pub(crate) port: u16,
    /// The peer's address.
    pub(crate) peer: String,
    /// `ASTM` or `HL7`.
    pub(crate) protocol: &'static str,
    /// The message text as received (records or segments separated by CR). Shared, so
    /// listing the store copies no text.
    pub(crate) text: Arc<str>,
}

impl ReceivedEntry {
    /// The records or segments, one string each: split from `text` when serialized. Kept as
    /// strings they cost a heap block each, so a message of short lines (`Z\r` repeated, 8 MiB)
    /// held some 30 times its size, for every one of the up to `--received-capacity` entries.
    fn records(&self) -> impl Iterator<Item = &str> {
        self.text.split(['\r', '\n']).filter(|r| !r.is_empty())
    }
}

impl Serialize for ReceivedEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Records<'a>(&'a ReceivedEntry);
        impl Serialize for Records<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.records())
            }
        }
        // Keys in the order the API has always written them (sorted, as a JSON value's).
        let mut s = serializer.serialize_struct("ReceivedEntry", 6)?;
        s.serialize_field("peer", &self.peer)?;
        s.serialize_field("port", &self.port)?;
        s.serialize_field("protocol", self.protocol)?;
        s.serialize_field("records", &Records(self))?;
        s.serialize_field("text", &*self.text)?;
        s.serialize_field("time", &self.time)?;
        s.end()
    }
}

/// The text of a received message: HL7 in the character set its MSH-18 names, else (ASTM,
/// which names none, or an HL7 message whose bytes do not fit its MSH-18) as UTF-8 when it is
/// valid UTF-8, else as Latin-1, as orders are read. Never lossy: a Latin-1 `É` showed as
/// U+FFFD.
fn decode<'a>(protocol: &str, text: &'a [u8]) -> std::borrow::Cow<'a, str> {
    if protocol == "HL7"
        && let Ok(message) = mllp_hl7::Message::parse(text)
        && let Ok(charset) = message.charset()
        && let Ok(decoded) = charset.decode(text)
    {
        return decoded;
    }
    astm_records::Charset::Auto.decode(text)
}

/// Text the store keeps at most, all entries together; the newest entry is kept whatever its
/// size. `--received-capacity` alone let messages of up to 8 MiB (MLLP) or 16 MiB (ASTM) each,
/// 1000 of them, hold 8 to 16 GiB.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A bounded store of received messages.
#[derive(Debug)]
pub(crate) struct Received {
    capacity: usize,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    list: VecDeque<ReceivedEntry>,
    /// The length of every `text` in `list`.
    bytes: usize,
}

impl Received {
    /// Keeps at most `capacity` messages (the oldest go first).
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_max_bytes(capacity, MAX_BYTES)
    }

    /// Keeps at most `capacity` messages and `max_bytes` of text (the oldest go first).
    fn with_max_bytes(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_bytes,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Records a message.
    pub(crate) fn push(&self, port: u16, peer: String, protocol: &'static str, text: &[u8]) {
        let entry = ReceivedEntry {
            time: chrono::Local::now().to_rfc3339(),
            port,
            peer,
            protocol,
            text: decode(protocol, text).into(),
        };
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.bytes += entry.text.len();
        entries.list.push_front(entry);
        while entries.list.len() > self.capacity
            || (entries.bytes > self.max_bytes && entries.list.len() > 1)
        {
            if let Some(old) = entries.list.pop_back() {
                entries.bytes -= old.text.len();
            }
        }
    }

    /// The `limit` most recent messages, newest first.
    pub(crate) fn list(&self, limit: usize) -> Vec<ReceivedEntry> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.list.iter().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serializes_with_its_records_and_sorted_keys() {
        let store = Received::new(2);
        store.push(7, "peer".into(), "HL7", b"MSH|1\r\rPID|2\n");
        let json = serde_json::to_string(&store.list(1)).unwrap();
        let time = &store.list(1)[0].time;
        assert_eq!(
            json,
            format!(
                r#"[{{"peer":"peer","port":7,"protocol":"HL7","records":["MSH|1","PID|2"],"text":"MSH|1\r\rPID|2\n","time":"{time}"}}]"#
            )
        );
    }

    #[test]
    fn the_store_keeps_at_most_max_bytes_of_text_and_always_the_newest() {
        let store = Received::with_max_bytes(1000, 100);
        for i in 0..5 {
            store.push(1, "p".into(), "HL7", format!("{i}").repeat(40).as_bytes());
        }
        // 40 bytes each: two fit in 100.
        let texts: Vec<String> = store.list(10).iter().map(|e| e.text.to_string()).collect();
        assert_eq!(texts, ["4".repeat(40), "3".repeat(40)]);
        store.push(1, "p".into(), "HL7", &[b'x'; 500]);
        let kept = store.list(10);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].text.len(), 500);
        // The count bound still holds.
        let store = Received::with_max_bytes(2, 1 << 20);
        for _ in 0..5 {
            store.push(1, "p".into(), "HL7", b"x");
        }
        assert_eq!(store.list(10).len(), 2);
    }
}
