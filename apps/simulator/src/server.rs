//! Server mode: the simulator is the instrument. ASTM ports run the `astm-frame` state machine;
//! HL7 ports run an MLLP listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use astm_frame::{AbortReason, Event, Link, MessageId, Role};
use futures_util::{SinkExt, StreamExt};
use lis_templates::{
    AstmOrders, AstmQuery, Generator, Hl7Orders, OrderReadError, OrderedPatient, OrderedSamples,
    ProtocolKind,
};
use mllp_hl7::{AckBuilder, MllpCodec, MllpFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;

use crate::app::{App, Overrides};
use crate::cli::OrderResultsArg;
use crate::legacy;
use crate::link_io::{LinkIo, LinkIoOptions, MAX_INTERRUPTS};
use crate::push;

/// The reference's `config/port_templates.json`, compiled in.
pub(crate) const DEFAULT_PORT_MAP: &str = include_str!("../config/port_templates.json");

/// Timeout of order-result pushes (the reference's value).
const ORDER_PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Order-result pushes under way at once, all ports together. A connection with an order to
/// push waits for one to end before it reads on: each push holds a socket for up to
/// [`ORDER_PUSH_TIMEOUT`] twice over (connect, ACK), so a LIS pipelining orders while the
/// destination took connections and never answered made the simulator open a connection per
/// order, out of file descriptors within seconds (every listener with it), and the results of
/// acknowledged orders were dropped with `Too many open files`.
const ORDER_PUSHES_AT_ONCE: usize = 32;

static ORDER_PUSHES: Semaphore = Semaphore::const_new(ORDER_PUSHES_AT_ONCE);

/// How long an accept loop waits after a failed accept (out of file descriptors, say).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Refusals for the connection limit logged per minute and listener; the rest are counted.
const REFUSALS_PER_MINUTE: u32 = 10;

/// Lets a kind of log line through a given number of times a minute and counts the rest, so
/// a flood (refused connections, malformed requests) costs a few lines a minute.
#[derive(Debug)]
pub(crate) struct MinuteBudget {
    per_minute: u32,
    window: tokio::time::Instant,
    logged: u32,
    unlogged: u64,
}

/// What [`MinuteBudget::admit`] allows.
pub(crate) struct Admitted {
    /// Lines counted, not logged, since the last one logged.
    pub(crate) unlogged_before: u64,
    /// Whether this is the minute's last line: the ones after it are counted.
    pub(crate) last_this_minute: bool,
}

impl MinuteBudget {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            window: tokio::time::Instant::now(),
            logged: 0,
            unlogged: 0,
        }
    }

    /// Whether one more line may be logged now; `None` counts it instead.
    pub(crate) fn admit(&mut self) -> Option<Admitted> {
        if self.window.elapsed() >= Duration::from_secs(60) {
            self.window = tokio::time::Instant::now();
            self.logged = 0;
        }
        if self.logged >= self.per_minute {
            self.unlogged += 1;
            return None;
        }
        self.logged += 1;
        Some(Admitted {
            unlogged_before: std::mem::take(&mut self.unlogged),
            last_this_minute: self.logged == self.per_minute,
        })
    }
}

/// Bounds the log lines of one listener's accept loop: a failed accept, retried every
/// [`ACCEPT_RETRY`] for as long as it lasts (out of file descriptors), is logged once, then
/// once more when accepting works again; refusals for the connection limit (a connection
/// flood, a peer reconnecting in a loop) [`REFUSALS_PER_MINUTE`] a minute, the rest counted
/// and their number logged with the next refusal logged.
#[derive(Debug)]
struct AcceptLog {
    label: String,
    failing: u64,
    refusals: MinuteBudget,
}

impl AcceptLog {
    /// For the listener described by `label` (`127.0.0.1:5000 (ASTM)`).
    fn new(label: String) -> Self {
        Self {
            label,
            failing: 0,
            refusals: MinuteBudget::new(REFUSALS_PER_MINUTE),
        }
    }

    /// A connection was accepted.
    fn accepted(&mut self) {
        if self.failing > 0 {
            tracing::warn!(
                "{}: accepting connections again after {} failed accept(s)",
                self.label,
                self.failing
            );
            self.failing = 0;
        }
    }

    /// An accept failed (the loop waits [`ACCEPT_RETRY`] and tries again).
    fn failed(&mut self, error: &std::io::Error) {
        self.failing += 1;
        if self.failing == 1 {
            tracing::warn!(
                "{}: accept failed: {error}; new connections wait until it works again \
                 (retried every {ACCEPT_RETRY:?})",
                self.label
            );
        }
    }

    /// `peer` was refused: the listener has `max` connections.
    fn refused(&mut self, peer: SocketAddr, max: usize) {
        let Some(admitted) = self.refusals.admit() else {
            return;
        };
        let earlier = match admitted.unlogged_before {
            0 => String::new(),
            n => format!(" ({n} more refused before, not logged)"),
        };
        let rest = if admitted.last_this_minute {
            "; further refusals this minute are counted, not logged"
        } else {
            ""
        };
        tracing::warn!(
            "refusing {peer} on {}: connection limit of {max} reached{earlier}{rest}",
            self.label
        );
    }
}

/// What every listener (ASTM, HL7, the API) does before serving a connection: at most
/// `--max-connections` at once (one beyond is closed at once), failed accepts retried every
/// [`ACCEPT_RETRY`], both logged in bounded numbers ([`AcceptLog`]).
pub(crate) struct Gate {
    limit: Arc<Semaphore>,
    max: usize,
    log: AcceptLog,
}

impl Gate {
    /// For the listener described by `label` (`127.0.0.1:5000 (ASTM)`).
    pub(crate) fn new(app: &App, label: String) -> Self {
        let max = app.cli.max_connections as usize;
        Self {
            limit: Arc::new(Semaphore::new(max)),
            max,
            log: AcceptLog::new(label),
        }
    }

    /// The next connection this listener may serve, with the permit it holds while served.
    pub(crate) async fn accept(
        &mut self,
        listener: &TcpListener,
    ) -> (TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    self.log.failed(&e);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            self.log.accepted();
            let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
                self.log.refused(peer, self.max);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return (stream, peer, permit);
        }
    }
}

/// How many protocol problems of one connection (refused frames, payloads that are not HL7,
/// discarded or incomplete transfers) are logged one by one; the rest are counted, and their
/// number logged when the connection ends. A frame can take three bytes (`<VT><FS><CR>`),
/// so without a bound a peer streaming junk wrote a log line per few bytes it sent.
const NOISE_LINES: u64 = 10;

/// Bounds the log lines one connection's protocol noise causes (see [`NOISE_LINES`]).
#[derive(Debug)]
struct NoiseLog {
    label: String,
    seen: u64,
}

impl NoiseLog {
    fn new(label: String) -> Self {
        Self { label, seen: 0 }
    }

    /// Counts one problem; whether to log it. The first one not logged is announced.
    fn admit(&mut self) -> bool {
        self.seen += 1;
        if self.seen == NOISE_LINES + 1 {
            tracing::warn!(
                "{}: more protocol problems follow; counted, not logged one by one",
                self.label
            );
        }
        self.seen <= NOISE_LINES
    }
}

impl Drop for NoiseLog {
    fn drop(&mut self) {
        if self.seen > NOISE_LINES {
            tracing::warn!(
                "{}: connection ended; {} more protocol problem(s) not logged one by one",
                self.label,
                self.seen - NOISE_LINES
            );
        }
    }
}

/// One listener: a port and its template (`None`: the legacy `fields.json` behaviour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortEntry {
    /// Port to listen on (0: any free port).
    pub(crate) port: u16,
    /// Template name.
    pub(crate) template: Option<String>,
}

fn parse_map(text: &str, source: &str) -> anyhow::Result<Vec<PortEntry>> {
    let map: BTreeMap<String, String> = serde_json::from_str(text)
        .with_context(|| format!("{source}: expected a JSON object {{\"port\": \"template\"}}"))?;
    let mut entries = Vec::new();
    for (key, template) in map {
        match key.parse::<u16>() {
            Ok(port) => entries.push(PortEntry {
                port,
                template: Some(template),
            }),
            Err(_) => tracing::warn!("{source}: key {key:?} is not a port number; skipped"),
        }
    }
    Ok(entries)
}

/// The listeners: `--listen`, else `PORT_TEMPLATES` / `ASTM_PORT_TEMPLATES`, else single-port
/// mode with `--template` / `ASTM_TEMPLATE`, else the default port map.
pub(crate) fn port_map(app: &App) -> anyhow::Result<Vec<PortEntry>> {
    let cli = &app.cli;
    let mut entries = if !cli.listen.is_empty() {
        let mut entries: Vec<PortEntry> = Vec::new();
        for spec in &cli.listen {
            let (port, template) = spec
                .split_once('=')
                .with_context(|| format!("--listen {spec:?}: expected PORT=TEMPLATE"))?;
            let port = port
                .parse()
                .with_context(|| format!("--listen {spec:?}: {port:?} is not a port"))?;
            // Port 0 asks for any free port, so it may be given for several listeners.
            if let Some(first) = entries.iter().find(|e| port != 0 && e.port == port) {
                bail!(
                    "--listen {spec:?}: port {port} is already given (--listen {port}={}); \
                     each listener needs its own port, or 0 for any free one",
                    first.template.as_deref().unwrap_or_default()
                );
            }
            entries.push(PortEntry {
                port,
                template: Some(template.to_owned()),
            });
        }
        entries
    } else if let Some((var, text)) = ["PORT_TEMPLATES", "ASTM_PORT_TEMPLATES"]
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|t| (*v, t)))
    {
        let mut entries = parse_map(&text, var)?;
        if entries.is_empty() {
            entries.push(PortEntry {
                port: cli.port,
                template: single_port_template(app)?,
            });
        }
        entries
    } else if let Some(template) = cli.template.as_ref().filter(|_| !cli.template_from_env) {
        vec![PortEntry {
            port: cli.port,
            template: Some(template.clone()),
        }]
    } else {
        // As the reference, whose shipped config/port_templates.json makes the mapping
        // non-empty: ASTM_TEMPLATE alone does not replace the port map.
        if let (true, Some(template)) = (cli.template_from_env, &cli.template) {
            tracing::info!(
                "ASTM_TEMPLATE={template} does not change the default port map (as in the \
                 reference); for one port with that template set PORT_TEMPLATES={{}} (with \
                 ASTM_PORT), or give --template, or --listen PORT={template}"
            );
        }
        parse_map(DEFAULT_PORT_MAP, "config/port_templates.json")?
    };
    for entry in &mut entries {
        if let Some(name) = &entry.template {
            app.template(name)
                .with_context(|| format!("port {}", entry.port))?;
        }
    }
    entries.sort_by_key(|e| e.port);
    Ok(entries)
}

/// The template of single-port mode with an empty port map: `ASTM_TEMPLATE` (or
/// `--template`) when it is an ASTM one. The reference serves only ASTM on that port, and
/// another protocol's template there is warned about and ignored, leaving the legacy
/// `fields.json` replies; so here too, from `ASTM_TEMPLATE`. `--template` on the command
/// line keeps its extension: an HL7 template makes the port an HL7 one.
fn single_port_template(app: &App) -> anyhow::Result<Option<String>> {
    let cli = &app.cli;
    let Some(name) = &cli.template else {
        return Ok(None);
    };
    let kind = app
        .template(name)
        .with_context(|| format!("port {}", cli.port))?
        .protocol
        .kind;
    if cli.template_from_env && !kind.is_astm() {
        tracing::warn!(
            "ASTM_TEMPLATE={name} is not an ASTM template (its protocol is {}): ignored, as in the \
             reference; port {} answers with the legacy fields.json replies (for an HL7 port \
             give --template {name} or --listen PORT={name})",
            kind.as_str(),
            cli.port
        );
        return Ok(None);
    }
    Ok(Some(name.clone()))
}

/// A bound listener.
#[derive(Debug)]
pub(crate) struct Bound {
    /// The socket.
    pub(crate) listener: TcpListener,
    /// Its entry.
    pub(crate) entry: PortEntry,
    /// `ASTM` or `HL7`.
    pub(crate) protocol: &'static str,
}

/// Binds every listener of the map; an address in use names the port.
pub(crate) async fn bind_all(app: &App, entries: Vec<PortEntry>) -> anyhow::Result<Vec<Bound>> {
    let mut bound = Vec::new();
    for entry in entries {
        let protocol = match &entry.template {
            Some(name) => match app.template(name)?.protocol.kind {
                ProtocolKind::Hl7 => "HL7",
                ProtocolKind::File => bail!(
                    "port {}: template {name:?} writes result files (protocol FILE) and \
                     cannot answer on a port; give an ASTM or HL7 template, or generate its \
                     files with --generate-files or the API's /simulate/file",
                    entry.port
                ),
                _ => "ASTM",
            },
            None => "ASTM",
        };
        let addr = SocketAddr::new(app.cli.bind, entry.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
        bound.push(Bound {
            listener,
            entry,
            protocol,
        });
    }
    Ok(bound)
}

/// Prints one line per listener (`listening ASTM 127.0.0.1:5000 genexpert_astm`) and serves them.
pub(crate) fn spawn_all(app: &Arc<App>, bound: Vec<Bound>) -> anyhow::Result<()> {
    for b in bound {
        let addr = b.listener.local_addr()?;
        let template = b.entry.template.clone().unwrap_or_else(|| "-".into());
        crate::console::status(format_args!("listening {} {addr} {template}", b.protocol));
        let app = Arc::clone(app);
        tokio::spawn(accept_loop(app, b));
    }
    Ok(())
}

async fn accept_loop(app: Arc<App>, bound: Bound) {
    let local = bound
        .listener
        .local_addr()
        .map_or_else(|_| bound.entry.port.to_string(), |a| a.to_string());
    let mut gate = Gate::new(&app, format!("{local} ({})", bound.protocol));
    loop {
        let (stream, peer, permit) = gate.accept(&bound.listener).await;
        let app = Arc::clone(&app);
        let template = bound.entry.template.clone();
        let protocol = bound.protocol;
        tokio::spawn(async move {
            let result = if protocol == "HL7" {
                serve_mllp(&app, stream, peer, template).await
            } else {
                serve_astm(&app, stream, peer, template).await
            };
            match result {
                Ok(()) => tracing::debug!("{peer}: connection closed"),
                Err(e) => tracing::info!("{peer}: {e:#}"),
            }
            drop(permit);
        });
    }
}

/// An ASTM transfer from the LIS: what it asks, or why it cannot be read, and the template
/// its X record (ours) names.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) read: Result<AstmOrders, OrderReadError>,
    template_override: Option<String>,
}

/// The source address of an order's result push: the address the order came in on. On a
/// dual-stack socket (`--bind ::`) an IPv4 peer reaches `::ffff:a.b.c.d`, which an IPv4
/// socket cannot bind, so every push failed; it is the IPv4 address it stands for.
fn result_source(local: SocketAddr) -> std::net::IpAddr {
    local.ip().to_canonical()
}

/// Reads an ASTM transfer from the LIS (an order, a query, a cancellation).
pub(crate) fn read_transfer(text: &[u8]) -> Transfer {
    let template_override = text
        .rsplit(|b| *b == b'\r' || *b == b'\n')
        .find_map(|record| record.strip_prefix(b"X|"))
        .map(|rest| {
            let name = rest.split(|b| *b == b'|').nth(1).unwrap_or_default();
            String::from_utf8_lossy(name).into_owned()
        });
    Transfer {
        read: AstmOrders::read(text),
        template_override,
    }
}

/// Serves one ASTM connection until the peer hangs up.
async fn serve_astm(
    app: &Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    mut template: Option<String>,
) -> anyhow::Result<()> {
    let local = stream.local_addr()?;
    let options = LinkIoOptions {
        control_delay: Duration::from_millis(app.cli.response_delay),
        nak_limit: true,
        idle: (app.cli.idle_timeout > 0).then(|| Duration::from_secs(app.cli.idle_timeout)),
        faults: app.faults.for_port(local.port(), template.as_deref()),
        label: format!("port {} peer {peer}", local.port()),
    };
    let mut io = LinkIo::new(
        stream,
        Link::new(app.link_config(Role::Instrument)),
        options,
    );
    // Receiver interrupts in a row, without a message delivered in between.
    let mut interrupts = 0;
    let mut noise = NoiseLog::new(format!("port {} peer {peer}", local.port()));
    if let Some(name) = &template {
        let t = app.template(name)?;
        if t.astm_config.as_ref().is_some_and(|c| c.proactive_enq) {
            for message in app.astm_messages(t, false, None, &Overrides::default(), true)? {
                io.queue(message.to_bytes());
            }
        }
    }
    // Order results queued on this link (`--order-results link`), by message, until sent.
    let mut link_results = AstmLinkResults {
        peer,
        queued: Vec::new(),
    };
    loop {
        let event = match io.next_event().await {
            Ok(Some(event)) => event,
            Ok(None) => {
                link_results.lost(io.take_unsent());
                return Ok(());
            }
            Err(e) => {
                link_results.lost(io.take_unsent());
                bail!("{e}")
            }
        };
        match event {
            Event::MessageReceived(text) => {
                tracing::info!(
                    "port {} from {peer}: {} bytes received",
                    local.port(),
                    text.len()
                );
                app.received
                    .push(local.port(), peer.to_string(), "ASTM", &text);
                let transfer = read_transfer(&text);
                let asked = match &transfer.read {
                    Ok(asked) => asked,
                    Err(why) => {
                        if noise.admit() {
                            tracing::warn!(
                                "port {}: transfer from {peer} not read ({why}); kept in \
                                 /received, not answered",
                                local.port()
                            );
                        }
                        continue;
                    }
                };
                if !asked.terminated
                    && (!asked.queries.is_empty()
                        || !asked.orders.is_empty()
                        || !asked.withdrawn.is_empty())
                {
                    // §6.5.2.4 / E1394: a message is complete with its L record. Answering
                    // the orders that arrived would give results for part of a list.
                    if noise.admit() {
                        tracing::warn!(
                            "port {}: transfer from {peer} ended without its L record (the LIS \
                             gave up or was cut off); kept in /received, not answered",
                            local.port()
                        );
                    }
                    continue;
                }
                if let Some(name) = &transfer.template_override {
                    match app.template(name) {
                        Ok(t) if t.protocol.kind.is_astm() => template = Some(name.clone()),
                        _ if noise.admit() => tracing::warn!(
                            "port {}: X record from {peer}: {name:?} is not an ASTM template; ignored",
                            local.port()
                        ),
                        _ => {}
                    }
                }
                let answered = answer(
                    app,
                    &mut io,
                    asked,
                    template.as_deref(),
                    local,
                    &mut link_results,
                );
                if let Err(e) = answered.await {
                    tracing::warn!("port {}: cannot answer: {e:#}", local.port());
                }
            }
            Event::MessageSent(id) => {
                interrupts = 0;
                tracing::info!("port {}: message sent to {peer}", local.port());
                link_results.take(id);
            }
            Event::MessageAborted {
                reason: AbortReason::ReceiverInterrupt,
                message,
                id,
                ..
            } if interrupts < MAX_INTERRUPTS => {
                // §6.3.5.3: the LIS took the link to send its own message; the instrument
                // sends the interrupted message again, whole, once the LIS has sent its message
                // (or after the 15 s hold-off), before anything queued after it.
                interrupts += 1;
                tracing::info!(
                    "port {}: receiver interrupt from {peer}; the message will be sent again",
                    local.port()
                );
                let again = io.queue_first(message);
                for (queued, _) in &mut link_results.queued {
                    if *queued == id {
                        *queued = again;
                    }
                }
            }
            Event::MessageAborted { reason, id, .. } => {
                let what = link_results
                    .take(id)
                    .map_or_else(String::new, |s| format!(" (order results for {s})"));
                tracing::warn!(
                    "port {}: message to {peer}{what} not delivered: {reason}",
                    local.port()
                );
            }
            // What gets no reply at all (bytes outside frames, a frame without ENQ first: a
            // peer sending plain text or skipping the handshake) is worth a warning; the rest
            // is answered with a NAK the peer sees.
            Event::LinkError(
                e @ (astm_frame::LinkError::Junk(_) | astm_frame::LinkError::FrameOutsideTransfer),
            ) if noise.admit() => tracing::warn!(
                "port {}: from {peer}: {e}; got no reply (E1381: ENQ, then <STX> frames, EOT)",
                local.port()
            ),
            Event::LinkError(e) => tracing::debug!("port {}: {e}", local.port()),
            Event::ReceiveDiscarded { reason, len } if noise.admit() => {
                tracing::warn!("port {}: {len} bytes discarded: {reason}", local.port());
            }
            _ => {}
        }
    }
}

/// Replies to a field query, a results query or an order.
async fn answer(
    app: &Arc<App>,
    io: &mut LinkIo<TcpStream>,
    transfer: &AstmOrders,
    template: Option<&str>,
    local: SocketAddr,
    link_results: &mut AstmLinkResults,
) -> anyhow::Result<()> {
    let template = template.map(|n| app.template(n)).transpose()?;
    for what in &transfer.withdrawn {
        tracing::info!("port {}: {what}: no results", local.port());
    }
    if !transfer.queries.is_empty()
        && transfer.header
        && !transfer.patient
        && transfer.orders.is_empty()
    {
        // Results query: results for the specimens and tests asked for, one patient and order
        // per Q record (a request message may hold several).
        let reply = match template {
            Some(t) => {
                let mut samples = OrderedSamples::default();
                for AstmQuery { specimen, codes } in &transfer.queries {
                    let sample_id = match specimen {
                        Some(s) => s.clone(),
                        None => app
                            .minter
                            .mint(lis_templates::Lane::parse(t.lane(), "testSample.id")?)?,
                    };
                    let codes: Vec<String> = if codes.is_empty() {
                        t.fields.iter().map(|f| f.code.clone()).collect()
                    } else {
                        codes.clone()
                    };
                    samples.add(sample_id, codes, || None);
                }
                let samples = samples.into_samples();
                let options = app.options(true, None);
                let mut generator = Generator::new(t, &app.minter, &options)?;
                generator.astm_order_results(&samples)?.to_bytes()
            }
            None => app
                .legacy_message(vec![
                    "H|\\^&|||MockAnalyzer^ASTM-Mock^1.0|||||||LIS2-A2".into(),
                    "P|1|PAT-RESULTS||DOE^JANE".into(),
                    "O|1|ACC-RESULTS".into(),
                    "R|1|^^^GLUCOSE|102.5|mg/dL".into(),
                    "L|1|N".into(),
                ])
                .to_bytes(),
        };
        io.queue(reply);
        return Ok(());
    }
    if transfer.header
        && !transfer.patient
        && transfer.orders.is_empty()
        && transfer.queries.is_empty()
        && transfer.withdrawn.is_empty()
    {
        // Field query: the analyzer's full result message.
        match template {
            Some(t) => {
                for message in app.astm_messages(t, false, None, &Overrides::default(), true)? {
                    io.queue(message.to_bytes());
                }
            }
            None => {
                let reply = legacy::field_query_reply(&app.cli.analyzer_type)?;
                io.queue(app.legacy_message(reply).to_bytes());
            }
        }
        return Ok(());
    }
    if transfer.orders.is_empty() {
        return Ok(());
    }
    let Some(t) = template else {
        tracing::warn!("order received on a port without template; no results");
        return Ok(());
    };
    let options = app.options(true, None);
    let mut generator = Generator::new(t, &app.minter, &options)?;
    let reply = generator.astm_order_results(&transfer.orders)?.to_bytes();
    match app.cli.order_results {
        OrderResultsArg::Off => {}
        OrderResultsArg::Link => {
            let specimens: Vec<&str> = transfer
                .orders
                .iter()
                .map(|o| o.sample_id.as_str())
                .collect();
            link_results
                .queued
                .push((io.queue(reply), specimens.join(", ")));
        }
        OrderResultsArg::Push => {
            let Some(dest) = crate::cli::order_result_destination(
                &app.cli.order_result_push_host,
                &app.cli.order_result_push_astm_port,
                "ORDER_RESULT_PUSH_ASTM_PORT",
            ) else {
                return Ok(());
            };
            let app = Arc::clone(app);
            let permit = ORDER_PUSHES.acquire().await?;
            tokio::spawn(async move {
                let _permit = permit;
                let result = push::astm_tcp(
                    &app,
                    &dest,
                    Some(result_source(local)),
                    &[reply],
                    false,
                    ORDER_PUSH_TIMEOUT,
                )
                .await;
                match result {
                    Ok(()) => tracing::info!("order results pushed to {dest}"),
                    Err(e) => tracing::warn!("order results push to {dest} failed: {e:#}"),
                }
            });
        }
    }
    Ok(())
}

/// Order results an ASTM connection has queued for its LIS (`--order-results link`), with
/// the specimens they are for, until each is sent.
struct AstmLinkResults {
    peer: SocketAddr,
    queued: Vec<(MessageId, String)>,
}

impl AstmLinkResults {
    /// Forgets message `id` (sent, or reported lost); its specimens if it was order results.
    fn take(&mut self, id: MessageId) -> Option<String> {
        let at = self.queued.iter().position(|(queued, _)| *queued == id)?;
        Some(self.queued.remove(at).1)
    }

    /// The connection has ended with `unsent` never delivered: says which order results
    /// were among them (a LIS that hangs up after its order never gets them on this link).
    fn lost(&mut self, unsent: Vec<(MessageId, Vec<u8>)>) {
        let lost: Vec<&str> = self
            .queued
            .iter()
            .filter(|(id, _)| unsent.iter().any(|(unsent, _)| unsent == id))
            .map(|(_, specimens)| specimens.as_str())
            .collect();
        if !lost.is_empty() {
            tracing::warn!(
                "connection from {} ended with {} order result message(s) not sent on it \
                 (specimens {}); with --order-results push they go to a port of the LIS's \
                 choosing instead",
                self.peer,
                lost.len(),
                lost.join("; ")
            );
        }
        self.queued.clear();
    }
}

/// The next MLLP event; `None` when the peer has closed the connection, or when a message it
/// started has had no new byte for `stall_limit` (the reference closes such a connection after
/// its 30 s socket timeout). Waits between messages are not limited, as in the reference.
async fn next_mllp_frame(
    framed: &mut Framed<TcpStream, MllpCodec>,
    stall_limit: Option<Duration>,
) -> Option<Result<MllpFrame, mllp_hl7::CodecError>> {
    let Some(limit) = stall_limit else {
        return framed.next().await;
    };
    let tick = limit.min(Duration::from_secs(1));
    // Bytes arrived so far, and whether a message is under way. An oversized frame being
    // skipped is under way with nothing buffered: its bytes are consumed as they come.
    let arrived = |framed: &Framed<TcpStream, MllpCodec>| {
        let buffered = framed.read_buffer().len();
        (
            framed.codec().position() + buffered as u64,
            buffered > 0 || framed.codec().in_frame(),
        )
    };
    let mut seen = arrived(framed).0;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        // `Framed` keeps what it has read: a wait cut short by the tick loses nothing.
        if let Ok(next) = tokio::time::timeout(tick, framed.next()).await {
            return next;
        }
        let (now_seen, under_way) = arrived(framed);
        if now_seen != seen || !under_way {
            seen = now_seen;
            last_progress = tokio::time::Instant::now();
        } else if last_progress.elapsed() >= limit {
            tracing::info!(
                "an MLLP message started and left without a new byte for {limit:?} ({} bytes \
                 held); connection closed",
                framed.read_buffer().len()
            );
            return None;
        }
    }
}

/// The order results sent on an MLLP connection (`--order-results link`) whose ACK from
/// the LIS has not come yet, by control id. An ACK that comes is logged (a refusal as a
/// warning); those still missing when the connection ends are warned about: a peer that
/// only sends on this connection (a router's socket output) never routes them.
struct LinkResults {
    peer: SocketAddr,
    awaiting: Vec<String>,
}

impl LinkResults {
    fn acknowledged(&mut self, ack: &mllp_hl7::AckMessage<'_>) {
        let Some(at) = self
            .awaiting
            .iter()
            .position(|id| ack.acknowledges(id.as_bytes()))
        else {
            return;
        };
        let id = self.awaiting.remove(at);
        if ack.code.is_success() {
            tracing::info!("order results {id} acknowledged by {}", self.peer);
        } else {
            tracing::warn!(
                "order results {id} refused by {}: {} {}",
                self.peer,
                ack.code.as_str(),
                String::from_utf8_lossy(ack.text.raw())
            );
        }
    }
}

impl Drop for LinkResults {
    fn drop(&mut self) {
        if !self.awaiting.is_empty() {
            tracing::warn!(
                "connection from {} ended with {} order result message(s) sent on it and \
                 never acknowledged: {}",
                self.peer,
                self.awaiting.len(),
                self.awaiting.join(", ")
            );
        }
    }
}

/// Serves one MLLP connection: an ACK per message (MSA-2 = MSH-10), ORM -> ORU.
async fn serve_mllp(
    app: &Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    template: Option<String>,
) -> anyhow::Result<()> {
    let local = stream.local_addr()?;
    let mut framed = Framed::new(stream, MllpCodec::new());
    let delay = Duration::from_millis(app.cli.response_delay);
    let stall_limit = (app.cli.idle_timeout > 0).then(|| Duration::from_secs(app.cli.idle_timeout));
    let mut link_results = LinkResults {
        peer,
        awaiting: Vec::new(),
    };
    let mut noise = NoiseLog::new(format!("port {} peer {peer}", local.port()));
    while let Some(frame) = next_mllp_frame(&mut framed, stall_limit).await {
        let payload = match frame.context("mllp")? {
            MllpFrame::Message(payload) => payload,
            MllpFrame::Error(e) => {
                // An over-long or interrupted frame is a message refused: the sender gets the
                // NAK block, as for a payload that is not HL7, rather than nothing at all (it
                // waited for its ACK timeout, and a sender that retries sent it again).
                // A frame cut off by the end of the stream has no one left to answer.
                let answer = !matches!(e, mllp_hl7::FrameError::Truncated { .. });
                if noise.admit() {
                    tracing::warn!(
                        "port {}: refused MLLP frame from {peer}: {e}{}",
                        local.port(),
                        if answer {
                            "; answered with an MLLP NAK block"
                        } else {
                            ""
                        }
                    );
                }
                if answer {
                    framed
                        .send(&[mllp_hl7::CommitAck::Nak.byte()][..])
                        .await
                        .context("sending NAK block")?;
                }
                continue;
            }
            // Reported once a start block or the end of the stream follows: HL7 sent without
            // MLLP framing otherwise vanishes without a word.
            MllpFrame::Junk { len, offset } => {
                if noise.admit() {
                    tracing::warn!(
                        "port {}: {len} byte(s) from {peer} at stream offset {offset} outside \
                         any MLLP frame, skipped (a message must come as <VT> message <FS><CR>)",
                        local.port()
                    );
                }
                continue;
            }
            _ => continue,
        };
        app.received
            .push(local.port(), peer.to_string(), "HL7", &payload);
        let message = match mllp_hl7::Message::parse(&payload) {
            Ok(m) => m,
            Err(e) => {
                // The reference answers anything with AA; silence would leave the sender
                // waiting for its timeout. (Commit blocks, answers themselves, are
                // `MllpFrame::Commit` and never get here.)
                if noise.admit() {
                    tracing::warn!(
                        "port {}: not an HL7 message from {peer} ({e}); answered with an MLLP NAK block",
                        local.port()
                    );
                }
                framed
                    .send(&[mllp_hl7::CommitAck::Nak.byte()][..])
                    .await
                    .context("sending NAK block")?;
                continue;
            }
        };
        if let Ok(ack) = mllp_hl7::AckMessage::from_message(&message) {
            link_results.acknowledged(&ack);
        }
        // MSA-3 as the reference writes it; harnesses look for it. In enhanced mode the accept
        // ACK (CA, per MSH-15) comes first, then this application ACK (per MSH-16): the
        // simulator processes the message at once, so both are due.
        let mut ack = AckBuilder::new(&message)
            .code(mllp_hl7::AckCode::ApplicationAccept)
            .text("Message accepted");
        // An OML is answered by the ORL its trigger defines (ORL^O22 for OML^O21). An ORM
        // keeps the reference's ACK^O01, where the standard has ORR^O02.
        let kind = message.message_type();
        if kind.code == b"OML"
            && let Some((code, trigger)) = kind.order_response()
        {
            ack = ack.response_type(code, trigger);
        }
        for ack in ack.build_all_required().unwrap_or_default() {
            if delay > Duration::ZERO {
                tokio::time::sleep(delay).await;
            }
            framed.send(&ack[..]).await.context("sending ACK")?;
        }
        if !matches!(message.message_type().code, b"ORM" | b"OML") {
            continue;
        }
        let Some(name) = &template else {
            continue;
        };
        let t = app.template(name)?;
        let Hl7Orders {
            orders, withdrawn, ..
        } = Hl7Orders::read_for(&message, t);
        for control in &withdrawn {
            tracing::info!(
                "port {}: ORC-1 {control} withdraws an order group: no results for it",
                local.port()
            );
        }
        if orders.is_empty() {
            if withdrawn.is_empty() {
                tracing::info!(
                    "order message without ordered codes or correlation IDs; no results"
                );
            }
            continue;
        }
        let options = app.options(true, None);
        let oru = Generator::new(t, &app.minter, &options)?
            .hl7_order_results_for(OrderedPatient::from_hl7(&message).as_ref(), &orders)?
            .to_bytes();
        match app.cli.order_results {
            OrderResultsArg::Off => {}
            OrderResultsArg::Link => {
                framed.send(&oru[..]).await.context("sending ORU")?;
                if let Ok(sent) = mllp_hl7::Message::parse(&oru) {
                    let id = String::from_utf8_lossy(&sent.control_id().decoded()).into_owned();
                    link_results.awaiting.push(id);
                }
            }
            OrderResultsArg::Push => {
                let Some(dest) = crate::cli::order_result_destination(
                    &app.cli.order_result_push_host,
                    &app.cli.order_result_push_port,
                    "ORDER_RESULT_PUSH_PORT",
                ) else {
                    continue;
                };
                let permit = ORDER_PUSHES.acquire().await?;
                tokio::spawn(async move {
                    let _permit = permit;
                    match push::mllp(&dest, Some(result_source(local)), &oru, ORDER_PUSH_TIMEOUT)
                        .await
                    {
                        Ok(()) => tracing::info!("order results pushed to {dest}"),
                        Err(e) => tracing::warn!("order results push to {dest} failed: {e:#}"),
                    }
                });
            }
        }
    }
    Ok(())
}
