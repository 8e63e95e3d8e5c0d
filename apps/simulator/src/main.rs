//! `simulator`: a drop-in, standards-correct superset of the OpenELIS analyzer mock server.
//!
//! With no arguments it listens on the reference's default port map on 127.0.0.1 (ASTM E1381 on
//! 5000 and 9600-9604, HL7 over MLLP on 5380), prints one line per listener and stops cleanly on
//! Ctrl-C or SIGTERM. `--push URL` sends generated messages (ASTM over TCP, HL7 over MLLP, or HTTP
//! POSTs), `--serial-port` sends over RS232, `--generate-files` writes result files, `--api-port`
//! adds the HTTP API, `seed-sql` prints the OpenELIS seed SQL. See `docs/simulator.md`.

mod api;
mod app;
mod bridge;
mod cli;
mod console;
mod faults;
mod fixture_file;
mod host_query;
mod host_query_hl7;
mod json_body;
mod legacy;
mod link_io;
mod push;
mod received;
mod seed_sql;
mod serial;
mod server;
mod write_stall;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lis_templates::{Output, ProtocolKind, TextEncoding};

use crate::app::{App, Overrides};
use crate::cli::Cli;
use crate::push::Destination;

fn main() -> ExitCode {
    let cli = Cli::parse_with_sources();
    let filter = if cli.verbose { "debug" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in a log file or journald they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            console::report(format_args!("error: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<console::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            console::report(format_args!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let app = Arc::new(App::new(cli)?);
    let cli = &app.cli;
    if let Some(cli::Command::SeedSql) = cli.command {
        let now = cli.now.unwrap_or_else(|| chrono::Utc::now().naive_utc());
        let sql = seed_sql::generate(
            &app.templates,
            seed_sql::SeedOptions {
                now,
                seed: cli.seed,
            },
        );
        console::output(sql.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if !cli.host_query.is_empty()
        && cli.serial_port.is_none()
        && (cli.push.is_none() || legacy_push_api(cli))
    {
        bail!(
            "--host-query needs --push tcp://HOST:PORT or --serial-port PATH (the LIS to ask), \
             and no --api-port"
        );
    }
    // The reference's mode precedence.
    if let Some(dir) = &cli.generate_files {
        generate_files(&app, dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &cli.serial_port {
        return run_serial(&app, path).await;
    }
    if let Some(dest) = &cli.push {
        if legacy_push_api(cli) {
            // The legacy push API (`--push URL --api-port PORT`, the reference up to 33c8d62,
            // still in its README): serve the API, `POST /push` pushing to URL by default.
            return run_server(&app).await;
        }
        return run_push(&app, dest).await;
    }
    if cli.dry_run {
        return print_dry_run(&app);
    }
    run_server(&app).await
}

/// `--push URL --api-port PORT` (without `--simulate-api-port` or `--dry-run`): the legacy
/// push API, which served `POST /push` with URL as its default destination instead of pushing
/// once.
fn legacy_push_api(cli: &Cli) -> bool {
    cli.push.is_some() && cli.api_port.is_some() && cli.simulate_api_port.is_none() && !cli.dry_run
}

async fn run_server(app: &Arc<App>) -> anyhow::Result<ExitCode> {
    // The legacy push API listened on its port alone.
    let entries = if legacy_push_api(&app.cli) {
        Vec::new()
    } else {
        server::port_map(app)?
    };
    let bound = server::bind_all(app, entries).await?;
    // A mistyped order-result port disables those pushes (as the reference); say so at start,
    // not only when the first order's results are dropped.
    if app.cli.order_results == cli::OrderResultsArg::Push {
        let c = &app.cli;
        for (protocol, port, variable) in [
            (
                "ASTM",
                &c.order_result_push_astm_port,
                "ORDER_RESULT_PUSH_ASTM_PORT",
            ),
            ("HL7", &c.order_result_push_port, "ORDER_RESULT_PUSH_PORT"),
        ] {
            if bound.iter().any(|b| b.protocol == protocol) {
                let _ = cli::order_result_destination(&c.order_result_push_host, port, variable);
            }
        }
    }
    let api_port = app.cli.simulate_api_port.or(app.cli.api_port);
    let api = match api_port {
        Some(port) => Some(api::bind(app, port).await?),
        None => None,
    };
    if api.is_some() {
        // Every POST /simulate/file under a root that is no folder is refused; say why once,
        // at start (a mistyped path, a volume not mounted).
        for root in &app.cli.file_root {
            if !root.is_dir() {
                tracing::warn!(
                    "--file-root {}: not a folder (missing, or not a directory); POST \
                     /simulate/file cannot write under it",
                    root.display()
                );
            }
        }
    }
    server::spawn_all(app, bound)?;
    if let Some(listener) = api {
        let addr = listener.local_addr()?;
        console::status(format_args!("listening HTTP {addr} api"));
        let app = Arc::clone(app);
        tokio::spawn(async move {
            if let Err(e) = api::serve(app, listener).await {
                tracing::error!("HTTP API stopped: {e}");
            }
        });
    }
    let shutdown = shutdown_signal();
    console::status(format_args!("ready"));
    shutdown.await;
    console::status(format_args!("shutting down"));
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM. The SIGTERM handler is installed when this is called, not when
/// the future is first polled, so a signal right after `ready` stops the server cleanly instead
/// of killing it.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// One message of push / dry-run mode.
struct Generated {
    /// Display text: one record or segment per line.
    text: String,
    /// The payloads: one per ASTM session; one HL7 message.
    payloads: Vec<Vec<u8>>,
    /// The encoding the payloads are written in.
    encoding: TextEncoding,
}

/// The next message of push / dry-run mode.
fn next_message(app: &App) -> anyhow::Result<Generated> {
    let cli = &app.cli;
    let template_values = cli.seed.is_some();
    if cli.hl7 {
        let t = app.template(&cli.hl7_template)?;
        if t.protocol.kind != ProtocolKind::Hl7 {
            bail!("template {:?} is not an HL7 template", t.name);
        }
        if cli.qc && t.qc_controls.is_empty() {
            bail!("template {:?} has no qc_controls defined", t.name);
        }
        let options = app.options(template_values, cli.qc_deviation);
        let Output::Hl7(message) = lis_templates::generate(t, &app.minter, &options, cli.qc)?
        else {
            bail!("template {:?} did not produce HL7", t.name);
        };
        return Ok(Generated {
            text: message.to_lines(),
            payloads: vec![message.to_bytes()],
            encoding: message.encoding,
        });
    }
    match &cli.template {
        Some(name) => {
            let t = app.template(name)?;
            let messages = app.astm_messages(
                t,
                cli.qc,
                cli.qc_deviation,
                &Overrides::default(),
                template_values,
            )?;
            Ok(Generated {
                text: messages
                    .iter()
                    .map(lis_templates::AstmMessage::to_lines)
                    .collect(),
                payloads: messages
                    .iter()
                    .map(lis_templates::AstmMessage::to_bytes)
                    .collect(),
                encoding: messages.first().map(|m| m.encoding).unwrap_or_default(),
            })
        }
        None if cli.qc => bail!("--qc requires --template (fields.json has no qc_controls)"),
        None => {
            let accession = app.minter.mint(lis_templates::Lane::parse("00", "lane")?)?;
            let records =
                legacy::message(&cli.analyzer_type, &accession, app.now(), &mut app.rng())?;
            let message = app.legacy_message(records);
            Ok(Generated {
                text: message.to_lines(),
                payloads: vec![message.to_bytes()],
                encoding: message.encoding,
            })
        }
    }
}

/// The connections a push keeps between messages with `--keep-connection`.
#[derive(Default)]
struct PushConnections {
    astm: push::AstmConnection,
    mllp: push::MllpConnection,
}

/// Sends one generated message to `dest`.
async fn push_one(
    app: &App,
    dest: &Destination,
    http: Option<&reqwest::Client>,
    connections: &mut PushConnections,
    message: &Generated,
) -> anyhow::Result<()> {
    let cli = &app.cli;
    let payloads = &message.payloads;
    match dest {
        Destination::Tcp(host_port) => {
            push::astm_tcp_on(
                app,
                &mut connections.astm,
                host_port,
                cli.source_ip,
                payloads,
                cli.keep_connection,
                Duration::from_secs(30),
            )
            .await
        }
        Destination::Mllp(host_port) => {
            for p in payloads {
                push::mllp_on(
                    &mut connections.mllp,
                    host_port,
                    cli.source_ip,
                    p,
                    cli.keep_connection,
                    Duration::from_secs(30),
                )
                .await?;
            }
            Ok(())
        }
        Destination::Http(base) => {
            let client = http.context("HTTP client")?;
            let url = push::http_url(base, cli.hl7);
            for p in payloads {
                let body = push::http_body(p, cli.hl7);
                push::http(app, client, &url, body, message.encoding).await?;
            }
            Ok(())
        }
    }
}

/// Refuses a destination that cannot carry the protocol being pushed, before anything is sent.
fn check_destination(dest: &Destination, hl7: bool) -> anyhow::Result<()> {
    match dest {
        Destination::Tcp(_) if hl7 => bail!("tcp:// carries ASTM; use mllp://host:port for HL7"),
        Destination::Mllp(_) if !hl7 => {
            bail!("mllp:// carries HL7; add --hl7 or use tcp://host:port for ASTM")
        }
        _ => Ok(()),
    }
}

/// `--dry-run`, with or without `--push`: prints `-c` messages (one with `--push-continuous`).
fn print_dry_run(app: &App) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    let count = if cli.push_continuous {
        1
    } else {
        cli.push_count
    };
    for _ in 0..count {
        let message = next_message(app)?;
        console::output(message.text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_push(app: &Arc<App>, dest_text: &str) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    let dest = Destination::parse(dest_text)?;
    if !dest_text.contains("://") {
        // The reference's reading, kept; but `host:port` more often means a forgotten tcp://.
        tracing::warn!(
            "--push {dest_text} names no scheme: taken as https://{dest_text}, as the reference \
             does; for ASTM over TCP give tcp://{dest_text}, for HL7 over MLLP mllp://{dest_text}"
        );
    }
    if !cli.host_query.is_empty() {
        return if cli.hl7 {
            host_query_hl7::run_mllp(app, &dest, dest_text, shutdown_signal()).await
        } else {
            host_query::run_tcp(app, &dest, dest_text, shutdown_signal()).await
        };
    }
    check_destination(&dest, cli.hl7)?;
    if cli.dry_run {
        return print_dry_run(app);
    }
    let http = match dest {
        Destination::Http(_) => Some(push::http_client(app)?),
        _ => None,
    };
    let total = if cli.push_continuous {
        None
    } else {
        Some(cli.push_count)
    };
    let bar = match total {
        Some(n) if n > 1 => indicatif::ProgressBar::new(n),
        Some(_) => indicatif::ProgressBar::hidden(),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if !bar.is_hidden() {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    // The first message is made before the loop: a setup mistake (a template of the wrong
    // protocol, --qc without QC controls) ends the run at once with exit 1, rather than
    // failing every message of a --push-continuous run for ever.
    let mut first = Some(next_message(app)?);
    let interval = Duration::from_secs_f64(cli.push_interval);
    let started = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    // With --keep-connection, every message goes on one E1381 or MLLP connection.
    let mut connections = PushConnections::default();
    // How a kept ASTM connection's peer is named in logs and `GET /received`.
    let dest_peer = match &dest {
        Destination::Tcp(host_port) => host_port.as_str(),
        _ => dest_text,
    };
    let mut interrupted = false;
    // Set when Ctrl-C came while a message was on its way: the LIS may or may not have it.
    let mut unconfirmed = false;
    let mut failure_pause = push::FailurePause::default();
    // Failures since the last message that went through.
    let mut failed_in_a_row = 0u64;
    // One listener for the whole run: a signal between two messages is not missed.
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut i = 0u64;
    // The current message's HL7 control id(s), for the log lines: the one way to match what
    // was pushed with what the LIS (or a router's files) holds.
    let mut id = String::new();
    while total.is_none_or(|n| i < n) {
        let pause = if total.is_none() {
            interval.max(failure_pause.current())
        } else {
            interval
        };
        if i > 0 && pause > Duration::ZERO {
            tokio::select! {
                () = push::pause_on_kept(app, &mut connections.astm, dest_peer, pause) => {}
                () = &mut shutdown => { interrupted = true; break; }
            }
        }
        i += 1;
        let message = match first.take() {
            Some(made) => Ok(made),
            None => next_message(app),
        };
        id.clear();
        let result = match message {
            Ok(message) => {
                id = control_ids(&message.payloads, cli.hl7);
                tokio::select! {
                    r = push_one(app, &dest, http.as_ref(), &mut connections, &message) => r,
                    () = &mut shutdown => { interrupted = true; unconfirmed = true; break; }
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                sent += 1;
                failure_pause.reset();
                if failed_in_a_row > 0 {
                    // The LIS is back: say so, and how many messages the outage cost.
                    tracing::info!(
                        "message {i}{id} pushed to {dest_text}, after {failed_in_a_row} failed \
                         message(s) in a row (not sent again)"
                    );
                } else {
                    tracing::info!("message {i}{id} pushed to {dest_text}");
                }
                failed_in_a_row = 0;
            }
            Err(e) => {
                failed += 1;
                failed_in_a_row += 1;
                failure_pause.grow();
                // In a -C run the pause after a failure is the backoff: name it, so a LIS
                // that is down shows as a slowing retry, not as a run that stalled.
                let next = if total.is_none() {
                    format!(
                        "; next message in {:.1} s",
                        interval.max(failure_pause.current()).as_secs_f64()
                    )
                } else {
                    String::new()
                };
                bar.suspend(|| {
                    console::report(format_args!("message {i}{id} failed: {e:#}{next}"))
                });
            }
        }
        bar.inc(1);
        bar.set_message(format!("sent {sent} failed {failed}"));
    }
    bar.finish_and_clear();
    if let Some(mut io) = connections.astm {
        io.shutdown().await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
    let unconfirmed_note = if unconfirmed {
        // Counted neither way: the stop came before the LIS's answer, which may have been
        // on its way.
        format!(", message {i}{id} unconfirmed (stopped before the LIS answered)")
    } else {
        String::new()
    };
    console::report(format_args!(
        "summary: sent {sent}, failed {failed}{unconfirmed_note}, {rate:.1} messages/s{}",
        if interrupted { " (interrupted)" } else { "" }
    ));
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// ` (MSH-10 ID)` for an HL7 message (` (MSH-10 ID, ID)` for several), empty for ASTM or a
/// message that does not parse.
fn control_ids(payloads: &[Vec<u8>], hl7: bool) -> String {
    if !hl7 {
        return String::new();
    }
    let ids: Vec<String> = payloads
        .iter()
        .filter_map(|p| mllp_hl7::Message::parse(p).ok())
        .map(|m| String::from_utf8_lossy(m.control_id().raw()).into_owned())
        .collect();
    if ids.is_empty() {
        String::new()
    } else {
        format!(" (MSH-10 {})", ids.join(", "))
    }
}

/// Upper bound of a whole serial run, whatever the peer does (E1381 timers end every session
/// well before).
const SERIAL_RUN_LIMIT: Duration = Duration::from_secs(300);

/// Upper bound of one host-query round on a serial line: each of its `specimens` may wait
/// the whole `--host-query-timeout` for the LIS before its query is withdrawn (Q.13 `A`), on
/// top of the E1381 transfers. A flat [`SERIAL_RUN_LIMIT`] cut a timeout above about 285 s
/// short, and the query was never withdrawn.
fn serial_round_limit(host_query_timeout: f64, specimens: usize) -> Duration {
    let waits = Duration::try_from_secs_f64(host_query_timeout)
        .unwrap_or(Duration::ZERO)
        .saturating_mul(u32::try_from(specimens).unwrap_or(u32::MAX));
    SERIAL_RUN_LIMIT.saturating_add(waits)
}

/// `--serial-port PATH`: the messages of `--serial-analyzer` over RS232 with the template's
/// port settings, through the E1381 sender.
async fn run_serial(app: &Arc<App>, path: &str) -> anyhow::Result<ExitCode> {
    let cli = &app.cli;
    if cli.hl7 {
        // The reference's mode precedence puts the serial line first; said, not silent.
        tracing::warn!(
            "--hl7 ignored: --serial-port sends ASTM (E1381) from --serial-analyzer ({})",
            cli.serial_analyzer
        );
    }
    // From the environment they may be meant for other modes (a compose file sets them).
    if let Some(template) = cli.template.as_ref().filter(|_| !cli.template_from_env) {
        tracing::warn!(
            "--template {template} ignored: --serial-port sends --serial-analyzer ({})",
            cli.serial_analyzer
        );
    }
    if cli.hl7_template_on_command_line {
        tracing::warn!(
            "--hl7-template {} ignored: --serial-port sends ASTM from --serial-analyzer ({})",
            cli.hl7_template,
            cli.serial_analyzer
        );
    }
    let t = app.template(&cli.serial_analyzer)?;
    let settings = serial::PortSettings::of(&t.name, t.serial_config.as_ref())?;
    // In query mode the analyzer asks for its orders first; its results depend on them.
    let mut query_mode = if cli.host_query.is_empty() {
        None
    } else {
        Some(host_query::from_cli(app, &t.name)?)
    };
    // One run's messages: `-c` runs (`-C` until interrupted), `-i` seconds apart, as pushes.
    let make_run = || {
        app.astm_messages(
            t,
            cli.qc,
            cli.qc_deviation,
            &Overrides::default(),
            cli.seed.is_some(),
        )
    };
    let runs = if cli.push_continuous {
        None
    } else {
        Some(cli.push_count)
    };
    // Made before the line is opened: a setup mistake (--qc without QC controls) ends the
    // run at once.
    let first_run = match query_mode {
        Some(_) => Vec::new(),
        None => make_run()?,
    };
    if cli.dry_run {
        let text: String = match &query_mode {
            Some(query) => query.text(),
            None => {
                let mut text: String = first_run
                    .iter()
                    .map(lis_templates::AstmMessage::to_lines)
                    .collect();
                // As a push's dry run: `-c` runs, one with `-C`.
                for _ in 1..runs.unwrap_or(1) {
                    text.extend(make_run()?.iter().map(lis_templates::AstmMessage::to_lines));
                }
                text
            }
        };
        console::output(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut count = 0;
    let owned_path = path.to_owned();
    let port = tokio::task::spawn_blocking(move || {
        let port = serial::open(&owned_path, settings)?;
        match serial::read_back(port.as_ref()) {
            Ok(applied) if applied == settings => {
                tracing::info!("{owned_path}: {}", settings.describe());
            }
            Ok(applied) => tracing::warn!(
                "{owned_path}: asked for {}, the device reports {} (pseudo-terminals always \
                 report 8 data bits without parity)",
                settings.describe(),
                applied.describe()
            ),
            Err(e) => tracing::warn!("{owned_path}: cannot read the line settings back: {e}"),
        }
        for holder in serial::other_holders(&owned_path) {
            tracing::warn!(
                "{owned_path} is also open in process {} ({}): it may read the LIS's replies \
                 before the simulator does (a run would then end in reply timeouts); close it \
                 there",
                holder.pid,
                holder.command
            );
        }
        anyhow::Ok(port)
    })
    .await
    .context("serial thread")?
    .with_context(|| format!("--serial-port {path}"))?;
    let (stream, pumps) = serial::bridge(port).with_context(|| format!("--serial-port {path}"))?;
    let mut io = link_io::LinkIo::new(
        stream,
        astm_frame::Link::new(app.sender_link_config()),
        push::sender_options(app.faults.for_serial(), format!("serial to {path}")),
    );
    // Ctrl-C came during a message: it is finished, then the run stops.
    let mut stopping = false;
    let sent = if let Some(query) = query_mode.as_mut() {
        let rounds = host_query::Rounds {
            after_failure: host_query::AfterFailure::Stop,
            ..host_query::Rounds::from_cli(cli)
        };
        // A run of rounds (-C) may last any time: the limit is on each round.
        let run = host_query::repeat(
            cli.host_query.len(),
            rounds,
            Some(serial_round_limit(
                cli.host_query_timeout,
                cli.host_query.len(),
            )),
            shutdown_signal(),
            async |pause| {
                push::serve_during(app, &mut io, 0, path, pause).await?;
                query.exchange(&mut io, path, 0).await
            },
        )
        .await;
        Ok(run.map(|run| run.report()))
    } else {
        let interval = Duration::from_secs_f64(cli.push_interval);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut next_run = Some(first_run);
        let mut run = 0u64;
        let mut outcome = Ok(Ok(ExitCode::SUCCESS));
        while runs.is_none_or(|n| run < n) {
            if run > 0 && interval > Duration::ZERO {
                let served = tokio::select! {
                    served = push::serve_during(app, &mut io, 0, path, interval) => served,
                    () = &mut shutdown => {
                        stopping = true;
                        break;
                    }
                };
                if let Err(e) = served {
                    outcome = Ok(Err(anyhow::Error::new(e)
                        .context(format!("between run {run} and run {}", run + 1))));
                    break;
                }
            }
            run += 1;
            let messages = match next_run.take() {
                Some(messages) => messages,
                None => match make_run() {
                    Ok(messages) => messages,
                    Err(e) => {
                        outcome = Ok(Err(e));
                        break;
                    }
                },
            };
            let in_run = messages.len();
            // The limit is on each run: a -C run may last any time.
            let sent = tokio::time::timeout(SERIAL_RUN_LIMIT, async {
                for (i, message) in messages.iter().enumerate() {
                    let which = if runs == Some(1) {
                        format!("message {}/{in_run}", i + 1)
                    } else {
                        format!("message {}/{in_run} of run {run}", i + 1)
                    };
                    let sent = {
                        let send = io.send(message.to_bytes());
                        tokio::pin!(send);
                        tokio::select! {
                            sent = &mut send => sent,
                            () = &mut shutdown => {
                                // A serial line has no close to tell the LIS: a message cut
                                // off is only discarded when its receive timer runs out, so
                                // the one in flight is finished first.
                                stopping = true;
                                tracing::warn!(
                                    "interrupted during {which}: finishing it, then stopping \
                                     (Ctrl-C again to stop at once)"
                                );
                                tokio::select! {
                                    sent = &mut send => sent,
                                    () = shutdown_signal() => bail!(
                                        "stopped in the middle of {which}: the LIS discards \
                                         the part it has when its receive timer runs out (no \
                                         EOT was sent, which would end the transfer on an \
                                         incomplete message)"
                                    ),
                                }
                            }
                        }
                    };
                    push::keep_received(app, &mut io, 0, path);
                    sent.with_context(|| format!("{which} not accepted by the serial peer"))?;
                    count += 1;
                    if stopping {
                        break;
                    }
                }
                anyhow::Ok(ExitCode::SUCCESS)
            })
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                // No connection to start afresh on a serial line: a failure ends the run.
                outcome = sent;
                break;
            }
            if stopping {
                break;
            }
            if runs != Some(1) {
                tracing::info!("run {run}: {in_run} message(s) sent to {path}");
            }
        }
        outcome
    };
    // The writing thread drains what the link sent (the final EOT), then both stop.
    drop(io);
    let failure = tokio::task::spawn_blocking(move || pumps.finish())
        .await
        .context("serial thread")?;
    match sent {
        Err(_) => bail!("--serial-port {path}: transfer not finished after {SERIAL_RUN_LIMIT:?}"),
        Ok(Err(e)) => {
            let e = match failure {
                Some(cause) => e.context(cause),
                None => e,
            };
            Err(e.context(format!("--serial-port {path}")))
        }
        Ok(Ok(code)) => {
            if query_mode.is_none() {
                console::status(format_args!(
                    "serial: sent {count} message(s) from {} to {path} at {}{}",
                    t.name,
                    settings.describe(),
                    if stopping { " (interrupted)" } else { "" }
                ));
            }
            Ok(code)
        }
    }
}

/// `--generate-files DIR`: one result file from `--generate-files-analyzer`, written by the
/// same code as the `filegen` app (`lis_templates::files::write_file`: the instrument's layout,
/// a hidden temporary name, then an atomic publish).
fn generate_files(app: &App, dir: &std::path::Path) -> anyhow::Result<()> {
    let cli = &app.cli;
    let t = app.template(&cli.generate_files_analyzer)?;
    if t.protocol.kind != ProtocolKind::File {
        bail!("template {:?} is not a FILE template", t.name);
    }
    let options = lis_templates::files::FileOptions {
        generate: app.options(cli.seed.is_some(), cli.qc_deviation),
        qc: cli.qc,
        sequence: 1,
        ..lis_templates::files::FileOptions::default()
    };
    if cli.dry_run {
        // As in serial mode: print what would be written, write nothing (the folder is not
        // even created).
        let rendered = lis_templates::files::render(t, &app.minter, &options)
            .with_context(|| format!("--generate-files {}", dir.display()))?;
        let f = &rendered.file;
        console::output(
            format!(
                "dry run: would write {} ({}, {} bytes)\n",
                dir.join(&f.file_name).display(),
                format!("{:?}", f.kind).to_ascii_uppercase(),
                f.bytes.len()
            )
            .as_bytes(),
        )?;
        if let Some(text) = f.text() {
            console::output(text.as_bytes())?;
        }
        return Ok(());
    }
    let (path, _) = lis_templates::files::write_file(t, &app.minter, &options, dir)
        .with_context(|| format!("--generate-files {}", dir.display()))?;
    console::status(format_args!("{}", path.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round of two specimens with a 400 s host-query timeout may wait 800 s for the LIS
    /// and still have the E1381 transfers' time to withdraw the last query.
    #[test]
    fn a_serial_round_leaves_room_for_every_host_query_timeout() {
        assert_eq!(
            serial_round_limit(400.0, 2),
            Duration::from_secs(800) + SERIAL_RUN_LIMIT
        );
        assert_eq!(serial_round_limit(5.0, 0), SERIAL_RUN_LIMIT);
        assert!(serial_round_limit(3600.0, usize::MAX) >= Duration::from_secs(3600));
    }
}
