//! A small async MLLP client: send messages, await their ACKs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::codec::Framed;

use super::{CodecError, MllpCodec};
use crate::ack::{AckCode, AckMessage};
use crate::error::FrameError;
use crate::fmt_bytes::Escaped;
use crate::hl7::{AckCondition, Message};
use crate::mllp::{CommitAck, MllpFrame};

/// Why a send did not get its acknowledgement.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The transport or the framing failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No acknowledgement within the timeout (or the messages could not all be written
    /// within it: the peer stopped reading). Of a batch cut short while being written,
    /// what the codec had already queued goes out ahead of the next send's messages and
    /// the rest is not sent; late ACKs are counted in
    /// [`stale_replies`](MllpClient::stale_replies).
    #[error(
        "mllp client: {pending} acknowledgement(s) still missing after {after:?}{}",
        unframed.hint()
    )]
    Timeout {
        /// The ACK timeout.
        after: Duration,
        /// Messages still unacknowledged.
        pending: usize,
        /// What the peer sent meanwhile that was no MLLP frame: the usual cause of a
        /// timeout with a peer that did answer (other start or end blocks, a bare `ACK`).
        unframed: Unframed,
    },
    /// The peer closed the connection.
    #[error(
        "mllp client: connection closed with {pending} acknowledgement(s) missing{}",
        unframed.hint()
    )]
    Closed {
        /// Messages still unacknowledged.
        pending: usize,
        /// What the peer sent before closing that was no MLLP frame: a peer that answers
        /// in another framing and then hangs up looks, without it, like one that hung up
        /// without answering.
        unframed: Unframed,
    },
}

/// What came from the peer during a send but was not a frame the client could read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unframed {
    /// Bytes outside any frame (no start block before them).
    pub junk_bytes: usize,
    /// Frames refused (too large, interrupted by a new start block).
    pub refused_frames: usize,
    /// A frame was begun (its start block seen) and not ended when the wait ended.
    pub open_frame: bool,
    /// The start block the client's codec expects.
    pub start_block: Vec<u8>,
    /// The end block and trailer the client's codec expects.
    pub end_block: Vec<u8>,
}

impl Unframed {
    /// Whether anything unreadable came.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.junk_bytes == 0 && self.refused_frames == 0 && !self.open_frame
    }

    /// The tail of a timeout or close message: empty, or what came and what it suggests.
    fn hint(&self) -> String {
        let mut parts = Vec::new();
        if self.junk_bytes > 0 {
            parts.push(format!("{} byte(s) outside MLLP frames", self.junk_bytes));
        }
        if self.refused_frames > 0 {
            parts.push(format!("{} refused frame(s)", self.refused_frames));
        }
        if self.open_frame {
            parts.push("a frame begun and not ended".to_owned());
        }
        if parts.is_empty() {
            return String::new();
        }
        format!(
            "; the peer sent {} (this client expects frames as {:?} ... {:?}: check the \
             peer's start and end blocks, or whether it speaks MLLP at all)",
            parts.join(", "),
            Escaped(&self.start_block),
            Escaped(&self.end_block),
        )
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        Self::Codec(CodecError::Io(error))
    }
}

/// The acknowledgement of one sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// An HL7 ACK (the whole ACK message in `payload`).
    Ack {
        /// MSA-1.
        code: AckCode,
        /// The ACK message, zero-copy from the read buffer.
        payload: Bytes,
    },
    /// An MLLP release 2 commit acknowledgement.
    Commit(CommitAck),
    /// None awaited (only with
    /// [`with_accept_ack_types`](MllpClient::with_accept_ack_types)): the message's
    /// MSH-15 is NE (never send an accept ACK) or ER (only on error), so a receiver
    /// following the standard sends nothing on success. An error ACK that comes later
    /// is skipped and counted in [`stale_replies`](MllpClient::stale_replies), and so is an
    /// application ACK unless [`with_application_acks`](MllpClient::with_application_acks)
    /// has the client wait for it.
    NotRequested,
}

/// The state of one [`MllpClient::send_all`].
struct Exchange<'m, 'r> {
    messages: &'m [&'m [u8]],
    expected: &'r [Option<Vec<u8>>],
    /// Per message: its reply is the application ACK, and a commit accept (CA) before it is
    /// not the end ([`MllpClient::with_application_acks`]).
    application: &'r [bool],
    replies: &'r mut [Option<Reply>],
    /// Messages handed to the codec so far.
    queued: usize,
    flushed: bool,
    /// Junk bytes and refused frames reported by the codec meanwhile.
    junk_bytes: usize,
    refused_frames: usize,
    /// The stream ended inside a frame (the codec reports that frame only at the end).
    truncated_frame: bool,
}

impl Exchange<'_, '_> {
    fn pending(&self) -> usize {
        self.replies.iter().filter(|r| r.is_none()).count()
    }

    /// What came so far that was no frame, with what the codec still holds.
    fn unframed(&self, codec: &MllpCodec) -> Unframed {
        let config = codec.config();
        Unframed {
            junk_bytes: self.junk_bytes + codec.unreported_junk(),
            refused_frames: self.refused_frames,
            open_frame: self.truncated_frame || codec.in_frame(),
            start_block: config.start_block().to_vec(),
            end_block: [config.end_block(), config.trailer()].concat(),
        }
    }
}

/// Sends HL7 messages over MLLP and waits for their acknowledgements.
///
/// An HL7 ACK is matched to its message by MSA-2 = MSH-10 (compared unescaped, each with
/// its own message's delimiters), so a late ACK of an earlier, timed-out message is not
/// taken for the current one (Mirth #1441); such stale replies are counted and skipped.
/// Payloads without MSH-10 (non-HL7) take, in order, commit blocks and ACKs without a
/// control ID (an ACK naming one answers a message that had one).
/// Several messages can be pipelined with [`send_all`](Self::send_all).
#[derive(Debug)]
pub struct MllpClient<S> {
    framed: Framed<S, MllpCodec>,
    ack_timeout: Duration,
    stale_replies: u64,
    accept_ack_types: bool,
    application_acks: bool,
}

/// Refuses a TCP connection that reached itself, for any TCP client (an MLLP sender, a
/// router's client connector, an analyzer simulator's push).
///
/// With nothing listening on a port inside the host's ephemeral range (32768-60999 on
/// Linux), the kernel may give a connection to that port that very port as its own, and
/// the SYN meets itself (a TCP self-connect): messages sent on it go into the sender's own
/// socket (lost, when no ACK is awaited), and the port stays taken, so the receiver cannot
/// listen on it when it comes back. Such a connection is closed with a reset, which leaves
/// no TIME_WAIT behind on the port.
///
/// # Errors
///
/// [`io::ErrorKind::ConnectionRefused`], saying the connection reached itself.
pub fn refuse_self_connect(stream: TcpStream) -> io::Result<TcpStream> {
    match (stream.local_addr(), stream.peer_addr()) {
        (Ok(local), Ok(peer)) if local == peer => {
            let _ = stream.set_zero_linger();
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "the connection reached itself: nothing listens on {peer}, a port in \
                     this host's ephemeral range, which the kernel gave the connection as its \
                     own (a TCP self-connect); closed"
                ),
            ))
        }
        _ => Ok(stream),
    }
}

impl MllpClient<TcpStream> {
    /// Connects over TCP with the standard codec (Nagle off).
    ///
    /// A connection that reached itself is closed (with a reset, so no TIME_WAIT holds the
    /// port) and refused: with nothing listening on a port inside the host's ephemeral
    /// range, the kernel may give the connection that very port as its own (a TCP
    /// self-connect), and messages sent on it would go into the sender's own socket while
    /// the receiver could not listen on its port.
    ///
    /// # Errors
    ///
    /// The connection error; [`io::ErrorKind::ConnectionRefused`] for a connection that
    /// reached itself.
    pub async fn connect(address: impl ToSocketAddrs) -> io::Result<Self> {
        let stream = refuse_self_connect(TcpStream::connect(address).await?)?;
        stream.set_nodelay(true)?;
        Ok(Self::new(stream, MllpCodec::new()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MllpClient<S> {
    /// Wraps a connected stream. The ACK timeout defaults to 30 s (what analyzers such as
    /// those OpenELIS supports wait before resending).
    pub fn new(stream: S, codec: MllpCodec) -> Self {
        Self {
            framed: Framed::new(stream, codec),
            ack_timeout: Duration::from_secs(30),
            stale_replies: 0,
            accept_ack_types: false,
            application_acks: false,
        }
    }

    /// Honours MSH-15: a message asking for no accept ACK on success (NE, ER) gets
    /// [`Reply::NotRequested`] at once instead of a wait for an ACK that a standard HL7
    /// receiver never sends; so does an acknowledgement itself (MSH-9 `ACK`, relayed
    /// onward), since no receiver acknowledges an ACK. Off by default, because a receiver that answers every frame
    /// with an MLLP commit block answers those messages too, and a commit block, which
    /// names no message, would then be taken for the next message's reply.
    #[must_use]
    pub fn with_accept_ack_types(mut self, honour: bool) -> Self {
        self.accept_ack_types = honour;
        self
    }

    /// Honours MSH-16 (enhanced mode): a message asking for an application ACK on success
    /// (AL, SU) waits for it, and its reply is that ACK (MSA-1 AA, AE or AR). A commit accept
    /// (CA) that comes first is skipped; a commit error or reject (CE, CR) is the reply, as
    /// the message goes no further. With [`with_accept_ack_types`](Self::with_accept_ack_types),
    /// MSH-15 NE with MSH-16 AL is then awaited rather than [`Reply::NotRequested`], and
    /// its application ACK is no longer skipped as stale.
    ///
    /// Off by default: a receiver may send its application ACKs later, on a connection of
    /// its own (HL7 v2 allows it), and every send would then time out; so does one that
    /// answers only with a commit ACK whatever MSH-16 asks (such as this crate's
    /// [`auto_ack`](crate::auto_ack) and a router's socket input).
    #[must_use]
    pub fn with_application_acks(mut self, wait: bool) -> Self {
        self.application_acks = wait;
        self
    }

    /// Sets how long a send may take, from its first write to its last acknowledgement. A
    /// timeout too long for the clock to reach (such as `Duration::MAX`) waits without limit.
    #[must_use]
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Replies skipped because they matched no message in flight.
    #[must_use]
    pub fn stale_replies(&self) -> u64 {
        self.stale_replies
    }

    /// The underlying stream, borrowed (its addresses, or whether the peer has closed it
    /// between messages).
    ///
    /// Reading from or writing to it directly would take bytes from, or put bytes into, the
    /// MLLP stream behind the client's back (see [`get_mut`](Self::get_mut)).
    pub fn get_ref(&self) -> &S {
        self.framed.get_ref()
    }

    /// The underlying stream, mutably: to set its options (TCP `nodelay` or TTL), or to
    /// shut it down between messages.
    ///
    /// Take care not to read from or write to it directly, as with
    /// `tokio_util::codec::Framed::get_mut`, whose stream this is: the client keeps a read
    /// buffer (bytes read but not yet decoded: the start of a frame, a late ACK that came
    /// with the one awaited) and a write buffer (what a send cut short by its timeout had
    /// already queued), so bytes read here can be the middle of a frame, and bytes written
    /// here can land between or inside frames still to go out. Either corrupts the stream
    /// of frames and the matching of ACKs.
    ///
    /// ```no_run
    /// use mllp_hl7::MllpClient;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let mut client = MllpClient::connect("127.0.0.1:2575").await?;
    /// // Nagle back on (`connect` turns it off), for a link that sends large batches.
    /// client.get_mut().set_nodelay(false)?;
    /// println!("connected to {}", client.get_ref().peer_addr()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        self.framed.get_mut()
    }

    /// The underlying stream.
    pub fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// Sends one message and waits for its acknowledgement (see
    /// [`with_accept_ack_types`](Self::with_accept_ack_types) for messages whose MSH-15
    /// asks for none).
    ///
    /// # Errors
    ///
    /// [`ClientError`] on transport failure, timeout or close.
    pub async fn send(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let mut replies = self.send_all(&[message]).await?;
        // Not reached: `send_all` answers each message it was given, or fails.
        replies.pop().ok_or_else(|| ClientError::Closed {
            pending: 1,
            unframed: Unframed::default(),
        })
    }

    /// Sends all messages at once (pipelined) and returns their acknowledgements in the
    /// order sent; the timeout covers the whole batch, writing included. Replies are read
    /// while the batch is written, so a batch larger than the transport's buffers cannot
    /// leave client and peer waiting on each other.
    ///
    /// # Errors
    ///
    /// [`ClientError`] on transport failure, timeout or close, and when a payload cannot
    /// be framed (then no message of the batch is sent).
    pub async fn send_all(&mut self, messages: &[&[u8]]) -> Result<Vec<Reply>, ClientError> {
        let expected: Vec<Option<Vec<u8>>> = messages
            .iter()
            .map(|payload| {
                Message::parse(payload)
                    .ok()
                    .filter(|m| !m.control_id().is_empty())
                    .map(|m| m.control_id().decoded().into_owned())
            })
            .collect();
        // Refuse the whole batch before queueing any of it: a payload fed ahead of one the
        // encoder refuses would stay in the write buffer and go out with the next send.
        for payload in messages {
            self.framed
                .codec()
                .config()
                .check_payload(payload)
                .map_err(CodecError::from)?;
        }
        let application: Vec<bool> = messages
            .iter()
            .map(|payload| {
                self.application_acks
                    && Message::parse(payload).is_ok_and(|m| {
                        m.msh().is_some()
                            && !m.is_ack()
                            && matches!(
                                m.application_ack_type(),
                                Some(AckCondition::Always | AckCondition::Success)
                            )
                    })
            })
            .collect();
        let mut replies: Vec<Option<Reply>> = messages
            .iter()
            .zip(&application)
            .map(|(payload, &application)| {
                Message::parse(payload)
                    .ok()
                    .filter(|m| {
                        self.accept_ack_types
                            && !application
                            && m.msh().is_some()
                            && (!m.acknowledged_on_success() || m.is_ack())
                    })
                    .map(|_| Reply::NotRequested)
            })
            .collect();
        // Writing and reading go on together: a peer answers the first messages while
        // later ones are still being written, and if the client read nothing until its
        // last write was flushed, a batch larger than the transport's buffers would leave
        // both sides waiting on each other. The deadline covers the writing as well, so a
        // peer that stops reading cannot block a send for ever. A timeout beyond what the
        // clock can hold (`Duration::MAX`) is no deadline, rather than an overflow panic.
        let mut exchange = Exchange {
            messages,
            expected: &expected,
            application: &application,
            replies: &mut replies,
            queued: 0,
            flushed: false,
            junk_bytes: 0,
            refused_frames: 0,
            truncated_frame: false,
        };
        let outcome = tokio::time::timeout(
            self.ack_timeout,
            std::future::poll_fn(|cx| self.poll_exchange(cx, &mut exchange)),
        )
        .await;
        let pending = exchange.pending();
        match outcome {
            Ok(result) => result?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    after: self.ack_timeout,
                    pending,
                    unframed: exchange.unframed(self.framed.codec()),
                });
            }
        }
        Ok(replies.into_iter().flatten().collect())
    }

    /// Drives one [`send_all`](Self::send_all): queues and flushes the messages while
    /// taking in replies, until every message is written and answered.
    fn poll_exchange(
        &mut self,
        cx: &mut Context<'_>,
        exchange: &mut Exchange<'_, '_>,
    ) -> Poll<Result<(), ClientError>> {
        while let Some(&payload) = exchange.messages.get(exchange.queued) {
            match Sink::<&[u8]>::poll_ready(Pin::new(&mut self.framed), cx) {
                Poll::Ready(Ok(())) => {
                    Sink::<&[u8]>::start_send(Pin::new(&mut self.framed), payload)?;
                    exchange.queued += 1;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error.into())),
                Poll::Pending => break,
            }
        }
        if exchange.queued == exchange.messages.len() && !exchange.flushed {
            match Sink::<&[u8]>::poll_flush(Pin::new(&mut self.framed), cx) {
                Poll::Ready(Ok(())) => exchange.flushed = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error.into())),
                Poll::Pending => {}
            }
        }
        loop {
            let pending = exchange.pending();
            if pending == 0 {
                break;
            }
            let frame = match Pin::new(&mut self.framed).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error.into())),
                Poll::Ready(None) => {
                    return Poll::Ready(Err(ClientError::Closed {
                        pending,
                        unframed: exchange.unframed(self.framed.codec()),
                    }));
                }
                Poll::Pending => break,
            };
            let slot = match frame {
                MllpFrame::Commit(commit) => exchange
                    .replies
                    .iter()
                    .position(Option::is_none)
                    .map(|i| (i, Reply::Commit(commit))),
                MllpFrame::Message(payload) => {
                    Self::match_ack(exchange.replies, exchange.expected, payload)
                }
                MllpFrame::Junk { len, .. } => {
                    exchange.junk_bytes += len;
                    continue;
                }
                MllpFrame::Error(FrameError::Truncated { .. }) => {
                    exchange.truncated_frame = true;
                    continue;
                }
                MllpFrame::Error(_) => {
                    exchange.refused_frames += 1;
                    continue;
                }
            };
            match slot {
                // The receiver has the message; its application ACK is still to come.
                Some((
                    i,
                    Reply::Ack {
                        code: AckCode::CommitAccept,
                        ..
                    },
                )) if exchange.application[i] => {}
                Some((i, reply)) => exchange.replies[i] = Some(reply),
                None => self.stale_replies += 1,
            }
        }
        if exchange.flushed && exchange.pending() == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn match_ack(
        replies: &[Option<Reply>],
        expected: &[Option<Vec<u8>>],
        payload: Bytes,
    ) -> Option<(usize, Reply)> {
        let ack = AckMessage::parse(&payload).ok()?;
        // A named ACK answers the message with that control id; one without an id, a
        // payload without one (see `AckMessage::answers`).
        let slot = replies
            .iter()
            .zip(expected)
            .position(|(reply, want)| reply.is_none() && ack.answers(want.as_deref()))
            .or_else(|| {
                // A receiver that could not read a message cannot echo its control id: an
                // error ACK without one answers the only message awaiting a reply (with
                // several it could be any of them). Left unmatched it became a timeout and
                // a resend, for ever, of a message the receiver had refused.
                let mut waiting = replies.iter().enumerate().filter(|(_, r)| r.is_none());
                match (waiting.next(), waiting.next()) {
                    (Some((only, _)), None)
                        if ack.acknowledged_id.raw().is_empty() && !ack.code.is_success() =>
                    {
                        Some(only)
                    }
                    _ => None,
                }
            })?;
        let code = ack.code;
        Some((slot, Reply::Ack { code, payload }))
    }
}
