//! Socket output: deliver each stored message over MLLP and remove it only after the
//! peer's ACK; a negative ACK, a timeout or a broken connection means retry with backoff.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use mllp_hl7::{AckMessage, AckReadError, CommitAck, Message, MllpCodec, MllpFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use super::{
    ACCEPT_RETRY, AcceptFailures, Backoff, NoiseLog, READ_BYTES, printable, resume_point,
    shutdown_grace, undeliverable,
};
use crate::config::{Connection, SocketSettings};
use crate::store::{QueueStore, StoredMessage};
use crate::tls::{Stream, TlsSource};

/// What one socket output needs.
#[derive(Debug)]
pub(crate) struct SocketOut {
    pub(crate) connection: Arc<Connection>,
    pub(crate) settings: SocketSettings,
    pub(crate) store: Arc<QueueStore>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) log_failed_content: bool,
    /// Server mode: the bound listener the receiving system connects to.
    pub(crate) listener: Option<TcpListener>,
    /// Where messages this output can never frame are kept (see [`undeliverable`]).
    pub(crate) undeliverable: PathBuf,
    /// `usetls`: every connection is secured with this first.
    pub(crate) tls: Option<Arc<TlsSource>>,
    /// Server mode, once running: the receiver that connected last and finished its
    /// handshake (see [`SocketOut::accept_receivers`]).
    pub(crate) receivers: Option<Arc<Handover>>,
}

/// Server mode: the receiver that connected last, waiting to be taken over. One slot: a
/// newer receiver replaces the one waiting, which is closed. Receivers connecting while a
/// delivery waits for its ACK used to wait each with its socket open, so that one
/// output's port could take every file descriptor of the process (2,000 connections held
/// 2,014), and no input could accept.
#[derive(Debug, Default)]
pub(crate) struct Handover {
    waiting: std::sync::Mutex<Option<(Stream, SocketAddr)>>,
    arrived: tokio::sync::Notify,
}

impl Handover {
    fn offer(&self, stream: Stream, peer: SocketAddr) {
        let replaced = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace((stream, peer));
        if let Some((_, earlier)) = replaced {
            info!("receiver from {earlier} closed: {peer} connected after it");
        }
        self.arrived.notify_one();
    }

    fn take(&self) -> Option<(Stream, SocketAddr)> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    async fn next(&self) -> (Stream, SocketAddr) {
        loop {
            if let Some(receiver) = self.take() {
                return receiver;
            }
            self.arrived.notified().await;
        }
    }
}

/// Server mode: at most this many connections may be in their TLS handshake at once;
/// more wait in the listen queue.
const PENDING_HANDSHAKES: usize = 16;

/// How long a connection being given up may take to say goodbye (a TLS close_notify).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Why one delivery attempt failed.
#[derive(Debug)]
enum Failure {
    /// The connection is unusable: reconnect.
    Connection(String),
    /// The peer refused the message (AE/AR/CE/CR or NAK): resend later on the same
    /// connection.
    Refused(String),
    /// Shutdown interrupted the attempt.
    Shutdown,
}

impl SocketOut {
    pub(crate) async fn run(mut self) {
        self.receivers = self.accept_receivers();
        let mut link: Option<Framed<Stream, MllpCodec>> = None;
        self.serve_queue(&mut link).await;
        if let Some(framed) = link {
            close(framed).await;
        }
    }

    /// Server mode: accepts receivers and secures each in a task of its own, handing over
    /// those that finished the handshake. A peer that connects and stalls its handshake
    /// (or sends nothing) then holds up neither the messages nor the next receiver.
    fn accept_receivers(&mut self) -> Option<Arc<Handover>> {
        let listener = self.listener.take()?;
        let receivers = Arc::new(Handover::default());
        let ready = Arc::clone(&receivers);
        let tls = self.tls.clone();
        let shutdown = self.shutdown.clone();
        let pending = Arc::new(Semaphore::new(PENDING_HANDSHAKES));
        tokio::spawn(
            async move {
                let mut failures = AcceptFailures::default();
                loop {
                    let permit = tokio::select! {
                        () = shutdown.cancelled() => break,
                        permit = Arc::clone(&pending).acquire_owned() => permit,
                    };
                    let Ok(permit) = permit else { break };
                    let accepted = tokio::select! {
                        () = shutdown.cancelled() => break,
                        accepted = listener.accept() => accepted,
                    };
                    let (tcp, peer) = match accepted {
                        Ok(pair) => {
                            failures.succeeded();
                            pair
                        }
                        Err(e) => {
                            failures.failed(&e);
                            tokio::select! {
                                () = shutdown.cancelled() => break,
                                () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                            }
                        }
                    };
                    limit_unsent(&tcp);
                    let (ready, tls, shutdown) =
                        (Arc::clone(&ready), tls.clone(), shutdown.clone());
                    tokio::spawn(
                        async move {
                            let opened = tokio::select! {
                                () = shutdown.cancelled() => return,
                                opened = Stream::open(tcp, tls.as_deref(), peer) => opened,
                            };
                            drop(permit);
                            match opened {
                                Ok(stream) => ready.offer(stream, peer),
                                Err(e) => warn!("{e}"),
                            }
                        }
                        .in_current_span(),
                    );
                }
                // The listener closes here: no new connections after shutdown.
            }
            .in_current_span(),
        );
        Some(receivers)
    }

    /// Delivers the queue until shutdown (or the store fails).
    async fn serve_queue(&mut self, link: &mut Option<Framed<Stream, MllpCodec>>) {
        let queue = self.connection.queue.clone();
        let name = self.connection.name.clone();
        let Some((mut cursor, mut committed)) = resume_point(&self.store, &queue, &name) else {
            return;
        };
        let mut backoff = Backoff::new(self.settings.retry_delay, self.settings.retry_max_delay);
        let framing = self.settings.mllp_config();
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            // Up to 64 MiB read from disk: off the async workers, which on a small
            // machine are all the other connectors have.
            let store = Arc::clone(&self.store);
            let read_queue = queue.clone();
            let read = tokio::task::spawn_blocking(move || {
                store
                    .read_bounded(&read_queue, cursor, 64, READ_BYTES)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let batch = match read {
                Ok(batch) => batch,
                Err(e) => {
                    error!("cannot read the queue: {e}");
                    if !backoff.sleep(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    changed = committed.changed() => if changed.is_err() { break },
                    // Server mode: a receiver that connects while the queue is idle
                    // takes over. The previous connection may be dead without a FIN
                    // (the receiving host restarted), which nothing would reveal until
                    // the next message's ACK timed out.
                    (stream, peer) = next_receiver(self.receivers.as_deref()) => {
                        self.adopt(link, stream, peer).await;
                    }
                }
                continue;
            }
            for message in batch {
                let done = match framing.check_payload(&message.payload) {
                    Ok(()) => self.deliver(&message, link, &mut backoff).await,
                    Err(e) => self.set_aside(&message, &e, &mut backoff).await,
                };
                if !done {
                    return;
                }
                cursor = message.seq + 1;
                // Not awaited: losing this cursor update in a crash only redelivers.
                if self.store.advance(&queue, &name, cursor).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Delivers one message, retrying until it is acknowledged (or, with
    /// `maxrefusals`, set aside after that many negative ACKs in a row); false on
    /// shutdown.
    async fn deliver(
        &mut self,
        message: &StoredMessage,
        link: &mut Option<Framed<Stream, MllpCodec>>,
        backoff: &mut Backoff,
    ) -> bool {
        let mut refusals = 0_u32;
        // The content goes with the first failure only: a message retried for days (a
        // receiver answering AE for ever) would otherwise be written to the log whole
        // at every retry.
        let mut content_logged = false;
        loop {
            if self.shutdown.is_cancelled() {
                return false;
            }
            // Server mode: the receiver that connected last is the one served.
            if let Some((stream, peer)) = self.receivers.as_deref().and_then(Handover::take) {
                self.adopt(link, stream, peer).await;
            }
            let fresh = link.is_none();
            if fresh {
                match self.open().await {
                    Some(framed) => *link = Some(framed),
                    None if self.shutdown.is_cancelled() => return false,
                    None => {
                        if !backoff.sleep(&self.shutdown).await {
                            return false;
                        }
                        continue;
                    }
                }
            }
            let Some(framed) = link.as_mut() else {
                continue;
            };
            // A write into a connection the receiver has already closed still succeeds
            // locally; for a message that expects no ACK that would count as delivered.
            if let Some(why) = closed_by_peer(framed) {
                info!("{why}; reconnecting");
                *link = None;
                // A connection that served earlier messages closed while idle: reconnect
                // at once. One closed as soon as it was opened (a port forwarder whose
                // back end is down) waits its backoff, or the output reconnects in a loop.
                if fresh && !backoff.sleep(&self.shutdown).await {
                    return false;
                }
                continue;
            }
            match self.attempt(framed, &message.payload).await {
                Ok(()) => {
                    if self.connection.debug.log_content {
                        info!(
                            "delivered message {}: {}",
                            message.seq,
                            printable(&message.payload)
                        );
                    } else {
                        debug!("delivered message {}", message.seq);
                    }
                    backoff.reset();
                    return true;
                }
                Err(failure) => {
                    let (reason, reconnect) = match failure {
                        Failure::Shutdown => return false,
                        Failure::Connection(r) => (r, true),
                        Failure::Refused(r) => {
                            refusals += 1;
                            if self
                                .settings
                                .max_refusals
                                .is_some_and(|max| refusals >= max)
                            {
                                let why = format!("refused {refusals} times in a row ({r})");
                                return self.set_aside(message, &why, backoff).await;
                            }
                            (r, false)
                        }
                    };
                    if self.log_failed_content && !content_logged {
                        content_logged = true;
                        warn!(
                            "delivery of message {} failed: {reason}; retrying: {}",
                            message.seq,
                            printable(&message.payload)
                        );
                    } else {
                        warn!(
                            "delivery of message {} failed: {reason}; retrying",
                            message.seq
                        );
                    }
                    if reconnect {
                        *link = None;
                    }
                    if !backoff.sleep(&self.shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Keeps a message that cannot be framed with this connection's delimiters or size
    /// limit (a file input's content, say), or that the receiver refused `maxrefusals`
    /// times, as a file, so that it neither blocks the queue for ever nor is lost;
    /// retried until it is durable; false on shutdown.
    async fn set_aside(
        &self,
        message: &StoredMessage,
        why: &(dyn std::fmt::Display + Sync),
        backoff: &mut Backoff,
    ) -> bool {
        loop {
            let (dir, seq, payload) = (
                self.undeliverable.clone(),
                message.seq,
                message.payload.clone(),
            );
            let kept =
                tokio::task::spawn_blocking(move || undeliverable::keep(&dir, seq, &payload))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            match kept {
                Ok(path) => {
                    error!(
                        "message {} cannot be sent: {why}; kept in {} instead",
                        message.seq,
                        path.display()
                    );
                    return true;
                }
                Err(e) => {
                    error!(
                        "message {} cannot be sent ({why}) nor kept in {}: {e}; retrying",
                        message.seq,
                        self.undeliverable.display()
                    );
                    if !backoff.sleep(&self.shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Connects (client) or waits for the receiving system to connect (server).
    async fn open(&mut self) -> Option<Framed<Stream, MllpCodec>> {
        if let Some(receivers) = self.receivers.clone() {
            let (stream, peer) = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                adopted = receivers.next() => adopted,
            };
            let mut link = None;
            self.adopt(&mut link, stream, peer).await;
            return link;
        }
        let address = format!("{}:{}", self.settings.host, self.settings.port);
        let connected = tokio::select! {
            () = self.shutdown.cancelled() => return None,
            connected = super::connect(&address) => connected,
        };
        match connected {
            Ok(stream) => {
                info!("connected to {address}");
                self.frame(stream).await
            }
            Err(e) => {
                warn!("cannot connect to {address}: {e}; retrying");
                None
            }
        }
    }

    /// Server mode: a receiver that connected (and finished its handshake) takes over
    /// the link; the previous connection, if any, is closed.
    async fn adopt(
        &self,
        link: &mut Option<Framed<Stream, MllpCodec>>,
        stream: Stream,
        peer: SocketAddr,
    ) {
        let Some(framed) = self.framed(stream) else {
            return;
        };
        match link.replace(framed) {
            Some(previous) => {
                info!("receiver connected from {peer}; closing the previous connection");
                close(previous).await;
            }
            None => info!("receiver connected from {peer}"),
        }
    }

    /// Client mode: the connection secured (with `usetls`) and framed; `None`, logged,
    /// when the TLS handshake fails.
    async fn frame(&self, stream: TcpStream) -> Option<Framed<Stream, MllpCodec>> {
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        limit_unsent(&stream);
        let opened = tokio::select! {
            () = self.shutdown.cancelled() => return None,
            opened = Stream::open(stream, self.tls.as_deref(), peer) => opened,
        };
        match opened {
            Ok(stream) => self.framed(stream),
            Err(e) => {
                warn!("{e}");
                None
            }
        }
    }

    fn framed(&self, stream: Stream) -> Option<Framed<Stream, MllpCodec>> {
        match MllpCodec::with_config(self.settings.mllp_config()) {
            Ok(codec) => Some(Framed::new(stream, codec)),
            Err(e) => {
                error!("framing settings: {e}");
                None
            }
        }
    }

    /// Sends the message and waits for its acknowledgement (unless `useack = False`).
    async fn attempt(
        &self,
        framed: &mut Framed<Stream, MllpCodec>,
        payload: &[u8],
    ) -> Result<(), Failure> {
        let timeout = self.settings.ack_timeout;
        tokio::select! {
            sent = send_while_taken(framed, payload, timeout) => sent?,
            () = shutdown_grace(&self.shutdown) => return Err(Failure::Shutdown),
        }
        if !self.settings.use_ack {
            return Ok(());
        }
        let message = Message::parse(payload).ok().filter(|m| m.msh().is_some());
        // Enhanced mode (MSH-15 valued): NE asks for no accept ACK, ER for one only on
        // error; and no receiver acknowledges an ACK (an input routes ACKs as messages).
        // Waiting for a reply would resend the message until the receiver's copies pile
        // up, holding every message queued behind it; so it counts as delivered once sent
        // (a late error ACK is logged). Only with `usehl7`: without it payloads are opaque
        // and the receiver answers each with the commit block, which must not be taken for
        // the next message's.
        if self.connection.use_hl7
            && message
                .as_ref()
                .is_some_and(|m| m.is_ack() || !m.acknowledged_on_success())
        {
            return Ok(());
        }
        // By value: the receiver may write the ID with its own delimiters and escapes.
        let expected_id: Option<Vec<u8>> = message
            .filter(|m| !m.control_id().is_empty())
            .map(|m| m.control_id().decoded().into_owned());
        let mut late = Late::default();
        let wait = async {
            loop {
                let frame = match framed.next().await {
                    None => return Err(Failure::Connection("peer closed the connection".into())),
                    Some(Err(e)) => return Err(Failure::Connection(e.to_string())),
                    Some(Ok(frame)) => frame,
                };
                match frame {
                    MllpFrame::Commit(CommitAck::Ack) => return Ok(()),
                    MllpFrame::Commit(CommitAck::Nak) => {
                        return Err(Failure::Refused(
                            "negative commit acknowledgement (NAK)".into(),
                        ));
                    }
                    // An empty frame is a keep-alive (as the socket input takes one), not
                    // a reply: taken for an unreadable refusal, an acknowledged message was
                    // sent again, or set aside with `maxrefusals`.
                    MllpFrame::Message(reply) if reply.is_empty() => {
                        debug!("ignoring an empty frame (keep-alive) while waiting for the ACK");
                    }
                    MllpFrame::Message(reply) => {
                        match check_reply(&reply, expected_id.as_deref(), &mut late) {
                            Some(result) => return result,
                            None => continue,
                        }
                    }
                    other => debug!("ignoring {other:?} while waiting for the ACK"),
                }
            }
        };
        let waited = tokio::select! {
            result = tokio::time::timeout(timeout, wait) => result,
            () = shutdown_grace(&self.shutdown) => return Err(Failure::Shutdown),
        };
        waited.unwrap_or_else(|_| {
            // The commonest cause: a peer that answers without MLLP framing, or with other
            // delimiters. What it sent is held as junk until a start block follows.
            let unframed = framed.codec().unreported_junk();
            let mut why = format!("no acknowledgement within {timeout:?}");
            if unframed > 0 {
                why.push_str(&format!(
                    "; the peer sent {unframed} bytes outside any MLLP frame (does it frame \
                     its replies with these sob, eod and eob?)"
                ));
            }
            // A receiver that answers, but never for this message's control id (one that
            // echoes its own MSH-10, say), looks silent unless this says so.
            if late.count > 0 {
                why.push_str(&format!(
                    "; the peer answered {} time(s) for other control ids (last: {})",
                    late.count, late.last
                ));
            }
            Err(Failure::Connection(why))
        })
    }
}

/// Writes one framed message. A receiver that stops reading must not hold the output (or
/// a shutdown) for ever, but a large message on a slow link that keeps reading must get
/// through however long it takes: so the send fails only after `timeout` in which the
/// peer took none of it. (Bounding the whole write by `timeout` made a message too large
/// to cross the link within it fail, and be resent from the start, for ever.)
async fn send_while_taken(
    framed: &mut Framed<Stream, MllpCodec>,
    payload: &[u8],
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    let failed = |e: mllp_hl7::CodecError| Failure::Connection(format!("send failed: {e}"));
    let not_taken =
        || Failure::Connection(format!("the peer took none of the message for {timeout:?}"));
    // Encodes into the write buffer; waits only if earlier bytes are still unsent.
    tokio::time::timeout(timeout, framed.feed(Bytes::copy_from_slice(payload)))
        .await
        .map_err(|_| not_taken())?
        .map_err(failed)?;
    loop {
        let unsent = framed.write_buffer().len();
        match tokio::time::timeout(timeout, SinkExt::<Bytes>::flush(framed)).await {
            Ok(flushed) => return flushed.map_err(failed),
            // Dropping the flush loses nothing: what is unsent stays in the buffer.
            Err(_) if framed.write_buffer().len() < unsent => {}
            Err(_) => return Err(not_taken()),
        }
    }
}

/// Most bytes of a message the kernel holds unsent for the output (Linux), so that a
/// message counts as written only once the receiver has (nearly) all of it. Without a
/// limit the socket buffer grows to 4 MB, and the time a slow link takes to carry that
/// tail was charged to the receiver's ACK: a large enough message timed out every time.
#[cfg(target_os = "linux")]
const UNSENT_LIMIT: u32 = 64 * 1024;

/// Applies [`UNSENT_LIMIT`]; best effort (the ACK wait is then only less precise).
fn limit_unsent(tcp: &TcpStream) {
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(UNSENT_LIMIT) {
        debug!("cannot limit unsent bytes (TCP_NOTSENT_LOWAT): {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
}

/// The next receiver ready to take over; never, without a listener (client mode).
async fn next_receiver(receivers: Option<&Handover>) -> (Stream, SocketAddr) {
    match receivers {
        Some(receivers) => receivers.next().await,
        None => std::future::pending().await,
    }
}

/// Closes a connection being given up, politely but without waiting long: flushes and
/// shuts down, which over TLS sends close_notify (a receiver may otherwise log the
/// ragged end as an error).
async fn close(mut framed: Framed<Stream, MllpCodec>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::<Bytes>::close(&mut framed)).await;
}

/// Replies to other messages than the one in hand (late ACKs), seen while waiting for
/// one ACK or while draining before a send.
#[derive(Debug, Default)]
struct Late {
    count: u64,
    /// The control id the last one acknowledged.
    last: String,
    /// Negative ones are warned about, a few at a time.
    noise: NoiseLog,
}

/// Reads an HL7 reply: `Some(Ok)` for AA/CA on this message, `Some(Err)` for a negative
/// code, `None` for a reply to another message (a late ACK) that must be skipped.
fn check_reply(
    reply: &[u8],
    expected_id: Option<&[u8]>,
    late: &mut Late,
) -> Option<Result<(), Failure>> {
    let Ok(message) = Message::parse(reply) else {
        return Some(Err(Failure::Refused(format!(
            "unreadable reply: {}",
            printable(reply)
        ))));
    };
    let ack = match AckMessage::from_message(&message) {
        Ok(ack) => ack,
        Err(AckReadError::NoMsa) if is_own_message(&message) => {
            log_own_message(&message, late);
            return None;
        }
        Err(e) => return Some(Err(Failure::Refused(format!("reply is not an ACK: {e}")))),
    };
    // An ACK naming another id, or any id for a message without one, is a late reply to an
    // earlier message (an enhanced-mode receiver's application ACK after its accept ACK):
    // taken for this one's, it counted a message delivered that the receiver then refused.
    if !ack.answers(expected_id) {
        // A receiver that cannot read the message cannot echo its control id: an error
        // ACK without one answers the message in hand (late replies to earlier attempts
        // are drained before each send), so it is a refusal, not a late reply to skip
        // until the ACK timeout. A success without an id proves nothing and is skipped.
        if ack.acknowledged_id.raw().is_empty() && !ack.code.is_success() {
            return Some(Err(Failure::Refused(format!(
                "peer answered {} without a control id{}",
                ack.code,
                ack_text(&ack)
            ))));
        }
        log_late(&ack, late);
        return None;
    }
    if ack.code.is_success() {
        Some(Ok(()))
    } else {
        Some(Err(Failure::Refused(format!(
            "peer answered {}{}",
            ack.code,
            ack_text(&ack)
        ))))
    }
}

/// The reason an ACK gives (MSA-3), as `": text"`, or nothing when it gives none.
fn ack_text(ack: &AckMessage<'_>) -> String {
    let text = printable(ack.text.raw());
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Whether a frame the receiver sent is a message of its own rather than a reply: HL7
/// with a header, not an ACK, and no MSA segment (an analyzer sending its results on the
/// link an order came in on). It answers no message of this output's.
fn is_own_message(message: &Message<'_>) -> bool {
    message.msh().is_some() && !message.is_ack() && message.segment(b"MSA").is_none()
}

/// Logs a message the receiver sent of its own accord (see [`is_own_message`]), a few
/// at a time: an output only sends, so the message is neither acknowledged nor routed.
fn log_own_message(message: &Message<'_>, late: &mut Late) {
    if late
        .noise
        .admit(&"receiver", "messages of its own on this connection")
    {
        let kind = message.message_type();
        let mut name = printable(kind.code);
        if !kind.trigger.is_empty() {
            name.push('^');
            name.push_str(&printable(kind.trigger));
        }
        warn!(
            "the receiver sent a message of its own ({name}, control id {}) on this output \
             connection; an output only sends: it is not acknowledged nor routed (give the \
             receiver's messages a connection to a socket input)",
            printable(message.control_id().raw())
        );
    }
}

/// Counts and logs a reply to another message than the one in hand (a late ACK).
fn log_late(ack: &AckMessage<'_>, late: &mut Late) {
    let other = printable(ack.acknowledged_id.raw());
    late.count += 1;
    late.last = other.chars().take(80).collect();
    if ack.code.is_success() {
        debug!("skipping a reply for control id {other}");
    } else if late
        .noise
        .admit(&"receiver", "late negative acknowledgements")
    {
        // An error ACK that came late, or for a message sent with MSH-15 = ER/NE.
        warn!(
            "late negative acknowledgement {} for control id {other}: {}",
            ack.code,
            printable(ack.text.raw())
        );
    }
}

/// Whether the receiver has closed (or broken) the connection, judged from what has
/// already arrived, without waiting. Frames still unread are late replies to earlier
/// attempts (every awaited ACK is matched when it is awaited): they are dropped.
fn closed_by_peer(framed: &mut Framed<Stream, MllpCodec>) -> Option<String> {
    let mut late = Late::default();
    loop {
        match framed.next().now_or_never() {
            None => return None,
            Some(None) => return Some("receiver closed the connection".into()),
            Some(Some(Err(e))) => return Some(format!("connection failed: {e}")),
            // Logged as late replies are when awaiting an ACK (a negative one warns).
            Some(Some(Ok(MllpFrame::Message(reply)))) => match Message::parse(&reply) {
                Ok(m) if is_own_message(&m) => log_own_message(&m, &mut late),
                Ok(m) => match AckMessage::from_message(&m) {
                    Ok(a) => log_late(&a, &mut late),
                    Err(_) => debug!("unreadable late reply dropped: {}", printable(&reply)),
                },
                Err(_) => debug!("unreadable late reply dropped: {}", printable(&reply)),
            },
            Some(Some(Ok(frame))) => debug!("late reply dropped before sending: {frame:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(code: &str, id: &str) -> Vec<u8> {
        format!("MSH|^~\\&|LIS|H|LAB|F|20260101||ACK|A1|P|2.5.1\rMSA|{code}|{id}|why\r")
            .into_bytes()
    }

    #[test]
    fn a_refusal_reads_with_its_reason_or_without_a_dangling_space() {
        let with = check_reply(&ack("AE", "M1"), Some(b"M1"), &mut Late::default());
        assert!(
            matches!(&with, Some(Err(Failure::Refused(t))) if t == "peer answered AE: why"),
            "{with:?}"
        );
        let bare = b"MSH|^~\\&|LIS|H|LAB|F|20260101||ACK|A1|P|2.5.1\rMSA|AR|M1\r";
        let without = check_reply(bare, Some(b"M1"), &mut Late::default());
        assert!(
            matches!(&without, Some(Err(Failure::Refused(t))) if t == "peer answered AR"),
            "{without:?}"
        );
    }

    #[test]
    fn an_error_ack_without_a_control_id_refuses_the_message_in_hand() {
        let refused = check_reply(&ack("AR", ""), Some(b"M1"), &mut Late::default());
        assert!(
            matches!(&refused, Some(Err(Failure::Refused(text))) if text.contains("AR without a control id: why")),
            "{refused:?}"
        );
        // Still skipped: an error for another message, and a success that names none.
        assert!(check_reply(&ack("AE", "M0"), Some(b"M1"), &mut Late::default()).is_none());
        assert!(check_reply(&ack("AA", ""), Some(b"M1"), &mut Late::default()).is_none());
        assert!(matches!(
            check_reply(&ack("AA", "M1"), Some(b"M1"), &mut Late::default()),
            Some(Ok(()))
        ));
    }
}
