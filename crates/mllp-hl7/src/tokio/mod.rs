//! Async adapters over tokio: the codec, a client and a server helper.

mod client;
mod codec;
mod server;

pub use client::{ClientError, MllpClient, Reply, Unframed, refuse_self_connect};
pub use codec::{CodecError, MllpCodec};
pub use server::{MllpServer, Response, auto_ack, serve, serve_connection};
