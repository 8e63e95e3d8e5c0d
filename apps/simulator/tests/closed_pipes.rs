//! Output whose reader has gone: `simulator | head -1`, or a harness that closes the pipe once
//! it has read what it waited for. The simulator must neither panic (exit 101) nor stop serving.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{WAIT, command};

/// Waits for `child` to end, killing it after `WAIT`.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("simulator still running after {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port with nothing listening on it.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("tcp://{addr}")
}

/// A failed push is reported on stderr; with nobody reading stderr the run still ends with its
/// own exit code (1: a message failed), not a panic's 101.
#[test]
fn a_failed_push_with_stderr_closed_ends_with_exit_1() {
    let dest = closed_port();
    let mut child = command(&["--push", &dest, "--template", "stago_start4", "-c", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(1), "{status}");
}

/// `--dry-run` output cut short by its reader (`| head -1`) ends quietly with exit 0, whichever
/// mode prints it.
#[test]
fn dry_run_output_into_a_closed_pipe_ends_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("files");
    let out_dir = out_dir.to_str().unwrap();
    let cases: [&[&str]; 3] = [
        &["--push", "tcp://127.0.0.1:9", "--dry-run", "-c", "50"],
        &["--serial-port", "/dev/null", "--dry-run"],
        &["--generate-files", out_dir, "--dry-run"],
    ];
    for args in cases {
        let mut child = command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let status = wait_bounded(&mut child);
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {status}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A harness that reads the listener lines and closes stdout (`| grep -m1 ready`) must not
/// take the server down with it: it keeps serving, and SIGTERM still stops it with exit 0
/// although its `shutting down` line has no reader.
#[test]
fn a_server_whose_stdout_reader_left_serves_and_stops_cleanly() {
    let mut child = command(&["--listen", "0=mindray_bs200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut addr = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        addr = line.split_whitespace().nth(2).map(str::to_owned);
    }
    // The reader is gone now.
    let addr = addr.expect("a listening line");
    TcpStream::connect(&addr).expect("the ASTM port accepts");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
}

/// A server started with its stdout already closed (`simulator | true`) starts all the same; it
/// used to refuse with `error: Broken pipe` when printing its first listener line.
#[test]
fn a_server_started_without_a_stdout_reader_serves() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = command(&["--listen", &format!("{port}=mindray_bs200")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let deadline = Instant::now() + WAIT;
    let accepted = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            break Some(stream);
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ended = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ended.is_none(), "simulator ended: {ended:?}");
    assert!(accepted.is_some(), "the ASTM port never accepted");
}
