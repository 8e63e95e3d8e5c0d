//! Serial mode over a pseudo-terminal pair: the test is the LIS (an `astm-frame` receiver).

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use astm_frame::{Assembly, Event, Link, LinkConfig, Role};
use common::{WAIT, command};
use serialport::{DataBits, Parity, SerialPort as _, StopBits, TTYPort};

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/templates");

/// Runs a receiving link over `port` until one message has arrived.
fn receive_one(port: &mut TTYPort) -> Vec<u8> {
    let mut link = Link::new(LinkConfig {
        assembly: Assembly::PerTransfer,
        ..LinkConfig::new(Role::Computer)
    });
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        assert!(started.elapsed() < WAIT, "no message over the serial line");
        while link.poll_transmit(&mut out).is_some() {}
        if !out.is_empty() {
            port.write_all(&out).unwrap();
            port.flush().unwrap();
            out.clear();
        }
        while let Some(event) = link.poll_event() {
            if let Event::MessageReceived(message) = event {
                return message;
            }
        }
        port.set_timeout(Duration::from_millis(50)).unwrap();
        match port.read(&mut buf) {
            Ok(n) => link.handle_input(&buf[..n], Instant::now()),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) => panic!("read: {e}"),
        }
        let now = Instant::now();
        if link.poll_timeout().is_some_and(|d| d <= now) {
            link.handle_timeout(now);
        }
    }
}

#[test]
fn serial_mode_sends_with_the_template_port_settings() {
    let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
    // The test keeps the slave open (without a lock) to read the line settings back.
    let path = slave.name().expect("slave path");
    let mut child = command(&[
        "--serial-port",
        &path,
        "--serial-analyzer",
        "stago_7e2",
        "--templates-dir",
        TEMPLATES,
        "--seed",
        "1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn simulator");
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
