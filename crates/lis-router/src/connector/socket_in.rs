//! Socket input: receive MLLP frames, commit them, then acknowledge.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{
    AckBuilder, AckCode, AckMode, CodecError, CommitAck, FrameError, Message, MllpCodec, MllpFrame,
};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info, warn};

use super::{ACCEPT_RETRY, AcceptFailures, Backoff, ENQ, NoiseLog, printable, shutdown_grace};
use crate::config::{Connection, SocketSettings};
use crate::store::{Appender, StoreError};
use crate::tls::{Stream, TlsSource, WriteHalf};

/// The read half of an input connection, warning at once when the peer's first byte is
/// ENQ: an ASTM E1381 sender (an analyzer, or a simulator's `tcp://` push) pointed at an
/// MLLP input. It waits for an ACK that never comes, and its ENQs, being outside any
/// frame, were logged only when the connection ended, minutes later (the sender retries
/// for over two minutes, or never closes).
struct AstmSniffer<R> {
    inner: R,
    peer: SocketAddr,
    /// Whether the connection's first byte is still to be looked at.
    pending: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for AstmSniffer<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.pending
            && let Some(&first) = buf.filled().get(before)
        {
            self.pending = false;
            if first == ENQ {
                warn!(
                    "{}: the connection opened with ENQ (0x05), an ASTM E1381 sender: this \
                     input takes MLLP frames only and will not answer it; ASTM instruments \
                     need an ASTM interface",
                    self.peer
                );
            }
        }
        polled
    }
}

/// What one socket input needs.
#[derive(Debug, Clone)]
pub(crate) struct SocketIn {
    pub(crate) connection: Arc<Connection>,
    pub(crate) settings: SocketSettings,
    pub(crate) appender: Appender,
    pub(crate) shutdown: CancellationToken,
    pub(crate) log_failed_content: bool,
    /// `usetls`: every connection is secured with this first.
    pub(crate) tls: Option<Arc<TlsSource>>,
}

/// A reply owed to the peer, in arrival order.
enum Owed {
    /// The message was submitted; acknowledge once its commit resolves.
    Commit {
        receipt: oneshot::Receiver<Result<u64, StoreError>>,
        payload: Bytes,
        /// The message's share of the connection's [`IN_FLIGHT_BYTES`], given back once
        /// it is answered.
        permit: OwnedSemaphorePermit,
    },
    /// An empty frame (a keep-alive): acknowledged, nothing stored.
    Empty,
    /// A negative commit block for a refused frame, then close.
    RefuseAndClose,
    /// A negative commit block for a refused frame; the connection stays open.
    Refuse,
}

/// Whether `payload` begins as an HL7 message, batch or file does.
fn starts_hl7(payload: &[u8]) -> bool {
    let start = payload.trim_ascii_start();
    [b"MSH", b"BHS", b"FHS"]
        .iter()
        .any(|h| start.starts_with(*h))
}

/// How many bytes of messages one connection may have read and not yet answered (at
/// least one message of the maximum size). Without a bound, a sender pipelining faster
/// than the store commits, or not reading its ACKs, had the router read ahead into
/// memory (a burst of 1 MB messages: 350 MB read ahead of 8 ACKs).
const IN_FLIGHT_BYTES: usize = 8 << 20;

/// At most this many connections refused for the connection limit are logged one by
/// one per [`REFUSALS_WINDOW`]; the others are counted, and their number logged with the
/// next refusal after the window. A peer reconnecting in a loop (or a flood of
/// connections) would otherwise write a line per connection.
const REFUSALS_LOGGED: u32 = 10;
const REFUSALS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl SocketIn {
    /// Accepts connections until shutdown; at most `max_connections` at once.
    pub(crate) async fn serve(self, listener: TcpListener) {
        let limit = Arc::new(Semaphore::new(self.settings.max_connections));
        let tracker = TaskTracker::new();
        let mut window = tokio::time::Instant::now();
        let (mut logged, mut unlogged) = (0_u32, 0_u64);
        let mut failures = AcceptFailures::default();
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => {
                    failures.succeeded();
                    pair
                }
                Err(e) => {
                    failures.failed(&e);
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            };
            let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                if window.elapsed() >= REFUSALS_WINDOW {
                    window = tokio::time::Instant::now();
                    logged = 0;
                }
                if logged < REFUSALS_LOGGED {
                    logged += 1;
                    let earlier = std::mem::take(&mut unlogged);
                    let more = if earlier > 0 {
                        format!(" ({earlier} more refused before, not logged one by one)")
                    } else {
                        String::new()
                    };
                    warn!(
                        "refusing {peer}: connection limit of {} reached{more}",
                        self.settings.max_connections
                    );
                    if logged == REFUSALS_LOGGED {
                        warn!(
                            "further refusals for the connection limit are counted, not logged \
                             one by one, for {REFUSALS_WINDOW:?}"
                        );
                    }
                } else {
                    unlogged += 1;
                }
                drop(stream);
                continue;
            };
            info!("connection from {peer}");
            let this = self.clone();
            tracker.spawn(
                async move {
                    // The handshake runs here, not in the accept loop: a slow or silent
                    // peer must not hold up the others.
                    match this.secure(stream, peer).await {
                        Some(stream) => {
                            let _ = this.handle(stream, peer).await;
                        }
                        None => info!("connection from {peer} closed"),
                    }
                    drop(permit);
                }
                .in_current_span(),
            );
        }
        drop(listener);
        if unlogged > 0 {
            warn!(
                "{unlogged} more connections refused for the connection limit of {}, not logged \
                 one by one",
                self.settings.max_connections
            );
        }
        tracker.close();
        tracker.wait().await;
    }

    /// Client mode: connect to the peer, receive, and reconnect with backoff when the
    /// connection drops (SocketReader's client sockets never reconnect).
    pub(crate) async fn connect_loop(self) {
        let address = format!("{}:{}", self.settings.host, self.settings.port);
        let mut backoff = Backoff::new(self.settings.retry_delay, self.settings.retry_max_delay);
        while !self.shutdown.is_cancelled() {
            let connected = tokio::select! {
                () = self.shutdown.cancelled() => break,
                connected = super::connect(&address) => connected,
            };
            match connected {
                Ok(stream) => {
                    let peer = stream
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    info!("connected to {address}");
                    let opened = tokio::time::Instant::now();
                    let received = match self.secure(stream, peer).await {
                        Some(stream) => self.handle(stream, peer).await,
                        None => false,
                    };
                    info!("connection to {address} closed");
                    // A peer that accepts and closes at once (a port forwarder whose
                    // back end is down, say) is retried with backoff too, not every
                    // `retrydelay` for ever: only a connection that brought frames, or
                    // lasted, starts the backoff again.
                    if received || opened.elapsed() >= self.settings.retry_max_delay {
                        backoff.reset();
                    }
                }
                Err(e) => warn!("cannot connect to {address}: {e}; retrying"),
            }
            if !backoff.sleep(&self.shutdown).await {
                break;
            }
        }
    }

    /// The connection secured with `usetls` (or left plain); `None`, logged, when the
    /// handshake fails or shutdown comes first.
    async fn secure(&self, stream: tokio::net::TcpStream, peer: SocketAddr) -> Option<Stream> {
        let opened = tokio::select! {
            () = self.shutdown.cancelled() => return None,
            opened = Stream::open(stream, self.tls.as_deref(), peer) => opened,
        };
        opened.map_err(|e| warn!("{e}")).ok()
    }

    /// Serves one connection; whether any frame came in on it.
    async fn handle(&self, stream: Stream, peer: SocketAddr) -> bool {
        let codec = match MllpCodec::with_config(self.settings.mllp_config()) {
            Ok(codec) => codec,
            Err(e) => {
                error!("framing settings: {e}");
                return false;
            }
        };
        let mut received = false;
        // Halves of their own: the reader can tell what it holds of an unfinished frame.
        let (read_half, write_half) = stream.into_split();
        let sink = FramedWrite::new(write_half, codec.clone());
        let read_half = AstmSniffer {
            inner: read_half,
            peer,
            pending: !self.settings.start_block.starts_with(&[ENQ]),
        };
        let mut frames = FramedRead::new(read_half, codec);
        let (owed_tx, owed_rx) = mpsc::channel::<Owed>(1024);
        // Per connection: after a failed commit, the messages this peer pipelined behind
        // the failed one are refused too (and the connection closed), so that the
        // failed one, sent again, cannot land behind them.
        let appender = self.appender.source();
        // Cancelled at shutdown, or when the replier gives up on the peer: then nothing
        // more is read (a message read now could never be acknowledged).
        let closing = self.shutdown.child_token();
        // Once this is spent, the next message waits for replies to go out: the peer's
        // further bytes wait in the socket and TCP slows it down.
        let in_flight = self.settings.max_message_size.max(IN_FLIGHT_BYTES);
        let budget = Arc::new(Semaphore::new(in_flight));
        // Junk, broken frames and stray commit blocks: a few logged, the rest counted.
        let mut noise = NoiseLog::default();
        // The last frame was cut short by a start block; see where it is read.
        let mut after_interruption = false;
        const NOISE: &str = "framing problems";
        let replier = tokio::spawn(
            self.clone()
                .reply(sink, owed_rx, peer, closing.clone())
                .in_current_span(),
        );

        // Only a complete message (an empty keep-alive frame included) moves the idle
        // deadline: a peer sending junk or stray commit blocks completes none, and must not
        // hold its connection (and a `maxconnections` slot) for ever.
        let idle_deadline = |idle: std::time::Duration| tokio::time::Instant::now() + idle;
        let mut deadline = self.settings.idle_timeout.map(idle_deadline);
        loop {
            let next = async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, frames.next()).await.ok(),
                    None => Some(frames.next().await),
                }
            };
            let frame = tokio::select! {
                () = closing.cancelled() => break,
                frame = next => frame,
            };
            let frame = match frame {
                None => {
                    let idle = self.settings.idle_timeout.unwrap_or_default();
                    // Not idle: sending a message too slowly to finish it in time, or
                    // gone without a word in the middle of one.
                    let unfinished = frames.read_buffer().len();
                    if unfinished > 0 {
                        warn!(
                            "{peer} sent no complete message within {idle:?} (idletimeout); \
                             closing and dropping the {unfinished} bytes of its unfinished \
                             message, which it was not sent an ACK for"
                        );
                    } else {
                        info!("{peer} idle for {idle:?}; closing");
                    }
                    break;
                }
                Some(None) => break,
                // A TLS peer that closes without close_notify, as many senders do: a
                // close like any other. MLLP's framing, not TLS, tells a whole message.
                Some(Some(Err(CodecError::Io(e)))) if e.kind() == ErrorKind::UnexpectedEof => {
                    let unfinished = frames.read_buffer().len();
                    if unfinished > 0 {
                        warn!(
                            "{peer} closed the connection in the middle of a message; its \
                             {unfinished} bytes so far are dropped, not acknowledged"
                        );
                    } else {
                        debug!("{peer} closed the connection without TLS close_notify");
                    }
                    break;
                }
                Some(Some(Err(e))) => {
                    warn!("{peer}: {e}");
                    break;
                }
                Some(Some(Ok(frame))) => frame,
            };
            if matches!(frame, MllpFrame::Message(_)) {
                received = true;
                deadline = self.settings.idle_timeout.map(idle_deadline);
            }
            // The frame that ends an interrupted one may be the tail of a single message
            // that held a start-block byte: storing and acknowledging it told the sender its
            // whole message was stored. Refused, unless with `usehl7` it is a message of
            // its own (a sender that gave up on a frame and sent a whole message again).
            if let MllpFrame::Message(payload) = &frame
                && std::mem::take(&mut after_interruption)
                && !(self.connection.use_hl7 && starts_hl7(payload))
            {
                warn!(
                    "{peer}: refused the {} bytes that ended a frame interrupted by a start \
                     block: they may be the tail of a message holding a start-block byte \
                     (0x0b), which MLLP cannot carry; not stored",
                    payload.len()
                );
                let owed = tokio::select! {
                    () = closing.cancelled() => break,
                    owed = owed_tx.send(Owed::Refuse) => owed,
                };
                if owed.is_err() {
                    break;
                }
                continue;
            }
            match frame {
                // An empty frame carries nothing to deliver: some senders use one as a
                // keep-alive. Queued, it became a 0-byte file, or a frame a receiver may
                // never answer, holding up the output behind it.
                MllpFrame::Message(payload) if payload.is_empty() => {
                    debug!("{peer}: empty frame (keep-alive); acknowledged, not queued");
                    let owed = tokio::select! {
                        () = closing.cancelled() => break,
                        owed = owed_tx.send(Owed::Empty) => owed,
                    };
                    if owed.is_err() {
                        break;
                    }
                }
                MllpFrame::Message(payload) => {
                    if self.connection.debug.log_content {
                        info!("received from {peer}: {}", printable(&payload));
                    } else {
                        debug!("received {} bytes from {peer}", payload.len());
                    }
                    let share = u32::try_from(payload.len().min(in_flight)).unwrap_or(u32::MAX);
                    let permit = tokio::select! {
                        () = closing.cancelled() => break,
                        permit = Arc::clone(&budget).acquire_many_owned(share) => permit,
                    };
                    let Ok(permit) = permit else { break };
                    let receipt = match appender.submit(payload.clone()).await {
                        Ok(receipt) => receipt,
                        Err(e) => {
                            error!("cannot queue message from {peer}: {e}");
                            break;
                        }
                    };
                    // The queue of owed replies is full while the peer does not read
                    // them; the replier's timeout (or shutdown) ends the wait.
                    let owed = tokio::select! {
                        () = closing.cancelled() => break,
                        owed = owed_tx.send(Owed::Commit { receipt, payload, permit }) => owed,
                    };
                    if owed.is_err() {
                        break;
                    }
                }
                MllpFrame::Error(e @ FrameError::TooLarge { .. }) => {
                    warn!("{peer}: {e}; refusing and closing the connection");
                    let _ = owed_tx.send(Owed::RefuseAndClose).await;
                    break;
                }
                MllpFrame::Error(e) => {
                    after_interruption = matches!(e, FrameError::Interrupted { .. });
                    if noise.admit(&peer, NOISE) {
                        warn!("{peer}: {e}");
                    }
                }
                MllpFrame::Junk { len, offset } => {
                    if noise.admit(&peer, NOISE) {
                        warn!(
                            "{peer}: skipped {len} bytes outside any frame at stream offset {offset}"
                        );
                    }
                }
                MllpFrame::Commit(c) => {
                    if noise.admit(&peer, NOISE) {
                        warn!("{peer}: unexpected commit acknowledgement {c:?}; ignored");
                    }
                }
                other => {
                    if noise.admit(&peer, NOISE) {
                        warn!("{peer}: unexpected frame {other:?}; ignored");
                    }
                }
            }
        }
        if noise.unlogged() > 0 {
            warn!(
                "{peer}: {} more {NOISE} (junk, broken frames, stray replies) not logged",
                noise.unlogged()
            );
        }
        // The replier finishes the replies owed for messages already submitted.
        drop(owed_tx);
        let _ = replier.await;
        received
    }

    async fn reply(
        self,
        mut sink: FramedWrite<WriteHalf, MllpCodec>,
        mut owed: mpsc::Receiver<Owed>,
        peer: SocketAddr,
        closing: CancellationToken,
    ) {
        let _stop_reading = closing.clone().drop_guard();
        let timeout = self.settings.ack_timeout;
        // Cleared once the peer has shown it does not read.
        let mut reading = true;
        // One grace for the whole connection, not one per owed reply.
        let grace = shutdown_grace(&self.shutdown);
        tokio::pin!(grace);
        while let Some(item) = owed.recv().await {
            let (reply, close, permit) = match item {
                Owed::Commit {
                    receipt,
                    payload,
                    permit,
                } => {
                    let stored = match receipt.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(StoreError::Closed),
                    };
                    if let Err(e) = &stored {
                        // Read nothing more: a sender that pipelines may have sent more
                        // before it reads the refusal, and those are refused too (see
                        // `Appender::source`). Once what is owed is answered the
                        // connection closes; the sender reconnects and sends again.
                        closing.cancel();
                        if self.log_failed_content {
                            warn!(
                                "message from {peer} not stored ({e}): {}",
                                printable(&payload)
                            );
                        } else {
                            warn!("message from {peer} not stored: {e}");
                        }
                    }
                    (
                        self.acknowledgement(&payload, stored.is_ok()),
                        false,
                        Some(permit),
                    )
                }
                Owed::Empty => (self.acknowledgement(&[], true), false, None),
                Owed::RefuseAndClose | Owed::Refuse => (
                    self.settings
                        .use_ack
                        .then(|| Bytes::from(commit_payload(CommitAck::Nak))),
                    matches!(item, Owed::RefuseAndClose),
                    None,
                ),
            };
            if let Some(reply) = reply {
                // A peer that does not read its ACKs must not pin the connection (and the
                // messages it keeps sending) for ever, nor hold up a shutdown. What it
                // sent is stored; unacknowledged, it will be resent (at-least-once).
                let sent = tokio::select! {
                    sent = tokio::time::timeout(timeout, sink.send(reply)) => sent,
                    () = &mut grace => {
                        warn!("{peer} did not take its acknowledgement before shutdown; closing");
                        reading = false;
                        break;
                    }
                };
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        warn!("cannot acknowledge to {peer}: {e}");
                        break;
                    }
                    Err(_) => {
                        warn!(
                            "{peer} did not take its acknowledgement within {timeout:?} \
                             (acktimeout); closing"
                        );
                        reading = false;
                        break;
                    }
                }
            }
            // Answered (or never to be): the reader may take more from the peer.
            drop(permit);
            if close {
                break;
            }
        }
        closing.cancel();
        // Flushing waits for the peer too: one that stopped reading gets the socket
        // closed under it instead.
        if reading {
            tokio::select! {
                _ = tokio::time::timeout(timeout, SinkExt::<Bytes>::close(&mut sink)) => {}
                () = &mut grace => {}
            }
        }
    }

    /// The reply to a message: an HL7 ACK for HL7 with `usehl7`, else the MLLP commit
    /// block; nothing with `useack = False`, for an ACK, or when MSH-15/16 say never.
    fn acknowledgement(&self, payload: &[u8], stored: bool) -> Option<Bytes> {
        if !self.settings.use_ack {
            return None;
        }
        if self.connection.use_hl7
            && let Ok(message) = Message::parse(payload)
            && message.msh().is_some()
        {
            if message.is_ack() {
                debug!("received an acknowledgement; never acknowledging an ACK");
                return None;
            }
            let code = match (stored, AckMode::of(&message)) {
                (true, mode) => mode.accept_code(),
                (false, AckMode::Original) => AckCode::ApplicationReject,
                (false, AckMode::Enhanced) => AckCode::CommitError,
            };
            let mut builder = AckBuilder::new(&message).code(code);
            if !stored {
                builder = builder.text("message could not be stored; resend");
            }
            return match builder.build_if_required() {
                Ok(ack) => ack.map(Bytes::from),
                Err(e) => {
                    warn!("cannot build an HL7 ACK ({e}); sending the MLLP commit block");
                    Some(Bytes::from(commit_payload(commit_of(stored))))
                }
            };
        }
        Some(Bytes::from(commit_payload(commit_of(stored))))
    }
}

fn commit_of(stored: bool) -> CommitAck {
    if stored {
        CommitAck::Ack
    } else {
        CommitAck::Nak
    }
}

/// The sink frames payloads with the connection's delimiters, so a commit block is its
/// one payload byte.
fn commit_payload(commit: CommitAck) -> Vec<u8> {
    vec![commit.byte()]
}
