//! Router load generator: durable MLLP -> file and MLLP -> MLLP over loopback, with 1 and
//! 16 concurrent senders, messages/s and ACK latency percentiles.
//!
//! The router engine (`lis-router`) runs in-process with a real redb store in a temporary
//! directory (`Durability::Immediate`, group commit); senders are `mllp-hl7` clients that
//! send the 1 KB synthetic CBC ORU^R01 and wait for each HL7 ACK (stop-and-wait, as MLLP
//! requires). The baseline in the same run is a non-durable MLLP server that ACKs at once,
//! driven by the same load generator, so the cost of durability is visible. Also printed:
//! how fast the output delivered everything (`delivered msg/s`, from the first send to
//! the last file under its final name, or the last ACK the MLLP sink sent) and the
//! process's CPU time per message while the senders ran (all threads, user + system;
//! Linux only).
//!
//! Not a criterion bench: a route is one run of tens of thousands of messages through a
//! store on disk, and repeating it for criterion's samples would measure a file system
//! filling up and ext4's inode reuse more than the router. Each figure is one run, so
//! compare runs made one after the other (docs/router.md shows two per route).
//!
//! `cargo bench -p benches --bench router`; `ROUTER_BENCH_MESSAGES` (default 40000) sets
//! the messages per run with 16 senders (a quarter of it with one sender);
//! `ROUTER_BENCH_ONLY=file` (or `MLLP -> MLLP`, `baseline`, `store`, `syncfs`) runs only
//! the routes whose name contains it, `ROUTER_BENCH_SENDERS=16` (or `1`) only that many
//! senders. Name filters, `--exact`, `--test` (each route once, briefly) and `--list`
//! work as in the criterion benches (`cargo bench -p benches --
//! router/mllp_to_file/16`; ids are `router/ROUTE/SENDERS`, with ROUTE `baseline`,
//! `store`, `mllp_to_file`, `mllp_to_file_syncfs`, `mllp_to_mllp`), so a filter meant for
//! another bench does not start this one's full load; under `cargo test --benches` each
//! route runs once with a few hundred messages.
//! `queue store only` is the store without network or output: tasks append and wait for
//! the commit, as senders wait for their ACK; it is the ceiling group commit on this disk
//! sets for every durable route. `MLLP -> file (syncfs)` is the file output with `filesync =
//! filesystem` (unnamed files, two `syncfs` per batch instead of one `fdatasync` per
//! file).
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use lis_router::store::{Appender, QueueStore};
use lis_router::{Router, config};
use mllp_hl7::{AckBuilder, AckCode, Message, MllpClient, MllpCodec, MllpFrame, Reply};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const MESSAGE: &[u8] =
    include_bytes!("../../crates/mllp-hl7/tests/data/oru_r01_2.5.1_synthetic_cbc_1k.hl7");

#[derive(Debug, Clone, Copy)]
enum Target {
    /// Non-durable ACK-at-once MLLP server (baseline).
    Baseline,
    /// Router: socket in -> durable queue -> file out (`filesync = file`, the default).
    File,
    /// The same with `filesync = filesystem`.
    FileSystemSync,
    /// Router: socket in -> durable queue -> socket out to an ACKing sink.
    Mllp,
    /// The durable queue store alone: tasks append directly, no network, no output
    /// (the ceiling that group commit on this disk sets for every durable route).
    StoreOnly,
}

struct Outcome {
    messages: usize,
    elapsed: Duration,
    /// Process CPU time (user + system, all threads) while the senders ran.
    cpu: Option<Duration>,
    latencies: Vec<Duration>,
    drained: Option<Duration>,
    /// The run's directory, removed only when the whole bench ends: deleting tens of
    /// thousands of output files makes ext4 skip the recently freed inodes on every
    /// create for a while, which would bill one run's clean-up to the next run.
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// An MLLP server that ACKs every message at once (used as baseline and as the sink of
/// the MLLP -> MLLP route); counts what it received.
async fn ack_server(
    listener: TcpListener,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let received = std::sync::Arc::clone(&received);
        tokio::spawn(async move {
            let mut framed = Framed::new(stream, MllpCodec::new());
            while let Some(Ok(frame)) = framed.next().await {
                if let MllpFrame::Message(payload) = frame {
                    let Ok(message) = Message::parse(&payload) else {
                        break;
                    };
                    let Ok(ack) = AckBuilder::new(&message).build() else {
                        break;
                    };
                    if framed.send(Bytes::from(ack)).await.is_err() {
                        break;
                    }
                    // Delivered once its ACK is out. Every sender sends the same message,
                    // so a redelivery (none without a failure) would count too.
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
}

/// Where a load generator's senders send to.
#[derive(Clone)]
enum Peer {
    /// An MLLP server: one connection per sender, an HL7 ACK awaited per message.
    Mllp(SocketAddr),
    /// The queue store itself: each append awaited until committed.
    Store(Appender),
}

/// One stop-and-wait sender.
enum Sender {
    Mllp(Box<MllpClient<tokio::net::TcpStream>>),
    Store(Appender),
}

impl Sender {
    async fn connect(peer: Peer) -> Self {
        match peer {
            Peer::Mllp(address) => Self::Mllp(Box::new(
                MllpClient::connect(address)
                    .await
                    .expect("connect")
                    .with_ack_timeout(Duration::from_secs(30)),
            )),
            Peer::Store(appender) => Self::Store(appender),
        }
    }

    /// Sends the message and waits for its ACK (or commit).
    async fn send(&mut self) {
        match self {
            Self::Mllp(client) => {
                let reply = client.send(MESSAGE).await.expect("ACK");
                // Only an accept counts: an AR (a commit that failed) is answered fast and
                // would flatter both the rate and the latencies.
                assert!(
                    matches!(
                        reply,
                        Reply::Ack {
                            code: AckCode::ApplicationAccept | AckCode::CommitAccept,
                            ..
                        }
                    ),
                    "{reply:?}"
                );
            }
            Self::Store(appender) => {
                appender
                    .append(Bytes::from_static(MESSAGE))
                    .await
                    .expect("commit");
            }
        }
    }
}

async fn load(peer: Peer, senders: usize, per_sender: usize) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let peer = peer.clone();
            tokio::spawn(async move {
                let mut sender = Sender::connect(peer).await;
                let mut latencies = Vec::with_capacity(per_sender);
                for _ in 0..per_sender {
                    let sent = Instant::now();
                    sender.send().await;
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(senders * per_sender);
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    (start.elapsed(), latencies)
}

/// `senders` tasks append `per_sender` messages each to a store, each waiting for its
/// commit before the next, as a stop-and-wait sender waits for its ACK.
async fn store_only(senders: usize, per_sender: usize) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = QueueStore::open(dir.path(), &[("q".into(), vec!["out".into()])]).expect("store");
    let cpu_before = process_cpu();
    let peer = Peer::Store(store.appender("q").expect("queue"));
    let (elapsed, latencies) = load(peer, senders, per_sender).await;
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    store.close();
    Outcome {
        messages: senders * per_sender,
        elapsed,
        cpu,
        latencies,
        drained: None,
        dir,
    }
}

async fn run(target: Target, senders: usize, per_sender: usize) -> Outcome {
    if let Target::StoreOnly = target {
        return store_only(senders, per_sender).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink_port = free_port();
    let sink = TcpListener::bind(("127.0.0.1", sink_port))
        .await
        .expect("bind sink");
    let sink_task = tokio::spawn(ack_server(sink, std::sync::Arc::clone(&received)));
    let in_port = free_port();
    let output = match target {
        Target::Baseline | Target::StoreOnly | Target::File => {
            "transtech = file\ntransdir = out\nmessagedir = out\nsuffix = .hl7\n".to_owned()
        }
        Target::FileSystemSync => {
            "transtech = file\ntransdir = out\nmessagedir = out\nsuffix = .hl7\nfilesync = filesystem\n"
                .to_owned()
        }
        Target::Mllp => format!(
            "transtech = socket\ntransdir = out\ncreateserversocket = False\nport = {sink_port}\nusehl7 = True\n"
        ),
    };
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {in_port}\n\
         [out]\nqueuename = q\n{output}"
    );
    let router = match target {
        Target::Baseline | Target::StoreOnly => None,
        _ => {
            let loaded = config::load_str(&text, &dir.path().join("router.cfg")).expect("config");
            Some(Router::start(&loaded.config).await.expect("router"))
        }
    };
    let address = match &router {
        Some(router) => router.local_addr("in").expect("bound"),
        None => SocketAddr::from(([127, 0, 0, 1], sink_port)),
    };
    if matches!(target, Target::File | Target::FileSystemSync) {
        // A router's file outputs date no name in the second they started in (names stay
        // unique across restarts): the first file route would otherwise count that pause.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let rest = Duration::from_secs(1)
            .saturating_sub(Duration::from_nanos(u64::from(now.subsec_nanos())));
        tokio::time::sleep(rest + Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let cpu_before = process_cpu();
    let (elapsed, latencies) = load(Peer::Mllp(address), senders, per_sender).await;
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let messages = senders * per_sender;

    // How long the output takes to deliver everything (the queue drains behind the ACKs).
    let delivered = || match target {
        Target::Baseline | Target::StoreOnly => messages,
        Target::File | Target::FileSystemSync => {
            // Final names only: a batch sits under temporary names (`.NAME@out.tmp`) until
            // its contents are durable.
            std::fs::read_dir(dir.path().join("out")).map_or(0, |d| {
                d.filter(|entry| {
                    entry.as_ref().is_ok_and(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        !name.starts_with('.') && name.ends_with(".hl7")
                    })
                })
                .count()
            })
        }
        Target::Mllp => received.load(std::sync::atomic::Ordering::Relaxed),
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    // Polled gently: counting a directory of 40k files costs milliseconds of CPU that
    // the file output would otherwise use.
    while delivered() < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = match target {
        Target::Baseline => None,
        _ => (delivered() >= messages).then(|| started.elapsed()),
    };
    if let Some(router) = router {
        router.shutdown().await;
    }
    sink_task.abort();
    Outcome {
        messages,
        elapsed,
        cpu,
        latencies,
        drained,
        dir,
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, in clock
/// ticks of 10 ms); `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Criterion's options that take a value: their values are not name filters.
const VALUE_OPTIONS: &[&str] = &[
    "--warm-up-time",
    "--measurement-time",
    "--sample-size",
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--nresamples",
    "--output-format",
    "--plotting-backend",
    "--color",
    "--format",
];

/// What the command line asks of this bench, read as criterion reads it, so that one
/// `cargo bench` command line serves every bench of the package.
struct Invocation {
    /// `cargo bench` passes `--bench`; `cargo test --benches` does not: then each route
    /// runs once, briefly, as criterion's benches do in test mode.
    quick: bool,
    /// `--list`: name the routes, run nothing.
    list: bool,
    /// Name filters (`cargo bench -- mllp_decode`): a route runs when its id contains
    /// one of them, or when there are none.
    filters: Vec<String>,
    /// `--exact`: a filter must be the whole id.
    exact: bool,
}

impl Invocation {
    fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut invocation = Self {
            quick: true,
            list: false,
            filters: Vec::new(),
            exact: false,
        };
        let mut test_mode = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => invocation.quick = false,
                // Criterion's smoke mode (`cargo bench -- --test`): run once, briefly.
                "--test" => test_mode = true,
                "--list" => invocation.list = true,
                "--exact" => invocation.exact = true,
                option if VALUE_OPTIONS.contains(&option) => {
                    args.next();
                }
                option if option.starts_with('-') => {}
                filter => invocation.filters.push(filter.to_owned()),
            }
        }
        invocation.quick |= test_mode;
        invocation
    }

    fn wants(&self, id: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                if self.exact {
                    id == f
                } else {
                    id.contains(f.as_str())
                }
            })
    }
}

fn main() {
    let invocation = Invocation::from_args(std::env::args().skip(1));
    let quick = invocation.quick;
    let total: usize = std::env::var("ROUTER_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 320 } else { 40_000 });
    let only = std::env::var("ROUTER_BENCH_ONLY").unwrap_or_default();
    let mut runs = Vec::new();
    for (name, id, target) in [
        ("baseline (ACK at once)", "baseline", Target::Baseline),
        ("queue store only", "store", Target::StoreOnly),
        ("MLLP -> file (durable)", "mllp_to_file", Target::File),
        (
            "MLLP -> file (syncfs)",
            "mllp_to_file_syncfs",
            Target::FileSystemSync,
        ),
        ("MLLP -> MLLP (durable)", "mllp_to_mllp", Target::Mllp),
    ] {
        for senders in [1, 16] {
            let id = format!("router/{id}/{senders}");
            let senders_wanted =
                std::env::var("ROUTER_BENCH_SENDERS").map_or(true, |v| v == senders.to_string());
            if name.contains(only.as_str()) && senders_wanted && invocation.wants(&id) {
                runs.push((name, id, target, senders));
            }
        }
    }
    if invocation.list {
        for (_, id, _, _) in &runs {
            println!("{id}: bench");
        }
        return;
    }
    if runs.is_empty() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("router load generator: 1 KB ORU^R01, HL7 ACK per message, loopback");
    println!(
        "{:<24} {:>7} {:>9} {:>12} {:>9} {:>9} {:>9} {:>16} {:>14}",
        "route",
        "senders",
        "messages",
        "ACKed msg/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "delivered msg/s",
        "CPU us/msg"
    );
    let mut finished_dirs = Vec::new();
    for (name, _, target, senders) in runs {
        let per_sender = if senders == 1 {
            total / 4
        } else {
            total / senders
        };
        let mut outcome = runtime.block_on(run(target, senders, per_sender));
        outcome.latencies.sort_unstable();
        let rate = outcome.messages as f64 / outcome.elapsed.as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let delivered = match outcome.drained {
            Some(d) => format!("{:.0}", outcome.messages as f64 / d.as_secs_f64()),
            None => "-".to_owned(),
        };
        let cpu = match outcome.cpu {
            Some(cpu) => format!("{:.1}", cpu.as_secs_f64() * 1e6 / outcome.messages as f64),
            None => "-".to_owned(),
        };
        println!(
            "{:<24} {:>7} {:>9} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>16} {:>14}",
            name,
            senders,
            outcome.messages,
            rate,
            ms(percentile(&outcome.latencies, 0.50)),
            ms(percentile(&outcome.latencies, 0.99)),
            ms(*outcome.latencies.last().unwrap_or(&Duration::ZERO)),
            delivered,
            cpu,
        );
        finished_dirs.push(outcome.dir);
    }
}
