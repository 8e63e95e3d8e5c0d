//! The router's configuration model and the SocketReader INI loader.
//!
//! [`load_file`] / [`load_bytes`] / [`load_str`] read a SocketReader config file unchanged and return a
//! validated [`RouterConfig`] plus warnings (unknown keys, unknown debug options, keys
//! that do nothing for the connector type). Every problem names the file, line, section
//! and key and what is allowed.

mod error;
mod ini;
mod lines;
mod value;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Diagnostic};
use ini::KeyLines;
pub use ini::{Loaded, load_bytes, load_file, load_str};

/// Default cap on one message (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default cap on simultaneous connections per server connector.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default SocketReader port.
pub const DEFAULT_PORT: u16 = 22222;

/// A whole, validated router configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// The file it was read from (or a label for in-memory text).
    pub source: PathBuf,
    /// The `[general]` section.
    pub general: General,
    /// The connections named in `useconnections`, in that order.
    pub connections: Vec<Connection>,
    /// The line that sets each key, for messages about paths found later.
    key_lines: KeyLines,
}

impl RouterConfig {
    /// The directories, the log file and the TLS files this configuration (read from
    /// `file`) names that cannot be used on this machine: a directory that exists and is
    /// not a directory (or is one, for the log file), or sits under something that is not a
    /// directory; a `tlscert`, `tlskey` or `tlsca` that cannot be read, holds no PEM
    /// certificate or key, or a key that does not go with its certificate. Missing
    /// directories are fine: the router creates them. Empty when every path can work.
    #[must_use]
    pub fn path_problems(&self, file: &Path) -> Vec<Diagnostic> {
        let problem = |section: &str, key: &str, message: String| Diagnostic {
            file: file.to_path_buf(),
            line: self.key_lines.line(section, key),
            section: Some(section.to_owned()),
            key: Some(key.to_owned()),
            message,
        };
        let mut problems = Vec::new();
        let datadir = &self.general.datadir;
        if let Some(reason) = unusable_directory(datadir) {
            problems.push(problem(
                "general",
                "datadir",
                format!(
                    "{} {reason} (the queue store's directory: datadir, else the first \
                     connection's queuedb)",
                    datadir.display()
                ),
            ));
        }
        if let Some(log) = &self.general.logfile {
            let parent = log.parent().filter(|p| !p.as_os_str().is_empty());
            if log.is_dir() {
                problems.push(problem(
                    "general",
                    "logfile",
                    format!("{} is a directory, not a file", log.display()),
                ));
            } else if let Some(parent) = parent.filter(|p| !p.is_dir()) {
                problems.push(problem(
                    "general",
                    "logfile",
                    format!(
                        "{}: its folder {} does not exist",
                        log.display(),
                        parent.display()
                    ),
                ));
            }
        }
        for connection in &self.connections {
            if let ConnectorKind::SocketIn(s) | ConnectorKind::SocketOut(s) = &connection.kind
                && let Some(tls) = &s.tls
                && let Err(e) = crate::tls::setup(tls, s.server, &s.host)
            {
                problems.push(problem(&connection.name, e.key, e.message));
            }
            let dir = match &connection.kind {
                ConnectorKind::FileIn(settings) => &settings.dir,
                ConnectorKind::FileOut(settings) => &settings.dir,
                ConnectorKind::SocketIn(_) | ConnectorKind::SocketOut(_) => continue,
            };
            if let Some(reason) = unusable_directory(dir) {
                problems.push(problem(
                    &connection.name,
                    "messagedir",
                    format!("{} {reason}", dir.display()),
                ));
            }
        }
        problems
    }

    /// Paths that work but may not be what was meant: a file input's `messagedir` that does
    /// not exist. The input polls it until it appears (as it does a share that went away),
    /// where an output creates its own; a typo there would otherwise only show as a warning
    /// in the log, once the router runs.
    #[must_use]
    pub fn path_warnings(&self, file: &Path) -> Vec<Diagnostic> {
        self.connections
            .iter()
            .filter_map(|connection| match &connection.kind {
                ConnectorKind::FileIn(settings) if !settings.dir.exists() => Some(Diagnostic {
                    file: file.to_path_buf(),
                    line: self.key_lines.line(&connection.name, "messagedir"),
                    section: Some(connection.name.clone()),
                    key: Some("messagedir".to_owned()),
                    message: format!(
                        "{} does not exist; the input polls it until it appears (an input \
                         does not create its folder)",
                        settings.dir.display()
                    ),
                }),
                _ => None,
            })
            .collect()
    }

    /// Names of the queues in use, sorted.
    #[must_use]
    pub fn queue_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.connections.iter().map(|c| c.queue.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The outputs of `queue`, in configuration order.
    pub fn outputs_of<'a>(&'a self, queue: &'a str) -> impl Iterator<Item = &'a Connection> + 'a {
        self.connections
            .iter()
            .filter(move |c| c.queue == queue && !c.kind.is_input())
    }
}

/// Log verbosity, SocketReader's `loglvl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// `debug`: a line per message (size or file name); contents only with `logcontent`.
    Debug,
    /// `info`.
    Info,
    /// `prod`: `warning` plus failed transfers with their full content.
    Prod,
    /// `warning` (the default).
    #[default]
    Warning,
    /// `error`.
    Error,
    /// `critical`.
    Critical,
}

impl LogLevel {
    /// Whether failed transfers are logged with their full content (`prod` and below).
    #[must_use]
    pub fn logs_failed_content(self) -> bool {
        self <= Self::Prod
    }
}

/// The `[general]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct General {
    /// `logfile`: where log lines go (stderr when absent).
    pub logfile: Option<PathBuf>,
    /// `loglvl`.
    pub loglvl: LogLevel,
    /// `datadir` (ours): the directory of the durable queue store.
    pub datadir: PathBuf,
}

/// One connection (a section named in `useconnections`).
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The section name.
    pub name: String,
    /// `queuename`.
    pub queue: String,
    /// `usehl7`: HL7 ACKs on socket input, HL7-derived names on file output.
    pub use_hl7: bool,
    /// Connector type and its settings.
    pub kind: ConnectorKind,
    /// Debug options that the router understands.
    pub debug: DebugOptions,
}

/// The `debug` options the router understands (others are warned about and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebugOptions {
    /// `"logcontent": True`: log the content of every message the connection receives,
    /// delivers or writes, at info level.
    pub log_content: bool,
}

/// Connector type and direction with their settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorKind {
    /// `transtech = socket`, `transdir = in`.
    SocketIn(SocketSettings),
    /// `transtech = socket`, `transdir = out`.
    SocketOut(SocketSettings),
    /// `transtech = file`, `transdir = in`.
    FileIn(FileInSettings),
    /// `transtech = file`, `transdir = out`.
    FileOut(FileOutSettings),
}

impl ConnectorKind {
    /// Whether this connector feeds its queue.
    #[must_use]
    pub fn is_input(&self) -> bool {
        matches!(self, Self::SocketIn(_) | Self::FileIn(_))
    }
}

/// Settings of a socket connector.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketSettings {
    /// `createserversocket`: listen (true) or connect (false).
    pub server: bool,
    /// `ipaddr`: the address to bind or to connect to.
    pub host: String,
    /// `port`.
    pub port: u16,
    /// `sob`: start of block.
    pub start_block: Vec<u8>,
    /// `eod`: end of data (MLLP `FS`).
    pub end_block: Vec<u8>,
    /// `eob`: end of block (MLLP `CR`, after `eod`).
    pub trailer: Vec<u8>,
    /// `useack`: send (input) or expect (output) acknowledgements.
    pub use_ack: bool,
    /// `maxmessagesize` (ours).
    pub max_message_size: usize,
    /// `maxconnections` (ours): simultaneous connections on a server connector.
    pub max_connections: usize,
    /// `idletimeout` (ours): close a connection silent this long; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// `acktimeout` (ours): how long an output waits for the peer's ACK.
    pub ack_timeout: Duration,
    /// `retrydelay` (ours): first delay of the retry / reconnect backoff.
    pub retry_delay: Duration,
    /// `retrymaxdelay` (ours): the backoff's ceiling.
    pub retry_max_delay: Duration,
    /// `maxrefusals` (ours, outputs): after this many negative ACKs in a row for one
    /// message, it is kept in `datadir/undeliverable/` and the output moves on; `None`
    /// (the default, `0`) = resend for ever.
    pub max_refusals: Option<u32>,
    /// `usetls` and the `tls*` keys (ours): TLS on every connection of this connector;
    /// `None` = plain TCP.
    pub tls: Option<TlsSettings>,
}

/// TLS settings of a socket connector (`usetls = True`). The role follows
/// `createserversocket`, not the direction of the messages: a server socket (input or
/// output) is the TLS server, a client socket the TLS client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `tlscert`: the PEM certificate chain this side presents, its own certificate
    /// first. Required on a server socket; on a client socket it is the client
    /// certificate for a server that asks for one (mutual TLS).
    pub cert: Option<PathBuf>,
    /// `tlskey`: the PEM private key of `tlscert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// `tlsca`: PEM certificates to trust. On a client socket, the server's certificate
    /// must lead to one of them (instead of the system's trusted roots); on a server
    /// socket, every client must present a certificate that leads to one (mutual TLS).
    pub ca: Option<PathBuf>,
    /// `tlscrl` (needs `tlsca`): PEM certificate revocation lists. A peer's certificate
    /// listed as revoked is refused, and so is one whose issuer has no list in the file.
    pub crl: Option<PathBuf>,
    /// `tlsservername` (client sockets): the name the server's certificate must carry;
    /// `ipaddr` when absent.
    pub server_name: Option<String>,
    /// `tlsinsecure` (client sockets): accept any server certificate. For tests only: the
    /// connection is encrypted but anyone can pose as the server.
    pub insecure: bool,
}

impl SocketSettings {
    /// The framing settings for `mllp-hl7`.
    #[must_use]
    pub fn mllp_config(&self) -> mllp_hl7::MllpConfig {
        mllp_hl7::MllpConfig::new()
            .with_start_block(self.start_block.clone())
            .with_end_block(self.end_block.clone())
            .with_trailer(self.trailer.clone())
            .with_max_message_size(self.max_message_size)
    }
}

/// Settings of a file input.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInSettings {
    /// `messagedir` (or `outputdir`).
    pub dir: PathBuf,
    /// `filemask`.
    pub filemask: String,
    /// Whether names that look temporary (`.tmp`, `.part`, hidden, ...) are taken: only
    /// when `filemask` asks for such names itself (`*.TMP`); otherwise they are files
    /// still being written, skipped.
    pub take_temporary_names: bool,
    /// `cycletime`: the polling period.
    pub cycle: Duration,
    /// `maxfiles`: files taken per poll.
    pub max_files: usize,
    /// `newline`: remove one trailing newline.
    pub newline: bool,
    /// `naturalorder` (ours): `f_2` before `f_10`.
    pub natural_order: bool,
    /// `settletime` (ours): a file must keep its size and mtime this long to be taken.
    pub settle: Duration,
    /// `maxmessagesize` (ours): larger files go to `error/`.
    pub max_message_size: usize,
}

/// How output file names are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNaming {
    /// `prefix` + timestamp + counter + `suffix`.
    Prefix(String),
    /// `hl7prefix`: `MSH-3_MSH-4_MSH-5_MSH-6_TYPE_timestamp_counter` + `suffix`.
    Hl7,
}

/// How a file output makes a batch of files durable (`filesync`, ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileSync {
    /// `file` (default): every file's data is synced on its own (`fdatasync`, run
    /// concurrently), then the directory once per batch. Touches nothing but the
    /// output's own files, wherever they live.
    #[default]
    File,
    /// `filesystem`: the whole file system holding `messagedir` is synced twice per
    /// batch (`syncfs`: once for the files' contents, once for their names), and on
    /// Linux files are created unnamed (`O_TMPFILE`) and linked into place, so no
    /// temporary name ever appears. Several times faster for many small files, but it
    /// also writes out whatever other programs left dirty on that file system: meant for
    /// an output directory on a file system the router mostly has to itself. Elsewhere
    /// than Linux it behaves as [`FileSync::File`].
    Filesystem,
}

/// Settings of a file output.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutSettings {
    /// `messagedir` (or `outputdir`).
    pub dir: PathBuf,
    /// `prefix` or `hl7prefix`.
    pub naming: FileNaming,
    /// `suffix`.
    pub suffix: String,
    /// `newline`: append a newline.
    pub newline: bool,
    /// `filesync` (ours): how a batch of files is made durable.
    pub sync: FileSync,
    /// `retrydelay` (ours): first delay after a failed write.
    pub retry_delay: Duration,
    /// `retrymaxdelay` (ours).
    pub retry_max_delay: Duration,
}

/// Why `dir` cannot be used or created as a directory, if it cannot.
fn unusable_directory(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some("exists and is not a directory".to_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            dir.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .find(|a| a.exists())
                .filter(|a| !a.is_dir())
                .map(|a| format!("cannot be created: {} is not a directory", a.display()))
        }
        Err(e) => Some(format!("cannot be looked at: {e}")),
    }
}
