//! Starting and stopping a router: open the store, bind the servers, spawn connectors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error_span, info};

use crate::config::{ConnectorKind, RouterConfig, SocketSettings};
use crate::connector::file_in::FileIn;
use crate::connector::file_out::FileOut;
use crate::connector::socket_in::SocketIn;
use crate::connector::socket_out::SocketOut;
use crate::filename::{MAX_PART_LEN, sanitize};
use crate::store::{QueueStore, StoreError};
use crate::tls::TlsSource;

/// Why a router could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The queue store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A socket connector's TLS settings cannot be used (a file missing or unreadable, a
    /// key that does not go with its certificate).
    #[error("[{connection}] {key}: {message}")]
    Tls {
        /// The connection (section) name.
        connection: String,
        /// The config key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A server connector could not bind its address.
    #[error("[{connection}] cannot listen on {address}: {error}")]
    Bind {
        /// The connection (section) name.
        connection: String,
        /// `ipaddr:port`.
        address: String,
        /// The I/O error. It is in the message, so it is not also the `source()`: a printer
        /// of the error chain would show it twice.
        error: std::io::Error,
    },
}

/// A connection whose TLS files could not be used when they were read again (see
/// [`Router::reload_tls`]); it goes on with what it had.
#[derive(Debug, Clone, Error)]
#[error("[{connection}] {key}: {message}")]
#[non_exhaustive]
pub struct TlsReloadError {
    /// The connection (section) name.
    pub connection: String,
    /// The config key at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// What [`Router::reload_tls`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsReload {
    /// The connections whose certificates, keys, CAs and CRLs were read again: their new
    /// connections use them.
    pub reloaded: Vec<String>,
    /// The connections whose files could not be used: they keep the ones they had.
    pub failed: Vec<TlsReloadError>,
}

/// A running router.
///
/// ```no_run
/// # async fn run(stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), Box<dyn std::error::Error>> {
/// let loaded = lis_router::config::load_file("router.cfg")?;
/// let router = lis_router::Router::start(&loaded.config).await?;
/// stop.await.ok(); // e.g. SIGTERM
/// router.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Router {
    shutdown: CancellationToken,
    tasks: TaskTracker,
    store: Arc<QueueStore>,
    addresses: HashMap<String, SocketAddr>,
    /// Every `usetls` connection's TLS side, by connection name, in config order.
    tls: Vec<(String, Arc<TlsSource>)>,
}

impl Router {
    /// Opens the store under `datadir`, binds every server connector and starts all
    /// connectors. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StartError`] when the store cannot be opened or an address cannot be bound.
    pub async fn start(config: &RouterConfig) -> Result<Self, StartError> {
        let queues: Vec<(String, Vec<String>)> = config
            .queue_names()
            .into_iter()
            .map(|q| {
                let outputs = config.outputs_of(q).map(|c| c.name.clone()).collect();
                (q.to_owned(), outputs)
            })
            .collect();
        let datadir = config.general.datadir.clone();
        let store = tokio::task::spawn_blocking(move || QueueStore::open(&datadir, &queues))
            .await
            .map_err(|e| StoreError::CommitFailed(e.to_string()))??;
        let store = Arc::new(store);
        info!("queue store {}", store.path().display());

        // Bind everything before starting anything, so a bad address fails the start.
        let mut listeners = HashMap::new();
        let mut addresses = HashMap::new();
        for connection in &config.connections {
            let (ConnectorKind::SocketIn(s) | ConnectorKind::SocketOut(s)) = &connection.kind
            else {
                continue;
            };
            if !s.server {
                continue;
            }
            let listener = bind(&connection.name, s).await?;
            if let Ok(address) = listener.local_addr() {
                // In the connection's span, as every other line about it.
                error_span!("conn", name = %connection.name)
                    .in_scope(|| info!("listening on {address}"));
                addresses.insert(connection.name.clone(), address);
            }
            listeners.insert(connection.name.clone(), listener);
        }

        let mut tls_sources = Vec::new();
        for connection in &config.connections {
            if let ConnectorKind::SocketIn(s) | ConnectorKind::SocketOut(s) = &connection.kind
                && let Some(settings) = &s.tls
            {
                let side =
                    TlsSource::new(settings, s.server, &s.host).map_err(|e| StartError::Tls {
                        connection: connection.name.clone(),
                        key: e.key.to_owned(),
                        message: e.message,
                    })?;
                tls_sources.push((connection.name.clone(), Arc::new(side)));
            }
        }
        let tls = |name: &str| {
            tls_sources
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, side)| Arc::clone(side))
        };

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let log_failed_content = config.general.loglvl.logs_failed_content();
        for connection in &config.connections {
            // At error level, so that it is kept whatever `loglvl` lets through: a line of any
            // level names its connection.
            let span = error_span!("conn", name = %connection.name);
            let c = Arc::new(connection.clone());
            let listener = listeners.remove(&connection.name);
            match &connection.kind {
                ConnectorKind::SocketIn(settings) => {
                    let input = SocketIn {
                        connection: Arc::clone(&c),
                        settings: settings.clone(),
                        appender: store.appender(&connection.queue)?,
                        shutdown: shutdown.clone(),
                        log_failed_content,
                        tls: tls(&connection.name),
                    };
                    match listener {
                        Some(listener) => tasks.spawn(input.serve(listener).instrument(span)),
                        None => tasks.spawn(input.connect_loop().instrument(span)),
                    };
                }
                ConnectorKind::SocketOut(settings) => {
                    let output = SocketOut {
                        connection: Arc::clone(&c),
                        settings: settings.clone(),
                        store: Arc::clone(&store),
                        shutdown: shutdown.clone(),
                        log_failed_content,
                        listener,
                        undeliverable: config
                            .general
                            .datadir
                            .join("undeliverable")
                            .join(sanitize(&c.name, MAX_PART_LEN)),
                        tls: tls(&connection.name),
                        receivers: None,
                    };
                    tasks.spawn(output.run().instrument(span));
                }
                ConnectorKind::FileIn(settings) => {
                    let input = FileIn {
                        connection: Arc::clone(&c),
                        settings: settings.clone(),
                        appender: store.appender(&connection.queue)?,
                        shutdown: shutdown.clone(),
                    };
                    tasks.spawn(input.run().instrument(span));
                }
                ConnectorKind::FileOut(settings) => {
                    let output = FileOut {
                        connection: Arc::clone(&c),
                        settings: settings.clone(),
                        store: Arc::clone(&store),
                        shutdown: shutdown.clone(),
                        log_failed_content,
                    };
                    tasks.spawn(output.run().instrument(span));
                }
            }
        }
        tasks.close();
        Ok(Self {
            shutdown,
            tasks,
            store,
            addresses,
            tls: tls_sources,
        })
    }

    /// Reads every `usetls` connection's certificate, key, CA and CRL files again (renewed
    /// certificates, say), for the connections opened from now on; open connections keep
    /// theirs. A connection whose files cannot be used keeps the ones it had. This blocks
    /// while the files are read.
    #[must_use = "a failed reload should be reported"]
    pub fn reload_tls(&self) -> TlsReload {
        let mut report = TlsReload::default();
        for (name, side) in &self.tls {
            match side.reload() {
                Ok(()) => report.reloaded.push(name.clone()),
                Err(e) => report.failed.push(TlsReloadError {
                    connection: name.clone(),
                    key: e.key.to_owned(),
                    message: e.message,
                }),
            }
        }
        report
    }

    /// The bound address of a server connector (useful with port 0 in tests).
    #[must_use]
    pub fn local_addr(&self, connection: &str) -> Option<SocketAddr> {
        self.addresses.get(connection).copied()
    }

    /// Stops accepting, lets in-flight commits, ACKs and file writes finish, stops the
    /// connectors and closes the store. Everything acknowledged is already durable.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.wait().await;
        let store = self.store;
        // Joining the writer thread blocks; do it off the runtime threads.
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        info!("stopped");
    }
}

async fn bind(name: &str, settings: &SocketSettings) -> Result<TcpListener, StartError> {
    let address = format!("{}:{}", settings.host, settings.port);
    TcpListener::bind(&address)
        .await
        .map_err(|error| StartError::Bind {
            connection: name.to_owned(),
            address,
            error,
        })
}
