//! The incremental frame scanner: finds control characters, frames, bare records and junk in a
//! byte stream, in any chunking, without rescanning.

use memchr::{memchr2, memchr3};

use crate::control::{ACK, CR, Control, ENQ, EOT, ETB, ETX, LF, NAK, STX};
use crate::frame::{Frame, FrameEnd, LIS1_A_MAX_FRAME};

/// Deviations from E1381 that real instruments need, each off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Leniency {
    /// Accept lower-case hex checksums (`bf` for `BF`), each reported as
    /// [`unverified_checksum`](Self::unverified_checksum)'s deviations are.
    pub lowercase_checksum: bool,
    /// Accept frames without the CR LF trailer, or with only CR or only LF.
    pub missing_trailer: bool,
    /// Do not check frame numbers: accept any sequence, and frames with no FN digit at all.
    /// A frame that repeats the previous one's FN and bytes is still taken as a retransmission
    /// (acknowledged, delivered once); without an FN digit, repeats are delivered.
    pub unchecked_frame_numbers: bool,
    /// Accept frames whose checksum does not match, or is not two hex digits (the deviation
    /// is still reported: [`Frame::tolerated_defect`], and by [`Link`](crate::Link) as
    /// [`LinkError::Tolerated`](crate::LinkError::Tolerated)).
    pub unverified_checksum: bool,
    /// Accept bare records (`H|...<CR>` with no STX framing); a message ends with its L record.
    /// A header record or EOT before the L record drops the unfinished message (reported as
    /// discarded by [`Link`](crate::Link)).
    pub unframed_records: bool,
    /// Accept any frame number 0-7 on the first frame of a transfer (the standard wants 1);
    /// the frames after it are checked as usual, numbered on from it.
    pub any_first_frame_number: bool,
}

impl Leniency {
    /// Every deviation refused: the standard.
    pub const STRICT: Self = Self {
        lowercase_checksum: false,
        missing_trailer: false,
        unchecked_frame_numbers: false,
        unverified_checksum: false,
        unframed_records: false,
        any_first_frame_number: false,
    };

    /// Every deviation accepted.
    pub const ALL: Self = Self {
        lowercase_checksum: true,
        missing_trailer: true,
        unchecked_frame_numbers: true,
        unverified_checksum: true,
        unframed_records: true,
        any_first_frame_number: true,
    };
}

/// How the scanner reads a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecoderConfig {
    /// Largest frame accepted, including STX, FN, terminator, checksum and CR LF. Default: 64,000
    /// (LIS1-A), which also admits every E1381-95 frame of at most 247.
    pub max_frame_len: usize,
    /// Accepted deviations from the standard.
    pub leniency: Leniency,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_frame_len: LIS1_A_MAX_FRAME,
            leniency: Leniency::STRICT,
        }
    }
}

/// Why bytes that began as a frame (or a bare record) did not form one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokenReason {
    /// A frame start or control character (STX, ENQ, EOT, ACK or NAK) arrived before the
    /// frame's terminator and checksum: the sender gave up on the frame, bytes were lost, or
    /// noise began a frame. Scanning resumes at that character.
    #[error("frame interrupted by {0:#04x} before it was complete")]
    Interrupted(u8),
    /// No terminator within the configured maximum frame length. The bytes after it are skipped
    /// as junk until the next STX or control character.
    #[error("no ETB/ETX within the maximum frame length of {0} bytes")]
    TooLong(usize),
    /// The input ended inside a frame or bare record (only from [`FrameScanner::iter`], which
    /// is given a complete buffer).
    #[error("input ended before the frame was complete")]
    Unfinished,
    /// An LF arrived before the frame's terminator and checksum. LF may only be a frame's last
    /// character (§6.6), so the frame ended there incomplete (its ETB/ETX or checksum lost on
    /// the line): a receiver refuses it at once, rather than waiting for a terminator that the
    /// sender, now waiting for a reply, will not send. Scanning resumes after the LF.
    #[error("frame ended by LF before its terminator and checksum")]
    EndedEarly,
}

/// Whether a bare record ([`Item::Record`]) is a header (`H` and then its field delimiter,
/// which is no letter or digit): the start of a message in unframed mode.
#[must_use]
pub fn is_header_record(record: &[u8]) -> bool {
    match record {
        [b'H' | b'h'] => true,
        [b'H' | b'h', second, ..] => !second.is_ascii_alphanumeric(),
        _ => false,
    }
}

/// Whether a bare record ([`Item::Record`]) is a message terminator (`L`): the end of a
/// message in unframed mode.
#[must_use]
pub fn is_terminator_record(record: &[u8]) -> bool {
    matches!(record.first(), Some(b'L' | b'l'))
}

/// Something found in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A one-byte control message.
    Control(Control),
    /// A complete frame, valid or not (see [`Frame::defect`]).
    Frame(Frame<'a>),
    /// A bare record without framing, without its CR/LF terminator (only with
    /// [`Leniency::unframed_records`]).
    Record(&'a [u8]),
    /// Bytes that began a frame but did not complete one.
    Broken {
        /// The bytes skipped.
        bytes: &'a [u8],
        /// Why they were skipped.
        reason: BrokenReason,
    },
    /// Bytes outside any frame (line noise, stray CR LF, a peer speaking another protocol).
    Junk(&'a [u8]),
}

/// What one call to [`FrameScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Scanned<'a> {
    /// Bytes at the front of the input that are done with: drop them before the next call.
    pub consumed: usize,
    /// The item found; `None` means more input is needed.
    pub item: Option<Item<'a>>,
}

/// Optional trailer bytes still to skip after a frame accepted without them (lenient mode), so a
/// late CR LF is not reported as junk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingTrailer {
    None,
    CrOrLf,
    Lf,
}

/// A resumable scanner over a caller-owned buffer (the sans-IO core of the decoders).
///
/// Call [`scan`](Self::scan) with the unconsumed bytes; drop `consumed` bytes from the front;
/// when it returns no item, append more bytes and call again. The scanner remembers how far it
/// looked, so bytes arriving one at a time are not rescanned.
///
/// ```
/// use astm_frame::{DecoderConfig, FrameScanner, Item};
///
/// let wire = b"\x05\x021H|\\^&\r\x03E5\r\n\x04";
/// let mut scanner = FrameScanner::new(DecoderConfig::default());
/// let items: Vec<Item<'_>> = scanner.iter(wire).collect();
/// assert_eq!(items.len(), 3);
/// assert!(matches!(items[1], Item::Frame(f) if f.is_valid() && f.text() == b"H|\\^&\r"));
/// ```
#[derive(Debug, Clone)]
pub struct FrameScanner {
    config: DecoderConfig,
    /// How far (from the start of the pending frame or record) the last call looked.
    resume: usize,
    /// The pending bytes are a frame (not a bare record).
    in_frame: bool,
    /// Byte sum of the pending frame's bytes 1..resume (FN and text so far).
    partial_sum: u8,
    /// Whether those bytes hold a restricted character.
    partial_restricted: bool,
    trailer: PendingTrailer,
}

impl FrameScanner {
    /// A scanner with the given configuration.
    #[must_use]
    pub const fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            resume: 0,
            in_frame: false,
            partial_sum: 0,
            partial_restricted: false,
            trailer: PendingTrailer::None,
        }
    }

    /// The configuration.
    #[inline]
    #[must_use]
    pub const fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Forgets the scan position, for a new stream.
    pub fn reset(&mut self) {
        self.resume = 0;
        self.in_frame = false;
        self.partial_sum = 0;
        self.partial_restricted = false;
        self.trailer = PendingTrailer::None;
    }

    /// Iterates over the items of a complete buffer. Bytes of an unfinished frame at its end are
    /// reported as [`Item::Broken`].
    pub fn iter<'s, 'a>(&'s mut self, buf: &'a [u8]) -> Items<'s, 'a> {
        Items {
            scanner: self,
            rest: buf,
        }
    }

    /// Whether the last call stopped inside a frame that starts at the front of the buffer, and
    /// how far it looked: a decoder can then check new bytes for a terminator without a call.
    #[inline]
    pub(crate) fn pending_frame(&self) -> Option<usize> {
        (self.resume > 0 && self.in_frame).then_some(self.resume)
    }

    /// Records that the pending frame grew to `len` bytes, the new ones summing to `sum` and
    /// holding no restricted character (so no terminator either).
    #[inline]
    pub(crate) fn frame_scanned_to(&mut self, len: usize, sum: u8) {
        self.resume = len;
        self.partial_sum = self.partial_sum.wrapping_add(sum);
    }

    /// Looks for the next item at the front of `buf`. See the type's documentation for the
    /// calling contract.
    pub fn scan<'a>(&mut self, buf: &'a [u8]) -> Scanned<'a> {
        let start = self.skip_trailer(buf);
        let rest = &buf[start..];
        let Some(&first) = rest.first() else {
            return Scanned {
                consumed: start,
                item: None,
            };
        };
        let (consumed, item) = match first {
            STX => self.scan_frame(rest),
            ENQ | EOT | ACK | NAK => {
                let control = Control::from_byte(first).map(Item::Control);
                (1, control)
            }
            _ if self.config.leniency.unframed_records => self.scan_record(rest),
            _ => {
                let end = rest
                    .iter()
                    .position(|&b| b == STX || Control::from_byte(b).is_some())
                    .unwrap_or(rest.len());
                (end, Some(Item::Junk(&rest[..end])))
            }
        };
        if item.is_some() {
            self.resume = 0;
            self.partial_sum = 0;
            self.partial_restricted = false;
        }
        self.in_frame = item.is_none() && first == STX;
        Scanned {
            consumed: start + consumed,
            item,
        }
    }

    fn skip_trailer(&mut self, buf: &[u8]) -> usize {
        let mut start = 0;
        if self.trailer == PendingTrailer::CrOrLf {
            match buf.first() {
                Some(&CR) => {
                    start = 1;
                    self.trailer = PendingTrailer::Lf;
                }
                Some(_) => self.trailer = PendingTrailer::Lf,
                None => return 0,
            }
        }
        if self.trailer == PendingTrailer::Lf {
            match buf.get(start) {
                Some(&LF) => {
                    start += 1;
                    self.trailer = PendingTrailer::None;
                }
                Some(_) => self.trailer = PendingTrailer::None,
                None => {}
            }
        }
        start
    }

    /// `frame` starts with STX.
    fn scan_frame<'a>(&mut self, frame: &'a [u8]) -> (usize, Option<Item<'a>>) {
        let leniency = self.config.leniency;
        // The terminator may sit at most at max - 5 (it is followed by C1 C2 CR LF).
        let last_terminator = self.config.max_frame_len.saturating_sub(5).max(1);
        let window_end = frame.len().min(last_terminator + 1);
        let from = self.resume.clamp(1, window_end);
        // EOT is searched with the terminators: a sender that gives up mid-frame sends it, and
        // the frame must not wait for an ETX that will never come.
        let Some(found) = memchr3(ETX, ETB, EOT, &frame[from..window_end]) else {
            // A control message cannot be frame text: a stray STX must not hold back the ENQ,
            // ACK or NAK that follows it until a terminator comes.
            let fresh = &frame[from..window_end];
            if crate::control::find_restricted(fresh).is_some()
                && let Some(p) = fresh.iter().position(|&b| cuts_frame(b))
            {
                return cut(frame, from + p);
            }
            if window_end <= last_terminator {
                // Sum as we go, so bytes that trickle in are read once.
                let (sum, restricted) = crate::control::sum_and_restricted(&frame[from..]);
                self.partial_sum = self.partial_sum.wrapping_add(sum);
                self.partial_restricted |= restricted;
                self.resume = frame.len();
                return (0, None);
            }
            let reason = BrokenReason::TooLong(self.config.max_frame_len);
            let bytes = &frame[..window_end];
            return (window_end, Some(Item::Broken { bytes, reason }));
        };
        let terminator = from + found;
        // FN plus text: the only place a restricted byte can hide.
        let body = &frame[1..terminator];
        let (sum, restricted) = crate::control::sum_and_restricted(&frame[from..terminator]);
        let body_sum = self.partial_sum.wrapping_add(sum);
        let any_restricted = self.partial_restricted | restricted;
        // If the checksum or trailer is still to come, the next call resumes at the terminator
        // with the body already summed.
        self.partial_sum = body_sum;
        self.partial_restricted = any_restricted;
        if any_restricted && let Some(p) = body.iter().position(|&b| cuts_frame(b)) {
            return cut(frame, 1 + p);
        }
        if frame[terminator] == EOT {
            return (terminator, Some(broken(&frame[..terminator], EOT)));
        }
        let restricted = if any_restricted {
            crate::control::find_restricted(body)
        } else {
            None
        };
        if frame.len() < terminator + 3 {
            self.resume = terminator;
            return (0, None);
        }
        let received = [frame[terminator + 1], frame[terminator + 2]];
        if let Some(i) = received.iter().position(|&b| cuts_frame(b)) {
            return cut(frame, terminator + 1 + i);
        }
        let after = terminator + 3;
        let (end, trailer_ok) = if leniency.missing_trailer {
            match &frame[after..] {
                [CR, LF, ..] => (after + 2, true),
                [CR] => {
                    self.trailer = PendingTrailer::Lf;
                    (after + 1, false)
                }
                [CR, _, ..] | [LF, ..] => (after + 1, false),
                [] => {
                    self.trailer = PendingTrailer::CrOrLf;
                    (after, false)
                }
                [_, ..] => (after, false),
            }
        } else {
            match &frame[after..] {
                [CR, LF, ..] => (after + 2, true),
                [] | [CR] => {
                    self.resume = terminator;
                    return (0, None);
                }
                // A control byte where the trailer belongs (typically the sender's EOT after
                // its reply timer ran out) shows the frame was cut, as one cut before its
                // checksum: a NAK for it would land on a line already back to neutral, where
                // the peer takes it for the answer to its next ENQ.
                [CR, next, ..] if interrupts(*next) => return cut(frame, after + 1),
                [next, ..] if interrupts(*next) => return cut(frame, after),
                [CR, _, ..] => (after + 1, false),
                [_, ..] => (after, false),
            }
        };
        let end_kind = if frame[terminator] == ETX {
            FrameEnd::End
        } else {
            FrameEnd::Intermediate
        };
        let numbered = !leniency.unchecked_frame_numbers
            || (terminator > 1 && (b'0'..=b'7').contains(&frame[1]));
        // STX immediately followed by the terminator has no FN where one is required.
        let number_missing = numbered && terminator == 1;
        let (number_byte, text) = if numbered && !number_missing {
            (Some(frame[1]), &frame[2..terminator])
        } else {
            (None, &frame[1..terminator])
        };
        let parsed = Frame::check(
            &frame[..end],
            number_byte,
            text,
            end_kind,
            received,
            trailer_ok,
            &leniency,
            body_sum,
            number_missing,
            // Offsets within the text, which starts after FN when there is one.
            restricted.and_then(|p| p.checked_sub(usize::from(number_byte.is_some()))),
        );
        (end, Some(Item::Frame(parsed)))
    }

    /// `rest` starts with a byte that is neither STX nor a control character.
    fn scan_record<'a>(&mut self, rest: &'a [u8]) -> (usize, Option<Item<'a>>) {
        if matches!(rest[0], CR | LF) {
            // Blank lines between bare records.
            let end = rest
                .iter()
                .position(|&b| !matches!(b, CR | LF))
                .unwrap_or(rest.len());
            return (end, Some(Item::Junk(&rest[..end])));
        }
        let limit = self.config.max_frame_len;
        // At least one byte per call, so a limit of 0 cannot stall the caller's loop.
        let window_end = rest.len().min(limit.max(1));
        let from = self.resume.clamp(0, window_end);
        let Some(found) = memchr2(CR, LF, &rest[from..window_end]) else {
            if let Some(p) = rest[from..window_end]
                .iter()
                .position(|&b| b == STX || Control::from_byte(b).is_some())
            {
                let at = from + p;
                return (at, Some(broken(&rest[..at], rest[at])));
            }
            if window_end < limit.max(1) {
                self.resume = rest.len();
                return (0, None);
            }
            let bytes = &rest[..window_end];
            let reason = BrokenReason::TooLong(limit);
            return (window_end, Some(Item::Broken { bytes, reason }));
        };
        let end = from + found;
        let record = &rest[..end];
        if let Some(p) = record
            .iter()
            .position(|&b| b == STX || Control::from_byte(b).is_some())
        {
            return (p, Some(broken(&rest[..p], rest[p])));
        }
        if rest[end] == CR {
            self.trailer = PendingTrailer::Lf;
        }
        (end + 1, Some(Item::Record(record)))
    }
}

/// Whether `byte`, met inside a frame, cuts it short: a frame start or a one-byte control
/// message, none of which can be frame text.
const fn interrupts(byte: u8) -> bool {
    matches!(byte, STX | ENQ | EOT | ACK | NAK)
}

fn broken(bytes: &[u8], by: u8) -> Item<'_> {
    Item::Broken {
        bytes,
        reason: BrokenReason::Interrupted(by),
    }
}

/// Whether `byte`, met before a frame's checksum is complete, ends the frame there: a byte that
/// [`interrupts`] it, or an LF (§6.6: only a frame's last character).
const fn cuts_frame(byte: u8) -> bool {
    interrupts(byte) || byte == LF
}

/// The frame cut short at `frame[at]` (see [`cuts_frame`]): an LF ends it and is consumed with
/// it; any other byte begins the next item.
fn cut(frame: &[u8], at: usize) -> (usize, Option<Item<'_>>) {
    if frame[at] == LF {
        let bytes = &frame[..=at];
        let reason = BrokenReason::EndedEarly;
        (at + 1, Some(Item::Broken { bytes, reason }))
    } else {
        (at, Some(broken(&frame[..at], frame[at])))
    }
}

/// Iterator over the items of a complete buffer; see [`FrameScanner::iter`].
#[derive(Debug)]
pub struct Items<'s, 'a> {
    scanner: &'s mut FrameScanner,
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'_, 'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let scanned = self.scanner.scan(self.rest);
            let rest = self.rest;
            self.rest = &rest[scanned.consumed..];
            match scanned.item {
                Some(item) => return Some(item),
                None if scanned.consumed > 0 => {}
                None => {
                    // The buffer ends inside a frame or record: nothing more will come.
                    self.scanner.reset();
                    self.rest = &[];
                    let bytes = rest;
                    return Some(Item::Broken {
                        bytes,
                        reason: BrokenReason::Unfinished,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A maximum frame length of 0 (a config file's "unset") still makes progress on bare
    /// records: before, every call reported a zero-length broken record without consuming
    /// it, and the caller's loop never ended.
    #[test]
    fn zero_maximum_still_consumes_bare_records() {
        let config = DecoderConfig {
            max_frame_len: 0,
            leniency: Leniency::ALL,
        };
        let mut scanner = FrameScanner::new(config);
        let items: Vec<Item<'_>> = scanner.iter(b"H|1\r").take(10).collect();
        assert_eq!(items.len(), 4, "{items:?}");
        let skipped: usize = items
            .iter()
            .map(|item| match item {
                Item::Broken { bytes, .. } | Item::Junk(bytes) => bytes.len(),
                other => panic!("unexpected {other:?}"),
            })
            .sum();
        assert_eq!(skipped, 4);
    }
}
