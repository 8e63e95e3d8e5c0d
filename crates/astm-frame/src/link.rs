//! The E1381 / LIS1-A link state machine for one station, sans-IO (§6, Annex A1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::control::Control;
use crate::decoder::FrameDecoder;
use crate::frame::{FrameDefect, FrameEnd, next_frame_number};
use crate::framer::{FramedMessage, FramerConfig};
use crate::scanner::{BrokenReason, DecoderConfig, Item};

/// Which end of the link this station is. It decides contention (§6.2.7.1): the instrument has
/// priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The analyzer.
    Instrument,
    /// The computer system (LIS).
    Computer,
}

/// What a station does when its ENQ crosses the peer's ENQ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ContentionPolicy {
    /// The standard: an instrument waits and re-sends ENQ, a computer yields and waits for the
    /// instrument's ENQ.
    #[default]
    ByRole,
    /// Yield, whatever the role (what some simulators do). After a yield the peer did not use
    /// (its ENQ did not come within [`Timers::contention_yield`]), the next contention is met
    /// as an instrument meets it: a peer that yields too, such as a standard computer, would
    /// otherwise meet our ENQ with its own for ever.
    Yield,
    /// Acknowledge the peer's crossing ENQ at once and receive, whatever the role: what the
    /// OpenELIS analyzer mock does, and what a peer that takes our ENQ for contention and then
    /// reads the reply to its own (the OpenELIS bridge) needs. Two stations that both do this
    /// each wait for the other's frames: the peer of one should use
    /// [`AckAfter`](Self::AckAfter).
    AckAtOnce,
    /// Yield, waiting this long for the peer to acknowledge our ENQ (it yielded at once, as
    /// [`AckAtOnce`](Self::AckAtOnce) does) or to send ENQ again; then acknowledge the ENQ that
    /// crossed ours, as the peer then waits for that reply.
    AckAfter(Duration),
    /// Always insist, as an instrument does.
    Insist,
}

/// What the receiver hands over as one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Assembly {
    /// Each E1381 message: the texts of an ETB chain and its ETX frame (the standard's unit). With
    /// one record per frame, that is one record.
    #[default]
    PerEndFrame,
    /// Everything accepted between ENQ and EOT, handed over at EOT: one E1394 message H...L as
    /// instruments send it.
    ///
    /// A sender may put several messages in one transfer; they come as one text, to be split
    /// at each header record (`astm_records::split_messages` does):
    ///
    /// ```
    /// use std::time::Instant;
    /// use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
    ///
    /// let config = LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer);
    /// let mut lis = Link::new(config);
    /// lis.handle_input(
    ///     b"\x05\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n\
    ///       \x023H|\\^&\r\x03E7\r\n\x024L|1|N\r\x0307\r\n\x04",
    ///     Instant::now(),
    /// );
    /// let two = b"H|\\^&\rL|1|N\rH|\\^&\rL|1|N\r".to_vec();
    /// assert_eq!(lis.poll_event(), Some(Event::MessageReceived(two)));
    /// ```
    ///
    /// A sender that gives up after an end frame (no reply within 15 s, or honouring a receiver
    /// interrupt) ends the transfer with the same EOT as one that has finished, so what is
    /// handed over can be the first records of a message the sender will repeat whole: check
    /// for the terminator (L) record. A transfer cut inside an ETB chain is discarded.
    PerTransfer,
}

/// The timers of §6.5.2, and the waits of §6.2.6, §6.2.7.1 and §6.3.5.3. Defaults are the
/// standard's values. A duration longer than the clock can reach (`Duration::MAX`) never
/// runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timers {
    /// Sender: wait for a reply to ENQ (15 s).
    pub enq_reply: Duration,
    /// Sender: wait for a reply to a frame (15 s). §6.5.2.3 starts it at the frame's last
    /// character; the link starts it when it queues the frame for
    /// [`Link::poll_transmit`], not seeing when the bytes leave: on a slow serial line with
    /// frames longer than E1381-95's 247 characters, add the time a frame takes to send.
    pub frame_reply: Duration,
    /// Receiver: wait for the next frame or EOT (30 s).
    pub receive: Duration,
    /// Sender: wait after a NAK to ENQ, or after an unanswered ENQ, before the next ENQ (10 s).
    pub enq_retry: Duration,
    /// Sender: wait after an honoured receiver interrupt before the next ENQ (15 s).
    pub interrupt_hold_off: Duration,
    /// Instrument: wait after contention before re-sending ENQ (1 s).
    pub contention_retry: Duration,
    /// Computer: wait after contention for the instrument's ENQ (20 s).
    pub contention_yield: Duration,
    /// Sender: how long a reply may still come after noise arrived in its place (2 s; not
    /// in the standard). Noise is anything but a control byte: bytes outside frames, a
    /// broken frame (an STX is as likely a noise byte as any), a bare record, even a frame.
    /// Then the noise counts as a garbled reply, that is a NAK
    /// (§6.5.1.2). Resending at once would let the reply already on its way be taken
    /// for the resent frame's, and every later reply for the frame before its own. CR and LF
    /// are never noise: some receivers put them after their reply.
    pub reply_after_noise: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            enq_reply: Duration::from_secs(15),
            frame_reply: Duration::from_secs(15),
            receive: Duration::from_secs(30),
            enq_retry: Duration::from_secs(10),
            interrupt_hold_off: Duration::from_secs(15),
            contention_retry: Duration::from_secs(1),
            contention_yield: Duration::from_secs(20),
            reply_after_noise: Duration::from_secs(2),
        }
    }
}

/// Configuration of a [`Link`].
///
/// [`LinkConfig::new`] gives the standard's settings for a role; the `with_*` methods change
/// one setting each and can be chained (the fields are public too):
///
/// ```
/// use std::time::Duration;
/// use astm_frame::{
///     Assembly, ContentionPolicy, DecoderConfig, Leniency, Link, LinkConfig, Role, Timers,
/// };
///
/// let config = LinkConfig::new(Role::Computer)
///     .with_assembly(Assembly::PerTransfer)
///     .with_contention(ContentionPolicy::Yield)
///     .with_timers(Timers {
///         receive: Duration::from_secs(60),
///         ..Timers::default()
///     })
///     .with_decoder(DecoderConfig {
///         leniency: Leniency::ALL,
///         ..DecoderConfig::default()
///     })
///     .with_honor_interrupt(false)
///     .with_max_message_len(1024 * 1024);
/// assert_eq!(config.assembly, Assembly::PerTransfer);
/// assert_eq!(config.max_transmissions, 6); // untouched settings keep the standard's value
/// let _lis = Link::new(config);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkConfig {
    /// Instrument or computer.
    pub role: Role,
    /// Timer values.
    pub timers: Timers,
    /// How outgoing messages are framed (240-byte text by default).
    pub framer: FramerConfig,
    /// How incoming bytes are decoded (64,000-byte frames, strict, by default).
    pub decoder: DecoderConfig,
    /// Contention behaviour.
    pub contention: ContentionPolicy,
    /// What the receiver hands over as one message: by default each end frame, that is
    /// usually one record, not the whole H … L message (see [`Event::MessageReceived`]).
    pub assembly: Assembly,
    /// Transmissions of one frame before the message is aborted (§6.5.1.2: six).
    pub max_transmissions: u32,
    /// ENQs per message (each answered by NAK or nothing) before the message is aborted.
    pub max_enq_attempts: u32,
    /// Transfers of one message before it is aborted (three). A transfer fails when a frame
    /// is refused `max_transmissions` times or gets no reply in time; the message is then kept
    /// for a complete repeat later (§6.5.1.2, §6.5.2.3), sent again from its first frame after
    /// the [`enq_retry`](Timers::enq_retry) hold-off, ahead of the messages queued after it.
    /// The standard sets no limit; one keeps a receiver that refuses a message from getting
    /// it forever. `1` aborts at the first failed transfer.
    pub max_transfers: u32,
    /// Honour a receiver interrupt (EOT in place of ACK) by ending the transfer; when `false`, the
    /// EOT counts as an ACK (as cobas analyzers do).
    pub honor_interrupt: bool,
    /// Largest message the receiver assembles; a larger one is discarded and reported.
    pub max_message_len: usize,
}

impl LinkConfig {
    /// The standard configuration for `role`.
    #[must_use]
    pub fn new(role: Role) -> Self {
        Self {
            role,
            timers: Timers::default(),
            framer: FramerConfig::default(),
            decoder: DecoderConfig::default(),
            contention: ContentionPolicy::ByRole,
            assembly: Assembly::PerEndFrame,
            max_transmissions: 6,
            max_enq_attempts: 6,
            max_transfers: 3,
            honor_interrupt: true,
            max_message_len: 16 * 1024 * 1024,
        }
    }

    /// Sets [`role`](Self::role): instrument or computer.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Sets [`timers`](Self::timers), all of them (start from [`Timers::default`] to
    /// change some).
    #[must_use]
    pub fn with_timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }

    /// Sets [`framer`](Self::framer): how outgoing messages are framed.
    #[must_use]
    pub fn with_framer(mut self, framer: FramerConfig) -> Self {
        self.framer = framer;
        self
    }

    /// Sets [`decoder`](Self::decoder): how incoming bytes are decoded, including the
    /// [`Leniency`](crate::Leniency) accepted.
    #[must_use]
    pub fn with_decoder(mut self, decoder: DecoderConfig) -> Self {
        self.decoder = decoder;
        self
    }

    /// Sets [`contention`](Self::contention): what the station does when its ENQ crosses
    /// the peer's.
    #[must_use]
    pub fn with_contention(mut self, contention: ContentionPolicy) -> Self {
        self.contention = contention;
        self
    }

    /// Sets [`assembly`](Self::assembly): what the receiver hands over as one message.
    #[must_use]
    pub fn with_assembly(mut self, assembly: Assembly) -> Self {
        self.assembly = assembly;
        self
    }

    /// Sets [`max_transmissions`](Self::max_transmissions): transmissions of one frame
    /// before the message is aborted.
    #[must_use]
    pub fn with_max_transmissions(mut self, max_transmissions: u32) -> Self {
        self.max_transmissions = max_transmissions;
        self
    }

    /// Sets [`max_enq_attempts`](Self::max_enq_attempts): ENQs per message before the
    /// message is aborted.
    #[must_use]
    pub fn with_max_enq_attempts(mut self, max_enq_attempts: u32) -> Self {
        self.max_enq_attempts = max_enq_attempts;
        self
    }

    /// Sets [`max_transfers`](Self::max_transfers): transfers of one message before it is
    /// aborted.
    #[must_use]
    pub fn with_max_transfers(mut self, max_transfers: u32) -> Self {
        self.max_transfers = max_transfers;
        self
    }

    /// Sets [`honor_interrupt`](Self::honor_interrupt): whether a receiver interrupt ends
    /// the transfer (`true`) or counts as an ACK (`false`).
    #[must_use]
    pub fn with_honor_interrupt(mut self, honor_interrupt: bool) -> Self {
        self.honor_interrupt = honor_interrupt;
        self
    }

    /// Sets [`max_message_len`](Self::max_message_len): the largest message the receiver
    /// assembles.
    #[must_use]
    pub fn with_max_message_len(mut self, max_message_len: usize) -> Self {
        self.max_message_len = max_message_len;
        self
    }
}

/// Identifies a message given to [`Link::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbortReason {
    /// One frame was sent this many times without an ACK (§6.5.1.2).
    #[error("frame {frame_number} not accepted after {transmissions} transmissions")]
    TooManyTransmissions {
        /// The frame number.
        frame_number: u8,
        /// How often it was sent.
        transmissions: u32,
    },
    /// No reply to a frame within the timer (§6.5.2.3).
    #[error("no reply to frame {frame_number} within the reply timer")]
    NoReplyToFrame {
        /// The frame number.
        frame_number: u8,
    },
    /// Every ENQ was answered with NAK or not at all.
    #[error("link not established after {attempts} ENQs (receiver busy or silent)")]
    LinkNotEstablished {
        /// ENQs sent.
        attempts: u32,
    },
    /// The receiver asked to stop (EOT in place of ACK) before the last frame (§6.3.5).
    #[error("receiver interrupt before the last frame")]
    ReceiverInterrupt,
    /// The message had no text to frame (empty, or only CR and LF).
    #[error("empty message: nothing to send")]
    Empty,
    /// The text holds a character E1381 reserves for the link (§6.6.2): a receiver would
    /// refuse every frame holding it, six times over.
    #[error(
        "restricted character {byte:#04x} at byte {offset} of the message; escape it in the \
         record (E1394 &X..& escapes) or remove it"
    )]
    RestrictedCharacter {
        /// Where it is in the text given to [`Link::send`].
        offset: usize,
        /// The character.
        byte: u8,
    },
}

/// Why the receiver dropped a partly received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscardReason {
    /// No frame or EOT within the receive timer (§6.5.2.4).
    #[error("no frame within the receive timer")]
    ReceiveTimeout,
    /// EOT arrived in the middle of an ETB chain; or, with unframed records
    /// ([`Leniency::unframed_records`](crate::Leniency::unframed_records)), EOT or the next
    /// header record came before the message's L record.
    #[error("transfer ended in the middle of a message")]
    EndedMidMessage,
    /// The message grew past `max_message_len`.
    #[error("message longer than the limit of {0} bytes")]
    TooLong(usize),
    /// [`Assembly::PerTransfer`]: the transfer ended right after a frame was refused (the
    /// sender gave up on it, §6.5.1.2), so its message is incomplete; the sender repeats
    /// it whole later. A broken frame (begun, never finished) counts only once refused
    /// `max_transmissions` times in a row: once, it is as likely noise after the last frame.
    #[error("transfer ended after a refused frame")]
    SenderAborted,
    /// The connection closed in the middle of a message ([`Link::handle_eof`]). With
    /// [`Assembly::PerTransfer`], in the middle of a transfer.
    #[error("connection closed in the middle of a message")]
    ConnectionClosed,
}

/// A problem on the link that does not end a message by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A frame was rejected with NAK.
    #[error(
        "frame {} rejected: {defect}",
        frame_number.map_or_else(|| "without a valid number".to_owned(), |n| n.to_string())
    )]
    FrameRejected {
        /// The frame's number, `None` if it has no valid one.
        frame_number: Option<u8>,
        /// Why it was rejected.
        defect: FrameDefect,
    },
    /// A frame number was neither the last accepted nor the next (NAKed).
    #[error("unexpected frame number {received} (expected {expected})")]
    UnexpectedFrameNumber {
        /// The number that would have been accepted.
        expected: u8,
        /// The number received.
        received: u8,
    },
    /// A frame accepted although its checksum deviates from the standard, because the
    /// decoder's [`Leniency`](crate::Leniency) allows it (a lower-case, wrong or malformed
    /// checksum): one for each such frame, so the deviations can be counted.
    #[error("frame accepted despite {0} (allowed by the link's leniency)")]
    Tolerated(FrameDefect),
    /// A repeat of the last accepted frame: ACKed, not delivered twice.
    #[error("duplicate of frame {0} acknowledged again")]
    DuplicateFrame(u8),
    /// Bytes that began a frame but did not complete one.
    #[error("broken frame of {len} bytes: {reason}")]
    BrokenFrame {
        /// Bytes skipped.
        len: usize,
        /// Why.
        reason: BrokenReason,
    },
    /// Bytes outside frames.
    #[error("{0} bytes of junk outside frames skipped")]
    Junk(usize),
    /// A frame arrived while no transfer was established; it got no reply.
    #[error("frame outside a transfer ignored")]
    FrameOutsideTransfer,
    /// A reply other than ACK or EOT to a frame; the frame is sent again.
    #[error("frame {frame_number} not acknowledged; sending it again")]
    Retransmitting {
        /// The frame number.
        frame_number: u8,
    },
    /// ENQ in the middle of a transfer, answered with NAK: the sender waits for a reply to
    /// its frame, so an ACK would accept a frame that never arrived (an ENQ byte is what
    /// noise inside a frame often looks like). A sender that really started over gets ACK
    /// once the receive timer has run out.
    #[error("ENQ during a transfer refused with NAK")]
    EnqDuringTransfer,
    /// A reply that came in the same input as the reply before it, after which the next
    /// frame (or ENQ) was queued: it was on the wire before that left, so it is not its
    /// answer, and is ignored (a receiver that acknowledges every frame twice).
    #[error("{} ignored: it came before the frame or ENQ it would answer was sent", .0.name())]
    EarlyReply(Control),
}

/// What happened on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete message arrived (see [`Assembly`]). Every frame of it passed its checks.
    ///
    /// With the default [`Assembly::PerEndFrame`], this is one E1381 message, which is one
    /// record for most instruments (one record per frame): an H … L message comes as one event
    /// per record. To receive H … L in one event, set [`LinkConfig::assembly`] to
    /// [`Assembly::PerTransfer`] (with [`LinkConfig::with_assembly`]), or join the records
    /// with `astm_records::MessageAssembler`.
    ///
    /// ```
    /// use std::time::Instant;
    /// use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
    ///
    /// let transfer = b"\x05\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n\x04";
    /// let mut per_record = Link::new(LinkConfig::new(Role::Computer));
    /// per_record.handle_input(transfer, Instant::now());
    /// assert_eq!(per_record.poll_event(), Some(Event::MessageReceived(b"H|\\^&\r".to_vec())));
    /// assert_eq!(per_record.poll_event(), Some(Event::MessageReceived(b"L|1|N\r".to_vec())));
    ///
    /// let mut whole =
    ///     Link::new(LinkConfig::new(Role::Computer).with_assembly(Assembly::PerTransfer));
    /// whole.handle_input(transfer, Instant::now());
    /// assert_eq!(whole.poll_event(), Some(Event::MessageReceived(b"H|\\^&\rL|1|N\r".to_vec())));
    /// ```
    MessageReceived(Vec<u8>),
    /// The peer acknowledged every frame of a message.
    MessageSent(MessageId),
    /// A message was given up; its text is handed back so nothing is lost.
    MessageAborted {
        /// The message.
        id: MessageId,
        /// Why.
        reason: AbortReason,
        /// The message text, to send again or store.
        message: Vec<u8>,
    },
    /// A transfer of a message failed (see [`LinkConfig::max_transfers`]); the message stays
    /// queued and is sent again, whole, after the hold-off. [`Event::MessageSent`] or
    /// [`Event::MessageAborted`] still comes for it.
    TransferFailed {
        /// The message.
        id: MessageId,
        /// Why the transfer failed.
        reason: AbortReason,
        /// Transfers of this message so far, this one included.
        transfers: u32,
    },
    /// A partly received message was dropped.
    ReceiveDiscarded {
        /// Why.
        reason: DiscardReason,
        /// Bytes of text dropped.
        len: usize,
    },
    /// A problem that did not end a message.
    LinkError(LinkError),
}

/// The phase of the link (Annex A1 of LIS1-A).
///
/// ```text
///                        send() / timer                ACK
///   +---------+  ---------------------------> +--------------+ ------> +------------------+
///   | Neutral |         ENQ sent             | Establishing |         | Sending (frame)  |
///   +---------+ <---------------------------  +--------------+         +------------------+
///     ^  ^  |      NAK: wait 10 s; timeout:     | ENQ (contention)       |  ACK: next frame
///     |  |  |      EOT, wait 10 s               |                        |  NAK/other: resend,
///     |  |  |                                   v                        |   6th failure: EOT
///     |  |  |   instrument: wait 1 s, ENQ  +-----------------+           |  last ACK: EOT
///     |  |  |   computer:  ---------------> | ContentionYield |           |  EOT: interrupt
///     |  |  |                               +-----------------+           |  timeout: EOT
///     |  |  |   ENQ (ACK sent)                |  instrument ENQ: ACK      |
///     |  |  +-------------------------------+|-------------------------+ |
///     |  |        +-----------+ <------------+                          | |
///     |  |        | Receiving | <--------------------------------------+ |
///     |  |        +-----------+  frames: ACK / NAK                        |
///     |  +------- EOT, or 30 s without a frame                            |
///     +---------------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// No transfer (§6.1.4). A queued message waits here for its hold-off to pass.
    Neutral,
    /// ENQ sent, waiting for ACK, NAK or ENQ (§6.2).
    Establishing,
    /// A computer that met contention waits for the instrument's ENQ (§6.2.7.1).
    ContentionYield,
    /// A frame is out, waiting for its reply (§6.3).
    Sending,
    /// Receiving frames (§6.3, receiver side).
    Receiving,
}

#[derive(Debug)]
struct Outgoing {
    id: MessageId,
    framed: FramedMessage,
    /// Index of the frame in flight.
    index: usize,
    number: u8,
    transmissions: u32,
    enq_attempts: u32,
    /// Transfers that failed.
    failed_transfers: u32,
}

/// One station of an E1381 link, either side, with time passed in (sans-IO).
///
/// The caller owns the transport and the clock:
/// - give it received bytes with [`handle_input`](Self::handle_input) and messages to send with
///   [`send`](Self::send);
/// - write out what [`poll_transmit`](Self::poll_transmit) returns;
/// - call [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout)'s
///   instant passes;
/// - take [`poll_event`](Self::poll_event)s.
///
/// After every `handle_*` or `send`, call `poll_transmit`, then `poll_timeout`, then
/// `poll_event` until each returns `None`.
///
/// ```
/// use std::time::Instant;
/// use astm_frame::{Event, Link, LinkConfig, Role};
///
/// let now = Instant::now();
/// let mut lis = Link::new(LinkConfig::new(Role::Computer));
/// // An instrument's transfer, as captured on the wire.
/// lis.handle_input(b"\x05", now);
/// lis.handle_input(b"\x021H|\\^&\r\x03E5\r\n\x022L|1|N\r\x0305\r\n\x04", now);
/// let mut replies = Vec::new();
/// while lis.poll_transmit(&mut replies).is_some() {}
/// assert_eq!(replies, b"\x06\x06\x06");
/// assert_eq!(lis.poll_event(), Some(Event::MessageReceived(b"H|\\^&\r".to_vec())));
/// assert_eq!(lis.poll_event(), Some(Event::MessageReceived(b"L|1|N\r".to_vec())));
/// ```
///
/// Two stations in one process, each one's output the other's input (how to try a message
/// without an instrument):
///
/// ```
/// use std::time::Instant;
/// use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
///
/// let now = Instant::now();
/// let mut analyzer = Link::new(LinkConfig::new(Role::Instrument));
/// let mut config = LinkConfig::new(Role::Computer);
/// config.assembly = Assembly::PerTransfer;
/// let mut lis = Link::new(config);
///
/// let message = b"H|\\^&\rP|1\rO|1|S-1||^^^GLU\rR|1|^^^GLU|5.5|mmol/L\rL|1|N\r".to_vec();
/// let id = analyzer.send(message.clone(), now);
/// let (mut sent, mut received) = (false, None);
/// loop {
///     let (mut to_lis, mut to_analyzer) = (Vec::new(), Vec::new());
///     while analyzer.poll_transmit(&mut to_lis).is_some() {}
///     lis.handle_input(&to_lis, now);
///     while lis.poll_transmit(&mut to_analyzer).is_some() {}
///     analyzer.handle_input(&to_analyzer, now);
///     while let Some(event) = analyzer.poll_event() {
///         sent |= event == Event::MessageSent(id);
///     }
///     while let Some(event) = lis.poll_event() {
///         if let Event::MessageReceived(text) = event {
///             received = Some(text);
///         }
///     }
///     if to_lis.is_empty() && to_analyzer.is_empty() {
///         break;
///     }
/// }
/// assert!(sent);
/// assert_eq!(received, Some(message));
/// ```
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    decoder: FrameDecoder,
    core: Core,
}

#[derive(Debug)]
struct Core {
    config: LinkConfig,
    state: LinkState,
    deadline: Option<Instant>,
    /// The `deadline` is a timer the standard starts on a transmission (ENQ, frame, reply):
    /// the instant it was counted from, and the deadline it gave, for
    /// [`Link::handle_transmitted`].
    timer_start: Option<(Instant, Instant)>,
    /// While sending: when the noise received in place of a reply counts as a NAK.
    noise_deadline: Option<Instant>,
    /// No ENQ before this instant (after NAK, contention, interrupt, unanswered ENQ).
    enq_not_before: Option<Instant>,
    /// `enq_not_before` is the receiver interrupt's hold-off, which also ends once the
    /// interrupting receiver has sent its message (§6.3.5.3); the other waits do not.
    interrupt_hold_off: bool,
    /// Our last yield after contention ran out without the peer's ENQ (`Yield` policy).
    yield_unused: bool,
    /// Our ENQ met the peer's, and we have sent nothing since: an ACK now is the peer yielding
    /// to our ENQ after all (what the OpenELIS mock does), not a stray byte.
    crossed_enq: bool,
    queue: VecDeque<Outgoing>,
    next_id: u64,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    busy: bool,
    interrupt_requested: bool,
    /// An ENQ or frame was queued during the current [`Link::handle_input`]: what comes later
    /// in the same input was on the wire before it left, and cannot be its reply.
    queued_this_input: bool,
    // Receiver side.
    expected_number: u8,
    last_accepted: Option<u8>,
    /// With unchecked frame numbers: the last accepted frame (its FN, end and text), to tell
    /// a retransmission (same FN, same bytes) from the next frame.
    last_unchecked: Option<(u8, FrameEnd)>,
    last_unchecked_text: Vec<u8>,
    partial: Vec<u8>,
    transfer: Vec<u8>,
    /// The message in `partial` grew past `max_message_len`: its frames are dropped until
    /// its end frame.
    discarding: bool,
    /// Bytes dropped while `discarding`, besides those kept in `partial`.
    discarded: usize,
    /// The last frame was answered with NAK: a transfer ending now is incomplete.
    last_frame_refused: bool,
    /// Broken frames refused since the last frame: noise between the last frame and the EOT
    /// is one, while a sender gives up on a frame only after `max_transmissions` refusals.
    broken_since_frame: u32,
    /// The frame in flight belongs to a message taken back ([`Link::take_unsent`]): its
    /// reply, whatever it is, or its timer ends the transfer.
    abandoned: bool,
    /// [`Assembly::PerTransfer`]: part of this transfer was discarded, so none of it is
    /// delivered.
    transfer_spoiled: bool,
    bare_records: Vec<u8>,
    /// Unframed mode: the message in progress grew past `max_message_len`; its remaining
    /// records are dropped up to the next header or EOT.
    bare_skipping: bool,
}

impl Link {
    /// A station in the neutral state.
    #[must_use]
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config,
            decoder: FrameDecoder::new(config.decoder),
            core: Core {
                config,
                state: LinkState::Neutral,
                deadline: None,
                timer_start: None,
                noise_deadline: None,
                enq_not_before: None,
                interrupt_hold_off: false,
                yield_unused: false,
                crossed_enq: false,
                queue: VecDeque::new(),
                next_id: 0,
                transmit: Vec::new(),
                events: VecDeque::new(),
                busy: false,
                interrupt_requested: false,
                queued_this_input: false,
                expected_number: 1,
                last_accepted: None,
                last_unchecked: None,
                last_unchecked_text: Vec::new(),
                partial: Vec::new(),
                transfer: Vec::new(),
                discarding: false,
                discarded: 0,
                abandoned: false,
                last_frame_refused: false,
                broken_since_frame: 0,
                transfer_spoiled: false,
                bare_records: Vec::new(),
                bare_skipping: false,
            },
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The current phase.
    #[must_use]
    pub const fn state(&self) -> LinkState {
        self.core.state
    }

    /// Whether nothing is in progress or queued.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.core.state == LinkState::Neutral && self.core.queue.is_empty()
    }

    /// Messages waiting to be sent, including the one in flight.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.core.queue.len()
    }

    /// Queues a message (records separated by CR) and starts establishment if the link is free.
    ///
    /// The text must not hold the restricted control characters of E1381 (STX, ETX, EOT, ENQ,
    /// ACK, ETB, NAK, ...; LF is normalised): a receiver would take them for the end of the
    /// frame and refuse it six times. Escape them in the records (`astm-records` builders do).
    /// A message holding one is refused at once with [`AbortReason::RestrictedCharacter`],
    /// and one with no text with [`AbortReason::Empty`].
    pub fn send(&mut self, message: Vec<u8>, now: Instant) -> MessageId {
        self.enqueue(message, now, false)
    }

    /// Queues a message ahead of every message not yet started; one whose transfer is under
    /// way finishes first. For a message the receiver interrupted (§6.3.5.3:
    /// [`AbortReason::ReceiverInterrupt`] hands it back), to be sent again before the
    /// messages queued after it. Refused as [`send`](Self::send) refuses.
    pub fn send_first(&mut self, message: Vec<u8>, now: Instant) -> MessageId {
        self.enqueue(message, now, true)
    }

    fn enqueue(&mut self, message: Vec<u8>, now: Instant, first: bool) -> MessageId {
        let id = MessageId(self.core.next_id);
        self.core.next_id += 1;
        // LF separates records like CR (the framer turns it into CR); any other restricted
        // byte would reach the wire and have every frame holding it refused.
        if let Some(offset) = message
            .iter()
            .position(|&b| b != crate::control::LF && crate::control::is_restricted(b))
        {
            let byte = message[offset];
            self.core.events.push_back(Event::MessageAborted {
                id,
                reason: AbortReason::RestrictedCharacter { offset, byte },
                message,
            });
            return id;
        }
        let framed = FramedMessage::new(message, self.config.framer);
        if framed.is_empty() {
            // A transfer with no frame would wait for a reply that never comes.
            self.core.events.push_back(Event::MessageAborted {
                id,
                reason: AbortReason::Empty,
                message: framed.into_text(),
            });
            return id;
        }
        let out = Outgoing {
            id,
            framed,
            index: 0,
            number: 1,
            transmissions: 0,
            enq_attempts: 0,
            failed_transfers: 0,
        };
        let core = &mut self.core;
        if first {
            // The front message is started once its ENQ is out (or lost contention).
            let started = matches!(
                core.state,
                LinkState::Establishing | LinkState::ContentionYield | LinkState::Sending
            );
            core.queue
                .insert(usize::from(started).min(core.queue.len()), out);
        } else {
            core.queue.push_back(out);
        }
        core.maybe_establish(now);
        id
    }

    /// Takes back every message not yet sent in full, oldest first, with its id: those queued
    /// and the one in flight. No [`Event::MessageSent`] or [`Event::MessageAborted`] comes for
    /// them afterwards.
    ///
    /// For a caller whose transport is gone (the peer hung up, an I/O error) or who moves its
    /// messages elsewhere: nothing given to [`send`](Self::send) is lost. A transfer in progress
    /// ends with EOT (termination, §6.4.1: the receiver discards an incomplete message) once
    /// the reply to the ENQ or frame in flight has come, or its timer has run out: sent at once,
    /// the EOT would leave that reply to be taken for the answer to the next ENQ or frame.
    /// A transfer being received from the peer carries on.
    pub fn take_unsent(&mut self) -> Vec<(MessageId, Vec<u8>)> {
        let core = &mut self.core;
        if core.state == LinkState::Sending {
            core.abandoned = true;
        }
        std::mem::take(&mut core.queue)
            .into_iter()
            .map(|out| (out.id, out.framed.into_text()))
            .collect()
    }

    /// Answer ENQs with NAK while `busy` (§6.2.5: cannot receive now).
    pub fn set_busy(&mut self, busy: bool) {
        self.core.busy = busy;
    }

    /// While receiving, answer the next accepted frame with EOT instead of ACK: ask the sender to
    /// stop so this station can send (receiver interrupt, §6.3.5). Returns false, and does
    /// nothing, when no transfer is being received; a request the transfer's end overtakes
    /// lapses with it (it never interrupts a later transfer). A sender may ignore the
    /// request; ask again to repeat it on a later frame.
    ///
    /// A sender that honours it before its last frame ends the transfer there (this crate's
    /// sender then reports the message aborted, to be sent again whole). The link cannot tell
    /// such an early end from a complete transfer, so with [`Assembly::PerTransfer`] the message
    /// handed over after an interrupt may lack its last records: check for the E1394
    /// terminator (L) record before using it.
    pub fn request_interrupt(&mut self) -> bool {
        let receiving = self.core.state == LinkState::Receiving;
        self.core.interrupt_requested = receiving;
        receiving
    }

    /// Feeds bytes received from the peer, in the order they came.
    ///
    /// A reply answers the frame or ENQ sent before it: what comes in the same input after the
    /// reply on which the next frame or ENQ was queued was on the wire before that left, and
    /// is set aside ([`LinkError::EarlyReply`]), as a receiver's second ACK to one frame.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        self.core.queued_this_input = false;
        self.decoder.push(data);
        while let Some(item) = self.decoder.next_item() {
            self.core.on_item(item, now);
        }
    }

    /// Tells the link that the peer closed the connection. A message being received is
    /// incomplete: it is discarded ([`Event::ReceiveDiscarded`] with
    /// [`DiscardReason::ConnectionClosed`]; with [`Assembly::PerTransfer`], the whole transfer,
    /// as when the receive timer runs out), and the bytes of an unfinished frame are reported
    /// ([`LinkError::BrokenFrame`]). The link is then neutral.
    ///
    /// Messages to send stay queued, the one in flight included: take them back with
    /// [`take_unsent`](Self::take_unsent), or keep the link for the next connection, where
    /// they go out once [`handle_timeout`](Self::handle_timeout) is called.
    ///
    /// ```
    /// use std::time::Instant;
    /// use astm_frame::{DiscardReason, Event, Link, LinkConfig, Role};
    ///
    /// let mut lis = Link::new(LinkConfig::new(Role::Computer));
    /// // ENQ, then a first frame ending in ETB; the analyzer hangs up before the rest.
    /// lis.handle_input(b"\x05\x021H|\\^&\r\x17F9\r\n", Instant::now());
    /// lis.handle_eof(Instant::now());
    /// assert_eq!(
    ///     lis.poll_event(),
    ///     Some(Event::ReceiveDiscarded { reason: DiscardReason::ConnectionClosed, len: 6 })
    /// );
    /// ```
    pub fn handle_eof(&mut self, now: Instant) {
        let unfinished = self.decoder.pending();
        if !unfinished.is_empty() && !is_line_ends(unfinished) {
            let len = unfinished.len();
            self.core.error(LinkError::BrokenFrame {
                len,
                reason: BrokenReason::Unfinished,
            });
        }
        self.decoder.reset();
        self.core.on_eof(now);
    }

    /// Tells the link that `now` has come; acts on every timer that has expired. A call before
    /// any timer is due does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.on_timeout(now);
    }

    /// Appends the bytes to send to `buf`; returns how many, or `None` if there are none.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        if self.core.transmit.is_empty() {
            return None;
        }
        let n = self.core.transmit.len();
        buf.append(&mut self.core.transmit);
        Some(n)
    }

    /// Tells the link that the bytes taken with [`poll_transmit`](Self::poll_transmit) went
    /// on the wire at `now`, later than the call that produced them: after a deliberate
    /// response delay, or a write that waited. E1381 starts the ENQ and frame reply timers and
    /// the receive timer on transmission (§6.5.2), so the one running is started again from
    /// `now`: a delay before a frame no longer uses up the time the peer has to reply. The
    /// other waits (hold-offs, contention) are not moved.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use astm_frame::{Link, LinkConfig, Role};
    ///
    /// let mut analyzer = Link::new(LinkConfig::new(Role::Instrument));
    /// let t0 = Instant::now();
    /// analyzer.send(b"H|\\^&\r".to_vec(), t0);
    /// let mut out = Vec::new();
    /// let _ = analyzer.poll_transmit(&mut out);
    /// // The ENQ went out 5 s late: its 15 s reply timer runs from then.
    /// analyzer.handle_transmitted(t0 + Duration::from_secs(5));
    /// assert_eq!(analyzer.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    /// ```
    pub fn handle_transmitted(&mut self, now: Instant) {
        let core = &mut self.core;
        if let Some((from, deadline)) = core.timer_start
            && core.deadline == Some(deadline)
            && now > from
        {
            let moved = after(deadline, now - from);
            core.deadline = Some(moved);
            core.timer_start = Some((now, moved));
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.core.state {
            LinkState::Neutral if !self.core.queue.is_empty() => self.core.enq_not_before,
            LinkState::Neutral => None,
            LinkState::Sending => match (self.core.deadline, self.core.noise_deadline) {
                (Some(reply), Some(noise)) => Some(reply.min(noise)),
                (reply, noise) => reply.or(noise),
            },
            _ => self.core.deadline,
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }
}

/// `now + wait`, saturating at the latest instant the clock can hold: a timer set longer than
/// the clock reaches (`Duration::MAX`, a caller's "never") would otherwise panic on overflow.
/// Such a deadline is never reached, so the timer never runs out.
fn after(now: Instant, wait: Duration) -> Instant {
    if let Some(at) = now.checked_add(wait) {
        return at;
    }
    // The platform's limit is not exposed: approach it with halving steps.
    let (mut at, mut step) = (now, wait);
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(next) => at = next,
            None => step /= 2,
        }
    }
    at
}

impl Core {
    fn control(&mut self, control: Control) {
        self.transmit.push(control.byte());
    }

    fn error(&mut self, error: LinkError) {
        self.events.push_back(Event::LinkError(error));
    }

    /// Starts a timer that runs from a transmission queued now (see
    /// [`Link::handle_transmitted`]).
    fn start_timer_on_transmit(&mut self, now: Instant, wait: Duration) {
        let deadline = after(now, wait);
        self.deadline = Some(deadline);
        self.timer_start = Some((now, deadline));
    }

    fn enter_neutral(&mut self, now: Instant) {
        self.state = LinkState::Neutral;
        self.interrupt_requested = false;
        self.deadline = None;
        self.noise_deadline = None;
        self.maybe_establish(now);
    }

    /// Sends ENQ if a message waits, the link is neutral and no hold-off applies (§6.2.4).
    fn maybe_establish(&mut self, now: Instant) {
        if self.state != LinkState::Neutral || self.queue.is_empty() {
            return;
        }
        if self.enq_not_before.is_some_and(|t| now < t) {
            return;
        }
        self.enq_not_before = None;
        self.interrupt_hold_off = false;
        let Some(out) = self.queue.front_mut() else {
            return;
        };
        out.enq_attempts += 1;
        self.crossed_enq = false;
        self.control(Control::Enq);
        self.queued_this_input = true;
        self.state = LinkState::Establishing;
        self.start_timer_on_transmit(now, self.config.timers.enq_reply);
    }

    /// Gives up the message at the front of the queue.
    fn abort_front(&mut self, reason: AbortReason) {
        if let Some(out) = self.queue.pop_front() {
            self.events.push_back(Event::MessageAborted {
                id: out.id,
                reason,
                message: out.framed.into_text(),
            });
        }
    }

    /// The transfer of the front message failed: termination phase, then a complete repeat
    /// after the hold-off (§6.5.2.3), or, after its last transfer, give it up.
    fn transfer_failed(&mut self, reason: AbortReason, now: Instant) {
        self.control(Control::Eot);
        let max_transfers = self.config.max_transfers;
        let repeat = self.queue.front_mut().and_then(|out| {
            out.failed_transfers += 1;
            (out.failed_transfers < max_transfers).then(|| {
                out.index = 0;
                out.number = 1;
                out.transmissions = 0;
                out.enq_attempts = 0;
                (out.id, out.failed_transfers)
            })
        });
        match repeat {
            Some((id, transfers)) => {
                self.events.push_back(Event::TransferFailed {
                    id,
                    reason,
                    transfers,
                });
                // The receiver could not take the message: give it the wait a NAK to ENQ
                // asks for (§6.2.6) before the repeat, or the next message.
                self.enq_not_before = Some(after(now, self.config.timers.enq_retry));
                self.interrupt_hold_off = false;
            }
            None => self.abort_front(reason),
        }
        self.enter_neutral(now);
    }

    /// An ENQ went unanswered or was refused: retry later, or give up.
    fn enq_failed(&mut self, now: Instant) {
        let attempts = self.queue.front().map_or(0, |o| o.enq_attempts);
        if attempts >= self.config.max_enq_attempts {
            self.abort_front(AbortReason::LinkNotEstablished { attempts });
        }
        // §6.2.6: at least 10 s before the next ENQ, for this message or the next one.
        self.enq_not_before = Some(after(now, self.config.timers.enq_retry));
        self.interrupt_hold_off = false;
        self.enter_neutral(now);
    }

    fn transmit_frame(&mut self, now: Instant) {
        let Some(out) = self.queue.front_mut() else {
            return;
        };
        out.transmissions += 1;
        let (index, number) = (out.index, out.number);
        let _ = out.framed.encode_frame(index, number, &mut self.transmit);
        self.queued_this_input = true;
        self.state = LinkState::Sending;
        self.start_timer_on_transmit(now, self.config.timers.frame_reply);
        self.noise_deadline = None;
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.state == LinkState::Sending
            && self.noise_deadline.is_some_and(|d| now >= d)
            && self.deadline.is_none_or(|d| now < d)
        {
            // No reply followed the noise: it was the reply, garbled.
            self.frame_refused(now);
            return;
        }
        match self.state {
            LinkState::Neutral => self.maybe_establish(now),
            _ if self.deadline.is_none_or(|d| now < d) => {}
            LinkState::Establishing => {
                // §6.5.2.1: no reply to ENQ -> termination phase.
                self.control(Control::Eot);
                self.enq_failed(now);
            }
            LinkState::ContentionYield => {
                if matches!(self.config.contention, ContentionPolicy::AckAfter(_)) {
                    // The peer neither acknowledged our ENQ nor sent its own again: it waits
                    // for the reply to the ENQ that crossed ours.
                    self.accept_enq(now);
                    if self.state != LinkState::Receiving {
                        // Busy: refused (NAK, the peer waits 10 s); we may ask for the line.
                        self.enter_neutral(now);
                    }
                } else {
                    self.yield_unused = true;
                    self.enter_neutral(now);
                }
            }
            LinkState::Sending if self.abandoned => self.end_abandoned(now),
            LinkState::Sending => {
                // §6.5.2.3: no reply to a frame -> abort, termination phase.
                let frame_number = self.queue.front().map_or(0, |o| o.number);
                self.transfer_failed(AbortReason::NoReplyToFrame { frame_number }, now);
            }
            LinkState::Receiving => {
                // §6.5.2.4: discard the incomplete message, back to neutral. With
                // per-transfer assembly the message is the whole transfer, and a sender
                // that timed out (15 s, before this 30 s timer) sends it all again.
                // The partial message and the rest of the transfer (per-transfer
                // assembly) are one message: one report.
                let len = std::mem::take(&mut self.transfer).len();
                self.discard_partial_with(len, DiscardReason::ReceiveTimeout);
                self.enter_neutral(now);
            }
        }
    }

    fn on_eof(&mut self, now: Instant) {
        self.bare_skipping = false;
        let bare = std::mem::take(&mut self.bare_records).len();
        self.report_discarded(bare, DiscardReason::ConnectionClosed);
        match self.state {
            LinkState::Receiving => {
                let len = std::mem::take(&mut self.transfer).len();
                self.discard_partial_with(len, DiscardReason::ConnectionClosed);
            }
            // The message in flight stays at the front of the queue, and its next transfer
            // starts from its first frame (as every transfer does). One taken back needs
            // no EOT on a line that is gone.
            LinkState::Sending => self.abandoned = false,
            LinkState::Neutral | LinkState::Establishing | LinkState::ContentionYield => {}
        }
        self.transfer_spoiled = false;
        self.last_accepted = None;
        self.last_unchecked = None;
        self.state = LinkState::Neutral;
        self.interrupt_requested = false;
        self.deadline = None;
        self.noise_deadline = None;
        // Nothing is sent on a closed connection: the queue waits for the next call.
        self.enq_not_before = Some(now);
        self.transmit.clear();
    }

    fn on_item(&mut self, item: Item<'_>, now: Instant) {
        if let Item::Control(Control::Eot) = item {
            // Whatever the peer was sending has ended: bare records without their L record
            // are not the start of its next message.
            self.discard_bare_records();
        }
        if self.queued_this_input && self.set_aside_early_reply(item) {
            return;
        }
        match (self.state, item) {
            // §6.5.1.2: while a frame waits for its reply, any other character is a NAK
            // (noise only once no reply follows it: see `Timers::reply_after_noise`).
            (LinkState::Sending, item) => self.on_frame_reply(item, now),
            // Line ends after a frame's trailer or an EOT are a sender's habit, not noise.
            (_, Item::Junk(bytes)) if is_line_ends(bytes) => {}
            (_, Item::Junk(bytes)) => self.error(LinkError::Junk(bytes.len())),
            (_, Item::Record(record)) => self.on_bare_record(record),
            (LinkState::Neutral | LinkState::ContentionYield, Item::Control(Control::Enq)) => {
                self.accept_enq(now);
            }
            (LinkState::Neutral | LinkState::ContentionYield, Item::Control(Control::Ack))
                if std::mem::take(&mut self.crossed_enq) =>
            {
                // The peer yielded by acknowledging our ENQ: it is receiving now.
                self.enq_not_before = None;
                self.deadline = None;
                self.on_enq_reply(Control::Ack, now);
            }
            (LinkState::Neutral | LinkState::ContentionYield, Item::Frame(_)) => {
                self.error(LinkError::FrameOutsideTransfer);
            }
            (LinkState::Neutral | LinkState::ContentionYield, _) => {}
            (LinkState::Establishing, Item::Control(control)) => self.on_enq_reply(control, now),
            (LinkState::Establishing, _) => {}
            (LinkState::Receiving, item) => self.on_receiving(item, now),
        }
    }

    /// An item that came after the reply on which an ENQ or frame was queued, in the same
    /// input: it was sent before that ENQ or frame left, so it cannot answer it (§6.3.4: a
    /// reply follows its frame). Taken for the answer, the second ACK of a receiver that
    /// acknowledges twice had the next frame counted accepted unseen. Returns whether the
    /// item was set aside. A crossing ENQ is still contention: the peer will take ours so.
    fn set_aside_early_reply(&mut self, item: Item<'_>) -> bool {
        match (self.state, item) {
            (LinkState::Establishing, Item::Control(c @ (Control::Ack | Control::Nak)))
            | (LinkState::Sending, Item::Control(c)) => {
                self.error(LinkError::EarlyReply(c));
            }
            (LinkState::Sending, Item::Junk(bytes)) => {
                if !is_line_ends(bytes) {
                    self.error(LinkError::Junk(bytes.len()));
                }
            }
            (LinkState::Sending, Item::Frame(frame)) => {
                self.error(LinkError::Junk(frame.raw().len()));
            }
            (LinkState::Sending, Item::Record(bytes)) => self.error(LinkError::Junk(bytes.len())),
            (LinkState::Sending, Item::Broken { bytes, reason }) => {
                self.error(LinkError::BrokenFrame {
                    len: bytes.len(),
                    reason,
                });
            }
            _ => return false,
        }
        true
    }

    fn accept_enq(&mut self, now: Instant) {
        // The peer takes the line when it is given: the next contention is yielded again.
        self.yield_unused = false;
        self.crossed_enq = false;
        if self.busy {
            self.control(Control::Nak);
            return;
        }
        self.control(Control::Ack);
        self.state = LinkState::Receiving;
        self.start_timer_on_transmit(now, self.config.timers.receive);
        self.expected_number = 1;
        self.last_accepted = None;
        self.last_unchecked = None;
        self.last_frame_refused = false;
        self.broken_since_frame = 0;
        self.transfer_spoiled = false;
    }

    fn on_enq_reply(&mut self, control: Control, now: Instant) {
        match control {
            Control::Ack => {
                let Some(out) = self.queue.front_mut() else {
                    // Everything was taken back while the ENQ waited for its answer.
                    self.control(Control::Eot);
                    self.enter_neutral(now);
                    return;
                };
                out.index = 0;
                out.number = 1;
                out.transmissions = 0;
                out.enq_attempts = 0;
                self.transmit_frame(now);
            }
            Control::Nak => self.enq_failed(now),
            Control::Enq => {
                let insist = match self.config.contention {
                    ContentionPolicy::ByRole => self.config.role == Role::Instrument,
                    ContentionPolicy::Insist => true,
                    // Insist once after a yield the peer left unused; yield again after that.
                    ContentionPolicy::Yield => std::mem::take(&mut self.yield_unused),
                    // A busy station cannot take the peer's message: it insists on its own.
                    ContentionPolicy::AckAtOnce | ContentionPolicy::AckAfter(_) => self.busy,
                };
                // The ENQ was answered (by the peer's), so it does not count toward
                // `max_enq_attempts`, whichever side gives way.
                if let Some(out) = self.queue.front_mut() {
                    out.enq_attempts = out.enq_attempts.saturating_sub(1);
                }
                self.crossed_enq = true;
                if insist {
                    // §6.2.7.1: the instrument waits at least 1 s, then sends ENQ again.
                    self.enq_not_before = Some(after(now, self.config.timers.contention_retry));
                    self.interrupt_hold_off = false;
                    self.state = LinkState::Neutral;
                    self.deadline = None;
                } else if self.config.contention == ContentionPolicy::AckAtOnce {
                    self.accept_enq(now);
                } else {
                    // The computer yields and waits up to 20 s for the instrument's ENQ.
                    let wait = match self.config.contention {
                        ContentionPolicy::AckAfter(grace) => grace,
                        _ => self.config.timers.contention_yield,
                    };
                    self.state = LinkState::ContentionYield;
                    self.deadline = Some(after(now, wait));
                }
            }
            Control::Eot => {}
        }
    }

    fn on_frame_reply(&mut self, item: Item<'_>, now: Instant) {
        let Some(out) = self.queue.front().filter(|_| !self.abandoned) else {
            if let Item::Control(_) = item {
                self.end_abandoned(now);
            }
            return;
        };
        let last = out.index + 1 >= out.framed.len();
        match item {
            // The byte that cut the noise short is the reply, and comes next.
            Item::Broken {
                reason: BrokenReason::Interrupted(_),
                ..
            } => {}
            // Line ends that some receivers put after their reply.
            Item::Junk(bytes) if is_line_ends(bytes) => {}
            // Noise, whatever shape it took (an STX starts a broken frame, a CR ends a bare
            // record): a NAK only if no reply follows (see `Timers::reply_after_noise`).
            // Resent at once, the frame took the reply already on its way for its own.
            Item::Junk(bytes) | Item::Record(bytes) => {
                self.noise_in_place_of_reply(LinkError::Junk(bytes.len()), now);
            }
            Item::Frame(frame) => {
                self.noise_in_place_of_reply(LinkError::Junk(frame.raw().len()), now);
            }
            Item::Broken { bytes, reason } => {
                let error = LinkError::BrokenFrame {
                    len: bytes.len(),
                    reason,
                };
                self.noise_in_place_of_reply(error, now);
            }
            Item::Control(Control::Ack) => self.frame_accepted(now),
            Item::Control(Control::Eot) if !self.config.honor_interrupt => {
                self.frame_accepted(now);
            }
            Item::Control(Control::Eot) => {
                // §6.3.5.3: accepted, and the receiver wants the link.
                self.control(Control::Eot);
                self.enq_not_before = Some(after(now, self.config.timers.interrupt_hold_off));
                self.interrupt_hold_off = true;
                if last {
                    self.message_sent();
                } else {
                    self.abort_front(AbortReason::ReceiverInterrupt);
                }
                self.enter_neutral(now);
            }
            // §6.5.1.2: NAK or any other character.
            _ => self.frame_refused(now),
        }
    }

    /// Reports noise that came where the frame's reply belongs, and gives the reply a while
    /// to follow before the noise counts as a garbled reply.
    fn noise_in_place_of_reply(&mut self, error: LinkError, now: Instant) {
        self.error(error);
        if self.noise_deadline.is_none() {
            self.noise_deadline = Some(after(now, self.config.timers.reply_after_noise));
        }
    }

    /// The frame in flight was refused: send it again, or after the sixth failure end the
    /// transfer (§6.5.1.2).
    fn frame_refused(&mut self, now: Instant) {
        let Some(out) = self.queue.front().filter(|_| !self.abandoned) else {
            self.end_abandoned(now);
            return;
        };
        let (frame_number, transmissions) = (out.number, out.transmissions);
        if transmissions >= self.config.max_transmissions {
            self.transfer_failed(
                AbortReason::TooManyTransmissions {
                    frame_number,
                    transmissions,
                },
                now,
            );
        } else {
            self.error(LinkError::Retransmitting { frame_number });
            self.transmit_frame(now);
        }
    }

    /// The reply to a frame of a message taken back has come (or its timer ran out): end the
    /// transfer.
    fn end_abandoned(&mut self, now: Instant) {
        self.abandoned = false;
        self.control(Control::Eot);
        self.enter_neutral(now);
    }

    fn message_sent(&mut self) {
        if let Some(out) = self.queue.pop_front() {
            self.events.push_back(Event::MessageSent(out.id));
        }
    }

    fn frame_accepted(&mut self, now: Instant) {
        let Some(out) = self.queue.front_mut() else {
            return;
        };
        if out.index + 1 < out.framed.len() {
            out.index += 1;
            out.number = next_frame_number(out.number);
            out.transmissions = 0;
            self.transmit_frame(now);
        } else {
            // §6.4: termination.
            self.control(Control::Eot);
            self.message_sent();
            self.enter_neutral(now);
        }
    }

    fn on_receiving(&mut self, item: Item<'_>, now: Instant) {
        match item {
            Item::Frame(frame) => {
                // §6.5.2.4: the timer restarts with each reply to a frame (every branch
                // replies), not with noise, which could otherwise keep the link busy.
                self.start_timer_on_transmit(now, self.config.timers.receive);
                self.last_frame_refused = true;
                self.broken_since_frame = 0;
                if let Some(defect) = frame.defect() {
                    self.control(Control::Nak);
                    self.error(LinkError::FrameRejected {
                        frame_number: frame.number(),
                        defect,
                    });
                    return;
                }
                if !self.config.decoder.leniency.unchecked_frame_numbers {
                    let number = frame.number().unwrap_or(u8::MAX);
                    let any_first = self.config.decoder.leniency.any_first_frame_number
                        && self.last_accepted.is_none()
                        && number <= 7;
                    if number != self.expected_number && !any_first {
                        if Some(number) == self.last_accepted {
                            // §6.5.1: our ACK was lost; accept again, deliver once.
                            self.last_frame_refused = false;
                            self.control(Control::Ack);
                            self.error(LinkError::DuplicateFrame(number));
                        } else {
                            self.control(Control::Nak);
                            self.error(LinkError::UnexpectedFrameNumber {
                                expected: self.expected_number,
                                received: number,
                            });
                        }
                        return;
                    }
                    self.last_accepted = Some(number);
                    self.expected_number = next_frame_number(number);
                } else if let Some(number) = frame.number() {
                    // Numbers are not checked, but a frame repeating the last one's FN and
                    // bytes is our lost ACK being answered by a resend (§6.5.1), not new
                    // data: no sender numbers two consecutive frames alike by design. Without
                    // an FN digit there is no telling, and the frame is delivered.
                    let key = Some((number, frame.end()));
                    if key == self.last_unchecked && frame.text() == self.last_unchecked_text {
                        self.last_frame_refused = false;
                        self.control(Control::Ack);
                        self.error(LinkError::DuplicateFrame(number));
                        return;
                    }
                    self.last_unchecked = key;
                    self.last_unchecked_text.clear();
                    self.last_unchecked_text.extend_from_slice(frame.text());
                } else {
                    self.last_unchecked = None;
                }
                self.last_frame_refused = false;
                if std::mem::take(&mut self.interrupt_requested) {
                    self.control(Control::Eot);
                } else {
                    self.control(Control::Ack);
                }
                if let Some(tolerated) = frame.tolerated_defect() {
                    self.error(LinkError::Tolerated(tolerated));
                }
                self.append(frame.text(), frame.end());
            }
            Item::Broken {
                bytes,
                reason:
                    reason @ (BrokenReason::TooLong(_)
                    | BrokenReason::EndedEarly
                    | BrokenReason::Interrupted(crate::control::ACK | crate::control::NAK)),
            } => {
                // Too long, ended by an LF before its checksum, or an ACK or NAK byte inside:
                // a frame spoilt by noise, or noise alone. Noise after the last frame, before
                // the EOT, must not make a complete transfer look given up: a sender gives up
                // on a frame only once refused as often as it may send it.
                self.start_timer_on_transmit(now, self.config.timers.receive);
                self.broken_since_frame = self.broken_since_frame.saturating_add(1);
                if self.broken_since_frame >= self.config.max_transmissions {
                    self.last_frame_refused = true;
                }
                self.control(Control::Nak);
                self.error(LinkError::BrokenFrame {
                    len: bytes.len(),
                    reason,
                });
            }
            Item::Broken { bytes, reason } => {
                // The STX, ENQ or EOT that cut the frame short is handled next and gets the
                // one reply (a new frame's, NAK, or none at the end of the transfer).
                self.error(LinkError::BrokenFrame {
                    len: bytes.len(),
                    reason,
                });
            }
            Item::Control(Control::Eot) => {
                if self.config.assembly == Assembly::PerTransfer && !self.partial.is_empty() {
                    // The message is the whole transfer: ended inside an ETB chain it is
                    // incomplete, and the sender repeats it whole.
                    let len = std::mem::take(&mut self.transfer).len() + self.partial.len();
                    self.partial.clear();
                    self.report_discarded(len, DiscardReason::EndedMidMessage);
                }
                self.discard_partial(DiscardReason::EndedMidMessage);
                if self.config.assembly == Assembly::PerTransfer && self.last_frame_refused {
                    let len = std::mem::take(&mut self.transfer).len();
                    self.report_discarded(len, DiscardReason::SenderAborted);
                }
                self.deliver_transfer();
                self.discarding = false;
                self.transfer_spoiled = false;
                // The receiver that interrupted us has had its turn (§6.3.5.3). A wait
                // after a refused ENQ (§6.2.6) or contention still runs its course.
                if self.interrupt_hold_off {
                    self.enq_not_before = None;
                    self.interrupt_hold_off = false;
                }
                self.enter_neutral(now);
            }
            Item::Control(Control::Enq) => {
                self.control(Control::Nak);
                self.error(LinkError::EnqDuringTransfer);
            }
            Item::Control(_) | Item::Junk(_) | Item::Record(_) => {}
        }
    }

    fn append(&mut self, text: &[u8], end: FrameEnd) {
        let limit = self.config.max_message_len;
        if self.transfer_spoiled {
            return;
        }
        if !self.discarding && self.partial.len() + self.transfer.len() + text.len() > limit {
            if self.config.assembly == Assembly::PerTransfer {
                // The message is the whole transfer: without this part it is incomplete.
                let len = self.transfer.len() + self.partial.len() + text.len();
                self.transfer.clear();
                self.partial.clear();
                self.transfer_spoiled = true;
                self.events.push_back(Event::ReceiveDiscarded {
                    reason: DiscardReason::TooLong(limit),
                    len,
                });
                return;
            }
            self.discarding = true;
        }
        if self.discarding {
            self.discarded += text.len();
            if end == FrameEnd::End {
                self.discard_partial(DiscardReason::TooLong(limit));
            }
            return;
        }
        self.partial.extend_from_slice(text);
        if end == FrameEnd::End {
            match self.config.assembly {
                Assembly::PerEndFrame => {
                    let message = std::mem::take(&mut self.partial);
                    self.events.push_back(Event::MessageReceived(message));
                }
                Assembly::PerTransfer => self.transfer.append(&mut self.partial),
            }
        }
    }

    fn discard_partial(&mut self, reason: DiscardReason) {
        self.discard_partial_with(0, reason);
    }

    /// Discards the partial message, reported as one with `also` more bytes (the rest of its
    /// transfer). A message already over the size limit is reported as too long, with what
    /// was dropped of it, whatever ended it.
    fn discard_partial_with(&mut self, also: usize, reason: DiscardReason) {
        let reason = if self.discarding {
            DiscardReason::TooLong(self.config.max_message_len)
        } else {
            reason
        };
        let len = also + self.partial.len() + std::mem::take(&mut self.discarded);
        self.partial.clear();
        self.discarding = false;
        self.report_discarded(len, reason);
    }

    fn report_discarded(&mut self, len: usize, reason: DiscardReason) {
        if len > 0 {
            self.events
                .push_back(Event::ReceiveDiscarded { reason, len });
        }
    }

    /// [`Assembly::PerTransfer`]: hands over the complete messages of the transfer.
    fn deliver_transfer(&mut self) {
        if !self.transfer.is_empty() {
            let message = std::mem::take(&mut self.transfer);
            self.events.push_back(Event::MessageReceived(message));
        }
    }

    /// Unframed mode: bare records collect until the L record ends the message; a header
    /// record starts a new one.
    fn on_bare_record(&mut self, record: &[u8]) {
        if crate::scanner::is_header_record(record) {
            self.discard_bare_records();
        } else if self.bare_skipping {
            return;
        }
        if self.bare_records.len() + record.len() + 1 > self.config.max_message_len {
            let len = self.bare_records.len() + record.len();
            self.bare_records.clear();
            // The rest of this message is no message: without its start it must not be
            // delivered at its L record.
            self.bare_skipping = true;
            self.events.push_back(Event::ReceiveDiscarded {
                reason: DiscardReason::TooLong(self.config.max_message_len),
                len,
            });
            return;
        }
        self.bare_records.extend_from_slice(record);
        self.bare_records.push(crate::control::CR);
        if crate::scanner::is_terminator_record(record) {
            let message = std::mem::take(&mut self.bare_records);
            self.events.push_back(Event::MessageReceived(message));
        }
    }

    /// Unframed mode: drops the records of a message that did not get its L record.
    fn discard_bare_records(&mut self) {
        self.bare_skipping = false;
        let len = std::mem::take(&mut self.bare_records).len();
        self.report_discarded(len, DiscardReason::EndedMidMessage);
    }
}

/// Bytes outside frames that are only CR and LF: line ends some stations put after a frame's
/// trailer, an EOT or a reply. Never noise.
fn is_line_ends(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| matches!(b, b'\r' | b'\n'))
}
