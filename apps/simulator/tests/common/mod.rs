//! Starts the real binary and talks to it over loopback.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use astm_frame::{FrameEnd, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const WAIT: Duration = Duration::from_secs(20);

pub const ENQ: u8 = 0x05;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;
pub const EOT: u8 = 0x04;
pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;

/// A running simulator.
pub struct Sim {
    pub child: Child,
    /// `(protocol, address, template)` per listener.
    pub listeners: Vec<(String, SocketAddr, String)>,
    pub api: Option<SocketAddr>,
}

pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simulator"));
    cmd.args(args)
        .env_remove("PORT_TEMPLATES")
        .env_remove("ASTM_PORT_TEMPLATES")
        .env_remove("ASTM_TEMPLATE")
        .env_remove("ASTM_PORT")
        .env_remove("RESPONSE_DELAY_MS")
        .env("RUST_LOG", "info");
    cmd
}

impl Sim {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(command(args))
    }

    pub fn start_with(cmd: Command) -> Self {
        Self::start_with_stderr(cmd, Stdio::inherit())
    }

    /// As [`Sim::start_with`], its log (stderr) going to `stderr`.
    pub fn start_with_stderr(mut cmd: Command, stderr: Stdio) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn simulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listeners = Vec::new();
        let mut api = None;
        loop {
            let Ok(line) = rx.recv_timeout(WAIT) else {
                let _ = child.kill();
                panic!("simulator did not print `ready` within {WAIT:?}");
            };
            if line == "ready" {
                break;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.first() == Some(&"listening") && parts.len() == 4 {
                let addr: SocketAddr = parts[2].parse().expect("address");
                if parts[1] == "HTTP" {
                    api = Some(addr);
                } else {
                    listeners.push((parts[1].to_owned(), addr, parts[3].to_owned()));
                }
            }
        }
        Self {
            child,
            listeners,
            api,
        }
    }

    pub fn port_of(&self, template: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(_, _, t)| t == template)
            .map(|(_, a, _)| *a)
            .expect("listener for template")
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.expect("api"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulator whose log (stderr) goes to a file the test reads.
pub struct LoggedSim {
    pub sim: Sim,
    log: tempfile::NamedTempFile,
}

impl LoggedSim {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(command(args))
    }

    pub fn start_with(cmd: Command) -> Self {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let sim = Sim::start_with_stderr(cmd, log.reopen().expect("log file").into());
        Self { sim, log }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Its log once it holds every one of `parts`, or after [`WAIT`]: the caller's
    /// assertions then say what is missing.
    pub fn log_holding(&self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.log();
            if parts.iter().all(|p| log.contains(p)) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn frame(number: u8, text: &[u8], end: FrameEnd) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(number, text, end, &mut out);
    out
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect timeout")
        .expect("connect")
}

pub async fn read_byte(s: &mut TcpStream) -> u8 {
    tokio::time::timeout(WAIT, s.read_u8())
        .await
        .expect("timed out waiting for a byte")
        .expect("read")
}

/// Reads the rest of a frame after its STX, up to LF; returns the whole frame.
pub async fn read_frame_rest(s: &mut TcpStream) -> Vec<u8> {
    let mut out = vec![STX];
    loop {
        let b = read_byte(s).await;
        out.push(b);
        if b == b'\n' {
            return out;
        }
    }
}

pub async fn write(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).await.expect("write");
}

/// Plays the LIS's side of a transfer: ENQ, the records (one frame each), EOT.
pub async fn send_records(s: &mut TcpStream, records: &[&str]) {
    let records: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
    send_record_bytes(s, &records).await;
}

/// [`send_records`] for records in any encoding.
pub async fn send_record_bytes(s: &mut TcpStream, records: &[&[u8]]) {
    write(s, &[ENQ]).await;
    assert_eq!(read_byte(s).await, ACK, "ENQ not acknowledged");
    for (i, r) in records.iter().enumerate() {
        let n = u8::try_from((i + 1) % 8).unwrap();
        let text = [r, &b"\r"[..]].concat();
        write(s, &frame(n, &text, FrameEnd::End)).await;
        let record = String::from_utf8_lossy(r);
        assert_eq!(read_byte(s).await, ACK, "frame {record} not acknowledged");
    }
    write(s, &[EOT]).await;
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Receives a transfer as the LIS: expects ENQ, ACKs it and every frame whose checksum (over
/// the raw bytes) is right, returns the message text as sent.
pub async fn receive_bytes(s: &mut TcpStream) -> Vec<u8> {
    assert_eq!(read_byte(s).await, ENQ, "expected the simulator's ENQ");
    write(s, &[ACK]).await;
    let mut text = Vec::new();
    loop {
        match read_byte(s).await {
            STX => {
                let f = read_frame_rest(s).await;
                // STX FN text ETX/ETB C1 C2 CR LF
                let body = &f[2..f.len() - 5];
                let end = match f[f.len() - 5] {
                    ETX => FrameEnd::End,
                    _ => FrameEnd::Intermediate,
                };
                assert_eq!(
                    frame(f[1] - b'0', body, end),
                    f,
                    "checksum of {:?}",
                    String::from_utf8_lossy(&f)
                );
                text.extend_from_slice(body);
                write(s, &[ACK]).await;
            }
            EOT => return text,
            other => panic!("unexpected byte {other:#04x}"),
        }
    }
}

/// Receives a transfer as the LIS (see [`receive_bytes`]), returns the records.
pub async fn receive_records(s: &mut TcpStream) -> Vec<String> {
    String::from_utf8_lossy(&receive_bytes(s).await)
        .split('\r')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The H record of the reference's legacy (`fields.json`) replies.
pub const LEGACY_HEADER: &str = "H|\\^&|||MockAnalyzer^ASTM-Mock^1.0|||||||LIS2-A2";

/// Sends a field query (H + L, as the reference's query client does) to the ASTM port at
/// `addr` and returns the records of the reply.
pub async fn field_query_reply(addr: SocketAddr) -> Vec<String> {
    let mut s = connect(addr).await;
    send_records(
        &mut s,
        &["H|\\^&|||QuerySystem^Query^1.0|||||||LIS2-A2", "L|1|N"],
    )
    .await;
    receive_records(&mut s).await
}

/// The simulator with its API on a free port (and one ASTM port), `extra` after.
pub fn api_command(extra: &[&str]) -> Command {
    let mut args = vec![
        "--listen",
        "0=stago_start4",
        "-d",
        "0",
        "--simulate-api-port",
        "0",
    ];
    args.extend_from_slice(extra);
    command(&args)
}

/// [`api_command`], started.
pub fn api_sim(extra: &[&str]) -> Sim {
    Sim::start_with(api_command(extra))
}

/// Runs the simulator with each case's arguments, `extra` after, and checks that it fails
/// with the case's error in its stderr: setups refused before anything is sent.
pub async fn assert_refused(cases: &[(&[&str], &str)], extra: &[&str]) {
    for (args, error) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        let out = run_to_end(&all).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(error), "{args:?}: {stderr}");
    }
}

/// Runs the simulator with `args` to the end off the async workers (the test's own servers
/// keep running); its output.
pub async fn run_to_end(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        command(&args).output().expect("run simulator")
    })
    .await
    .unwrap()
}

/// POSTs the JSON `body` to `url`; the status and the JSON reply (a reply that is not JSON
/// fails the test).
pub async fn post_json(
    url: impl reqwest::IntoUrl,
    body: impl Into<String>,
) -> (u16, serde_json::Value) {
    let reply = http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.into())
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// Accepts the next connection on `lis` (a LIS the simulator pushes to) and reads one whole
/// E1381 transfer from it, as a LIS would, within [`WAIT`].
pub async fn receive_pushed_transfer(lis: &tokio::net::TcpListener) -> String {
    let (stream, _) = tokio::time::timeout(WAIT, lis.accept())
        .await
        .expect("the simulator connected to push")
        .unwrap();
    let mut link = astm_frame::driver::LinkDriver::new(
        stream,
        astm_frame::LinkConfig {
            assembly: astm_frame::Assembly::PerTransfer,
            ..astm_frame::LinkConfig::new(astm_frame::Role::Computer)
        },
    );
    let message = tokio::time::timeout(WAIT, link.recv())
        .await
        .expect("a whole transfer")
        .unwrap()
        .expect("a message before the connection closed");
    String::from_utf8(message).unwrap()
}
