//! Fault injection on the wire, push options, port-map sources and E1381 timers.

mod common;

use std::time::{Duration, Instant};

use astm_frame::FrameEnd;
use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// The arguments of a simulator with one `stago_start4` port, `extra` after.
fn stago_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--listen", "0=stago_start4", "-d", "0", "--seed", "1"];
    args.extend_from_slice(extra);
    args
}

fn stago_with(extra: &[&str]) -> Sim {
    Sim::start(&stago_args(extra))
}

/// Asks the simulator for its message (a field query) and acknowledges its ENQ.
async fn field_query(s: &mut TcpStream) {
    send_records(s, &["H|\\^&|||LIS", "L|1|N"]).await;
    assert_eq!(read_byte(s).await, ENQ, "the simulator opens its reply");
    write(s, &[ACK]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_bad_checksum_corrupts_the_frame_checksum() {
    let sim = stago_with(&["--fault", "bad-checksum=1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    assert_eq!(read_byte(&mut s).await, STX);
    let sent = read_frame_rest(&mut s).await;
    // The same frame number and text, correctly encoded, differ only in the checksum.
    let n = sent.len();
    let end = if sent[n - 5] == 0x03 {
        FrameEnd::End
    } else {
        FrameEnd::Intermediate
    };
    let good = frame(sent[1] - b'0', &sent[2..n - 5], end);
    assert_eq!(sent[..n - 4], good[..n - 4], "text unchanged");
    assert_ne!(sent[n - 4..n - 2], good[n - 4..n - 2], "checksum corrupted");
    assert_eq!(&sent[n - 2..], b"\r\n");
    // A NAK makes it retransmit (corrupted again, fault probability 1).
    write(&mut s, &[NAK]).await;
    assert_eq!(read_byte(&mut s).await, STX);
    assert_eq!(read_frame_rest(&mut s).await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delay_ms_delays_every_transmission() {
    let sim = stago_with(&["--fault", "delay-ms=400"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    let started = Instant::now();
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "ACK after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delay_ms_delays_the_busy_nak_of_nak_enq_too() {
    let sim = stago_with(&["--fault", "delay-ms=600", "--fault", "nak-enq=1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    let started = Instant::now();
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, NAK);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "NAK after {:?}",
        started.elapsed()
    );
}

/// A `genexpert_astm` port with `nak-enq=1`, connected to, its ENQ acknowledged: the
/// simulator sends its message on connect, so no ENQ of the LIS opens that session.
async fn genexpert_sending_with_nak_enq() -> (Sim, TcpStream) {
    let sim = Sim::start(&[
        "--listen",
        "0=genexpert_astm",
        "-d",
        "0",
        "--fault",
        "nak-enq=1",
    ]);
    let mut s = connect(sim.port_of("genexpert_astm")).await;
    assert_eq!(read_byte(&mut s).await, ENQ);
    write(&mut s, &[ACK]).await;
    (sim, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_nak_enq_leaves_an_enq_in_place_of_a_frame_reply_to_the_link() {
    let (_sim, mut s) = genexpert_sending_with_nak_enq().await;
    assert_eq!(read_byte(&mut s).await, STX);
    let first = read_frame_rest(&mut s).await;
    // Any character but ACK or EOT in reply to a frame is a NAK (§6.5.1.2): the frame again,
    // not a busy NAK as if the ENQ opened a session.
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, STX, "the frame is sent again");
    assert_eq!(read_frame_rest(&mut s).await, first);
}

/// The ACK to the last frame and the LIS's own ENQ in one read: the ACK ends the transfer
/// (EOT), so the ENQ opens a session and gets the busy NAK. It was taken as part of the
/// transfer the ACK ended and accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_nak_enq_refuses_an_enq_read_with_the_last_frames_ack() {
    let (_sim, mut s) = genexpert_sending_with_nak_enq().await;
    loop {
        assert_eq!(read_byte(&mut s).await, STX);
        // One record per frame: the L record's is the last.
        if read_frame_rest(&mut s).await[2..].starts_with(b"L|") {
            break;
        }
        write(&mut s, &[ACK]).await;
    }
    write(&mut s, &[ACK, ENQ]).await;
    assert_eq!(read_byte(&mut s).await, EOT);
    assert_eq!(read_byte(&mut s).await, NAK, "the busy NAK of nak-enq");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_disconnect_mid_frame_sends_half_a_frame_and_closes() {
    let sim = stago_with(&["--fault", "disconnect-mid-frame=1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("connection closed")
        .expect("read");
    assert_eq!(rest.first(), Some(&STX), "{rest:?}");
    assert!(rest.len() > 3, "part of a frame: {rest:?}");
    assert!(
        !rest.contains(&b'\n'),
        "the frame is cut before its end: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_duplicate_frame_sends_each_frame_twice() {
    let sim = stago_with(&["--fault", "duplicate-frame=1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    assert_eq!(read_byte(&mut s).await, STX);
    let first = read_frame_rest(&mut s).await;
    assert_eq!(read_byte(&mut s).await, STX, "a second copy before any ACK");
    let second = read_frame_rest(&mut s).await;
    assert_eq!(first, second);
    assert!(first.starts_with(b"\x021H|"));
    // Both copies acknowledged (the receiver's duty): the next frame is frame 2, not a resend.
    write(&mut s, &[ACK, ACK]).await;
    assert_eq!(read_byte(&mut s).await, STX);
    let next = read_frame_rest(&mut s).await;
    assert_eq!(next[1], b'2', "{}", String::from_utf8_lossy(&next));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_corrupted_frame_nakd_twice_leaves_the_next_session_alone() {
    // Both faults fire on every frame: each corrupted frame goes out twice and the LIS NAKs
    // both copies. The NAK of the earlier copy is not a reply of its own; once the transfer
    // has ended nothing is left over to swallow the LIS's ACK to the next session's ENQ.
    let sim = stago_with(&["--fault", "bad-checksum=1", "--fault", "duplicate-frame=1"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    let mut copies = 0;
    loop {
        match read_byte(&mut s).await {
            STX => {
                let f = read_frame_rest(&mut s).await;
                assert_eq!(f[1], b'1', "only frame 1 is ever sent");
                copies += 1;
                write(&mut s, &[NAK]).await;
            }
            EOT => break,
            other => panic!("unexpected byte {other:#04x}"),
        }
    }
    assert_eq!(copies, 12, "six transmissions of frame 1, each sent twice");
    field_query(&mut s).await;
    assert_eq!(
        read_byte(&mut s).await,
        STX,
        "the ACK to the second session's ENQ was taken for a duplicate's reply"
    );
}

/// §6.5.2.3: a transfer the LIS stops answering ends with EOT, and the message is sent again,
/// whole, after the hold-off. It used to be dropped with "not delivered".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_the_lis_stops_answering_is_repeated_whole_later() {
    let logged = LoggedSim::start(&stago_args(&["--link-timer-ms", "300"]));
    let mut s = connect(logged.sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    assert_eq!(read_byte(&mut s).await, STX);
    let first = read_frame_rest(&mut s).await;
    assert!(first.starts_with(b"\x021H|"), "{first:?}");
    // No reply: the simulator gives up on the transfer at its reply timer.
    assert_eq!(read_byte(&mut s).await, EOT);
    let repeat = receive_bytes(&mut s).await;
    assert!(repeat.starts_with(&first[2..first.len() - 5]), "{repeat:?}");
    assert!(repeat.ends_with(b"L|1|N\r"), "{repeat:?}");
    let log = logged.log_holding(&["message sent to"]);
    assert!(
        log.contains("transfer 1 of 3 failed (no reply to frame 1 within the reply timer)"),
        "{log}"
    );
    assert!(!log.contains("not delivered"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_fault_applies_only_to_its_template() {
    let sim = Sim::start(&[
        "--listen",
        "0=stago_start4",
        "--listen",
        "0=horiba_micros60",
        "-d",
        "0",
        "--fault",
        "stago_start4:nak-enq=1",
    ]);
    let mut stago = connect(sim.port_of("stago_start4")).await;
    write(&mut stago, &[ENQ]).await;
    assert_eq!(
        read_byte(&mut stago).await,
        NAK,
        "scoped fault on stago_start4"
    );
    let mut micros = connect(sim.port_of("horiba_micros60")).await;
    write(&mut micros, &[ENQ]).await;
    assert_eq!(
        read_byte(&mut micros).await,
        ACK,
        "no fault on horiba_micros60"
    );
}

#[test]
fn unknown_fault_scope_is_refused() {
    let out = command(&["--listen", "0=stago_start4", "--fault", "nosuch:nak-enq=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scope \"nosuch\""), "{stderr}");
    assert!(
        stderr.contains("`serial`"),
        "every scope is named: {stderr}"
    );
}

/// Runs a push in a blocking task; returns its output.
async fn push(args: Vec<String>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_connection_sends_every_message_on_one_connection() {
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let pushing = tokio::spawn(push(
        [
            "--push",
            &format!("tcp://{addr}"),
            "--template",
            "stago_start4",
            "-c",
            "3",
            "-i",
            "0",
            "--keep-connection",
        ]
        .map(str::to_owned)
        .to_vec(),
    ));
    let (mut s, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .unwrap()
        .unwrap();
    for i in 0..3 {
        let records = receive_records(&mut s).await;
        assert!(records[0].starts_with("H|"), "session {i}: {records:?}");
        assert_eq!(records.last().unwrap(), "L|1|N");
    }
    let out = pushing.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The process has exited: any other connection would be waiting in the backlog now.
    let other = tokio::time::timeout(Duration::from_millis(200), lis.accept()).await;
    assert!(other.is_err(), "a second connection was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_ip_binds_the_local_address() {
    // Any 127/8 address is local on Linux; a non-default one proves the bind.
    let source = if std::net::TcpListener::bind("127.0.0.3:0").is_ok() {
        "127.0.0.3"
    } else {
        "127.0.0.1"
    };
    let lis = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = lis.local_addr().unwrap();
    let pushing = tokio::spawn(push(
        [
            "--push",
            &format!("tcp://{addr}"),
            "--template",
            "stago_start4",
            "--source-ip",
            source,
        ]
        .map(str::to_owned)
        .to_vec(),
    ));
    let (mut s, peer) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer.ip().to_string(), source);
    receive_records(&mut s).await;
    assert!(pushing.await.unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_templates_env_sets_the_port_map() {
    let mut cmd = command(&["-d", "0"]);
    cmd.env("PORT_TEMPLATES", r#"{"0": "horiba_micros60"}"#);
    let sim = Sim::start_with(cmd);
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    let mut s = connect(sim.port_of("horiba_micros60")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("ABX^MICROS60"), "{records:?}");

    let mut cmd = command(&["-d", "0"]);
    cmd.env("PORT_TEMPLATES", "{not json");
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT_TEMPLATES"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_port_mode_with_template_flag_or_astm_template_env() {
    let sim = Sim::start(&["--port", "0", "--template", "stago_start4", "-d", "0"]);
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    let mut s = connect(sim.port_of("stago_start4")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    assert!(receive_records(&mut s).await[0].contains("STAGO^START4"));
    drop(sim);

    // ASTM_TEMPLATE gives single-port mode when the port map is empty (PORT_TEMPLATES={}),
    // as in the reference.
    let mut cmd = command(&["-d", "0"]);
    cmd.env("ASTM_TEMPLATE", "horiba_pentra60")
        .env("PORT_TEMPLATES", "{}")
        .env("ASTM_PORT", "0");
    let sim = Sim::start_with(cmd);
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    let mut s = connect(sim.port_of("horiba_pentra60")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    assert!(receive_records(&mut s).await[0].contains("ABX^PENTRA60"));
}

/// In single-port mode the reference takes `ASTM_TEMPLATE` only when it is an ASTM
/// template; another (HL7 here) is warned about and ignored, and the port gives the legacy
/// `fields.json` replies. It became an HL7 port, which a compose file written for the
/// reference does not expect on its ASTM port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_astm_astm_template_is_ignored_in_single_port_mode() {
    let mut cmd = command(&["-d", "0"]);
    cmd.env("ASTM_TEMPLATE", "mindray_bc5380")
        .env("PORT_TEMPLATES", "{}")
        .env("ASTM_PORT", "0");
    let logged = LoggedSim::start_with(cmd);
    let sim = &logged.sim;
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    assert_eq!(sim.listeners[0].0, "ASTM", "{:?}", sim.listeners);
    let records = field_query_reply(sim.port_of("-")).await;
    assert_eq!(records[0], LEGACY_HEADER, "{records:?}");
    let log = logged.log_holding(&["ASTM_TEMPLATE=mindray_bc5380"]);
    assert!(
        log.contains("ASTM_TEMPLATE=mindray_bc5380 is not an ASTM template (its protocol is HL7)"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_reply_timeout_ends_the_session_with_eot() {
    let sim = stago_with(&["--link-timer-ms", "300"]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    field_query(&mut s).await;
    assert_eq!(read_byte(&mut s).await, STX);
    read_frame_rest(&mut s).await;
    // No ACK: after the frame-reply timer the sender gives up with EOT.
    let started = Instant::now();
    assert_eq!(read_byte(&mut s).await, EOT);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_timeout_discards_the_incomplete_transfer() {
    let sim = stago_with(&[
        "--link-timer-ms",
        "300",
        "--api-port",
        "0",
        "--order-results",
        "off",
    ]);
    let mut s = connect(sim.port_of("stago_start4")).await;
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    write(&mut s, &frame(1, b"H|\\^&|||LIS-STALE\r", FrameEnd::End)).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    // Silence beyond the receive timer (the behaviour under test is what a timer does).
    tokio::time::sleep(Duration::from_millis(900)).await;
    // The link is neutral again: a new transfer is accepted from its ENQ.
    send_records(&mut s, &["H|\\^&|||LIS-FRESH", "P|1", "L|1|N"]).await;
    let url = sim.api_url("/received?limit=10");
    let mut entries = serde_json::Value::Null;
    for _ in 0..100 {
        let text = http().get(&url).send().await.unwrap().text().await.unwrap();
        entries = serde_json::from_str(&text).unwrap();
        if entries.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = entries.as_array().unwrap();
    assert_eq!(list.len(), 1, "{entries}");
    assert_eq!(
        list[0]["records"],
        serde_json::json!(["H|\\^&|||LIS-FRESH", "P|1", "L|1|N"])
    );
}

/// Runs the simulator to its end, killing it (and failing) past `limit`.
fn run_within(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn simulator");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A LIS that accepts one connection and reads it to the end without answering anything: its
/// `tcp://` address, and what it read.
fn silent_lis() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let lis = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = format!("tcp://{}", lis.local_addr().unwrap());
    let silent = std::thread::spawn(move || {
        let (mut s, _) = lis.accept().unwrap();
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut sink);
        sink
    });
    (dest, silent)
}

/// Starts a push, lets it run for `running`, then stops it with SIGINT as a user's Ctrl-C.
fn push_interrupted_after(args: &[&str], running: Duration) -> std::process::Output {
    let child = command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn simulator");
    std::thread::sleep(running);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("pid"),
                rustix::process::Signal::KILL,
            );
            panic!("the push did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// `-C -i 0` against a LIS that is down pauses after failures (0.1 s, doubling up to 5 s)
/// instead of failing thousands of messages a second into the terminal; it ended with
/// thousands of "failed" lines in 1.5 s.
#[test]
fn a_continuous_push_to_a_down_lis_pauses_between_failures() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = format!("tcp://{}", closed.local_addr().unwrap());
    drop(closed);
    let args = [
        "--push",
        &dest,
        "--template",
        "stago_start4",
        "-C",
        "-i",
        "0",
    ];
    let out = push_interrupted_after(&args, Duration::from_millis(1500));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failures = stderr.matches("failed: ").count();
    // Failures at about 0, 0.1, 0.3, 0.7 and 1.5 s.
    assert!(
        (2..=8).contains(&failures),
        "{failures} failures:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("summary: sent 0, failed {failures},")),
        "{stderr}"
    );
}

/// A `-C` push through a LIS outage (a router killed and restarted): each failure line
/// names the pause before the next message, and the first message through after the outage
/// says how many failed, none of which is sent again. The log showed only "message N
/// failed: connection refused" lines, without the backoff, and then plain "pushed" lines, so
/// the outage's length and cost had to be worked out from the message numbers.
#[test]
fn a_continuous_push_names_its_backoff_and_the_recovery() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dest = format!("mllp://127.0.0.1:{port}");
    let args = [
        "--push",
        &dest,
        "--hl7",
        "--hl7-template",
        "mindray_bc5380",
        "-C",
        "-i",
        "0",
    ];
    let lis = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        Sim::start(&["--listen", &format!("{port}=mindray_bc5380"), "-d", "0"])
    });
    let out = push_interrupted_after(&args, Duration::from_millis(2500));
    drop(lis.join().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("message 1 (MSH-10 SIM")
            && stderr.contains(") failed: connection refused")
            && stderr.contains("; next message in 0.1 s")
            && stderr.contains("; next message in 0.2 s"),
        "{stderr}"
    );
    let failures = stderr.matches("failed: ").count();
    assert!(
        stderr.contains(&format!(
            ") pushed to {dest}, after {failures} failed message(s) in a row (not sent again)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("message {} (MSH-10 SIM", failures + 1)),
        "{stderr}"
    );
}

/// An HL7 push names each message's MSH-10 in its log line, so what was pushed can be
/// matched with what the LIS holds (a router's files, say) and a failed message that reached
/// the LIS anyway can be told from a lost one. The lines named only the message's number, and
/// the ids had to be regenerated with `--seed --dry-run`.
#[test]
fn an_hl7_push_names_each_messages_control_id() {
    let lis = Sim::start(&["--listen", "0=mindray_bc5380", "-d", "0"]);
    let dest = format!("mllp://{}", lis.port_of("mindray_bc5380"));
    let out = run_within(
        command(&[
            "--push",
            &dest,
            "--hl7",
            "--hl7-template",
            "mindray_bc5380",
            "-c",
            "2",
            "-i",
            "0",
            "--seed",
            "7",
        ]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for (n, id) in [(1, "SIM26010112000000000"), (2, "SIM26010112000000001")] {
        assert!(
            stderr.contains(&format!("message {n} (MSH-10 {id}) pushed to {dest}")),
            "{stderr}"
        );
    }
}

/// An ASTM push to a port that never answers ENQ (an integrator's `--push tcp://` at a
/// router's MLLP socket input) said nothing until the message failed after six ENQs, 140 s
/// later; each unanswered ENQ is now a warning, the first after the 15 s reply timer.
#[test]
fn an_astm_push_names_each_unanswered_enq() {
    let (dest, silent) = silent_lis();
    let args = ["--push", &dest, "--template", "stago_start4", "-c", "1"];
    let out = push_interrupted_after(&args, Duration::from_secs(17));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "push to {}: no reply to ENQ (1 in a row); EOT sent, ENQ again after the hold-off, \
             the message failing after 6. A port that never answers ENQ may not speak ASTM \
             E1381 (an MLLP port, say)",
            &dest["tcp://".len()..]
        )),
        "{stderr}"
    );
    assert_eq!(silent.join().unwrap(), [0x05, 0x04], "ENQ, then EOT");
}

/// The last unanswered ENQ says the message fails, not that another ENQ follows (timers cut to
/// 50 ms, so six ENQs take well under a second).
#[test]
fn the_last_unanswered_enq_says_the_message_fails() {
    let (dest, silent) = silent_lis();
    let args = [
        "--push",
        &dest,
        "--template",
        "stago_start4",
        "--link-timer-ms",
        "50",
    ];
    let out = command(&args).output().expect("run the simulator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let peer = &dest["tcp://".len()..];
    assert!(
        stderr.contains(&format!(
            "push to {peer}: no reply to ENQ (5 in a row); EOT sent, ENQ again after the \
             hold-off, the message failing after 6."
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "push to {peer}: no reply to ENQ (6 in a row); EOT sent, the message fails. A port \
             that never answers ENQ"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("link not established after 6 ENQs"),
        "{stderr}"
    );
    assert_eq!(silent.join().unwrap(), [0x05, 0x04].repeat(6));
}

/// Ctrl-C while a message waits for the LIS's answer says so in the summary: the message is
/// neither sent nor failed, and it used to vanish from the counts.
#[test]
fn a_message_stopped_in_flight_is_reported_unconfirmed() {
    let (dest, silent) = silent_lis();
    let args = ["--push", &dest, "--template", "stago_start4", "-c", "3"];
    let out = push_interrupted_after(&args, Duration::from_millis(1000));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "summary: sent 0, failed 0, message 1 unconfirmed (stopped before the LIS answered)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("(interrupted)"), "{stderr}");
    assert_eq!(silent.join().unwrap(), [0x05], "only the ENQ was sent");
}

/// A push that cannot work (a template of the wrong protocol, a destination for the other
/// protocol, --qc without a template) ends at once with exit 1 and one error line, even
/// with --push-continuous, instead of failing every message for ever.
#[test]
fn push_setup_mistakes_end_the_run_at_once() {
    let lis = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = lis.local_addr().unwrap();
    let (tcp, mllp) = (format!("tcp://{addr}"), format!("mllp://{addr}"));
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "--push",
                &tcp,
                "--template",
                "mindray_bs200",
                "-C",
                "-i",
                "0.1",
            ],
            "is not an ASTM template",
        ),
        (
            vec![
                "--push",
                &mllp,
                "--template",
                "stago_start4",
                "-C",
                "-i",
                "0.1",
            ],
            "mllp:// carries HL7",
        ),
        (
            vec!["--push", &tcp, "--hl7", "-C", "-i", "0.1"],
            "tcp:// carries ASTM",
        ),
        (
            vec!["--push", &tcp, "--qc", "-c", "3", "-i", "0.1"],
            "--qc requires --template",
        ),
    ];
    for (args, expected) in cases {
        let out = run_within(command(&args), Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "{args:?}: {stderr}");
    }
    // An interval that is no duration is refused by the argument parser, not a panic.
    for interval in ["inf", "NaN", "1e20"] {
        let out = run_within(
            command(&["--push", &tcp, "--template", "stago_start4", "-i", interval]),
            Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{interval}: {stderr}");
        assert!(stderr.contains("--push-interval"), "{interval}: {stderr}");
    }
    // An idle timeout too large to add to a clock reading is refused up front; it made
    // every connection's task panic when its timer was set.
    let out = run_within(
        command(&["--idle-timeout", "18446744073709551615", "--dry-run"]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--idle-timeout"), "{stderr}");
}

/// `--generate-files DIR --dry-run` wrote the file all the same (serial mode already printed
/// instead of sending); it now prints what it would write and leaves the disk alone.
#[test]
fn generate_files_with_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("imports");
    let target_text = target.display().to_string();
    let out = run_within(
        command(&[
            "--generate-files",
            &target_text,
            "--generate-files-analyzer",
            "tecan_f50",
            "--dry-run",
        ]),
        Duration::from_secs(10),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("dry run: would write {target_text}/")),
        "{stdout}"
    );
    assert!(first.contains("(CSV, "), "{stdout}");
    assert!(stdout.contains("WellPosition"), "{stdout}");
    assert!(!target.exists(), "the folder was created");
}

/// The same port given to two `--listen` listeners was refused by the OS for the second
/// ("Address already in use"), which reads as another program holding it.
#[test]
fn a_port_given_twice_to_listen_is_refused_naming_both() {
    let out = run_within(
        command(&[
            "--listen",
            "45123=stago_start4",
            "--listen",
            "45123=mindray_bc5380",
        ]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--listen \"45123=mindray_bc5380\": port 45123 is already given (--listen \
             45123=stago_start4); each listener needs its own port, or 0 for any free one"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("already in use"), "{stderr}");
}

/// A FILE template on a listening port was bound and then answered nothing ("not an ASTM
/// template" at the first query); it is refused at start, as an unknown template is.
#[test]
fn a_file_template_on_a_port_is_refused_at_start() {
    let out = run_within(
        command(&["--listen", "0=tecan_f50", "--listen", "0=stago_start4"]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "port 0: template \"tecan_f50\" writes result files (protocol FILE) and cannot \
             answer on a port"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// A bare `--push host:port` is read as the reference reads it (https://), with a warning that
/// says so and what a forgotten scheme would have been.
#[test]
fn a_push_destination_without_a_scheme_is_warned_about() {
    let out = run_within(
        command(&[
            "--push",
            "127.0.0.1:9",
            "--template",
            "stago_start4",
            "--dry-run",
        ]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "--push 127.0.0.1:9 names no scheme: taken as https://127.0.0.1:9, as the reference \
             does; for ASTM over TCP give tcp://127.0.0.1:9, for HL7 over MLLP mllp://127.0.0.1:9"
        ),
        "{stderr}"
    );
}

/// A negative number given to a numeric flag is refused naming the flag and what it takes;
/// the parser used to take it for a flag of its own (`unexpected argument '-1' found`).
#[test]
fn a_number_out_of_range_is_refused_naming_its_flag() {
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["-i", "-1"],
            &["'--push-interval <PUSH_INTERVAL>'", "0 or more, finite"],
        ),
        (
            &["--response-delay", "-5"],
            &["'--response-delay <RESPONSE_DELAY>'"],
        ),
        (&["-c", "-3"], &["'--push-count <PUSH_COUNT>'"]),
        // A push of no message: it used to send one without a word.
        (
            &["-c", "0"],
            &["'--push-count <PUSH_COUNT>'", "0 is not in 1.."],
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--template", "stago_start4", "--dry-run"];
        all.extend_from_slice(args);
        let out = run_within(command(&all), Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: {stderr}");
        }
    }
}

/// A `--push` value that cannot name a peer ends the run at once, saying what is wrong: a port
/// that is not a port was called "missing", and an HTTP URL the client could not build failed
/// every message of a `-C` run for ever.
#[test]
fn a_malformed_push_destination_is_refused_saying_what_is_wrong() {
    let cases = [
        (
            "tcp://127.0.0.1",
            "invalid TCP destination (missing port): tcp://127.0.0.1",
        ),
        (
            "tcp://127.0.0.1:abc",
            "invalid TCP destination (port \"abc\" is not a number from 1 to 65535): tcp://127.0.0.1:abc",
        ),
        (
            "tcp://127.0.0.1:0",
            "invalid TCP destination (port \"0\" is not a number from 1 to 65535)",
        ),
        (
            "tcp://127.0.0.1:99999",
            "invalid TCP destination (port \"99999\" is not a number from 1 to 65535)",
        ),
        (
            "tcp://:12001",
            "invalid TCP destination (missing host before :12001): tcp://:12001",
        ),
        (
            "http://127.0.0.1:abc",
            "invalid HTTP destination (invalid port number): http://127.0.0.1:abc",
        ),
        ("http://", "invalid HTTP destination (empty host): http://"),
    ];
    for (dest, expected) in cases {
        let out = run_within(
            command(&[
                "--push",
                dest,
                "--template",
                "stago_start4",
                "-C",
                "-i",
                "0.1",
            ]),
            Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{dest}: {stderr}");
        assert!(stderr.contains(expected), "{dest}: {stderr}");
        assert!(!stderr.contains("message 1 failed"), "{dest}: {stderr}");
    }
}

/// An empty or invalid order-result push port disables that push with a warning, as in the
/// reference, instead of stopping the simulator from starting.
#[test]
fn a_bad_order_result_push_port_only_disables_the_push() {
    for value in ["", "abc", "70000"] {
        let mut cmd = command(&["--listen", "0=stago_start4", "-d", "0"]);
        cmd.env("ORDER_RESULT_PUSH_PORT", value)
            .env("ORDER_RESULT_PUSH_ASTM_PORT", value);
        let sim = Sim::start_with(cmd);
        assert_eq!(sim.listeners.len(), 1, "{value:?}: {:?}", sim.listeners);
    }
}

/// ... and says so when it starts, naming the variable, its flag and the value, rather than
/// only when the first order's results are dropped.
#[test]
fn a_bad_order_result_push_port_is_reported_at_start() {
    let mut cmd = command(&[
        "--listen",
        "0=stago_start4",
        "--listen",
        "0=mindray_bc5380",
        "-d",
        "0",
    ]);
    cmd.env("ORDER_RESULT_PUSH_PORT", "25 75")
        .env("ORDER_RESULT_PUSH_ASTM_PORT", "12001");
    // The warning comes before `ready`, which start waits for.
    let stderr = LoggedSim::start_with(cmd).log();
    assert!(
        stderr.contains(
            "ORDER_RESULT_PUSH_PORT (--order-result-push-port) = \"25 75\" is not a port from 1 \
             to 65535; order results not pushed"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("ORDER_RESULT_PUSH_ASTM_PORT"), "{stderr}");
}

/// ASTM records sent to an ASTM port without the E1381 link protocol (no ENQ, no frames), or
/// a frame without ENQ first, got no reply and only a debug line; the log now warns.
#[test]
fn astm_without_the_link_protocol_is_logged() {
    use std::io::Write as _;
    let sim = LoggedSim::start(&["--listen", "0=stago_start4", "-d", "0"]);
    let mut s = std::net::TcpStream::connect(sim.sim.port_of("stago_start4")).unwrap();
    s.write_all(b"H|\\^&|||LIS\rL|1|N\r").unwrap();
    s.write_all(&frame(1, b"H|\\^&\r", FrameEnd::End)).unwrap();
    let stderr = sim.log_holding(&["frame outside a transfer", "junk"]);
    drop(s);
    for expected in [
        "bytes of junk outside frames skipped; got no reply (E1381: ENQ, then <STX> frames, EOT)",
        "frame outside a transfer ignored; got no reply (E1381: ENQ, then <STX> frames, EOT)",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    assert!(stderr.contains(" WARN "), "{stderr}");
}

/// HL7 sent to an HL7 port without MLLP framing (no <VT> ... <FS><CR>) was skipped without a
/// word; the log now says how many bytes, from whom, and what framing is expected.
#[test]
fn hl7_without_mllp_framing_is_logged() {
    use std::io::Write as _;
    let sim = LoggedSim::start(&["--listen", "0=mindray_bc5380", "-d", "0"]);
    let raw = "MSH|^~\\&|LIS|LAB|BC5380|LAB|20260101120000||ORM^O01|C1|P|2.3.1\r";
    let mut s = std::net::TcpStream::connect(sim.sim.port_of("mindray_bc5380")).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    drop(s);
    let stderr = sim.log_holding(&["outside any MLLP frame"]);
    let expected = format!("{} byte(s) from 127.0.0.1:", raw.len());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains(
            "at stream offset 0 outside any MLLP frame, skipped (a message must come as <VT> \
             message <FS><CR>)"
        ),
        "{stderr}"
    );
}

/// A `--file-root` that is no folder refuses every `POST /simulate/file` under it; that was
/// said nowhere but in each refusal. It is now a warning at start.
#[test]
fn a_file_root_that_is_no_folder_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("imports");
    let missing_text = missing.display().to_string();
    // The warning comes before `ready`, which start waits for.
    let stderr = LoggedSim::start(&[
        "--listen",
        "0=stago_start4",
        "--api-port",
        "0",
        "--file-root",
        &missing_text,
    ])
    .log();
    assert!(
        stderr.contains(&format!(
            "--file-root {missing_text}: not a folder (missing, or not a directory); POST \
             /simulate/file cannot write under it"
        )),
        "{stderr}"
    );
}

/// CPU time (user + system, in clock ticks) the process has used so far.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The command name in field 2 may hold spaces; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_past_the_idle_timeout_does_not_spin_the_cpu() {
    // genexpert_astm sends ENQ on connect and waits 15 s for a reply; the 1 s idle timeout
    // passes while that ENQ still waits.
    let sim = Sim::start(&[
        "--listen",
        "0=genexpert_astm",
        "-d",
        "0",
        "--idle-timeout",
        "1",
    ]);
    let s = connect(sim.port_of("genexpert_astm")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cpu_ticks(sim.child.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(sim.child.id()) - before;
    // 2 s of a busy loop is about 200 ticks; waiting for a timer costs next to nothing.
    assert!(used < 20, "{used} clock ticks of CPU in 2 s of silence");
    drop(s);
}

#[tokio::test]
async fn a_silent_astm_connection_is_closed_after_the_idle_timeout() {
    use tokio::io::AsyncReadExt as _;
    let sim = Sim::start(&["--listen", "0=horiba_pentra60", "--idle-timeout", "1"]);
    let mut s = connect(sim.port_of("horiba_pentra60")).await;
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the simulator closes a silent connection");
    assert_eq!(read.expect("clean close"), 0, "nothing is sent, then EOF");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_mllp_message_is_closed_after_the_idle_timeout_an_idle_one_is_not() {
    use tokio::io::AsyncReadExt as _;
    let sim = Sim::start(&[
        "--listen",
        "0=mindray_bc5380",
        "-d",
        "0",
        "--idle-timeout",
        "1",
    ]);
    let addr = sim.port_of("mindray_bc5380");
    // Between messages the connection may stay silent, as in the reference.
    let mut idle = connect(addr).await;
    // A message started and never finished holds a connection slot: closed.
    let mut stalled = connect(addr).await;
    write(&mut stalled, b"\x0bMSH|^~\\&|LIS|LAB").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(WAIT, stalled.read(&mut buf))
        .await
        .expect("the simulator closes a connection whose message stalled");
    assert_eq!(read.expect("clean close"), 0, "nothing is sent, then EOF");
    tokio::time::sleep(Duration::from_secs(2)).await;
    write(
        &mut idle,
        b"\x0bMSH|^~\\&|LIS|LAB|BC5380|MR|20260101||ORU^R01|CTL1|P|2.3.1\rPID|1||123\r\x1c\r",
    )
    .await;
    let n = tokio::time::timeout(WAIT, idle.read(&mut buf))
        .await
        .expect("an ACK on the idle connection")
        .expect("read");
    assert!(n > 0 && buf[0] == 0x0b, "{:?}", &buf[..n]);
}

/// A message refused for its size is still unfinished while its bytes are skipped: a peer
/// that sends more than the limit and then goes silent is closed after the idle timeout
/// too (with nothing buffered, it held its connection slot for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_mllp_message_left_unfinished_is_closed_after_the_idle_timeout() {
    use tokio::io::AsyncReadExt as _;
    let sim = Sim::start(&["--listen", "0=mindray_bc5380", "--idle-timeout", "1"]);
    let mut stalled = connect(sim.port_of("mindray_bc5380")).await;
    let mut oversized = b"\x0bMSH|".to_vec();
    oversized.resize(9 * 1024 * 1024, b'x');
    write(&mut stalled, &oversized).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, stalled.read_to_end(&mut received))
        .await
        .expect("the simulator closes a connection whose oversized message stalled");
    read.expect("clean close");
    assert_eq!(received, b"\x0b\x15\x1c\r", "the NAK block, then EOF");
}

#[tokio::test]
async fn a_connection_beyond_max_connections_is_closed_and_the_slot_comes_back() {
    use tokio::io::AsyncReadExt as _;
    // horiba_pentra60 says nothing on connect, so an open connection just waits.
    let sim = Sim::start(&["--listen", "0=horiba_pentra60", "--max-connections", "1"]);
    let port = sim.port_of("horiba_pentra60");
    let first = connect(port).await;
    let mut buf = [0u8; 16];

    let mut second = connect(port).await;
    let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("the connection over the limit is closed at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without data: {read:?}"
    );

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut third = connect(port).await;
        let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
        if waited.is_err() {
            break; // still open after 500 ms: the slot was given back
        }
        assert!(
            Instant::now() < deadline,
            "the slot of the closed connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_astm_template_is_no_template() {
    // Push / dry-run: the legacy fields.json message, as without ASTM_TEMPLATE.
    let mut cmd = command(&["--dry-run", "--seed", "1"]);
    cmd.env("ASTM_TEMPLATE", "");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("H|\\^&|||Sysmex^XN-1000^V1.0|"), "{text}");

    // Server mode with an empty port map: the single port has no template (the legacy
    // field-query reply), instead of refusing to start.
    let mut cmd = command(&["-d", "0"]);
    cmd.env("ASTM_TEMPLATE", "")
        .env("PORT_TEMPLATES", "{}")
        .env("ASTM_PORT", "0");
    let sim = Sim::start_with(cmd);
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    let mut s = connect(sim.port_of("-")).await;
    send_records(&mut s, &["H|\\^&|||LIS", "L|1|N"]).await;
    let records = receive_records(&mut s).await;
    assert!(records[0].contains("MockAnalyzer^ASTM-Mock"), "{records:?}");
}

#[test]
fn an_unknown_analyzer_type_falls_back_to_hematology_as_the_reference() {
    let out = command(&["--dry-run", "--seed", "1", "--analyzer-type", "MOLECULAR"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("H|\\^&|||Sysmex^XN-1000^V1.0|"), "{text}");
    assert!(text.contains("|CBC||"), "the HEMATOLOGY panel: {text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("R|")).count(),
        10,
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("using HEMATOLOGY"), "a warning says so");
    // Written to a pipe, not a terminal: no colour codes in the log.
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// The image's entry point takes the reference image's command form, `python -u server.py
/// ARGS`, so compose files that override the command that way work unchanged; before, the
/// simulator got `python` as an argument and refused to start.
#[cfg(unix)]
#[test]
fn the_image_entry_point_takes_the_reference_command_form() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-entrypoint.sh");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_simulator"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        // The same environment as `command` gives the simulator.
        let cmd = command(&[]);
        let mut entry = std::process::Command::new("sh");
        entry.arg(script).args(args).env("PATH", &path);
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => entry.env(key, value),
                None => entry.env_remove(key),
            };
        }
        entry.output().unwrap()
    };
    let args = ["--dry-run", "--seed", "1", "--template", "stago_start4"];
    let direct = command(&args).output().unwrap();
    assert!(direct.status.success());
    for prefix in [
        &["python", "-u", "server.py"][..],
        &["python3", "/app/server.py"],
        &["simulator"],
        &[],
    ] {
        let out = run(&[prefix, &args[..]].concat());
        assert!(
            out.status.success(),
            "{prefix:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, direct.stdout, "{prefix:?}");
    }
    let other = run(&["python", "-u", "other.py"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("runs the simulator, not Python"));
}

/// Runs `cmd` (a push or dry run) and returns its standard output; it must succeed.
fn stdout_of(mut cmd: std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The reference's flags in their short forms and the environment variables that give their
/// defaults (section 1.1/1.2 of the reference notes), so compose files and scripts written
/// for it work unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_short_flags_and_environment_defaults() {
    // -t / ANALYZER_TYPE pick the fields.json category (CHEMISTRY: Beckman AU5800).
    let text = stdout_of(command(&[
        "-P",
        "tcp://127.0.0.1:1",
        "--dry-run",
        "-t",
        "CHEMISTRY",
    ]));
    assert!(text.starts_with("H|\\^&|||Beckman^AU5800^V2.1|"), "{text}");
    let mut cmd = command(&["--push", "tcp://127.0.0.1:1", "--dry-run", "-v"]);
    cmd.env("ANALYZER_TYPE", "CHEMISTRY");
    let text = stdout_of(cmd);
    assert!(text.starts_with("H|\\^&|||Beckman^AU5800^V2.1|"), "{text}");
    // -c N prints N messages in a dry run.
    let text = stdout_of(command(&[
        "-P",
        "tcp://127.0.0.1:1",
        "--dry-run",
        "-c",
        "2",
    ]));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("H|")).count(),
        2,
        "{text}"
    );
    // HL7_TEMPLATE is the default --hl7-template; abbott_architect_hl7 without it.
    let mut cmd = command(&["--hl7", "-P", "mllp://127.0.0.1:1", "--dry-run"]);
    cmd.env("HL7_TEMPLATE", "mindray_bs200");
    let text = stdout_of(cmd);
    assert!(text.starts_with("MSH|^~\\&|MINDRAY|BS-200|"), "{text}");
    let mut cmd = command(&["--hl7", "-P", "mllp://127.0.0.1:1", "--dry-run"]);
    cmd.env_remove("HL7_TEMPLATE");
    let text = stdout_of(cmd);
    assert!(text.to_ascii_uppercase().contains("ARCHITECT"), "{text}");

    // ASTM_PORT_TEMPLATES (the alias, read when PORT_TEMPLATES is unset), RESPONSE_DELAY_MS,
    // and -a with --simulate-api-port: one API, on the latter's port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a_port = taken.local_addr().unwrap().port().to_string();
    let mut cmd = command(&["-a", &a_port, "--simulate-api-port", "0"]);
    cmd.env("ASTM_PORT_TEMPLATES", r#"{"0": "stago_start4"}"#)
        .env("RESPONSE_DELAY_MS", "300");
    let sim = Sim::start_with(cmd);
    assert_eq!(sim.listeners.len(), 1, "{:?}", sim.listeners);
    let api = sim.api.expect("an API");
    assert_ne!(api.port().to_string(), a_port, "--simulate-api-port wins");
    let mut s = connect(sim.port_of("stago_start4")).await;
    let started = Instant::now();
    write(&mut s, &[ENQ]).await;
    assert_eq!(read_byte(&mut s).await, ACK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "RESPONSE_DELAY_MS applies"
    );
    drop(sim);

    // -p with ASTM_TEMPLATE and an empty port map: single-port mode on that port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut cmd = command(&["-p", &port.to_string(), "-d", "0"]);
    cmd.env("ASTM_TEMPLATE", "horiba_pentra60")
        .env("PORT_TEMPLATES", "{}");
    let sim = Sim::start_with(cmd);
    assert_eq!(sim.port_of("horiba_pentra60").port(), port);
}

/// `ASTM_TEMPLATE` alone does not replace the default port map: in the reference the shipped
/// `config/port_templates.json` makes the mapping non-empty, so a compose file that sets it
/// (the README lists it) still gets every port of the map (5000, 9600-9604, 5380); before,
/// the simulator listened on ASTM_PORT alone.
#[test]
fn astm_template_alone_keeps_the_default_port_map() {
    // Its own loopback address, so the ports do not meet other tests' (or the machine's).
    let ip = "127.0.0.5";
    let ports = [5000u16, 5380, 9600, 9601, 9602, 9603, 9604];
    for p in ports {
        if std::net::TcpListener::bind((ip, p)).is_err() {
            eprintln!("skipped: port {p} is busy on {ip}");
            return;
        }
    }
    let mut cmd = command(&["--bind", ip, "-d", "0"]);
    cmd.env("ASTM_TEMPLATE", "horiba_pentra60");
    let sim = Sim::start_with(cmd);
    let listed: Vec<(u16, &str)> = sim
        .listeners
        .iter()
        .map(|(_, a, t)| (a.port(), t.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (5000, "genexpert_astm"),
            (5380, "mindray_bc5380"),
            (9600, "genexpert_astm"),
            (9601, "mindray_ba88a"),
            (9602, "stago_start4"),
            (9603, "horiba_micros60"),
            (9604, "horiba_pentra60"),
        ]
    );
}
