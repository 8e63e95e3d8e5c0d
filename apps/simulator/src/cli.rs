//! The command line: every flag and environment variable of the OpenELIS mock server, with the
//! same meaning and defaults, plus the simulator's own.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Analyzer simulator: a drop-in, standards-correct superset of the OpenELIS analyzer mock server.
///
/// With no arguments it listens on the default port map (5000 and 9600 GeneXpert ASTM, 9601-9604
/// BA-88A, STart 4, Micros 60, Pentra 60, 5380 Mindray BC-5380 over MLLP) on 127.0.0.1.
#[derive(Debug, Clone, Parser)]
#[command(name = "simulator", version, about, long_about = None)]
pub(crate) struct Cli {
    /// A tool instead of a mode (`seed-sql`).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// Listen port in single-port mode (with `--template` or `ASTM_TEMPLATE`).
    #[arg(short = 'p', long, env = "ASTM_PORT", default_value_t = 5000)]
    pub(crate) port: u16,

    /// Legacy `fields.json` category for `--push` without `--template` and for field-query
    /// replies on a port without a template.
    #[arg(
        short = 't',
        long = "analyzer-type",
        env = "ANALYZER_TYPE",
        default_value = "HEMATOLOGY"
    )]
    pub(crate) analyzer_type: String,

    /// Milliseconds to wait before every control byte (ACK, NAK, ENQ, EOT) the server sends, and
    /// before each MLLP ACK.
    #[arg(
        short = 'd',
        long = "response-delay",
        env = "RESPONSE_DELAY_MS",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    pub(crate) response_delay: u64,

    /// Debug logging.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,

    /// Push mode: `tcp://host:port` (ASTM E1381), `mllp://host:port` (HL7) or an http(s) base URL.
    #[arg(short = 'P', long)]
    pub(crate) push: Option<String>,

    /// ASTM template for push mode; on the command line, single-port server mode on `--port`.
    /// From `ASTM_TEMPLATE` alone it does not change the port map (as in the reference, whose
    /// shipped port map wins); with `PORT_TEMPLATES={}` it is the single port's template.
    #[arg(long, env = "ASTM_TEMPLATE")]
    pub(crate) template: Option<String>,

    /// Whether `template` came from `ASTM_TEMPLATE` rather than `--template`.
    #[arg(skip)]
    pub(crate) template_from_env: bool,

    /// Push the QC message of the template (`qc_controls`).
    #[arg(long)]
    pub(crate) qc: bool,

    /// Put every QC value exactly this many SD off target (omitted: Gaussian scatter).
    #[arg(long = "qc-deviation", allow_hyphen_values = true)]
    pub(crate) qc_deviation: Option<f64>,

    /// Local address to bind outgoing TCP connections to.
    #[arg(long = "source-ip")]
    pub(crate) source_ip: Option<IpAddr>,

    /// Print the generated message (one record or segment per line) and exit.
    #[arg(long = "dry-run")]
    pub(crate) dry_run: bool,

    /// Messages per run (1 or more); with `--host-query`, rounds of queries.
    #[arg(
        short = 'c',
        long = "push-count",
        default_value_t = 1,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) push_count: u64,

    /// Seconds between pushes; with `--host-query`, between rounds.
    #[arg(
        short = 'i',
        long = "push-interval",
        default_value_t = 1.0,
        value_parser = parse_interval,
        allow_negative_numbers = true
    )]
    pub(crate) push_interval: f64,

    /// Push until interrupted; with `--host-query`, query rounds until interrupted.
    #[arg(short = 'C', long = "push-continuous")]
    pub(crate) push_continuous: bool,

    /// Port of the HTTP API.
    #[arg(short = 'a', long = "api-port")]
    pub(crate) api_port: Option<u16>,

    /// Port of the HTTP API (wins over `--api-port`).
    #[arg(long = "simulate-api-port")]
    pub(crate) simulate_api_port: Option<u16>,

    /// Serial mode: send one message over this serial port and exit.
    #[arg(long = "serial-port")]
    pub(crate) serial_port: Option<String>,

    /// Template for serial mode; its baud rate, data bits, parity and stop bits are applied.
    #[arg(long = "serial-analyzer", default_value = "horiba_pentra60")]
    pub(crate) serial_analyzer: String,

    /// File mode: write one generated result file into this directory and exit.
    #[arg(long = "generate-files")]
    pub(crate) generate_files: Option<PathBuf>,

    /// Template for file mode.
    #[arg(long = "generate-files-analyzer", default_value = "quantstudio7")]
    pub(crate) generate_files_analyzer: String,

    /// With `--push`: send an HL7 ORU^R01 instead of ASTM.
    #[arg(long)]
    pub(crate) hl7: bool,

    /// HL7 template.
    #[arg(
        long = "hl7-template",
        env = "HL7_TEMPLATE",
        default_value = "abbott_architect_hl7"
    )]
    pub(crate) hl7_template: String,

    /// Whether `hl7_template` was given as `--hl7-template` (not from `HL7_TEMPLATE` or the
    /// default).
    #[arg(skip)]
    pub(crate) hl7_template_on_command_line: bool,

    /// Address to listen on (the container image sets 0.0.0.0).
    #[arg(long, env = "SIMULATOR_BIND", default_value = "127.0.0.1")]
    pub(crate) bind: IpAddr,

    /// Extra or replacement templates (`*.json`), loaded over the embedded ones.
    #[arg(long = "templates-dir", global = true)]
    pub(crate) templates_dir: Option<PathBuf>,

    /// Analyzer-profiles directory for profile-backed templates in `--templates-dir`.
    #[arg(long = "profiles-dir", env = "ANALYZER_PROFILES_DIR", global = true)]
    pub(crate) profiles_dir: Option<PathBuf>,

    /// RNG seed: the same seed gives byte-identical messages (with `--now`).
    #[arg(long, global = true)]
    pub(crate) seed: Option<u64>,

    /// Fixed clock for generated time stamps, `YYYYMMDDHHMMSS` (reproducible output).
    #[arg(long, value_parser = parse_now, global = true)]
    pub(crate) now: Option<chrono::NaiveDateTime>,

    /// Field positions of generated messages.
    #[arg(long, value_enum, default_value_t = LayoutArg::Standard)]
    pub(crate) layout: LayoutArg,

    /// Character encoding of the ASTM and HL7 messages sent: utf-8, latin-1, latin-9 or
    /// ascii, instead of each template's (`protocol.encoding`, else UTF-8). Text the encoding
    /// cannot write is sent as `?`; HL7 names the encoding in MSH-18 (standard layout).
    /// Latin-1 is what many instruments write.
    #[arg(long, env = "SIMULATOR_CHARSET", value_name = "ENCODING")]
    pub(crate) charset: Option<lis_templates::TextEncoding>,

    /// User for HTTP Basic auth on HTTP pushes.
    #[arg(long, env = "SIMULATOR_PUSH_USER")]
    pub(crate) user: Option<String>,

    /// Password for HTTP Basic auth on HTTP pushes.
    #[arg(long, env = "SIMULATOR_PUSH_PASSWORD")]
    pub(crate) password: Option<String>,

    /// Where `--user/--password` may also go: an http(s) origin (`https://oe.example:8443`) that
    /// API requests push to. `--push`'s own origin needs none; a destination at any other origin
    /// gets no credentials, so that an API caller cannot have them sent to a host of its choosing.
    /// Repeatable; the variable takes a comma list.
    #[arg(
        long = "auth-origin",
        env = "SIMULATOR_PUSH_AUTH_ORIGINS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub(crate) auth_origin: Vec<String>,

    /// Do not verify TLS certificates on HTTPS pushes.
    #[arg(long)]
    pub(crate) insecure: bool,

    /// Trust this PEM certificate for HTTPS pushes: the LIS's self-signed certificate (which must
    /// say CA:FALSE) or the CA that signed it.
    #[arg(long = "ca-cert")]
    pub(crate) ca_cert: Option<PathBuf>,

    /// Push every message on one connection, E1381 (tcp://) or MLLP (mllp://) (default: one
    /// connection per session or message, as the reference does).
    #[arg(long = "keep-connection")]
    pub(crate) keep_connection: bool,

    /// Host query mode, repeatable: with `--push tcp://` and an ASTM `--template` (or on
    /// `--serial-port` with `--serial-analyzer`), ask the LIS for the orders of this specimen
    /// (H, `Q|1|^SPECIMEN||^^^ALL||||||||O`, L), as an analyzer does after reading its
    /// barcode, then send results for exactly the tests the LIS ordered, on the same line;
    /// several specimens are asked for in turn. With `--hl7` and `--push mllp://`, IHE LAW's
    /// QBP^Q11 for `--hl7-template`, the work order (OML^O33) answered ORL^O34. `-c N` asks for them all N times (rounds, `-i`
    /// seconds apart), `-C` until interrupted.
    #[arg(long = "host-query", value_name = "SPECIMEN")]
    pub(crate) host_query: Vec<String>,

    /// How long the LIS has to answer a `--host-query` (seconds, at most 3600, as over
    /// HTTP); then the query is withdrawn (Q.13 `A`, as cobas analyzers do after 15 s) and the
    /// run fails.
    #[arg(
        long = "host-query-timeout",
        value_name = "SECONDS",
        default_value_t = 15.0,
        value_parser = parse_answer_wait
    )]
    pub(crate) host_query_timeout: f64,

    /// Listener override, repeatable: `PORT=TEMPLATE` (port 0 picks a free port). Replaces the
    /// port map.
    #[arg(long = "listen", value_name = "PORT=TEMPLATE")]
    pub(crate) listen: Vec<String>,

    /// Fault injection, repeatable: `bad-checksum=P`, `drop-ack=P`, `delay-ms=N`,
    /// `disconnect-mid-frame=P`, `duplicate-frame=P`, `nak-enq=P` (P a probability 0..1).
    /// Prefix `SCOPE:` to limit it to a server port (`9600:drop-ack=0.5`), the ports of a
    /// template (`stago_start4:nak-enq=1`), pushes (`push:bad-checksum=0.1`) or serial mode
    /// (`serial:duplicate-frame=1`).
    #[arg(long = "fault", value_name = "NAME=VALUE")]
    pub(crate) fault: Vec<String>,

    /// What an ASTM port does when its ENQ meets the LIS's ENQ: `yield` (the default, the
    /// reference's behaviour, which the OpenELIS bridge relies on when it sends orders to a
    /// proactive-ENQ port) acknowledges the LIS's ENQ at once (on a push or serial line, once
    /// the LIS has had 1 s to acknowledge ours); `by-role` follows the standard, which gives
    /// the instrument priority (it waits 1 s and sends ENQ again).
    #[arg(long, value_enum, default_value_t = ContentionArg::Yield)]
    pub(crate) contention: ContentionArg,

    /// How pushes (`tcp://`, the API's, order results) lay records into frames: `reference`
    /// (the default, the OpenELIS mock's push framer, which the bridge was built against): one
    /// record per frame, ETB on every frame but the message's last; `per-record`: ETX on every
    /// record's frame. Replies on a listening port and serial lines are per record either way,
    /// as in the reference.
    #[arg(long = "push-framing", value_enum, default_value_t = PushFramingArg::Reference)]
    pub(crate) push_framing: PushFramingArg,

    /// Where results for orders received on a port go: a new connection to
    /// `ORDER_RESULT_PUSH_HOST` (as the reference), a new session on the same link, or nowhere.
    #[arg(long = "order-results", value_enum, default_value_t = OrderResultsArg::Push)]
    pub(crate) order_results: OrderResultsArg,

    /// Host for results of received orders; empty disables the push.
    #[arg(
        long = "order-result-push-host",
        env = "ORDER_RESULT_PUSH_HOST",
        default_value = "openelis-analyzer-bridge"
    )]
    pub(crate) order_result_push_host: String,

    /// Port for ASTM order results; empty or not a port disables that push (with a warning),
    /// as in the reference.
    #[arg(
        long = "order-result-push-astm-port",
        env = "ORDER_RESULT_PUSH_ASTM_PORT",
        default_value = "12001"
    )]
    pub(crate) order_result_push_astm_port: String,

    /// Port for HL7 order results (ORU over MLLP); empty or not a port disables that push
    /// (with a warning), as in the reference.
    #[arg(
        long = "order-result-push-port",
        env = "ORDER_RESULT_PUSH_PORT",
        default_value = "2575"
    )]
    pub(crate) order_result_push_port: String,

    /// How many received messages `GET /received` keeps.
    #[arg(long = "received-capacity", default_value_t = 1000)]
    pub(crate) received_capacity: usize,

    /// Directories `POST /simulate/file` may write into (default: /data/analyzer-imports and the
    /// temporary directory).
    #[arg(long = "file-root")]
    pub(crate) file_root: Vec<PathBuf>,

    /// Seconds of silence after which an ASTM connection is closed (the reference's
    /// `SOCKET_TIMEOUT`); 0 never closes one. A link in the middle of an exchange waits for its
    /// own E1381 timers first. On HL7 ports, an MLLP message started and left this long
    /// without a new byte closes the connection; waits between messages are not limited.
    /// At most a week (604800): a longer wait cannot be told from never.
    #[arg(
        long = "idle-timeout",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(0..=604_800)
    )]
    pub(crate) idle_timeout: u64,

    /// Simultaneous connections per listening port; a connection beyond it is closed at once
    /// with a log line (the reference has no limit).
    #[arg(
        long = "max-connections",
        value_name = "N",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=65_536)
    )]
    pub(crate) max_connections: u32,

    /// E1381 timers in milliseconds (reply to ENQ and frames, receive, retry waits), all at once;
    /// the standard's values (15 s, 30 s, ...) by default. For testing a LIS's timeouts quickly.
    #[arg(long = "link-timer-ms", value_name = "MS")]
    pub(crate) link_timer_ms: Option<u64>,
}

impl Cli {
    /// Parses the command line, noting where the values that depend on it came from.
    pub(crate) fn parse_with_sources() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.template_from_env =
            matches.value_source("template") == Some(clap::parser::ValueSource::EnvVariable);
        cli.hl7_template_on_command_line =
            matches.value_source("hl7_template") == Some(clap::parser::ValueSource::CommandLine);
        cli
    }
}

/// Tools.
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the SQL that seeds OpenELIS with the analyzers, tests, QC lots and Westgard rules
    /// of every template (the reference's `generate_analyzer_sql.py`, for every protocol).
    SeedSql,
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LayoutArg {
    /// LIS2-A2 / HL7 v2 field positions.
    Standard,
    /// The reference mock's bytes.
    Openelis,
}

/// `--contention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ContentionArg {
    /// The instrument insists (waits 1 s, sends ENQ again).
    ByRole,
    /// Yield to the LIS and receive first (the reference).
    Yield,
}

/// `--push-framing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PushFramingArg {
    /// ETB on every frame but the message's last (the reference's pushes).
    Reference,
    /// ETX on every record's frame.
    PerRecord,
}

/// `--order-results`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OrderResultsArg {
    /// New connection to `ORDER_RESULT_PUSH_HOST`.
    Push,
    /// New session on the connection the order came in on.
    Link,
    /// Do not send results for orders.
    Off,
}

/// Where order results are pushed: `host:port`, or `None` (logged) when the host is empty or
/// the port is not a port (the reference skips the push then, rather than refusing to start).
pub(crate) fn order_result_destination(
    host: &str,
    port: &str,
    port_variable: &str,
) -> Option<String> {
    if host.is_empty() {
        tracing::info!("ORDER_RESULT_PUSH_HOST is empty; order results not pushed");
        return None;
    }
    match port.trim().parse::<u16>() {
        Ok(port) if port > 0 => Some(format!("{host}:{port}")),
        _ => {
            let flag = port_variable.to_ascii_lowercase().replace('_', "-");
            tracing::warn!(
                "{port_variable} (--{flag}) = {port:?} is not a port from 1 to 65535; order \
                 results not pushed"
            );
            None
        }
    }
}

/// Seconds between pushes: a finite, non-negative number that fits a `Duration`.
fn parse_interval(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map(|_| seconds)
        .map_err(|_| format!("{text:?} is not a usable number of seconds (0 or more, finite)"))
}

/// Seconds a LIS has to answer a host query: 0 to 3600, the limit `POST .../host-query` has.
fn parse_answer_wait(text: &str) -> Result<f64, String> {
    let seconds = parse_interval(text)?;
    if seconds > 3600.0 {
        return Err(format!("{text:?} is more than 3600 seconds"));
    }
    Ok(seconds)
}

fn parse_now(text: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
        .map_err(|e| format!("expected YYYYMMDDHHMMSS: {e}"))
}
