//! A JSON reply body written while it is serialized, in bounded chunks. `GET /received` can
//! list 64 MiB of text, which escaping and the `records` copy turn into up to twelve times as
//! much JSON; serialized whole first, one request held that much memory.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

/// Bytes per chunk sent on.
const CHUNK: usize = 64 * 1024;
/// Chunks serialized ahead of what hyper has taken (which buffers a few hundred KiB more):
/// what a slow reader makes the server hold, about 1 MiB a request in all.
const CHUNKS_AHEAD: usize = 4;

/// The JSON of `value` as a streamed body. It is serialized on a blocking thread, which stops
/// as soon as the client goes away.
pub(crate) fn streamed(value: impl Serialize + Send + 'static) -> Body {
    let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            chunk: Vec::with_capacity(CHUNK),
            sender,
        };
        let written = serde_json::to_writer(&mut writer, &value)
            .map_err(io::Error::from)
            .and_then(|()| writer.flush());
        if let Err(e) = written
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!("a JSON reply broke off: {e}");
            // The client sees the body end early rather than valid-looking truncated JSON.
            let _ = writer.sender.blocking_send(Err(e));
        }
    });
    Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ))
}

/// Collects serialized bytes and hands them on a chunk at a time.
struct ChunkWriter {
    chunk: Vec<u8>,
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkWriter {
    fn send_chunk(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(full)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&bytes[..taken]);
        if self.chunk.len() == CHUNK {
            self.send_chunk()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.send_chunk()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn the_body_is_the_values_json_in_chunks_of_at_most_chunk_bytes() {
        let value: Vec<String> = (0..3000).map(|i| format!("\u{1}{i}").repeat(20)).collect();
        let expected = serde_json::to_vec(&value).unwrap();
        assert!(expected.len() > 3 * CHUNK);
        let mut body = streamed(value).into_data_stream();
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(data) = body.next().await {
            let data = data.unwrap();
            assert!(!data.is_empty() && data.len() <= CHUNK, "{}", data.len());
            got.extend_from_slice(&data);
            chunks += 1;
        }
        assert_eq!(got, expected);
        assert_eq!(chunks, expected.len().div_ceil(CHUNK));
    }

    #[tokio::test]
    async fn serializing_stops_when_the_body_is_dropped() {
        struct Endless;
        impl Serialize for Endless {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(std::iter::repeat_n("x".repeat(1000), usize::MAX))
            }
        }
        let mut body = streamed(Endless).into_data_stream();
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(first.len(), CHUNK);
        drop(body);
        // The blocking thread ends (the runtime's shutdown would wait for it otherwise, and
        // this test would never finish).
    }
}
