//! A stream whose writes give up on a peer that has stopped reading.
//!
//! A write that cannot make progress (the peer's receive window and our send buffer are full)
//! waits for the peer to read. Without a bound, a client that asks for a large reply (`GET
//! /received`, up to its 64 MiB cap) and never reads it holds the reply in memory and one of
//! the API's `--max-connections` for as long as it stays connected. Any progress restarts the
//! clock, so a slow reader is served however long its reply takes.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Wraps `S`: a write or flush that has made no progress for `limit` fails with
/// [`io::ErrorKind::TimedOut`]. Reads are passed through.
pub(crate) struct WriteStallLimit<S> {
    inner: S,
    limit: Duration,
    /// Running while a write or flush is pending; cleared by any progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStallLimit<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled_since: None,
        }
    }

    /// Passes `poll`'s progress through; while it is pending, fails once `limit` has passed
    /// without progress.
    fn bound<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled_since = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer read nothing of the reply for {limit:?}"),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bound(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bound(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.bound(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.bound(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A peer that never reads makes the write fail after the limit; one that reads slowly,
    /// a little within every limit, gets everything.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_limit_and_a_slow_reader_is_served() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut stream = WriteStallLimit::new(ours, Duration::from_secs(30));
        let err = stream.write_all(&[7; 1000]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // Still connected: the failure is the stall, not a closed peer.
        let mut first = [0; 64];
        theirs.read_exact(&mut first).await.unwrap();

        let (ours, mut theirs_slow) = tokio::io::duplex(64);
        let mut stream = WriteStallLimit::new(ours, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0; 64];
            while got.len() < 1000 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                let n = theirs_slow.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        stream.write_all(&[7; 1000]).await.unwrap();
        assert_eq!(reader.await.unwrap(), vec![7; 1000]);
    }
}
