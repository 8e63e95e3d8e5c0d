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

/// A bounded store of received messages.
#[derive(Debug)]
pub(crate) struct Received {
    capacity: usize,
    entries: Mutex<VecDeque<ReceivedEntry>>,
}

impl Received {
    /// Keeps at most `capacity` messages (the oldest go first).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a message.
    pub(crate) fn push(&self, port: u16, peer: String, protocol: &'static str, text: &[u8]) {
        let entry = ReceivedEntry {
            time: chrono::Local::now().to_rfc3339(),
            port,
            peer,
            protocol,
            text: String::from_utf8_lossy(text).into(),
        };
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.push_front(entry);
        entries.truncate(self.capacity);
    }

    /// The `limit` most recent messages, newest first.
    pub(crate) fn list(&self, limit: usize) -> Vec<ReceivedEntry> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.iter().take(limit).cloned().collect()
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
}
