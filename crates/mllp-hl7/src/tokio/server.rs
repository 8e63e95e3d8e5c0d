//! A small async MLLP server: one task per connection, replies in order.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;

use super::{CodecError, MllpCodec};
use crate::ack::{AckBuilder, AckCode};
use crate::fmt_bytes::Escaped;
use crate::hl7::Message;
use crate::mllp::{CommitAck, MllpFrame};

/// What the handler sends back for a frame.
///
/// `Debug` shows a message as escaped text: `Message("MSH|^~\\&|...\r")`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// A message (usually an HL7 ACK), framed before sending.
    Message(Vec<u8>),
    /// An MLLP release 2 commit acknowledgement block.
    Commit(CommitAck),
    /// Several messages, each framed, sent in order: an enhanced-mode accept
    /// acknowledgement and then the application one.
    Messages(Vec<Vec<u8>>),
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(bytes) => f.debug_tuple("Message").field(&Escaped(bytes)).finish(),
            Self::Commit(commit) => f.debug_tuple("Commit").field(commit).finish(),
            Self::Messages(messages) => f
                .debug_tuple("Messages")
                .field(&messages.iter().map(|m| Escaped(m)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The handler for a server that positively acknowledges every HL7 message that asks
/// for it: AA in original mode; in enhanced mode CA as MSH-15 asks, then AA as MSH-16
/// asks (so `NE`/`AL` gets the application acknowledgement alone). No reply for ACKs,
/// junk, refused frames or payloads that are not HL7 (no usable MSH: nothing to put in
/// MSA-2). A frame holding an FHS/BHS batch is answered for its first message only (see
/// [`AckBuilder`]).
#[must_use]
pub fn auto_ack(frame: &MllpFrame) -> Option<Response> {
    let MllpFrame::Message(payload) = frame else {
        return None;
    };
    let message = Message::parse(payload).ok()?;
    let mut acks = AckBuilder::new(&message)
        .code(AckCode::ApplicationAccept)
        .build_all_required()
        .ok()?;
    match acks.len() {
        0 => None,
        1 => acks.pop().map(Response::Message),
        _ => Some(Response::Messages(acks)),
    }
}

/// How long [`MllpServer::serve`] waits after an accept error that is not about one
/// connection (out of file descriptors, out of memory) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// An MLLP server with its limits: how long a connection may go without completing a
/// frame, and how many connections it serves at once. [`serve`] and [`serve_connection`]
/// run one with the defaults.
///
/// A connection that completes no frame within the idle timeout (a silent peer, or one
/// stuck in the middle of a message) is closed, its partial frame dropped unanswered so
/// the sender resends it; so is one that leaves a reply unread that long. A connection beyond the cap is accepted and closed at once, so
/// the peer sees a close rather than a hang in the listen backlog.
///
/// ```
/// use std::time::Duration;
/// use mllp_hl7::{MllpCodec, MllpServer, auto_ack};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = MllpServer::new(MllpCodec::new())
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .max_connections(8);
/// tokio::spawn(async move { server.serve(listener, |frame| async move { auto_ack(&frame) }).await });
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MllpServer {
    codec: MllpCodec,
    idle_timeout: Option<Duration>,
    max_connections: usize,
}

impl MllpServer {
    /// The default idle timeout: 10 minutes, as the router's `idletimeout`.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
    /// The default cap on simultaneous connections, as the router's `maxconnections`.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

    /// A server decoding and encoding with `codec`, with the default limits.
    #[must_use]
    pub fn new(codec: MllpCodec) -> Self {
        Self {
            codec,
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Closes a connection that completes no frame for this long; `None` never does
    /// (for peers that hold one connection open for days between messages).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Serves at most this many connections at once (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Accepts connections on `listener` and serves each on its own task with
    /// [`serve_connection`](Self::serve_connection), for as long as the returned future is
    /// polled. Accept errors are handled as [`serve`] describes.
    ///
    /// # Errors
    ///
    /// It does not return.
    pub async fn serve<H, F>(&self, listener: TcpListener, handler: H) -> io::Result<()>
    where
        H: Fn(MllpFrame) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Option<Response>> + Send + 'static,
    {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(error) if is_about_one_connection(&error) => continue,
                // Typically out of file descriptors: connections that end free some.
                Err(_) => {
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Over the cap: dropping the stream closes it.
                continue;
            };
            // Only a latency hint; a peer that reset already fails it on some systems.
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                // A failing connection ends only itself.
                let _ = server.serve_connection(stream, handler).await;
                drop(slot);
            });
        }
    }

    /// Serves one connection as [`serve_connection`] does, closing it when it completes no
    /// frame, or does not take a reply, within the idle timeout.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the transport fails or a response cannot be framed;
    /// [`CodecError::Io`] of kind [`TimedOut`](io::ErrorKind::TimedOut) when the
    /// connection was idle too long.
    pub async fn serve_connection<S, H, F>(&self, stream: S, handler: H) -> Result<(), CodecError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        H: Fn(MllpFrame) -> F,
        F: Future<Output = Option<Response>>,
    {
        let mut framed = Framed::new(stream, self.codec.clone());
        loop {
            let Some(frame) = self.bounded(framed.next()).await? else {
                return Ok(());
            };
            let sent = match handler(frame?).await {
                Some(Response::Message(reply)) => self.bounded(framed.send(&reply[..])).await,
                Some(Response::Commit(commit)) => self.bounded(framed.send(commit)).await,
                Some(Response::Messages(replies)) => {
                    for reply in &replies {
                        self.bounded(framed.send(&reply[..])).await??;
                    }
                    continue;
                }
                None => continue,
            };
            sent??;
        }
    }

    /// `future`, given up after the idle timeout: a peer that stops reading its replies
    /// must not hold a connection slot for ever either.
    async fn bounded<T>(&self, future: impl Future<Output = T>) -> Result<T, CodecError> {
        match self.idle_timeout {
            Some(idle) => tokio::time::timeout(idle, future)
                .await
                .map_err(|_| idle_error(idle)),
            None => Ok(future.await),
        }
    }
}

/// The error a connection ends with when it completes no frame within `idle`.
fn idle_error(idle: Duration) -> CodecError {
    CodecError::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "idle for {} s (no complete message, or a reply left unread): connection closed",
            idle.as_secs_f64()
        ),
    ))
}

/// Accepts connections on `listener` and serves each on its own task, for as long as the
/// returned future is polled, with [`MllpServer`]'s default limits: a connection that
/// completes no frame for 10 minutes is closed, and at most 64 are served at once.
///
/// An accept error does not end it: one about a single connection (reset or aborted
/// before it was accepted) is skipped, any other (out of file descriptors, out of
/// memory) is waited out for 100 ms, while the connections already open carry on. A
/// connection whose `TCP_NODELAY` cannot be set is served without it.
///
/// A LIS port that reads the results of each ORU (OBX-3 code, OBX-5 value, OBX-6 units)
/// and answers AA, or AE when it holds no result; a payload that is not HL7 gets no reply
/// (it has no MSH-10 to acknowledge), so its sender waits out its ACK timeout. An analyzer
/// sends to it with [`MllpClient`](crate::MllpClient):
///
/// ```
/// use mllp_hl7::{AckBuilder, AckCode, Charset, Message, MllpClient, MllpCodec, MllpFrame, Reply, Response};
///
/// async fn handle(frame: MllpFrame) -> Option<Response> {
///     let MllpFrame::Message(payload) = frame else { return None };
///     let Ok(message) = Message::parse(&payload) else {
///         return None; // not HL7: nothing to acknowledge with
///     };
///     let charset = message.charset_or(Charset::Latin1).unwrap_or(Charset::Latin1);
///     let mut results = Vec::new();
///     for obx in message.segments_named(b"OBX") {
///         let code = obx.field_or_empty(3).component(1).and_then(|c| c.text(charset).ok());
///         let value = obx.field_or_empty(5).text(charset).ok();
///         let units = obx.field_or_empty(6).text(charset).ok();
///         results.push((code.unwrap_or_default(), value.unwrap_or_default(), units.unwrap_or_default()));
///     }
///     let code = if results.is_empty() { AckCode::ApplicationError } else { AckCode::ApplicationAccept };
///     let ack = AckBuilder::new(&message).code(code).text(format!("{} results", results.len()));
///     ack.build().ok().map(Response::Message)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let address = listener.local_addr()?;
/// tokio::spawn(mllp_hl7::serve(listener, MllpCodec::new(), handle));
///
/// let mut analyzer = MllpClient::connect(address).await?;
/// let oru = b"MSH|^~\\&|BS-200|LAB|LIS|HOSP|20250220141530||ORU^R01|7|P|2.3.1\r\
///             OBX|1|NM|GLU^Glucose||95.0|mg/dL|70-100|N|||F\r";
/// let Reply::Ack { code, payload } = analyzer.send(oru).await? else { unreachable!() };
/// assert_eq!(code, AckCode::ApplicationAccept);
/// let ack = Message::parse(&payload)?;
/// assert_eq!(ack.get("MSA-2")?.unwrap().raw(), b"7");
/// assert_eq!(ack.get("MSA-3")?.unwrap().raw(), b"1 results");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// It does not return: accept errors are skipped or waited out as above.
pub async fn serve<H, F>(listener: TcpListener, codec: MllpCodec, handler: H) -> io::Result<()>
where
    H: Fn(MllpFrame) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<Response>> + Send + 'static,
{
    MllpServer::new(codec).serve(listener, handler).await
}

/// Whether an accept error concerns only the connection being accepted.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Serves one connection: every decoded frame (messages, commit blocks, junk and
/// refused frames alike) goes to `handler` in order, and its response, if any, is sent
/// before the next frame is handled, so pipelined messages get their replies in order.
/// Returns when the peer closes the connection, or when it completes no frame for
/// [`MllpServer::DEFAULT_IDLE_TIMEOUT`] (see [`MllpServer::serve_connection`] to choose).
///
/// # Errors
///
/// [`CodecError`] when the transport fails or a response cannot be framed;
/// [`CodecError::Io`] of kind [`TimedOut`](io::ErrorKind::TimedOut) when the connection
/// was idle too long.
pub async fn serve_connection<S, H, F>(
    stream: S,
    codec: MllpCodec,
    handler: H,
) -> Result<(), CodecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(MllpFrame) -> F,
    F: Future<Output = Option<Response>>,
{
    MllpServer::new(codec)
        .serve_connection(stream, handler)
        .await
}
