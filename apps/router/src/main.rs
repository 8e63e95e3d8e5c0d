//! `router`: a SocketReader-compatible m:n message router (MLLP sockets and files) that
//! never loses an acknowledged message. The engine is the `lis-router` crate; this binary
//! reads the command line, sets up logging and turns SIGTERM / SIGINT into a clean stop.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lis_router::Router;
use lis_router::config::{self, LogLevel, RouterConfig};
use tracing::level_filters::LevelFilter;
use tracing::{error, info, warn};

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
    if let Err(e) = init_logging(&loaded.config) {
        say!("router: {e:#}");
        return ExitCode::from(2);
    }
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    match run(&loaded.config) {
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
fn init_logging(config: &RouterConfig) -> Result<()> {
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
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open logfile {}", path.display()))?;
            builder.with_writer(Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn run(config: &RouterConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("router")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let router = Router::start(config).await?;
        // Printed after every server socket is bound: a readiness line for scripts.
        say!("router: started ({} connection(s))", config.connections.len());
        info!("started with {} connection(s)", config.connections.len());
        wait_for_signal().await?;
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

#[cfg(unix)]
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    info!("Ctrl-C received");
    Ok(())
}
