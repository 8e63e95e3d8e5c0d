//! Serial mode over a pseudo-terminal pair: the test is the LIS (an `astm-frame` receiver).

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
use common::{WAIT, command};
use serialport::{DataBits, Parity, SerialPort as _, StopBits, TTYPort};

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/templates");

/// The LIS end of the line: a receiving link run one read at a time.
struct Lis {
    link: Link,
    /// Messages received so far.
    messages: Vec<Vec<u8>>,
    /// Every byte that came in.
    raw: Vec<u8>,
    out: Vec<u8>,
    /// Frames still to lose (from the STX on, what a read brings is not taken in).
    frames_to_lose: u32,
    /// Messages of its own the LIS has sent.
    sent: usize,
}

impl Lis {
    fn new() -> Self {
        Self {
            link: Link::new(LinkConfig {
                assembly: Assembly::PerTransfer,
                ..LinkConfig::new(Role::Computer)
            }),
            messages: Vec::new(),
            raw: Vec::new(),
            out: Vec::new(),
            frames_to_lose: 0,
            sent: 0,
        }
    }

    /// Sends what the link has to send, waits up to 20 ms for input, runs the timers.
    fn step(&mut self, port: &mut TTYPort) {
        while self.link.poll_transmit(&mut self.out).is_some() {}
        if !self.out.is_empty() {
            port.write_all(&self.out).unwrap();
            port.flush().unwrap();
            self.out.clear();
        }
        self.collect();
        let mut buf = [0u8; 1024];
        port.set_timeout(Duration::from_millis(20)).unwrap();
        match port.read(&mut buf) {
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                let mut taken = &buf[..n];
                if self.frames_to_lose > 0
                    && let Some(stx) = taken.iter().position(|&b| b == 0x02)
                {
                    self.frames_to_lose -= 1;
                    taken = &taken[..stx];
                }
                self.link.handle_input(taken, Instant::now());
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) => panic!("read: {e}"),
        }
        let now = Instant::now();
        if self.link.poll_timeout().is_some_and(|d| d <= now) {
            self.link.handle_timeout(now);
        }
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(event) = self.link.poll_event() {
            match event {
                Event::MessageReceived(message) => self.messages.push(message),
                Event::MessageSent(_) => self.sent += 1,
                _ => {}
            }
        }
    }
}

/// Runs the LIS over `port` until one message has arrived.
fn receive_one(port: &mut TTYPort) -> Vec<u8> {
    let mut lis = Lis::new();
    let started = Instant::now();
    while lis.messages.is_empty() {
        assert!(started.elapsed() < WAIT, "no message over the serial line");
        lis.step(port);
    }
    lis.messages.remove(0)
}

#[test]
fn serial_mode_sends_with_the_template_port_settings() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    // The test keeps the slave open (without a lock) to read the line settings back.
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &[]);
    let message = receive_one(&mut master);
    let text = String::from_utf8(message).unwrap();
    let records: Vec<&str> = text.split('\r').filter(|r| !r.is_empty()).collect();
    assert!(records[0].starts_with("H|\\^&|"), "{records:?}");
    assert!(records[0].contains("|STAGO^START4^V1.0|"), "{records:?}");
    assert!(
        records.iter().any(|r| r.starts_with("R|1|^^^PT|12.5|")),
        "{records:?}"
    );
    assert_eq!(records.last(), Some(&"L|1|N"));

    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < WAIT, "simulator did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "serial: sent 1 message(s) from stago_7e2 to {path} at 4800 7E2"
        )),
        "{stdout}"
    );
    // Another program with the port open may take the replies: the test is one.
    assert!(
        stderr.contains(&format!(
            "{path} is also open in process {} (",
            std::process::id()
        )),
        "{stderr}"
    );
    // The template's settings are on the line (the reference applies only the baud rate). The
    // tty keeps the baud rate and stop bits; a Linux pseudo-terminal forces 8 data bits without
    // parity, which the simulator reads back and reports.
    assert_eq!(slave.baud_rate().unwrap(), 4800);
    assert_eq!(slave.stop_bits().unwrap(), StopBits::Two);
    match (slave.data_bits().unwrap(), slave.parity().unwrap()) {
        (DataBits::Seven, Parity::Even) => {}
        (DataBits::Eight, Parity::None) => assert!(
            stderr.contains(&format!(
                "{path}: asked for 4800 7E2, the device reports 4800 8N2"
            )),
            "{stderr}"
        ),
        other => panic!("unexpected line settings {other:?}"),
    }
}

#[test]
fn serial_mode_reports_a_port_it_cannot_open() {
    let out = command(&[
        "--serial-port",
        "/nonexistent/tty-simulator-test",
        "--serial-analyzer",
        "horiba_pentra60",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open /nonexistent/tty-simulator-test with 9600 8N1"),
        "{stderr}"
    );
}

/// Runs the LIS over `port` until the simulator exits; returns the LIS and the simulator's
/// exit status and stderr.
fn serve_until_exit(
    port: &mut TTYPort,
    mut child: std::process::Child,
) -> (Lis, std::process::ExitStatus, String) {
    let mut lis = Lis::new();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        lis.step(port);
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (lis, out.status, stderr)
}

/// Starts the simulator sending `stago_7e2` (4800 7E2) to `path`, with `extra` arguments.
fn serial_run(path: &str, extra: &[&str]) -> std::process::Child {
    let mut args = vec![
        "--serial-port",
        path,
        "--serial-analyzer",
        "stago_7e2",
        "--templates-dir",
        TEMPLATES,
        "--seed",
        "1",
    ];
    args.extend_from_slice(extra);
    command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn simulator")
}

/// `-c` and `-i` work on a serial line as on a push: three runs, each a fresh message (its
/// own specimen), 0.3 s apart. They were ignored: one message, whatever was asked.
#[test]
fn serial_mode_sends_count_runs_at_the_interval() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let started = Instant::now();
    let child = serial_run(&path, &["-c", "3", "-i", "0.3"]);
    let (lis, status, stderr) = serve_until_exit(&mut master, child);
    assert!(status.success(), "{stderr}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(lis.messages.len(), 3, "{stderr}");
    let specimens: Vec<String> = lis
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            let order = text.split('\r').find(|r| r.starts_with("O|")).unwrap();
            order.split('|').nth(2).unwrap().to_owned()
        })
        .collect();
    assert!(
        specimens[0] != specimens[1] && specimens[1] != specimens[2],
        "{specimens:?}"
    );
    assert!(stderr.contains("run 3: 1 message(s) sent to"), "{stderr}");
}

/// `--fault serial:...` applies to the serial link: every frame sent twice, acknowledged twice,
/// and the message still arrives once.
#[test]
fn serial_fault_duplicate_frame_is_sent_twice_and_delivered_once() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let child = serial_run(&path, &["--fault", "serial:duplicate-frame=1"]);
    let (lis, status, stderr) = serve_until_exit(&mut master, child);
    assert!(status.success(), "{stderr}");
    assert_eq!(lis.messages.len(), 1, "{stderr}");
    let raw = lis.raw;
    let frames = raw.iter().filter(|&&b| b == 0x02).count();
    assert!(
        frames >= 2 && frames % 2 == 0,
        "{frames} STX in {:?}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        stderr.contains(&format!(
            "fault injected: duplicate-frame (serial to {path})"
        )),
        "{stderr}"
    );
    drop(slave);
}

/// A corrupted checksum on every frame: the LIS NAKs each one, the sender ends the transfer
/// after six tries and repeats the message whole after the hold-off (§6.5.1.2), three transfers
/// in all; then the run fails with the reason. A fault scoped to pushes stays off the serial
/// link.
#[test]
fn serial_fault_bad_checksum_ends_in_a_clear_failure() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let child = serial_run(
        &path,
        &[
            "--fault",
            "serial:bad-checksum=1",
            "--link-timer-ms",
            "1000",
        ],
    );
    let (lis, status, stderr) = serve_until_exit(&mut master, child);
    assert!(!status.success(), "{stderr}");
    assert!(lis.messages.is_empty());
    let raw = lis.raw;
    let frames = raw.iter().filter(|&&b| b == 0x02).count();
    assert_eq!(frames, 18, "{:?}", String::from_utf8_lossy(&raw));
    let transfers = raw.split(|&b| b == 0x04).filter(|t| t.contains(&0x02));
    assert!(
        transfers
            .map(|t| t.iter().filter(|&&b| b == 0x02).count())
            .eq([6, 6, 6]),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    for transfer in 1..=2 {
        assert!(
            stderr.contains(&format!(
                "transfer {transfer} of 3 failed (frame 1 not accepted"
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("fault injected: bad-checksum"), "{stderr}");
    assert!(
        stderr.contains("message 1/1 not accepted by the serial peer"),
        "{stderr}"
    );

    let child = serial_run(&path, &["--fault", "push:bad-checksum=1"]);
    let (lis, status, stderr) = serve_until_exit(&mut master, child);
    assert!(status.success(), "{stderr}");
    assert_eq!(lis.messages.len(), 1);
    assert!(!stderr.contains("fault injected"), "{stderr}");
    drop(slave);
}

/// A LIS that misses a frame (no reply: §6.5.2.3) gets the message again, whole, after the
/// hold-off, and the run succeeds. The aborted message used to be dropped and the run failed.
#[test]
fn serial_transfer_without_a_reply_is_repeated_whole_later() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &["--link-timer-ms", "1000"]);
    let mut lis = Lis::new();
    // The LIS takes the ENQ, then loses the first frame: it never answers it.
    lis.frames_to_lose = 1;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        lis.step(&mut master);
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lis.frames_to_lose, 0);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(lis.messages.len(), 1, "{stderr}");
    let message = &lis.messages[0];
    assert!(
        message.starts_with(b"H|") && message.ends_with(b"L|1|N\r"),
        "{:?}",
        String::from_utf8_lossy(message)
    );
    assert!(
        stderr.contains("transfer 1 of 3 failed (no reply to frame 1 within the reply timer)"),
        "{stderr}"
    );
    drop(slave);
}

/// Runs the LIS for a simulator that loses its first frame, with Ctrl-C (SIGINT) sent
/// `interrupts` times, 300 ms apart, once that frame is on the line (the transfer in flight).
/// What the LIS got, the exit status, stdout and stderr.
fn interrupt_mid_transfer(interrupts: usize) -> (Lis, std::process::ExitStatus, String, String) {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &["-c", "3", "-i", "0", "--link-timer-ms", "1000"]);
    let mut lis = Lis::new();
    lis.frames_to_lose = 1;
    let started = Instant::now();
    let mut signalled = 0;
    let mut next_signal = None;
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        lis.step(&mut master);
        if lis.frames_to_lose == 0 && next_signal.is_none() {
            next_signal = Some(Instant::now());
        }
        if signalled < interrupts && next_signal.is_some_and(|at| Instant::now() >= at) {
            rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::INT,
            )
            .expect("SIGINT");
            signalled += 1;
            next_signal = Some(Instant::now() + Duration::from_millis(300));
        }
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    drop(slave);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (lis, out.status, text(&out.stdout), text(&out.stderr))
}

/// Ctrl-C in the middle of a transfer finishes the message in flight (a serial line has no
/// close to tell the LIS it was cut off), then stops the run. The run stopped at once, the
/// LIS left holding part of a message, and exited 0 as if all had gone out.
#[test]
fn serial_ctrl_c_mid_transfer_finishes_the_message_then_stops() {
    let (lis, status, stdout, stderr) = interrupt_mid_transfer(1);
    assert!(status.success(), "{stderr}");
    assert_eq!(lis.messages.len(), 1, "{stderr}");
    assert!(lis.messages[0].ends_with(b"L|1|N\r"));
    assert!(
        stderr.contains(
            "interrupted during message 1/1 of run 1: finishing it, then stopping (Ctrl-C again \
             to stop at once)"
        ),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("serial: sent 1 message(s) from stago_7e2")
            && stdout.trim_end().ends_with("(interrupted)"),
        "{stdout}"
    );
}

/// A second Ctrl-C stops at once; the run fails, naming the message cut off.
#[test]
fn serial_second_ctrl_c_stops_at_once_and_fails() {
    let (lis, status, _, stderr) = interrupt_mid_transfer(2);
    assert!(!status.success(), "{stderr}");
    assert!(lis.messages.is_empty(), "{stderr}");
    assert!(
        stderr.contains("stopped in the middle of message 1/1 of run 1: the LIS discards the part"),
        "{stderr}"
    );
}

/// The LIS interrupts the simulator's transfer (EOT in place of the first frame's ACK) to
/// send its own message: the simulator takes it (logged, as the run has no API to show it)
/// and then sends its interrupted message again, whole; the run succeeds.
#[test]
fn serial_receiver_interrupt_gets_the_lis_message_through_and_the_result_sent_again() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &[]);
    let mut lis = Lis::new();
    let mut interrupted = false;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        // The simulator's ENQ is in: the link is receiving, its first frame not yet.
        if !interrupted && lis.raw.contains(&0x05) && lis.link.request_interrupt() {
            interrupted = true;
            lis.link.send(
                b"H|\\^&|||LIS\rO|1|SPEC-9||^^^PT|R\rL|1|N\r".to_vec(),
                Instant::now(),
            );
        }
        lis.step(&mut master);
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(interrupted);
    assert!(out.status.success(), "{stderr}");
    let last = lis.messages.last().expect("a message");
    assert!(
        last.starts_with(b"H|") && last.ends_with(b"L|1|N\r"),
        "the message sent again whole: {:?}",
        String::from_utf8_lossy(last)
    );
    assert!(stderr.contains("receiver interrupt"), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}: 38 bytes received from the LIS")),
        "{stderr}"
    );
    drop(slave);
}

/// The LIS may open the line between two runs (`-i`): its ENQ is answered and its message
/// taken at once. The line was not read during the pause, so the LIS's ENQ went unanswered
/// until the next run.
#[test]
fn serial_lis_can_send_between_runs() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &["-c", "2", "-i", "3"]);
    let mut lis = Lis::new();
    let mut asked_at = None;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        if asked_at.is_none() && lis.messages.len() == 1 {
            asked_at = Some(Instant::now());
            lis.link.send(
                b"H|\\^&|||LIS\rO|1|SPEC-9||^^^PT|R\rL|1|N\r".to_vec(),
                Instant::now(),
            );
        }
        lis.step(&mut master);
        if let Some(at) = asked_at
            && lis.sent == 0
        {
            assert!(
                at.elapsed() < Duration::from_millis(1500),
                "the LIS's message was not taken during the pause"
            );
            assert_eq!(lis.messages.len(), 1, "the next run came first");
        }
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!((lis.sent, lis.messages.len()), (1, 2), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}: 38 bytes received from the LIS")),
        "{stderr}"
    );
    drop(slave);
}

/// `--host-query` on a serial line (query-mode analyzers are often serial): the query goes out
/// with the template's port settings, the LIS downloads its orders on the same line, and the
/// results for exactly those tests follow; with `-c 2` all of it twice. The run succeeds.
#[test]
fn serial_host_query_gets_the_orders_and_sends_their_results() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &["--host-query", "SPEC-1", "-c", "2", "-i", "0"]);
    let mut lis = Lis::new();
    // Messages received when the last answer went out: a query is answered once.
    let mut answered_at = 0;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < 2 * WAIT, "simulator did not exit");
        // Queries come first and after each round's results: messages 1 and 3.
        if lis.messages.len() % 2 == 1 && lis.messages.len() > answered_at {
            answered_at = lis.messages.len();
            lis.link.send(
                b"H|\\^&|||LIS\rP|1\rO|1|SPEC-1||^^^INR\\^^^FIB|R||||||||||||||||||||Q\rL|1|N\r"
                    .to_vec(),
                Instant::now(),
            );
        }
        lis.step(&mut master);
    }
    lis.collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let query = String::from_utf8_lossy(&lis.messages[0]).into_owned();
    assert!(
        query.contains("\rQ|1|^SPEC-1||^^^ALL||||||||O\r"),
        "{query:?}"
    );
    let results = String::from_utf8_lossy(lis.messages.get(1).expect("the results")).into_owned();
    let tests: Vec<&str> = results
        .split('\r')
        .filter(|r| r.starts_with("R|"))
        .map(|r| r.split('|').nth(2).unwrap())
        .collect();
    assert_eq!(tests, ["^^^INR", "^^^FIB"], "{results:?}");
    assert!(results.contains("\rO|1|SPEC-1|"), "{results:?}");
    assert_eq!(lis.messages.len(), 4, "{:?}", lis.messages);
    assert!(
        String::from_utf8_lossy(&lis.messages[2]).contains("\rQ|1|^SPEC-1||^^^ALL||||||||O\r"),
        "{:?}",
        lis.messages
    );
    assert!(
        stderr.contains("round 2: queried 1, results sent for SPEC-1 (INR, FIB)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("summary: 2 round(s), queried 2, results sent for 2"),
        "{stderr}"
    );
    drop(slave);
}

/// A serial device that goes away mid-transfer (a USB adapter pulled: the line hangs up) ends
/// the run at once with the cause, not when the next E1381 timer (15 s for a reply, or the
/// host-query timeout) runs out.
#[test]
fn a_serial_device_that_goes_away_ends_the_run_at_once() {
    let (inheritable_master, inheritable_slave) = TTYPort::pair().expect("pseudo-terminal pair");
    // `pair` opens both ends inheritable: the simulator would hold the master too, and the
    // line would never hang up. Copies that close on exec stand in for them.
    let mut master = inheritable_master.try_clone_native().expect("master copy");
    let slave = inheritable_slave.try_clone_native().expect("slave copy");
    drop((inheritable_master, inheritable_slave));
    let path = slave.name().expect("slave path");
    let mut child = serial_run(&path, &[]);
    master.set_timeout(Duration::from_millis(50)).unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    // The LIS accepts the ENQ, then the line hangs up once the first frame comes.
    while !seen.contains(&0x02) {
        assert!(started.elapsed() < WAIT, "no frame: {seen:?}");
        let mut buf = [0u8; 256];
        match master.read(&mut buf) {
            Ok(n) => {
                if buf[..n].contains(&0x05) {
                    master.write_all(&[0x06]).unwrap();
                }
                seen.extend_from_slice(&buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    drop((master, slave));
    let gone = Instant::now();
    while child.try_wait().unwrap().is_none() && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        gone.elapsed() < Duration::from_secs(10),
        "the run still waited 10 s after the device went away: {stderr}"
    );
    assert!(!out.status.success(), "{stderr}");
    // Whichever of reading and writing meets the hang-up first gives the cause.
    assert!(
        stderr.contains("serial read: ") || stderr.contains("serial write: "),
        "{stderr}"
    );
}

/// `--hl7` has no meaning on a serial line (serial mode comes first, as in the reference, and
/// sends ASTM): it is said, not ignored silently.
#[test]
fn hl7_with_a_serial_port_is_warned_about() {
    let out = command(&["--serial-port", "/dev/null", "--hl7", "--dry-run"])
        .output()
        .expect("run simulator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--hl7 ignored: --serial-port sends ASTM (E1381) from --serial-analyzer (horiba_pentra60)"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("H|\\^&|"));
}

/// `--template` and `--hl7-template` name no serial template (`--serial-analyzer` does): given
/// on the command line they are warned about; from the environment, where a compose file sets
/// them for other modes, they are not.
#[test]
fn templates_given_with_a_serial_port_are_warned_about() {
    let args = [
        "--serial-port",
        "/dev/null",
        "--dry-run",
        "--template",
        "stago_7e2",
        "--hl7-template",
        "mindray_bc5380",
    ];
    let out = command(&args).output().expect("run simulator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "--template stago_7e2 ignored: --serial-port sends --serial-analyzer (horiba_pentra60)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("--hl7-template mindray_bc5380 ignored: --serial-port sends ASTM from --serial-analyzer (horiba_pentra60)"),
        "{stderr}"
    );
    let out = command(&["--serial-port", "/dev/null", "--dry-run"])
        .env("ASTM_TEMPLATE", "stago_7e2")
        .env("HL7_TEMPLATE", "mindray_bc5380")
        .output()
        .expect("run simulator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("ignored"), "{stderr}");
}
