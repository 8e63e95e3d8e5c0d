//! Everything the simulator received, bounded, most recent first (`GET /received`).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// One received message.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReceivedEntry {
    /// When it arrived (RFC 3339, local time).
    pub(crate) time: String,
    /// Local port it arrived on (0 for the API).
    pub(crate) port: u16,
    /// The peer's address.
    pub(crate) peer: String,
    /// `ASTM` or `HL7`.
    pub(crate) protocol: &'static str,
    /// The message text as received (records or segments separated by CR).
    pub(crate) text: String,
    /// The records or segments, one string each.
    pub(crate) records: Vec<String>,
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
        let text = String::from_utf8_lossy(text).into_owned();
        let records = text
            .split(['\r', '\n'])
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        let entry = ReceivedEntry {
            time: chrono::Local::now().to_rfc3339(),
            port,
            peer,
            protocol,
            text,
            records,
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
