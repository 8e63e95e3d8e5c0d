//! Message framing (§6.3.1): a message (E1394 records separated by CR) becomes frame texts.

use std::ops::Range;

use crate::control::{CR, LF};
use crate::frame::{E1381_95_MAX_TEXT, FrameEnd, LIS1_A_MAX_TEXT, encode_frame};

/// How records are laid into frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Packing {
    /// One record per end frame, what instruments do (cobas: "different records must be sent in
    /// different frames"). A record longer than the maximum text continues in ETB frames.
    #[default]
    RecordPerFrame,
    /// The whole message as one text, cut into as many frames as needed; CRs fall wherever they
    /// fall. Some instruments send this way; it saves round trips.
    Packed,
    /// One record per frame, as [`RecordPerFrame`](Self::RecordPerFrame), but every frame
    /// except the message's last ends in ETB: the message is one text cut at record
    /// boundaries (what the OpenELIS mock's pushes send, and the OpenELIS bridge expects).
    RecordPerFrameEtb,
}

/// How a sender frames messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FramerConfig {
    /// Largest text per frame: 240 (E1381-95, the default, what older instruments accept) up to
    /// 63,993 (LIS1-A). Values outside 1..=63,993 are clamped.
    pub max_text_len: usize,
    /// Record packing.
    pub packing: Packing,
}

impl Default for FramerConfig {
    fn default() -> Self {
        Self {
            max_text_len: E1381_95_MAX_TEXT,
            packing: Packing::RecordPerFrame,
        }
    }
}

/// A message cut into frame texts, ready to number and send.
///
/// Records are separated by CR; CR LF and bare LF are read as separators too (LF may not appear
/// in frame text, §6.6) and go out as CR. Empty records are dropped, and the last record gets its
/// CR if it lacks one.
///
/// ```
/// use astm_frame::{FramedMessage, FramerConfig};
///
/// let message = FramedMessage::new(b"H|\\^&\rL|1|N".to_vec(), FramerConfig::default());
/// let wire: Vec<u8> = message.encode_all(1);
/// assert_eq!(wire, b"\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedMessage {
    text: Vec<u8>,
    frames: Vec<(Range<usize>, FrameEnd)>,
}

impl FramedMessage {
    /// Frames `message` under `config`.
    #[must_use]
    pub fn new(message: Vec<u8>, config: FramerConfig) -> Self {
        let text = normalise_records(message);
        let max = config.max_text_len.clamp(1, LIS1_A_MAX_TEXT);
        let mut frames = Vec::new();
        match config.packing {
            Packing::RecordPerFrame | Packing::RecordPerFrameEtb => {
                let mut start = 0;
                for end in memchr::memchr_iter(CR, &text) {
                    split_into(&mut frames, start..end + 1, max);
                    start = end + 1;
                }
            }
            Packing::Packed => split_into(&mut frames, 0..text.len(), max),
        }
        if config.packing == Packing::RecordPerFrameEtb
            && let Some((_, before_last)) = frames.split_last_mut()
        {
            for (_, end) in before_last {
                *end = FrameEnd::Intermediate;
            }
        }
        Self { text, frames }
    }

    /// The message text as sent: records each ended by CR.
    #[must_use]
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Consumes the message, giving back its normalised text.
    #[must_use]
    pub fn into_text(self) -> Vec<u8> {
        self.text
    }

    /// Number of frames.
    #[must_use]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the message has no frames (it held no records).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The text and terminator of frame `index`.
    #[must_use]
    pub fn frame(&self, index: usize) -> Option<(&[u8], FrameEnd)> {
        self.frames
            .get(index)
            .map(|(range, end)| (&self.text[range.clone()], *end))
    }

    /// Iterates over the frame texts and terminators in order.
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], FrameEnd)> + '_ {
        self.frames
            .iter()
            .map(|(range, end)| (&self.text[range.clone()], *end))
    }

    /// Appends frame `index` with frame number `number` to `out`; returns `false` if there is no
    /// such frame.
    pub fn encode_frame(&self, index: usize, number: u8, out: &mut Vec<u8>) -> bool {
        match self.frame(index) {
            Some((text, end)) => {
                encode_frame(number, text, end, out);
                true
            }
            None => false,
        }
    }

    /// Every frame on the wire, numbered from `first_number` (1 at the start of a transfer).
    #[must_use]
    pub fn encode_all(&self, first_number: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 7 * self.frames.len());
        let mut number = first_number % 8;
        for (text, end) in self.frames() {
            encode_frame(number, text, end, &mut out);
            number = crate::frame::next_frame_number(number);
        }
        out
    }
}

/// Splits `range` into frames of at most `max` bytes: ETB frames, then one ETX frame.
fn split_into(frames: &mut Vec<(Range<usize>, FrameEnd)>, range: Range<usize>, max: usize) {
    let mut start = range.start;
    while range.end - start > max {
        frames.push((start..start + max, FrameEnd::Intermediate));
        start += max;
    }
    if start < range.end {
        frames.push((start..range.end, FrameEnd::End));
    }
}

/// CR LF and LF become CR, empty records go, and the text ends with CR.
fn normalise_records(message: Vec<u8>) -> Vec<u8> {
    let clean = !message.contains(&LF)
        && !message.windows(2).any(|w| w == [CR, CR])
        && message.first() != Some(&CR)
        && message.last().is_none_or(|&b| b == CR);
    if clean {
        return message;
    }
    let mut text = Vec::with_capacity(message.len() + 1);
    for record in message.split(|&b| b == CR || b == LF) {
        if !record.is_empty() {
            text.extend_from_slice(record);
            text.push(CR);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(m: &FramedMessage) -> Vec<(usize, FrameEnd)> {
        m.frames().map(|(t, e)| (t.len(), e)).collect()
    }

    #[test]
    fn one_record_per_frame() {
        let m = FramedMessage::new(b"H|\\^&\rP|1\rL|1|N\r".to_vec(), FramerConfig::default());
        assert_eq!(m.len(), 3);
        assert_eq!(m.frame(1), Some((&b"P|1\r"[..], FrameEnd::End)));
    }

    #[test]
    fn long_record_splits_into_etb_frames() {
        let record = vec![b'x'; 500];
        let m = FramedMessage::new(record, FramerConfig::default());
        assert_eq!(
            ends(&m),
            [
                (240, FrameEnd::Intermediate),
                (240, FrameEnd::Intermediate),
                (21, FrameEnd::End)
            ]
        );
    }

    #[test]
    fn exact_multiple_has_no_empty_end_frame() {
        let m = FramedMessage::new(vec![b'x'; 479], FramerConfig::default());
        assert_eq!(
            ends(&m),
            [(240, FrameEnd::Intermediate), (240, FrameEnd::End)]
        );
    }

    #[test]
    fn packed_mode_spans_records() {
        let config = FramerConfig {
            max_text_len: 8,
            packing: Packing::Packed,
        };
        let m = FramedMessage::new(b"H|1\rP|1\rL|1\r".to_vec(), config);
        assert_eq!(ends(&m), [(8, FrameEnd::Intermediate), (4, FrameEnd::End)]);
    }

    #[test]
    fn record_per_frame_etb_ends_only_the_last_frame_with_etx() {
        let config = FramerConfig {
            packing: Packing::RecordPerFrameEtb,
            ..FramerConfig::default()
        };
        let m = FramedMessage::new(b"H|1\rP|1\rL|1\r".to_vec(), config);
        assert_eq!(
            ends(&m),
            [
                (4, FrameEnd::Intermediate),
                (4, FrameEnd::Intermediate),
                (4, FrameEnd::End)
            ]
        );
    }

    #[test]
    fn line_endings_are_normalised() {
        let m = FramedMessage::new(b"H|1\r\nP|1\n\nL|1".to_vec(), FramerConfig::default());
        assert_eq!(m.text(), b"H|1\rP|1\rL|1\r");
    }

    #[test]
    fn empty_message_has_no_frames() {
        assert!(FramedMessage::new(Vec::new(), FramerConfig::default()).is_empty());
        assert!(FramedMessage::new(b"\r\n".to_vec(), FramerConfig::default()).is_empty());
    }
}
