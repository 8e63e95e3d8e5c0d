//! The engine of a SocketReader-compatible m:n message router that never loses an
//! acknowledged message.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use lis_router::{Router, config};
//! use mllp_hl7::{MllpClient, Reply};
//!
//! let dir = tempfile::tempdir()?;
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let text = format!(
//!     "[general]\nuseconnections = lab-in, lis-files\ndatadir = data\n\
//!      [lab-in]\ntranstech = socket\ntransdir = in\nqueuename = lab\nusehl7 = True\nport = {port}\n\
//!      [lis-files]\ntranstech = file\ntransdir = out\nqueuename = lab\nmessagedir = out\nsuffix = .hl7\n"
//! );
//! let loaded = config::load_str(&text, &dir.path().join("router.cfg"))?;
//! let router = Router::start(&loaded.config).await?;
//!
//! let mut client = MllpClient::connect(router.local_addr("lab-in").unwrap()).await?;
//! let reply = client.send(b"MSH|^~\\&|LAB|HOSP|LIS|HOSP|20240101||ORU^R01|42|P|2.5.1\rPID|1").await?;
//! assert!(matches!(reply, Reply::Ack { code: mllp_hl7::AckCode::ApplicationAccept, .. }));
//!
//! // The file output writes asynchronously (temp name, fsync, hard link).
//! let out = dir.path().join("out");
//! let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
//! while std::fs::read_dir(&out).map_or(0, |d| d.count()) == 0 && std::time::Instant::now() < deadline {
//!     tokio::time::sleep(std::time::Duration::from_millis(20)).await;
//! }
//! assert_eq!(std::fs::read_dir(&out)?.count(), 1);
//! router.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Inputs (MLLP sockets, polled directories) feed named queues; every output of a queue
//! (MLLP sockets, directories) receives every message, in order per input, with its own
//! cursor. Queues live in one [redb](https://docs.rs/redb) file; a socket input
//! acknowledges a message only after the transaction holding it is committed with
//! `Durability::Immediate`, and commits from all connections are grouped by a single
//! writer thread so that many senders share one fsync.
//!
//! Modules: [`config`] (model and INI loader), [`store`] (durable queues),
//! [`filename`] (sanitised output names, file masks), [`Router`] (start, TLS reload, shutdown).

pub mod config;
mod connector;
pub mod filename;
mod reserve;
mod router;
pub mod store;
mod tls;

pub use connector::file_in::ERROR_DIR;
pub use router::{Router, StartError, TlsReload, TlsReloadError};

/// The README's example, compiled and run as a doc-test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
