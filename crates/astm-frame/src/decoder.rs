//! A frame decoder that owns its buffer: push bytes as they arrive, take items out.

use crate::scanner::{DecoderConfig, FrameScanner, Item};

/// Compact the buffer once this many consumed bytes sit at its front.
const COMPACT_AT: usize = 4096;

/// An incremental decoder for one direction of a link.
///
/// Bytes may arrive in any chunking, one at a time over a serial line or many frames per TCP
/// read, with the same result. Memory stays bounded by one frame (`max_frame_len`) plus the chunk
/// being pushed, provided [`next_item`](Self::next_item) is called until it returns `None` after
/// each [`push`](Self::push).
///
/// ```
/// use astm_frame::{DecoderConfig, FrameDecoder, Item};
///
/// let mut decoder = FrameDecoder::new(DecoderConfig::default());
/// let mut texts = Vec::new();
/// for byte in b"\x021A|B|C|D\r\x03BF\r\n" {
///     decoder.push(std::slice::from_ref(byte));
///     while let Some(item) = decoder.next_item() {
///         if let Item::Frame(frame) = item {
///             assert!(frame.checksum_ok());
///             texts.push(frame.text().to_vec());
///         }
///     }
/// }
/// assert_eq!(texts, [b"A|B|C|D\r".to_vec()]);
/// ```
///
/// A file of frames with no ENQ or EOT (which a [`Link`](crate::Link) would refuse as
/// outside any transfer) read into E1381 messages: an ETB frame's text continues in the
/// next frame, an ETX frame ends the message. Trailers lost to a line-by-line copy are
/// accepted with [`Leniency::missing_trailer`](crate::Leniency::missing_trailer).
///
/// ```
/// use astm_frame::{DecoderConfig, FrameDecoder, FrameEnd, Item};
///
/// let file = b"\x021H|\\^&\r\x17F9\n\x022P|1\r\x033F\n\x023L|1|N\r\x0306\n";
/// let mut config = DecoderConfig::default();
/// config.leniency.missing_trailer = true;
/// let mut decoder = FrameDecoder::new(config);
/// decoder.push(file);
/// let (mut messages, mut text) = (Vec::new(), Vec::new());
/// while let Some(item) = decoder.next_item() {
///     match item {
///         Item::Frame(frame) if frame.is_valid() => {
///             text.extend_from_slice(frame.text());
///             if frame.end() == FrameEnd::End {
///                 messages.push(std::mem::take(&mut text));
///             }
///         }
///         Item::Frame(frame) => panic!("refused: {:?}", frame.defect()),
///         _ => {}
///     }
/// }
/// assert_eq!(messages, [b"H|\\^&\rP|1\r".to_vec(), b"L|1|N\r".to_vec()]);
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    scanner: FrameScanner,
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// A decoder with the given configuration.
    #[must_use]
    pub const fn new(config: DecoderConfig) -> Self {
        Self {
            scanner: FrameScanner::new(config),
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &DecoderConfig {
        self.scanner.config()
    }

    /// Appends received bytes.
    #[inline]
    pub fn push(&mut self, data: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= COMPACT_AT || self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let pending = self.buf.len() - self.start;
        self.buf.extend_from_slice(data);
        // A frame arriving in pieces (a serial line, small TCP reads): when everything held so
        // far was already scanned and the new bytes end nothing, read them once, here.
        if self.scanner.pending_frame() == Some(pending)
            && pending + data.len() <= self.scanner.config().max_frame_len.saturating_sub(5)
        {
            // Terminators are restricted characters, so bytes with none of those cannot end
            // the frame; their sum is all the scanner needs from them.
            let (sum, restricted) = crate::control::sum_and_restricted(data);
            if !restricted {
                self.scanner.frame_scanned_to(pending + data.len(), sum);
            }
        }
    }

    /// The next complete item, or `None` until more bytes are pushed.
    #[inline]
    pub fn next_item(&mut self) -> Option<Item<'_>> {
        let Self {
            scanner,
            buf,
            start,
        } = self;
        let buf: &Vec<u8> = buf;
        if scanner.pending_frame() == Some(buf.len() - *start) {
            // Every byte held was scanned and ends no frame.
            return None;
        }
        loop {
            let pending = &buf[*start..];
            if pending.is_empty() {
                return None;
            }
            let scanned = scanner.scan(pending);
            *start += scanned.consumed;
            match scanned.item {
                Some(item) => return Some(item),
                // Only skipped trailer bytes: look again.
                None if scanned.consumed > 0 => {}
                None => return None,
            }
        }
    }

    /// Bytes held that do not yet form an item.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The bytes held that do not yet form an item.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops buffered bytes and the scan position (a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scanner.reset();
    }
}
