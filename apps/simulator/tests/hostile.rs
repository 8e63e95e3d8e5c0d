//! Hostile peers on the simulator's network surfaces: what they can make it hold in memory,
//! how long they can keep a connection, and how much they can make it log.

mod common;

use std::time::Duration;

use common::{Sim, WAIT, connect, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The simulator's peak resident memory so far, in KiB (`VmHWM`).
fn peak_rss_kib(sim: &Sim) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", sim.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Sends one MLLP message and reads its reply, up to FS CR.
async fn mllp_exchange(s: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![0x0b];
    framed.extend_from_slice(payload);
    framed.extend_from_slice(b"\x1c\r");
    s.write_all(&framed).await.unwrap();
    let mut reply = Vec::new();
    while !reply.ends_with(b"\x1c\r") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        assert!(n > 0, "connection closed without a reply");
        reply.extend_from_slice(&buf[..n]);
    }
    reply
}

/// The API still answers a request: whatever the test did to it took no more than its own
/// connections.
async fn assert_api_answers(sim: &Sim) {
    let status = http()
        .get(sim.api_url("/health"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// A simulator with one HL7 port (`mindray_bc5380`, answering at once) and the API.
fn hl7_port_and_api() -> Sim {
    Sim::start(&[
        "--listen",
        "0=mindray_bc5380",
        "--api-port",
        "0",
        "--response-delay",
        "0",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_many_short_segments_do_not_multiply_in_the_received_store() {
    let sim = hl7_port_and_api();
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    let before = peak_rss_kib(&sim);
    // 7.6 MB each (under the 8 MiB MLLP limit), 3.8 million one-letter segments.
    for i in 0..3 {
        let mut message =
            format!("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|CTL{i}|P|2.5\r").into_bytes();
        message.extend(b"Z\r".repeat(3_800_000));
        let reply = mllp_exchange(&mut s, &message).await;
        assert!(
            String::from_utf8_lossy(&reply).contains(&format!("MSA|AA|CTL{i}")),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    let listed = http()
        .get(sim.api_url("/received?limit=3"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        listed.len() > 3 * 7_600_000,
        "{} bytes listed",
        listed.len()
    );
    let grown_mib = (peak_rss_kib(&sim) - before) / 1024;
    eprintln!("peak resident memory grew by {grown_mib} MiB");
    // 23 MB of text stored (each segment kept as its own string: over 600 MiB, and as much
    // again to list them); allow the decoder's buffer, a copy in flight and the reply.
    assert!(
        grown_mib < 200,
        "peak resident memory grew by {grown_mib} MiB"
    );
    drop(s);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// `GET /received` is written while it is serialized: a message of control characters, each
/// six bytes of JSON (`\u0001`) in both `text` and `records`, lists as twelve times its size,
/// and the whole list used to be built in memory first (768 MB for a full 64 MiB store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_the_received_store_does_not_hold_its_json() {
    let sim = hl7_port_and_api();
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    let mut message = b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|CTL1|P|2.5\rOBX|1|TX|||".to_vec();
    message.extend(b"\x01".repeat(7_000_000));
    let reply = mllp_exchange(&mut s, &message).await;
    assert!(String::from_utf8_lossy(&reply).contains("MSA|AA|CTL1"));
    let before = peak_rss_kib(&sim);
    let mut listing = http().get(sim.api_url("/received")).send().await.unwrap();
    assert_eq!(
        listing.headers()["content-type"],
        "application/json",
        "{:?}",
        listing.headers()
    );
    let (mut length, mut head, mut tail) = (0, Vec::new(), Vec::new());
    while let Some(chunk) = listing.chunk().await.unwrap() {
        length += chunk.len();
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64)]);
        }
        tail = chunk.to_vec();
    }
    assert!(length > 12 * 7_000_000, "{length} bytes listed");
    assert!(head.starts_with(b"[{\"peer\":\"127.0.0.1:"), "{head:?}");
    assert!(tail.ends_with(b"\"}]"), "{tail:?}");
    let grown_mib = (peak_rss_kib(&sim) - before) / 1024;
    eprintln!("peak resident memory grew by {grown_mib} MiB listing {length} bytes");
    assert!(
        grown_mib < 32,
        "peak resident memory grew by {grown_mib} MiB listing {length} bytes"
    );
}

/// Waits until the peer closes `s` (EOF or reset), reading and dropping what comes; `false`
/// when it is still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_that_never_finishes_its_request_head_is_closed() {
    let sim = Sim::start(&["--listen", "0=horiba_pentra60", "--api-port", "0"]);
    let api = sim.api.unwrap();
    // Slowloris: half a head, then a header line now and then; and a client that says nothing.
    let mut partial = connect(api).await;
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(api).await;
    let trickle = async {
        for i in 0..8 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if partial
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        closed_within(&mut partial, Duration::from_secs(20)).await
    };
    let (partial_closed, silent_closed) =
        tokio::join!(trickle, closed_within(&mut silent, Duration::from_secs(60)));
    assert!(
        partial_closed,
        "a request head trickled in for a minute was never cut off"
    );
    assert!(
        silent_closed,
        "a connection without a request was kept for a minute"
    );
    assert_api_answers(&sim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_at_most_max_connections_at_once() {
    let sim = Sim::start(&[
        "--listen",
        "0=horiba_pentra60",
        "--api-port",
        "0",
        "--max-connections",
        "3",
    ]);
    let api = sim.api.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect(api).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let mut extra = connect(api).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(10)).await,
        "a fourth connection was kept with --max-connections 3"
    );
    // A slot freed is taken again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_api_answers(&sim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_frames_on_an_mllp_port_log_a_bounded_number_of_lines() {
    let sim = common::LoggedSim::start(&["--listen", "0=mindray_bc5380", "--response-delay", "0"]);
    let mut s = connect(sim.sim.port_of("mindray_bc5380")).await;
    let local_port = s.local_addr().unwrap().port();
    // 1,000 empty frames and 500 that are not HL7: each is answered with the NAK block.
    let mut junk = b"\x0b\x1c\r".repeat(1000);
    junk.extend(b"\x0bjunk\x1c\r".repeat(500));
    s.write_all(&junk).await.unwrap();
    let mut replies = Vec::new();
    while replies.len() < 1500 * 4 {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("NAK blocks missing")
            .unwrap();
        assert!(n > 0, "closed after {} bytes of replies", replies.len());
        replies.extend_from_slice(&buf[..n]);
    }
    assert_eq!(replies, b"\x0b\x15\x1c\r".repeat(1500));
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = sim.log();
    let peer = format!("127.0.0.1:{local_port}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&peer)).collect();
    assert!(
        lines.len() <= 12,
        "{} log lines for one connection's junk",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1490 more protocol problem(s) not logged")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_transfers_on_an_astm_port_log_a_bounded_number_of_lines() {
    let sim = common::LoggedSim::start(&["--listen", "0=horiba_pentra60", "--response-delay", "0"]);
    let mut s = connect(sim.sim.port_of("horiba_pentra60")).await;
    let local_port = s.local_addr().unwrap().port();
    // Orders without their L record: each is kept, not answered, and was warned about.
    for _ in 0..40 {
        common::send_records(&mut s, &["H|\\^&", "O|1|S1||^^^WBC"]).await;
    }
    // One complete field query afterwards is still answered.
    common::send_records(&mut s, &["H|\\^&", "L|1|N"]).await;
    let records = common::receive_records(&mut s).await;
    assert!(records[0].starts_with("H|"), "{records:?}");
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = sim.log();
    let peer = format!("127.0.0.1:{local_port}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&peer) && l.contains("WARN"))
        .collect();
    assert!(lines.len() <= 12, "{} warnings: {lines:#?}", lines.len());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("30 more protocol problem(s) not logged")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_beyond_the_limit_logs_ten_refusals_a_minute() {
    let sim =
        common::LoggedSim::start(&["--listen", "0=horiba_pentra60", "--max-connections", "1"]);
    let addr = sim.sim.port_of("horiba_pentra60");
    let _held = connect(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..200 {
        let mut s = connect(addr).await;
        assert!(
            closed_within(&mut s, WAIT).await,
            "a refused connection was kept"
        );
    }
    let text = sim.log();
    let refusals: Vec<&str> = text.lines().filter(|l| l.contains("refusing")).collect();
    assert_eq!(refusals.len(), 10, "{refusals:#?}");
    assert!(
        refusals[9].contains("further refusals this minute are counted"),
        "{refusals:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_is_logged_once_and_then_its_end() {
    // A low descriptor limit for the simulator alone, set by the shell it is started from.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 48 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_simulator"),
        "--listen",
        "0=horiba_pentra60",
    ])
    .env("RUST_LOG", "info");
    let sim = common::LoggedSim::start_with(cmd);
    let addr = sim.sim.port_of("horiba_pentra60");
    // More connections than descriptors: the rest wait in the backlog while accepts fail.
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(connect(addr).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Accepting works again.
    let mut s = connect(addr).await;
    common::send_records(&mut s, &["H|\\^&", "L|1|N"]).await;
    let records = common::receive_records(&mut s).await;
    assert!(records[0].starts_with("H|"), "{records:?}");
    let text = sim.log();
    // EMFILE, retried every 100 ms for two seconds.
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("os error 24")).collect();
    // Once per run of failures (the backlog, drained, can make a second one), not every retry.
    assert!((1..=3).contains(&failed.len()), "{failed:#?}");
    assert!(text.contains("accepting connections again after"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mllp_message_over_the_size_limit_is_answered_with_a_nak_block() {
    let sim = Sim::start(&["--listen", "0=mindray_bc5380", "--response-delay", "0"]);
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    // 9 MB, over the 8 MiB limit: the simulator skips it, holding none of it.
    let mut big = b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|BIG|P|2.5\rOBX|1|ST|X||".to_vec();
    big.extend(std::iter::repeat_n(b'y', 9_000_000));
    big.push(b'\r');
    assert_eq!(mllp_exchange(&mut s, &big).await, b"\x0b\x15\x1c\r");
    // The connection goes on: the next message is acknowledged.
    let reply = mllp_exchange(
        &mut s,
        b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|NEXT|P|2.5\rPID|1\r",
    )
    .await;
    assert!(
        String::from_utf8_lossy(&reply).contains("MSA|AA|NEXT"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_orders_open_a_bounded_number_of_result_pushes() {
    // The destination takes connections and never answers.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_port = sink.local_addr().unwrap().port().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = sink.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let mut cmd = common::command(&["--listen", "0=mindray_bc5380", "--response-delay", "0"]);
    cmd.env("ORDER_RESULT_PUSH_HOST", "127.0.0.1")
        .env("ORDER_RESULT_PUSH_PORT", &sink_port);
    let sim = Sim::start_with(cmd);
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    let mut orders = Vec::new();
    for id in 0..100 {
        orders.push(0x0b);
        orders.extend(
            format!(
                "MSH|^~\\&|LIS|LAB|MINDRAY|BC-5380|20260101||ORM^O01|{id}|P|2.3.1\rPID|1||P1\rORC|NW|PL-{id}|\rOBR|1|PL-{id}|FI-{id}|^^^WBC^White cells\r"
            )
            .bytes(),
        );
        orders.extend(b"\x1c\r");
    }
    s.write_all(&orders).await.unwrap();
    // Time enough for a push per order to connect, were they not bounded (well within the
    // pushes' 10 s ACK timeout, so none has ended yet).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=32).contains(&open),
        "{open} order-result pushes open at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_request_body_that_never_arrives_in_full_is_cut_off() {
    let sim = Sim::start(&["--listen", "0=horiba_pentra60", "--api-port", "0"]);
    let mut s = connect(sim.api.unwrap()).await;
    s.write_all(
        b"POST /simulate/hl7/mindray_bc5380 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // A byte every 5 s, for a minute: the body never completes.
    let mut reply = Vec::new();
    let mut closed = false;
    for _ in 0..12 {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
            Err(_) => {
                if s.write_all(b" ").await.is_err() {
                    closed = true;
                    break;
                }
            }
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        closed,
        "a body trickled in for a minute was never cut off; got {reply:?}"
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("not received in full"), "{reply}");
}

/// A client that asks for a large `/received` and never reads the reply is disconnected once
/// nothing has been read for 30 s; it used to hold the reply (up to the 64 MiB store and as much
/// again in JSON) and one of the API's connections for as long as it stayed connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_that_never_reads_its_reply_is_disconnected() {
    let sim = hl7_port_and_api();
    let mut s = connect(sim.port_of("mindray_bc5380")).await;
    for i in 0..2 {
        let mut message =
            format!("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|CTL{i}|P|2.5\rOBX|1|TX|||").into_bytes();
        message.extend(b"A".repeat(7_000_000));
        let reply = mllp_exchange(&mut s, &message).await;
        assert!(String::from_utf8_lossy(&reply).contains(&format!("MSA|AA|CTL{i}")));
    }
    let full = http()
        .get(sim.api_url("/received"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(full > 14_000_000, "{full} bytes listed");
    // A small receive window, so that the reply cannot all sit in our buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut deaf = socket.connect(sim.api.unwrap()).await.unwrap();
    deaf.write_all(b"GET /received HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    // Now read: what the buffers held, then the end, well before the whole reply.
    let mut got = 0;
    let closed = loop {
        let mut buf = [0u8; 65536];
        match tokio::time::timeout(WAIT, deaf.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => got += n,
            Err(_) => break false,
        }
    };
    assert!(closed, "still connected after reading {got} bytes");
    assert!(
        got < full,
        "the whole reply ({got} bytes) was kept for the deaf client"
    );
    assert_api_answers(&sim).await;
}

/// A request that is not valid HTTP (a `Content-Length` that is no number) gets hyper's own
/// 400 without a body, before any route runs; the log says which request and why. Twelve such
/// requests in a row log ten, the rest counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_is_not_valid_http_is_logged_with_the_reason() {
    let sim = common::LoggedSim::start(&["--listen", "0=horiba_pentra60", "--api-port", "0"]);
    let api = sim.sim.api.unwrap();
    for _ in 0..12 {
        let mut s = connect(api).await;
        s.write_all(b"POST /simulate/astm/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut reply))
            .await
            .expect("the connection closed")
            .unwrap();
        assert!(
            reply.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    // Each line is written once its connection has ended, maybe after the client saw it end.
    let deadline = std::time::Instant::now() + WAIT;
    let mut log = sim.log();
    while log.matches("is not valid HTTP").count() < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = sim.log();
    }
    // Time for an eleventh line, were there one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = sim.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("is not valid HTTP"))
        .collect();
    assert_eq!(lines.len(), 10, "{log}");
    assert!(lines[0].contains("content-length"), "{log}");
    assert!(
        lines[0].contains("(HTTP): request from 127.0.0.1:"),
        "{log}"
    );
}
