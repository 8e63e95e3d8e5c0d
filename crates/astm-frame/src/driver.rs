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
    Io(#[from] std::io::Error),
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

/// A [`Link`] driven over a transport.
///
/// Events the caller is not waiting for are kept, in order, for [`next_event`](Self::next_event)
/// and [`recv`](Self::recv): a message received while sending is not lost.
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
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    closed: bool,
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
            read_buf: vec![0; 64 * 1024],
            write_buf: Vec::new(),
            closed: false,
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
    pub fn get_ref(&self) -> &T {
        &self.io
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
    /// [`DriverError::Closed`] if the peer hangs up first.
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

    /// Waits for the next event of any kind; `None` when the peer has closed the connection.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub async fn next_event(&mut self) -> Result<Option<Event>, DriverError> {
        loop {
            self.flush().await?;
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            match self.step().await {
                Ok(()) => {}
                Err(DriverError::Closed) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what the link has to send and collects its events.
    async fn flush(&mut self) -> Result<(), DriverError> {
        while self.link.poll_transmit(&mut self.write_buf).is_some() {}
        if !self.write_buf.is_empty() {
            self.io.write_all(&self.write_buf).await?;
            self.io.flush().await?;
            self.write_buf.clear();
        }
        while let Some(event) = self.link.poll_event() {
            self.events.push_back(event);
        }
        Ok(())
    }

    /// Waits for input or the next timer, and feeds it to the link.
    async fn step(&mut self) -> Result<(), DriverError> {
        if self.closed {
            return Err(DriverError::Closed);
        }
        let deadline = self
            .link
            .poll_timeout()
            .map(Instant::from_std)
            // Nothing due: wake up now and then anyway; costs nothing and bounds any surprise.
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = self.io.read(&mut self.read_buf) => {
                let n = read?;
                if n == 0 {
                    self.closed = true;
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
