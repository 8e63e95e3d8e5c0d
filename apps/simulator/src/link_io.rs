//! Runs an `astm-frame` [`Link`] over a byte stream, with the simulator's extras in the I/O loop:
//! the response delay before control bytes, fault injection, the idle timeout, and the reference's
//! "six NAKs in a row, then EOT and hang up" rule for the receiver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use astm_frame::control::{ACK, ENQ, EOT, LF, NAK, STX};
use astm_frame::{AbortReason, Control, Event, Link, MessageId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::faults::{Fault, Faults};

/// Receiver interrupts in a row after which an interrupted message is given up, not sent again
/// (a LIS that answers every frame with EOT would otherwise get it every 15 s forever).
pub(crate) const MAX_INTERRUPTS: u32 = 6;

/// Why the loop stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkIoError {
    /// Transport error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// Six frames in a row were refused; EOT was sent and the connection closed.
    #[error("six consecutive frames refused; sent EOT and closed")]
    TooManyNaks,
    /// A fault closed the connection in the middle of a frame.
    #[error("connection closed mid-frame by the disconnect-mid-frame fault")]
    FaultDisconnect,
    /// Nothing received within the idle timeout.
    #[error("idle for {0:?}; connection closed")]
    Idle(Duration),
    /// The message was not delivered.
    #[error("message not delivered: {0}")]
    Aborted(String),
}

/// Options of the loop.
#[derive(Debug, Clone)]
pub(crate) struct LinkIoOptions {
    /// Wait before each control byte sent (`--response-delay`).
    pub(crate) control_delay: Duration,
    /// Close after six consecutive NAKs sent (server side).
    pub(crate) nak_limit: bool,
    /// Close after this long without input.
    pub(crate) idle: Option<Duration>,
    /// Faults to inject.
    pub(crate) faults: Arc<Faults>,
    /// For log lines.
    pub(crate) label: String,
}

/// A [`Link`] over `T`.
#[derive(Debug)]
pub(crate) struct LinkIo<T> {
    io: T,
    link: Link,
    options: LinkIoOptions,
    events: VecDeque<Event>,
    read_buf: Vec<u8>,
    out: Vec<u8>,
    /// Replies (ACK or NAK) still due for duplicated frames: the reply to the earlier copy is
    /// dropped, the last one is the frame's reply. They must not be taken for the next frame's
    /// reply, nor, once the transfer has ended, for the reply to the next session's ENQ.
    extra_replies: u32,
    consecutive_naks: u32,
    /// Whether the last item written was an ENQ, and how many ENQs in a row the peer has
    /// left unanswered (each ended by EOT when the reply timer ran out).
    enq_outstanding: bool,
    unanswered_enqs: u32,
    last_input: Instant,
    /// The peer has closed the connection: nothing more is written.
    closed: bool,
    /// The read error (a reset) that closed the connection, returned by
    /// [`LinkIo::next_event`] after the events of the close.
    read_error: Option<std::io::Error>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> LinkIo<T> {
    /// Runs `link` over `io`.
    pub(crate) fn new(io: T, link: Link, options: LinkIoOptions) -> Self {
        Self {
            io,
            link,
            options,
            events: VecDeque::new(),
            read_buf: vec![0; 16 * 1024],
            out: Vec::new(),
            extra_replies: 0,
            consecutive_naks: 0,
            enq_outstanding: false,
            unanswered_enqs: 0,
            last_input: Instant::now(),
            closed: false,
            read_error: None,
        }
    }

    /// Queues a message to send in its own session; returns at once.
    pub(crate) fn queue(&mut self, message: Vec<u8>) -> MessageId {
        self.link.send(message, Instant::now().into_std())
    }

    /// Queues a message ahead of every message not yet started ([`Link::send_first`]).
    pub(crate) fn queue_first(&mut self, message: Vec<u8>) -> MessageId {
        self.link.send_first(message, Instant::now().into_std())
    }

    /// Sends a message and waits until the peer has acknowledged every frame. A message the
    /// peer interrupts (§6.3.5.3: EOT in place of a frame's ACK, to send its own message) is
    /// sent again, whole, once the peer has sent its message or the hold-off has passed, up to
    /// [`MAX_INTERRUPTS`] times; what the peer sends meanwhile is left for
    /// [`LinkIo::take_received`].
    pub(crate) async fn send(&mut self, message: Vec<u8>) -> Result<(), LinkIoError> {
        let mut id = self.queue(message);
        let mut interrupts = 0;
        loop {
            self.flush().await?;
            let position = self.events.iter().position(|e| match e {
                Event::MessageSent(sent) => *sent == id,
                Event::MessageAborted { id: aborted, .. } => *aborted == id,
                _ => false,
            });
            match position.and_then(|i| self.events.remove(i)) {
                Some(Event::MessageAborted {
                    reason: AbortReason::ReceiverInterrupt,
                    message,
                    ..
                }) if interrupts < MAX_INTERRUPTS => {
                    interrupts += 1;
                    tracing::info!(
                        "{}: receiver interrupt; the message will be sent again",
                        self.options.label
                    );
                    id = self.queue_first(message);
                }
                Some(Event::MessageAborted { reason, .. }) => {
                    return Err(LinkIoError::Aborted(reason.to_string()));
                }
                Some(_) => return Ok(()),
                None => self.step().await?,
            }
        }
    }

    /// Keeps the link running until `deadline`: between the simulator's own messages (a pause
    /// of `-i`, between rounds) the LIS's ENQ is answered and what it sends is received, left
    /// for [`LinkIo::take_received`], instead of its ENQ going unanswered until its timer
    /// gives up. Returns early if the peer closes the connection (`Closed`) or on an error.
    pub(crate) async fn serve_until(&mut self, deadline: Instant) -> Result<(), LinkIoError> {
        loop {
            self.flush().await?;
            if self.closed {
                return Err(LinkIoError::Closed);
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            self.step_until(Some(deadline)).await?;
        }
    }

    /// Takes back every message not yet sent in full ([`Link::take_unsent`]), for a caller
    /// whose peer has gone.
    pub(crate) fn take_unsent(&mut self) -> Vec<(MessageId, Vec<u8>)> {
        self.link.take_unsent()
    }

    /// The transport.
    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Takes the messages the peer has sent so far (while [`LinkIo::send`] waited), in order.
    pub(crate) fn take_received(&mut self) -> Vec<Vec<u8>> {
        let mut received = Vec::new();
        self.events.retain_mut(|e| match e {
            Event::MessageReceived(text) => {
                received.push(std::mem::take(text));
                false
            }
            _ => true,
        });
        received
    }

    /// The next event; `Ok(None)` when the peer has closed the connection. A reset is
    /// returned as the error after the events of the close (a message it cut off).
    pub(crate) async fn next_event(&mut self) -> Result<Option<Event>, LinkIoError> {
        loop {
            if !self.closed {
                self.flush().await?;
            }
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.closed {
                return self.read_error.take().map_or(Ok(None), |e| Err(e.into()));
            }
            match self.step().await {
                Ok(()) => {}
                // The events of the close itself (a message it cut off) come first.
                Err(LinkIoError::Closed) if !self.events.is_empty() => {}
                Err(LinkIoError::Closed) => return Ok(None),
                Err(LinkIoError::Io(e)) if self.closed && !self.events.is_empty() => {
                    self.read_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Shuts the write side down.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }

    /// Writes what the link has to send, transformed by the faults, and collects events.
    async fn flush(&mut self) -> Result<(), LinkIoError> {
        while self.link.poll_transmit(&mut self.out).is_some() {}
        self.collect_events();
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let mut rest = &out[..];
        while let Some(&first) = rest.first() {
            let len = if first == STX {
                memchr_lf(rest).map_or(rest.len(), |i| i + 1)
            } else {
                1
            };
            let (item, tail) = rest.split_at(len);
            rest = tail;
            self.write_item(item).await?;
        }
        // The response delay and the delay fault held the bytes back: the peer's time to
        // reply (and our receive timer) runs from when they went out.
        self.link.handle_transmitted(Instant::now().into_std());
        Ok(())
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.link.poll_event() {
            if let Event::TransferFailed {
                reason, transfers, ..
            } = &event
            {
                // The message stays queued; its MessageSent or MessageAborted comes later.
                tracing::warn!(
                    "{}: transfer {transfers} of {} failed ({reason}); the message will be sent \
                     again, whole, after the hold-off",
                    self.options.label,
                    self.link.config().max_transfers
                );
                continue;
            }
            self.events.push_back(event);
        }
    }

    async fn write_item(&mut self, item: &[u8]) -> Result<(), LinkIoError> {
        let faults = Arc::clone(&self.options.faults);
        let label = self.options.label.as_str();
        if faults.delay() > Duration::ZERO {
            tokio::time::sleep(faults.delay()).await;
        }
        if item.first() == Some(&STX) {
            self.enq_outstanding = false;
            self.unanswered_enqs = 0;
            if faults.fires(Fault::DisconnectMidFrame, label) {
                self.io.write_all(&item[..item.len() / 2]).await?;
                self.io.flush().await?;
                let _ = self.io.shutdown().await;
                return Err(LinkIoError::FaultDisconnect);
            }
            let mut frame = item.to_vec();
            if faults.fires(Fault::BadChecksum, label) && frame.len() >= 5 {
                // The two checksum characters sit before CR LF; any other valid hex is wrong.
                let i = frame.len() - 4;
                frame[i] = if frame[i] == b'0' { b'1' } else { b'0' };
            }
            self.io.write_all(&frame).await?;
            if faults.fires(Fault::DuplicateFrame, label) {
                self.io.write_all(&frame).await?;
                self.extra_replies += 1;
            }
            self.io.flush().await?;
            return Ok(());
        }
        let byte = item[0];
        if byte == EOT && self.enq_outstanding {
            // The link gives up on an ENQ with EOT only when its reply timer ran out. A peer
            // that never answers (an MLLP port, such as a router's socket input, takes the
            // ENQ for junk before a frame) used to show nothing until the message failed
            // after six ENQs, 140 s later.
            self.unanswered_enqs += 1;
            let most = self.link.config().max_enq_attempts;
            let next = if self.unanswered_enqs < most {
                format!("ENQ again after the hold-off, the message failing after {most}")
            } else {
                "the message fails".to_owned()
            };
            tracing::warn!(
                "{label}: no reply to ENQ ({} in a row); EOT sent, {next}. A port that never \
                 answers ENQ may not speak ASTM E1381 (an MLLP port, say)",
                self.unanswered_enqs
            );
        } else if byte != ENQ {
            self.unanswered_enqs = 0;
        }
        self.enq_outstanding = byte == ENQ;
        match byte {
            ACK => {
                self.consecutive_naks = 0;
                if faults.fires(Fault::DropAck, label) {
                    return Ok(());
                }
            }
            NAK => self.consecutive_naks += 1,
            _ => {}
        }
        if Control::from_byte(byte).is_some() && self.options.control_delay > Duration::ZERO {
            tokio::time::sleep(self.options.control_delay).await;
        }
        self.io.write_all(item).await?;
        if byte == NAK && self.options.nak_limit && self.consecutive_naks >= 6 {
            // The reference's rule: after the sixth NAK in a row, EOT and hang up.
            self.io.write_all(&[EOT]).await?;
            self.io.flush().await?;
            let _ = self.io.shutdown().await;
            return Err(LinkIoError::TooManyNaks);
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Waits for input or the next timer, and feeds it to the link.
    async fn step(&mut self) -> Result<(), LinkIoError> {
        self.step_until(None).await
    }

    /// [`LinkIo::step`], returning at `wake_at` at the latest.
    async fn step_until(&mut self, wake_at: Option<Instant>) -> Result<(), LinkIoError> {
        let link_deadline = self.link.poll_timeout().map(Instant::from_std);
        let idle_deadline = self.options.idle.map(|d| self.last_input + d);
        let deadline = match (link_deadline, idle_deadline) {
            // The idle timeout only ends a link without a timer running (see below); once it
            // has passed, waking for it again would return at once, in a busy loop, until the
            // link's timer is due.
            (Some(a), Some(b)) if b <= Instant::now() => a,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Instant::now() + Duration::from_secs(3600),
        };
        let deadline = wake_at.map_or(deadline, |at| at.min(deadline));
        tokio::select! {
            read = self.io.read(&mut self.read_buf) => {
                let n = match read {
                    Ok(n) => n,
                    Err(e) => {
                        // A reset ends the connection as a close does: the message it cut
                        // off is reported too.
                        self.end_of_input();
                        return Err(e.into());
                    }
                };
                if n == 0 {
                    // A message the close cut off is reported (ReceiveDiscarded), not lost
                    // without a word.
                    self.end_of_input();
                    return Err(LinkIoError::Closed);
                }
                self.last_input = Instant::now();
                let input = self.read_buf[..n].to_vec();
                self.on_input(&input).await?;
            }
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                if let Some(idle) = self.options.idle
                    && now >= self.last_input + idle
                    && self.link.poll_timeout().is_none()
                {
                    return Err(LinkIoError::Idle(idle));
                }
                self.link.handle_timeout(now.into_std());
            }
        }
        Ok(())
    }

    fn end_of_input(&mut self) {
        self.closed = true;
        self.link.handle_eof(Instant::now().into_std());
        self.collect_events();
    }

    async fn on_input(&mut self, input: &[u8]) -> Result<(), LinkIoError> {
        let faults = Arc::clone(&self.options.faults);
        let mut filtered = Vec::with_capacity(input.len());
        if self.link.state() != astm_frame::LinkState::Sending {
            // The transfer ended (receiver interrupt, timeout) before the peer answered every
            // copy: a reply still counted as due is the next session's.
            self.extra_replies = 0;
        }
        for &b in input {
            if matches!(b, ACK | NAK) && self.extra_replies > 0 {
                // The reply to the earlier copy of a duplicated frame (a corrupted frame sent
                // twice is NAKed twice): the last reply is the one the link acts on.
                self.extra_replies -= 1;
                continue;
            }
            // Only an ENQ that opens a session is refused as busy: one in place of the reply
            // to a frame of ours is that reply (a NAK, §6.5.1.2), and the link must see it.
            // The bytes read before it (the ACK to our last frame) may have ended our
            // transfer: the link takes them first, so its state says which this ENQ is.
            if b == ENQ && !filtered.is_empty() {
                self.link.handle_input(&filtered, Instant::now().into_std());
                filtered.clear();
            }
            if b == ENQ
                && self.link.state() != astm_frame::LinkState::Sending
                && faults.fires(Fault::NakEnq, &self.options.label)
            {
                self.flush().await?;
                // Like every other transmission: the delay-ms fault, then the response delay.
                let delay = faults.delay() + self.options.control_delay;
                if delay > Duration::ZERO {
                    tokio::time::sleep(delay).await;
                }
                self.io.write_all(&[NAK]).await?;
                self.io.flush().await?;
                continue;
            }
            filtered.push(b);
        }
        self.link.handle_input(&filtered, Instant::now().into_std());
        Ok(())
    }
}

fn memchr_lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == LF)
}
