//! Runs a [`Link`] over any `AsyncRead + AsyncWrite` (a TCP stream, a serial port), with the
//! timers driven by tokio time.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::link::{AbortReason, Event, Link, LinkConfig, MessageId};

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The message was not delivered; its text is kept in `message`.
    #[error("message not delivered: {reason}")]
    Aborted {
        /// Why.
        reason: AbortReason,
        /// The message text, to retry or store.
        message: Vec<u8>,
    },
}

// Not `#[from]`: that would also make the cause the `source()`, and it is already in the
// message, so a printer of the error chain would show it twice.
impl From<std::io::Error> for DriverError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

/// Diagnostic events kept for [`LinkDriver::next_event`] before the oldest are dropped.
pub const MAX_DIAGNOSTICS: usize = 1024;

/// A [`Link`] driven over a transport.
///
/// Events the caller is not waiting for are kept, in order, for [`next_event`](Self::next_event)
/// and [`recv`](Self::recv): a message received while sending is not lost. Of the diagnostic
/// events ([`Event::LinkError`], [`Event::ReceiveDiscarded`]) only the latest
/// [`MAX_DIAGNOSTICS`] not yet taken are kept, so a caller that only calls `recv` on a noisy
/// line does not pile them up for ever; messages and send outcomes are always kept.
///
/// The link's timers run even while a write waits on a peer that has stopped reading, so
/// [`send`](Self::send) ends when the reply timer gives up instead of waiting for ever. A read
/// error (a reset) ends the connection as a close does: [`next_event`](Self::next_event)
/// returns the events it brings (a message it cut off) before the error.
///
/// ```no_run
/// use astm_frame::{LinkConfig, Role, driver::LinkDriver};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), astm_frame::driver::DriverError> {
/// let stream = tokio::net::TcpStream::connect("127.0.0.1:5000").await?;
/// let mut link = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
/// link.send(b"H|\\^&\rL|1|N\r".to_vec()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LinkDriver<T> {
    io: T,
    link: Link,
    events: VecDeque<Event>,
    /// How many of `events` are diagnostics.
    diagnostics: usize,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    /// Bytes were written since the transport was last flushed.
    unflushed: bool,
    closed: bool,
    /// The read error that ended the connection, returned once the events the end brought
    /// (a message it cut off) have been taken.
    read_error: Option<DriverError>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> LinkDriver<T> {
    /// Drives a new [`Link`] with `config` over `io`.
    pub fn new(io: T, config: LinkConfig) -> Self {
        Self::with_link(io, Link::new(config))
    }

    /// Drives an existing link over `io`.
    pub fn with_link(io: T, link: Link) -> Self {
        Self {
            io,
            link,
            events: VecDeque::new(),
            diagnostics: 0,
            read_buf: vec![0; 64 * 1024],
            write_buf: Vec::new(),
            unflushed: false,
            closed: false,
            read_error: None,
        }
    }

    /// The state machine.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The state machine, to queue messages or set options.
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The transport.
    ///
    /// Reading from or writing to it directly would take bytes from, or put bytes into, the
    /// link's exchange behind its back (see [`get_mut`](Self::get_mut)).
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport, mutably: to set its options (TCP `nodelay`, a serial port's baud rate
    /// or control lines), or to shut it down once the link is idle.
    ///
    /// Take care not to read from or write to it directly, as with
    /// `tokio_util::codec::Framed::get_mut`: bytes read here never reach the [`Link`] (a lost
    /// ACK or frame, which the peer then repeats or gives up on), and bytes written here land
    /// in the middle of the link's exchange, perhaps inside a frame that a dropped
    /// [`recv`](Self::recv) left half written, so the peer refuses it. Both corrupt the
    /// protocol state on one end or the other.
    ///
    /// ```no_run
    /// use astm_frame::{LinkConfig, LinkDriver, Role};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), astm_frame::DriverError> {
    /// let stream = tokio::net::TcpStream::connect("127.0.0.1:5000").await?;
    /// let mut link = LinkDriver::new(stream, LinkConfig::new(Role::Instrument));
    /// link.get_mut().set_nodelay(true)?;
    /// println!("connected to {}", link.get_ref().peer_addr()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Gives back the transport.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Sends a message and waits until the peer has acknowledged every frame.
    ///
    /// # Errors
    ///
    /// [`DriverError::Aborted`] (with the message text) when the link gives up, I/O errors, and
    /// [`DriverError::Closed`] if the peer hangs up first. After those two the message is still
    /// in the link: take it back with [`Link::take_unsent`] through [`link_mut`](Self::link_mut).
    ///
    /// Dropped before it returns, it does not withdraw the message: the message stays queued
    /// in the link and goes out as later calls drive it; its outcome then comes from
    /// [`next_event`](Self::next_event).
    pub async fn send(&mut self, message: Vec<u8>) -> Result<(), DriverError> {
        let id = self.link.send(message, Instant::now().into_std());
        self.wait_for_outcome(id).await
    }

    async fn wait_for_outcome(&mut self, id: MessageId) -> Result<(), DriverError> {
        loop {
            self.flush().await?;
            let position = self.events.iter().position(|e| match e {
                Event::MessageSent(sent) => *sent == id,
                Event::MessageAborted { id: aborted, .. } => *aborted == id,
                _ => false,
            });
            if let Some(i) = position {
                return match self.events.remove(i) {
                    Some(Event::MessageAborted {
                        reason, message, ..
                    }) => Err(DriverError::Aborted { reason, message }),
                    _ => Ok(()),
                };
            }
            self.step().await?;
        }
    }

    /// Waits for the next received message; `None` when the peer has closed the connection.
    ///
    /// What a message is depends on [`LinkConfig::assembly`]: by default each E1381 message,
    /// one record for most instruments; with [`Assembly::PerTransfer`](crate::Assembly) the
    /// whole E1394 message H … L of a transfer.
    ///
    /// Cancel safe: dropped before it returns (the losing branch of a `tokio::select!` that
    /// also waits for orders to send), it loses no received message and no byte to send;
    /// the next call carries on where it stopped, a frame half written included.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, DriverError> {
        loop {
            self.flush().await?;
            let position = self
                .events
                .iter()
                .position(|e| matches!(e, Event::MessageReceived(_)));
            if let Some(Event::MessageReceived(message)) =
                position.and_then(|i| self.events.remove(i))
            {
                return Ok(Some(message));
            }
            match self.step().await {
                Ok(()) => {}
                Err(DriverError::Closed) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the next event of any kind; `None` when the peer has closed the connection,
    /// after the events the close itself brings (a message it cut off, reported as
    /// [`DiscardReason::ConnectionClosed`](crate::DiscardReason::ConnectionClosed)). Cancel
    /// safe, as [`recv`](Self::recv) is.
    ///
    /// # Errors
    ///
    /// I/O errors; a read error only once the events it brought have been returned.
    pub async fn next_event(&mut self) -> Result<Option<Event>, DriverError> {
        loop {
            if !self.closed {
                self.flush().await?;
            }
            if let Some(event) = self.events.pop_front() {
                if is_diagnostic(&event) {
                    self.diagnostics -= 1;
                }
                return Ok(Some(event));
            }
            match self.step().await {
                Ok(()) => {}
                // The events of the hang-up itself (a message cut off) come first.
                Err(DriverError::Closed) if !self.events.is_empty() => {}
                Err(DriverError::Closed) => return Ok(None),
                // A reset, likewise: its events first, then the error.
                Err(e @ DriverError::Io(_)) if self.closed && !self.events.is_empty() => {
                    self.read_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what the link has to send and collects its events.
    ///
    /// Bytes leave `write_buf` as each write completes, so a caller that drops a
    /// [`recv`](Self::recv) in the middle of a long frame (a `select!` branch losing) has the
    /// rest written by its next call, not the whole frame again after the part already sent.
    ///
    /// The link's timers run while a write waits (a peer that stops reading): when one brings
    /// events (its reply timer gives up on the transfer), it returns with the bytes still to
    /// write, so that a caller waiting for a message's outcome gets one instead of waiting on
    /// the write for ever. The next call writes them.
    async fn flush(&mut self) -> Result<(), DriverError> {
        while self.link.poll_transmit(&mut self.write_buf).is_some() {}
        while !self.write_buf.is_empty() {
            let deadline = self.timer_deadline();
            tokio::select! {
                written = self.io.write(&self.write_buf) => {
                    let written = written?;
                    if written == 0 {
                        return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
                    }
                    self.write_buf.drain(..written);
                    self.unflushed = true;
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.link.handle_timeout(Instant::now().into_std());
                    while self.link.poll_transmit(&mut self.write_buf).is_some() {}
                    if self.collect_events() > 0 {
                        return Ok(());
                    }
                }
            }
        }
        if self.unflushed {
            self.io.flush().await?;
            self.unflushed = false;
            // A write that waited for the peer to read: its reply timer runs from now.
            self.link.handle_transmitted(Instant::now().into_std());
        }
        self.collect_events();
        Ok(())
    }

    /// Moves the link's events to `events`, keeping at most [`MAX_DIAGNOSTICS`] unread;
    /// returns how many there were.
    fn collect_events(&mut self) -> usize {
        let mut collected = 0;
        while let Some(event) = self.link.poll_event() {
            collected += 1;
            if is_diagnostic(&event) {
                self.diagnostics += 1;
                if self.diagnostics > MAX_DIAGNOSTICS {
                    if let Some(oldest) = self.events.iter().position(is_diagnostic) {
                        self.events.remove(oldest);
                    }
                    self.diagnostics -= 1;
                }
            }
            self.events.push_back(event);
        }
        collected
    }

    /// When the link's next timer is due. Nothing due: wake up now and then anyway; costs
    /// nothing and bounds any surprise. A deadline further off is capped the same way: a
    /// timer set to "never" puts it at the end of the clock, where tokio's timer arithmetic
    /// would overflow, and waking before a deadline does nothing.
    fn timer_deadline(&self) -> Instant {
        let wake_up = Instant::now() + Duration::from_secs(3600);
        self.link
            .poll_timeout()
            .map_or(wake_up, |due| Instant::from_std(due).min(wake_up))
    }

    /// Waits for input or the next timer, and feeds it to the link.
    async fn step(&mut self) -> Result<(), DriverError> {
        if self.closed {
            return Err(self.read_error.take().unwrap_or(DriverError::Closed));
        }
        let deadline = self.timer_deadline();
        tokio::select! {
            read = self.io.read(&mut self.read_buf) => {
                let n = match read {
                    Ok(n) => n,
                    Err(e) => {
                        // A reset ends the connection as a close does: a message it cut off
                        // is reported (ReceiveDiscarded), then the error.
                        self.closed = true;
                        self.link.handle_eof(Instant::now().into_std());
                        self.collect_events();
                        return Err(e.into());
                    }
                };
                if n == 0 {
                    // A message cut off by the hang-up is reported as discarded, not lost
                    // without a word; nothing is sent on the closed connection.
                    self.closed = true;
                    self.link.handle_eof(Instant::now().into_std());
                    self.collect_events();
                    return Err(DriverError::Closed);
                }
                self.link.handle_input(&self.read_buf[..n], Instant::now().into_std());
            }
            () = tokio::time::sleep_until(deadline) => {
                self.link.handle_timeout(Instant::now().into_std());
            }
        }
        Ok(())
    }
}

fn is_diagnostic(event: &Event) -> bool {
    matches!(event, Event::LinkError(_) | Event::ReceiveDiscarded { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameEnd, Role, encode_frame};

    /// A caller that only receives messages, on a line that keeps producing link errors
    /// (here frames outside any transfer), holds at most [`MAX_DIAGNOSTICS`] of them.
    #[test]
    fn unread_diagnostics_are_bounded() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(1 << 20);
            let mut driver = LinkDriver::new(ours, LinkConfig::new(Role::Computer));
            let mut noise = Vec::new();
            encode_frame(1, b"P|1\r", FrameEnd::End, &mut noise);
            let mut transfer = vec![0x05];
            encode_frame(1, b"H|\\^&\r", FrameEnd::End, &mut transfer);
            transfer.push(0x04);
            let sender = tokio::spawn(async move {
                for _ in 0..3 {
                    for _ in 0..1000 {
                        theirs.write_all(&noise).await.unwrap();
                    }
                    theirs.write_all(&transfer).await.unwrap();
                }
                theirs
            });
            for _ in 0..3 {
                let message = driver.recv().await.unwrap().unwrap();
                assert_eq!(message, b"H|\\^&\r");
            }
            drop(sender.await.unwrap());
            assert_eq!(driver.events.len(), MAX_DIAGNOSTICS);
            assert_eq!(driver.diagnostics, MAX_DIAGNOSTICS);
            // The newest are the ones kept, and they are still there to read.
            let first = driver.next_event().await.unwrap();
            assert!(matches!(first, Some(Event::LinkError(_))), "{first:?}");
            assert_eq!(driver.diagnostics, MAX_DIAGNOSTICS - 1);
        });
    }

    /// Timers set to `Duration::MAX` (never) put a link's deadline at the far end of the
    /// clock; sleeping until it must not overflow tokio's timer arithmetic.
    #[test]
    fn timers_too_long_for_the_clock_do_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(1 << 16);
            let mut config = LinkConfig::new(Role::Computer);
            config.timers.receive = Duration::MAX;
            let mut driver = LinkDriver::new(ours, config);
            let mut transfer = vec![0x05];
            encode_frame(1, b"H|\\^&\r", FrameEnd::End, &mut transfer);
            let sender = tokio::spawn(async move {
                // The first frame alone, so the driver sleeps on the receive timer in between.
                theirs.write_all(&transfer[..1]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                theirs.write_all(&transfer[1..]).await.unwrap();
                theirs.write_all(&[0x04]).await.unwrap();
                theirs
            });
            let message = driver.recv().await.unwrap().unwrap();
            assert_eq!(message, b"H|\\^&\r");
            drop(sender.await.unwrap());
        });
    }
}
