//! The sans-IO MLLP decoder: a resumable scan over a buffer the caller owns.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::{CommitAck, MllpConfig};
use crate::error::{ConfigError, FrameError};

/// What one call to [`MllpDecoder::decode_slice`] found.
///
/// The caller must drop the first `consumed` bytes of the buffer (after using any
/// payload range, which lies inside them) and pass the rest, followed by newly read
/// bytes, to the next call. `consumed == 0` with no event means more input is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Decoded {
    /// Bytes at the front of the buffer the decoder is done with.
    pub consumed: usize,
    /// What those bytes were, if anything worth reporting.
    pub event: Option<SliceEvent>,
}

impl Decoded {
    const NEED_MORE: Self = Self {
        consumed: 0,
        event: None,
    };

    fn silent(consumed: usize) -> Self {
        Self {
            consumed,
            event: None,
        }
    }

    /// Whether the decoder needs more input before it can make progress.
    #[must_use]
    pub fn needs_more(&self) -> bool {
        self.consumed == 0 && self.event.is_none()
    }
}

/// An event of the slice API; payloads are ranges into the buffer passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SliceEvent {
    /// A complete frame; the range covers the payload between start and end blocks.
    Message(Range<usize>),
    /// Bytes outside any frame were skipped.
    Junk {
        /// How many bytes.
        len: usize,
        /// Stream offset of the first skipped byte.
        offset: u64,
    },
    /// A frame was refused; decoding goes on.
    Error(FrameError),
}

/// What the [`Bytes`] API of [`MllpDecoder`] (and the tokio codec) yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MllpFrame {
    /// A message payload (the bytes between start and end blocks), zero-copy.
    Message(Bytes),
    /// An MLLP release 2 commit acknowledgement block.
    Commit(CommitAck),
    /// Bytes outside any frame were skipped.
    Junk {
        /// How many bytes.
        len: usize,
        /// Stream offset of the first skipped byte.
        offset: u64,
    },
    /// A frame was refused (too large, interrupted, truncated); decoding goes on.
    Error(FrameError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames: looking for a start block.
    Idle,
    /// After a start block: looking for the end block.
    InFrame,
    /// Refusing an oversized frame: skipping to its end or the next start block.
    Discarding,
}

/// How a sequence compares with the buffer at some position.
enum SeqMatch {
    Full,
    /// The buffer ends before the sequence does, every byte so far matching.
    Partial,
    No,
}

fn match_at(buf: &[u8], at: usize, sequence: &[u8]) -> SeqMatch {
    let rest = buf.get(at..).unwrap_or_default();
    let n = common_prefix(rest, sequence);
    if n == sequence.len() {
        SeqMatch::Full
    } else if n == rest.len() {
        SeqMatch::Partial
    } else {
        SeqMatch::No
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// What an end-block byte at `at` means for the frame being read.
enum FrameEnd {
    /// The frame ends there; what follows starts at `next`. In lenient mode
    /// `trailer_may_follow` when the buffer stops before the trailer could be told from
    /// what follows: the next bytes are the trailer if they spell it, else data.
    Ends {
        next: usize,
        trailer_may_follow: bool,
    },
    /// The buffer stops inside the end block or (strict mode) its trailer: look again
    /// from `at` with more bytes.
    NeedMore,
    /// Not an end: an end-block byte inside the payload, or (strict mode) an end block
    /// without its trailer, which is data.
    NotAnEnd,
}

/// Where the next byte that may begin a start or an end block is, at or after `from`:
/// the one scan of a frame being read and of a refused one being skipped.
fn next_block_byte(config: &MllpConfig, buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    memchr::memchr2(config.start_block[0], config.end_block[0], rest).map(|i| i + from)
}

/// The one rule for where a frame ends, shared by a frame being read and a refused one
/// being skipped, so both end at the same byte however the stream was read.
fn frame_end(config: &MllpConfig, buf: &[u8], at: usize) -> FrameEnd {
    match match_at(buf, at, &config.end_block) {
        SeqMatch::Full => {
            let after = at + config.end_block.len();
            match match_at(buf, after, &config.trailer) {
                SeqMatch::Full => FrameEnd::Ends {
                    next: after + config.trailer.len(),
                    trailer_may_follow: false,
                },
                // None of the trailer is taken yet: if what follows turns out not to be
                // the trailer, it is data (a start block, say), whatever the reads.
                SeqMatch::Partial if config.lenient => FrameEnd::Ends {
                    next: after,
                    trailer_may_follow: true,
                },
                SeqMatch::Partial => FrameEnd::NeedMore,
                SeqMatch::No if config.lenient => FrameEnd::Ends {
                    next: after,
                    trailer_may_follow: false,
                },
                SeqMatch::No => FrameEnd::NotAnEnd,
            }
        }
        SeqMatch::Partial => FrameEnd::NeedMore,
        SeqMatch::No => FrameEnd::NotAnEnd,
    }
}

/// Length of the longest suffix of `buf` that is a proper prefix of `sequence`: bytes that
/// may be the beginning of a sequence split across reads.
fn partial_suffix(buf: &[u8], sequence: &[u8]) -> usize {
    let longest = sequence.len().saturating_sub(1).min(buf.len());
    (1..=longest)
        .rev()
        .find(|&n| buf[buf.len() - n..] == sequence[..n])
        .unwrap_or(0)
}

/// MLLP stream decoder: frames in, events out, no I/O.
///
/// It yields every complete frame in a buffer (pipelining), skips and reports bytes
/// before a start block, refuses frames over the maximum size and skips the rest of them
/// (up to their end or the next start block), and never rescans: a partial frame is
/// searched only from where the previous call stopped, so bytes trickling in one at a
/// time cost O(n) in total. Memory is bounded by the maximum message size plus the
/// framing sequences. The events (messages, junk with its offsets, refused frames) are
/// the same however the stream is cut into reads.
///
/// Two APIs: [`decode`](Self::decode) over a [`BytesMut`] returning zero-copy
/// [`MllpFrame`]s, and [`decode_slice`](Self::decode_slice) over any `&[u8]` returning
/// ranges.
///
/// ```
/// use mllp_hl7::bytes::BytesMut;
/// use mllp_hl7::{MllpDecoder, MllpFrame};
///
/// let mut decoder = MllpDecoder::new();
/// let mut buf = BytesMut::from(&b"noise\x0bMSH|first\x1c\x0d\x0bMSH|second\x1c\x0d"[..]);
/// assert!(matches!(decoder.decode(&mut buf), Some(MllpFrame::Junk { len: 5, offset: 0 })));
/// assert_eq!(decoder.decode(&mut buf), Some(MllpFrame::Message("MSH|first".into())));
/// assert_eq!(decoder.decode(&mut buf), Some(MllpFrame::Message("MSH|second".into())));
/// assert_eq!(decoder.decode(&mut buf), None);
/// ```
#[derive(Clone)]
pub struct MllpDecoder {
    config: MllpConfig,
    start_finder: memmem::Finder<'static>,
    state: State,
    /// Where the search for the end block resumes, relative to the buffer start.
    scan_from: usize,
    /// Junk already dropped but not reported yet.
    pending_junk: usize,
    junk_offset: u64,
    /// After a lenient end that a read cut short: the trailer may come next, and is
    /// swallowed if it does.
    trailer_pending: bool,
    /// Stream offset of the front of the caller's buffer.
    position: u64,
    frame_offset: u64,
}

impl fmt::Debug for MllpDecoder {
    // Leaves out the start block searcher: its internals are tables of numbers, and the
    // start block is in the config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MllpDecoder")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("scan_from", &self.scan_from)
            .field("pending_junk", &self.pending_junk)
            .field("junk_offset", &self.junk_offset)
            .field("trailer_pending", &self.trailer_pending)
            .field("position", &self.position)
            .field("frame_offset", &self.frame_offset)
            .finish_non_exhaustive()
    }
}

impl Default for MllpDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl MllpDecoder {
    /// A decoder for standard MLLP release 1 framing ([`MllpConfig::default`]).
    #[must_use]
    pub fn new() -> Self {
        Self::build(MllpConfig::default())
    }

    /// A decoder with custom settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the settings cannot delimit frames ([`MllpConfig::validate`]).
    pub fn with_config(config: MllpConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: MllpConfig) -> Self {
        let start_finder = memmem::Finder::new(&config.start_block[..]).into_owned();
        Self {
            config,
            start_finder,
            state: State::Idle,
            scan_from: 0,
            pending_junk: 0,
            junk_offset: 0,
            trailer_pending: false,
            position: 0,
            frame_offset: 0,
        }
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &MllpConfig {
        &self.config
    }

    /// Bytes outside any frame already skipped but not yet reported. Junk is reported as
    /// [`MllpFrame::Junk`] once a start block (or the end of the stream) follows it, so a
    /// peer that answers without MLLP framing, or with other delimiters, shows up here
    /// while a reply is awaited.
    #[must_use]
    pub fn unreported_junk(&self) -> usize {
        self.pending_junk
    }

    /// Stream offset of the first byte not yet consumed.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether the decoder is inside a frame (a start block was seen, no end yet), including
    /// an oversized frame it is skipping after reporting it: a reader timing out frames left
    /// unfinished needs both, as the skipped bytes are consumed and no longer buffered.
    #[must_use]
    pub fn in_frame(&self) -> bool {
        self.state != State::Idle
    }

    /// Takes the next event out of `buf`, splitting off consumed bytes. Returns `None`
    /// when `buf` holds no complete event yet; call it in a loop after each read.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<MllpFrame> {
        loop {
            let step = self.decode_slice(buf);
            match step.event {
                None if step.consumed == 0 => return None,
                None => buf.advance(step.consumed),
                Some(SliceEvent::Message(payload)) => {
                    let mut frame = buf.split_to(step.consumed);
                    frame.truncate(payload.end);
                    frame.advance(payload.start);
                    return Some(match CommitAck::from_payload(&frame) {
                        Some(commit) => MllpFrame::Commit(commit),
                        None => MllpFrame::Message(frame.freeze()),
                    });
                }
                Some(SliceEvent::Junk { len, offset }) => {
                    buf.advance(step.consumed);
                    return Some(MllpFrame::Junk { len, offset });
                }
                Some(SliceEvent::Error(error)) => {
                    buf.advance(step.consumed);
                    return Some(MllpFrame::Error(error));
                }
            }
        }
    }

    /// Like [`decode`](Self::decode), for the end of the stream: once no complete event
    /// is left, reports trailing junk or a truncated frame and clears `buf`.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<MllpFrame> {
        if let Some(frame) = self.decode(buf) {
            return Some(frame);
        }
        let event = self.finish(buf);
        buf.clear();
        match event? {
            SliceEvent::Junk { len, offset } => Some(MllpFrame::Junk { len, offset }),
            SliceEvent::Error(error) => Some(MllpFrame::Error(error)),
            SliceEvent::Message(_) => None,
        }
    }

    /// One step over `buf` (see [`Decoded`] for the contract).
    pub fn decode_slice(&mut self, buf: &[u8]) -> Decoded {
        let decoded = match self.state {
            State::Idle => self.step_idle(buf),
            State::InFrame => self.step_in_frame(buf),
            State::Discarding => self.step_discarding(buf),
        };
        self.position += decoded.consumed as u64;
        decoded
    }

    /// Ends the stream: `buf` holds what is left (the caller drops it afterwards).
    /// Reports unreported junk or a frame cut short, and resets the decoder for reuse.
    pub fn finish(&mut self, buf: &[u8]) -> Option<SliceEvent> {
        let event = match self.state {
            State::Idle => {
                let trailer: &[u8] = if self.trailer_pending {
                    &self.config.trailer
                } else {
                    &[]
                };
                let tail = if trailer.starts_with(buf) {
                    0
                } else {
                    buf.len()
                };
                if self.pending_junk == 0 {
                    self.junk_offset = self.position;
                }
                let len = self.pending_junk + tail;
                (len > 0).then_some(SliceEvent::Junk {
                    len,
                    offset: self.junk_offset,
                })
            }
            State::InFrame => Some(SliceEvent::Error(FrameError::Truncated {
                offset: self.frame_offset,
                len: buf.len().saturating_sub(self.config.start_block.len()),
            })),
            State::Discarding => None,
        };
        self.position += buf.len() as u64;
        self.state = State::Idle;
        self.scan_from = 0;
        self.pending_junk = 0;
        self.trailer_pending = false;
        event
    }

    fn step_idle(&mut self, buf: &[u8]) -> Decoded {
        if self.trailer_pending {
            let trailer = &self.config.trailer;
            let n = common_prefix(buf, trailer);
            if n == trailer.len() {
                self.trailer_pending = false;
                if n > 0 {
                    return Decoded::silent(n);
                }
            } else if n == buf.len() {
                // The trailer so far, or not: nothing is taken until that is known.
                return Decoded::NEED_MORE;
            } else {
                // Something else follows: the sender left the trailer out.
                self.trailer_pending = false;
            }
        }
        if buf.is_empty() {
            return Decoded::NEED_MORE;
        }
        // Padding is silent only where a frame could start: after junk it is more junk,
        // so the junk reported does not depend on how the stream was read.
        if self.config.lenient && self.pending_junk == 0 {
            let start = self.config.start_block[0];
            let padding = buf
                .iter()
                .take_while(|&&b| matches!(b, 0 | b'\n' | b'\r') && b != start)
                .count();
            if padding > 0 {
                return Decoded::silent(padding);
            }
        }
        let found = match self.config.start_block.len() {
            1 => memchr::memchr(self.config.start_block[0], buf),
            _ => self.start_finder.find(buf),
        };
        match found {
            Some(0) if self.pending_junk == 0 => {
                self.state = State::InFrame;
                self.scan_from = self.config.start_block.len();
                self.frame_offset = self.position;
                self.step_in_frame(buf)
            }
            Some(at) => {
                if self.pending_junk == 0 {
                    self.junk_offset = self.position;
                }
                let len = self.pending_junk + at;
                self.pending_junk = 0;
                Decoded {
                    consumed: at,
                    event: Some(SliceEvent::Junk {
                        len,
                        offset: self.junk_offset,
                    }),
                }
            }
            None => {
                let junk = buf.len() - partial_suffix(buf, &self.config.start_block);
                if junk == 0 {
                    return Decoded::NEED_MORE;
                }
                if self.pending_junk == 0 {
                    self.junk_offset = self.position;
                }
                self.pending_junk += junk;
                Decoded::silent(junk)
            }
        }
    }

    fn step_in_frame(&mut self, buf: &[u8]) -> Decoded {
        let config = &self.config;
        let body_start = config.start_block.len();
        let start_byte = config.start_block[0];
        let end_byte = config.end_block[0];
        let mut from = self.scan_from;
        loop {
            let hit = next_block_byte(config, buf, from);
            let Some(at) = hit else {
                self.scan_from = buf.len().max(body_start);
                break;
            };
            if buf[at] == end_byte {
                match frame_end(config, buf, at) {
                    FrameEnd::Ends {
                        next,
                        trailer_may_follow,
                    } => {
                        return self.complete(at, next, trailer_may_follow);
                    }
                    FrameEnd::NeedMore => {
                        self.scan_from = at;
                        break;
                    }
                    FrameEnd::NotAnEnd => {}
                }
            }
            if buf[at] == start_byte {
                match match_at(buf, at, &config.start_block) {
                    SeqMatch::Full => {
                        // Over the maximum, it is refused as too large whether or not
                        // the read that grew it past the limit came before this one.
                        let len = at - body_start;
                        let error = if len > config.max_message_size {
                            FrameError::TooLarge {
                                offset: self.frame_offset,
                                max: config.max_message_size,
                            }
                        } else {
                            FrameError::Interrupted {
                                offset: self.frame_offset,
                                len,
                            }
                        };
                        self.state = State::Idle;
                        self.scan_from = 0;
                        return Decoded {
                            consumed: at,
                            event: Some(SliceEvent::Error(error)),
                        };
                    }
                    SeqMatch::Partial => {
                        self.scan_from = at;
                        break;
                    }
                    SeqMatch::No => {}
                }
            }
            from = at + 1;
        }
        let body_len = self.scan_from - body_start;
        if body_len > self.config.max_message_size {
            let error = FrameError::TooLarge {
                offset: self.frame_offset,
                max: self.config.max_message_size,
            };
            let consumed = self.scan_from;
            self.state = State::Discarding;
            self.scan_from = 0;
            return Decoded {
                consumed,
                event: Some(SliceEvent::Error(error)),
            };
        }
        Decoded::NEED_MORE
    }

    /// A frame ends with its end block at `end_at`; `consumed` covers its trailer.
    fn complete(&mut self, end_at: usize, consumed: usize, trailer_may_follow: bool) -> Decoded {
        let body_start = self.config.start_block.len();
        self.state = State::Idle;
        self.scan_from = 0;
        self.trailer_pending = trailer_may_follow;
        let len = end_at - body_start;
        let event = if len > self.config.max_message_size {
            SliceEvent::Error(FrameError::TooLarge {
                offset: self.frame_offset,
                max: self.config.max_message_size,
            })
        } else {
            SliceEvent::Message(body_start..end_at)
        };
        Decoded {
            consumed,
            event: Some(event),
        }
    }

    /// Skips the rest of a refused frame: up to and including its end block and
    /// trailer, or up to the next start block, as [`step_in_frame`](Self::step_in_frame)
    /// would have ended it, so what follows is decoded the same however it was read.
    fn step_discarding(&mut self, buf: &[u8]) -> Decoded {
        let config = &self.config;
        let start_byte = config.start_block[0];
        let end_byte = config.end_block[0];
        let mut from = 0;
        loop {
            let hit = next_block_byte(config, buf, from);
            let Some(at) = hit else {
                return Decoded::silent(buf.len());
            };
            if buf[at] == end_byte {
                match frame_end(config, buf, at) {
                    FrameEnd::Ends {
                        next,
                        trailer_may_follow,
                    } => {
                        self.state = State::Idle;
                        self.trailer_pending = trailer_may_follow;
                        return Decoded::silent(next);
                    }
                    FrameEnd::NeedMore => return Decoded::silent(at),
                    FrameEnd::NotAnEnd => {}
                }
            }
            if buf[at] == start_byte {
                match match_at(buf, at, &config.start_block) {
                    SeqMatch::Full if at == 0 => {
                        self.state = State::Idle;
                        return self.step_idle(buf);
                    }
                    SeqMatch::Full => {
                        self.state = State::Idle;
                        return Decoded::silent(at);
                    }
                    SeqMatch::Partial => return Decoded::silent(at),
                    SeqMatch::No => {}
                }
            }
            from = at + 1;
        }
    }
}
