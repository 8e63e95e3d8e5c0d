//! `router`: a SocketReader-compatible m:n message router (MLLP sockets and files) that
//! never loses an acknowledged message. The engine is the `lis-router` crate; this binary
//! reads the command line, sets up logging and turns SIGTERM / SIGINT into a clean stop.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lis_router::Router;
use lis_router::config::{self, LogLevel, RouterConfig};
use tracing::level_filters::LevelFilter;
use tracing::{error, info, warn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MutexGuardWriter;

/// `eprintln!` that cannot panic: stderr may be a pipe whose reader has gone (`router 2>&1 |
/// head -1`), and `eprintln!` panics when the write fails. A line that cannot be written is
/// dropped; the exit status still tells.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Config files tried in the working directory when `-c` is not given.
const DEFAULT_CONFIGS: [&str; 2] = ["router.cfg", "socketReader.cfg"];
/// How long a stop may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Routes messages between MLLP sockets and directories through durable named queues.
/// Reads SocketReader config files unchanged.
#[derive(Debug, Parser)]
#[command(name = "router", version, about)]
struct Cli {
    /// Config file (default: router.cfg, then socketReader.cfg, in the working directory).
    #[arg(short = 'c', long = "configfile", value_name = "FILE")]
    configfile: Option<PathBuf>,
    /// Validate the configuration, print problems and warnings, and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match config_path(cli.configfile) {
        Ok(path) => path,
        Err(e) => {
            say!("router: {e:#}");
            return ExitCode::from(2);
        }
    };
    let loaded = match config::load_file(&path) {
        Ok(loaded) => loaded,
        Err(e) => {
            say!("router: {e}");
            return ExitCode::from(2);
        }
    };
    // Paths that cannot work here fail --check too, not only the start, with the key that
    // names them rather than a bare OS error.
    let problems = loaded.config.path_problems(&path);
    if cli.check {
        for warning in &loaded.warnings {
            say!("warning: {warning}");
        }
        for warning in loaded.config.path_warnings(&path) {
            say!("warning: {warning}");
        }
        if !problems.is_empty() {
            for problem in &problems {
                say!("router: {problem}");
            }
            return ExitCode::from(2);
        }
        let c = &loaded.config;
        // `router --check | head -0`: the verdict cannot be shown, the exit status says it.
        let _ = writeln!(
            std::io::stdout(),
            "{}: configuration OK ({} connection(s), {} queue(s), data in {})",
            path.display(),
            c.connections.len(),
            c.queue_names().len(),
            c.general.datadir.display()
        );
        return ExitCode::SUCCESS;
    }
    if !problems.is_empty() {
        for problem in &problems {
            say!("router: {problem}");
        }
        return ExitCode::from(2);
    }
    let log_file = match init_logging(&loaded.config) {
        Ok(log_file) => log_file,
        Err(e) => {
            say!("router: {e:#}");
            return ExitCode::from(2);
        }
    };
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    match run(&loaded.config, log_file.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            say!("router: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_path(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    DEFAULT_CONFIGS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no config file: give -c FILE or put {} in the working directory",
                DEFAULT_CONFIGS.join(" or ")
            )
        })
}

/// Log lines: UTC timestamp, level, connection (span), message. Not SocketReader's layout
/// (`local time - thread - LEVEL - message`); docs/router.md says so.
fn init_logging(config: &RouterConfig) -> Result<Option<LogFile>> {
    let level = match config.general.loglvl {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Prod | LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false);
    match &config.general.logfile {
        Some(path) => {
            let file = LogFile::open(path)?;
            builder
                .with_writer(SharedFile(Arc::clone(&file.file)))
                .init();
            Ok(Some(file))
        }
        None => {
            builder.with_writer(std::io::stderr).init();
            Ok(None)
        }
    }
}

/// The log lines' writer: the file [`LogFile::reopen`] may swap.
struct SharedFile(Arc<Mutex<std::fs::File>>);

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = MutexGuardWriter<'a, std::fs::File>;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// The `logfile`, which SIGHUP opens again at its path (after logrotate moved it away).
#[cfg_attr(not(unix), allow(dead_code))]
struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl LogFile {
    fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(Self::append_to(path)?)),
        })
    }

    fn append_to(path: &Path) -> Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open logfile {}", path.display()))
    }

    /// Lines from now on go to a file opened anew at the path; on an error, to the old one.
    #[cfg(unix)]
    fn reopen(&self) -> Result<()> {
        let file = Self::append_to(&self.path)?;
        *self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = file;
        Ok(())
    }
}

fn run(config: &RouterConfig, log_file: Option<&LogFile>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("router")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Watched before the readiness line: a signal sent on seeing it must not find the
        // default action (SIGHUP's ends the process).
        let signals = Signals::watch()?;
        let router = Router::start(config).await?;
        // Printed after every server socket is bound: a readiness line for scripts.
        say!("router: started ({} connection(s))", config.connections.len());
        info!("started with {} connection(s)", config.connections.len());
        signals.wait_for_stop(&router, log_file).await?;
        info!("stopping: no new connections; finishing in-flight writes");
        if tokio::time::timeout(SHUTDOWN_LIMIT, router.shutdown())
            .await
            .is_err()
        {
            warn!("stop took longer than {SHUTDOWN_LIMIT:?}; exiting (everything acknowledged is stored)");
        }
        Ok(())
    })
}

/// The signals that stop the router, and SIGHUP.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn watch() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            hangup: signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
        })
    }

    /// Waits for SIGTERM or SIGINT; on SIGHUP, meanwhile, opens the logfile again and reads
    /// the TLS files again.
    async fn wait_for_stop(mut self, router: &Router, log_file: Option<&LogFile>) -> Result<()> {
        loop {
            tokio::select! {
                _ = self.term.recv() => break info!("SIGTERM received"),
                _ = self.int.recv() => break info!("SIGINT received"),
                _ = self.hangup.recv() => tokio::task::block_in_place(|| {
                    reopen_log(log_file);
                    reload_tls(router);
                }),
            }
        }
        Ok(())
    }
}

/// SIGHUP: a rotated logfile is let go (logrotate's `postrotate`), not written on unseen.
#[cfg(unix)]
fn reopen_log(log_file: Option<&LogFile>) {
    let Some(log_file) = log_file else { return };
    match log_file.reopen() {
        Ok(()) => info!("SIGHUP: logfile opened again"),
        Err(e) => error!("SIGHUP: {e:#}; writing on to the file already open"),
    }
}

/// SIGHUP: renewed certificates are taken without a restart. The rest of the configuration
/// is not read again (a changed queue or port needs the restart that also re-checks it all).
#[cfg(unix)]
fn reload_tls(router: &Router) {
    let report = router.reload_tls();
    for failed in &report.failed {
        error!("SIGHUP: {failed}; keeping the certificates in use");
    }
    if report.reloaded.is_empty() && report.failed.is_empty() {
        info!(
            "SIGHUP: no connection uses TLS, nothing to read again (other settings need a restart)"
        );
    } else if !report.reloaded.is_empty() {
        info!(
            "SIGHUP: TLS files read again for {}; new connections use them (other settings need a restart)",
            report.reloaded.join(", ")
        );
    }
}

/// Ctrl-C stops the router.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn watch() -> Result<Self> {
        Ok(Self)
    }

    async fn wait_for_stop(self, _router: &Router, _log_file: Option<&LogFile>) -> Result<()> {
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        info!("Ctrl-C received");
        Ok(())
    }
}
