//! Helpers for the router's integration tests: start the real binary with a config file
//! in a temporary directory, talk MLLP over loopback, run a small MLLP receiver.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{AckBuilder, AckCode, CommitAck, Message, MllpCodec, MllpFrame, Reply};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

/// A free loopback port (bound, then released), never one handed out before in this test
/// binary: the kernel may give a released port to the next caller, so two tests running in
/// parallel got the same one, and one test's router took the other's messages (its peer
/// waits for the port while that router holds it).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// An HL7 ORU with control id `id` and the given MSH-3.
pub fn oru(id: &str, msh3: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|{msh3}|LABFAC|LIS|HOSP|20240101120000||ORU^R01^ORU_R01|{id}|P|2.5.1\rPID|1||{id}\rOBX|1|NM|GLU||5.5|mmol/L\r"
    )
    .into_bytes()
}

/// Polls `check` until it is true; panics with `what` after [`WAIT`].
/// An MLLP client to the router's socket input on `port`, waiting [`WAIT`] for each ACK.
pub async fn client(port: u16) -> mllp_hl7::MllpClient<tokio::net::TcpStream> {
    client_waiting(port, WAIT).await
}

/// As [`client`], waiting `timeout` for each ACK.
pub async fn client_waiting(
    port: u16,
    timeout: Duration,
) -> mllp_hl7::MllpClient<tokio::net::TcpStream> {
    mllp_hl7::MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .with_ack_timeout(timeout)
}

/// Asserts that `reply` is an HL7 AA whose MSA-2 is `control_id`; returns the ACK message.
#[track_caller]
pub fn assert_acknowledges(reply: Reply, control_id: &[u8]) -> Bytes {
    let Reply::Ack { code, payload } = reply else {
        panic!("expected an HL7 ACK: {reply:?}");
    };
    assert_eq!(code, AckCode::ApplicationAccept);
    let ack = Message::parse(&payload).expect("the ACK parses");
    assert_eq!(
        mllp_hl7::AckMessage::from_message(&ack)
            .expect("an ACK")
            .acknowledged_id
            .raw(),
        control_id
    );
    payload
}

/// Asserts that the router accepted a message (AA).
#[track_caller]
pub fn assert_accepted(reply: Reply) {
    assert!(
        matches!(
            reply,
            Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            }
        ),
        "not accepted: {reply:?}"
    );
}

pub async fn wait_until(what: &str, check: impl FnMut() -> bool) {
    wait_until_within(what, WAIT, check).await;
}

/// [`wait_until`] for work whose length grows with the machine's load (hundreds of
/// megabytes to deliver while other builds share the two cores).
pub async fn wait_until_within(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Files in `dir`, sorted by name: not directories, and not hidden ones, which is how a
/// consumer of `messagedir` sees it (the file output's temporary names start with a dot
/// and exist until the batch is synced and renamed).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs the router binary to completion in `dir` with `args` (`--check`, `--version`, ...).
pub fn run_router(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_router"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the router binary")
}

/// The router binary running with a config file in a directory.
pub struct RouterProc {
    child: Option<Child>,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl RouterProc {
    /// Writes `config` to `dir/router.cfg` and starts the router on it.
    pub async fn start(dir: &Path, config: &str) -> Self {
        std::fs::write(dir.join("router.cfg"), config).unwrap();
        Self::restart(dir).await
    }

    /// Starts the router on the existing `dir/router.cfg`; waits for its readiness line.
    pub async fn restart(dir: &Path) -> Self {
        Self::launch(dir, None).await
    }

    /// Writes `config` and starts the router through `sh -c "PREPARE exec router ..."`:
    /// `PREPARE` sets up the process (signal dispositions, limits) before the router
    /// replaces the shell, under the same process id.
    pub async fn start_after_shell(dir: &Path, config: &str, prepare: &str) -> Self {
        std::fs::write(dir.join("router.cfg"), config).unwrap();
        Self::launch(dir, Some(prepare)).await
    }

    /// Sets the soft `RLIMIT_FSIZE` of the running router (`None`: unlimited). Start it
    /// with SIGXFSZ ignored (`start_after_shell(.., "trap '' XFSZ;")`), so that a write past
    /// the limit fails with EFBIG, which the store takes for a full disk.
    pub fn limit_file_size(&self, bytes: Option<u64>) {
        use rustix::process::{Pid, Resource, Rlimit, prlimit};
        let pid = Pid::from_raw(i32::try_from(self.pid()).unwrap()).unwrap();
        let limit = Rlimit {
            current: bytes,
            maximum: None,
        };
        prlimit(Some(pid), Resource::Fsize, limit).expect("set RLIMIT_FSIZE");
    }

    async fn launch(dir: &Path, shell_prepare: Option<&str>) -> Self {
        let log = dir.join(format!(
            "stderr-{}.log",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let binary = env!("CARGO_BIN_EXE_router");
        let mut command = match shell_prepare {
            None => Command::new(binary),
            Some(prepare) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!(r#"{prepare} exec "$0" "$@""#))
                    .arg(binary);
                sh
            }
        };
        let child = command
            .arg("-c")
            .arg(dir.join("router.cfg"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start the router binary");
        let mut proc = Self {
            child: Some(child),
            dir: dir.to_owned(),
            log,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&proc.log).unwrap_or_default();
            if text.contains("router: started") {
                break;
            }
            if let Some(status) = proc.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("router exited early ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "router did not start:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proc
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL (std's `Child::kill` on Unix).
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends `signal` to the running router.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).expect("signal the router");
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .expect("send SIGTERM to the router");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("router did not exit within {limit:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl Drop for RouterProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How the test receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum PeerReply {
    /// HL7 ACK (AA) for HL7, commit block otherwise.
    Accept,
    /// AE for the first `n` messages, then as `Accept`.
    RejectFirst(usize),
    /// AE for every message with this control id (MSH-10), `Accept` for the others.
    RejectControlId(&'static str),
}

/// A small MLLP receiver recording every message it gets.
pub struct Peer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    pub async fn start(port: u16, reply: PeerReply) -> Self {
        Self::start_with(port, reply, MllpCodec::new()).await
    }

    pub async fn start_with(port: u16, reply: PeerReply, codec: MllpCodec) -> Self {
        // The port came from `free_port`; until it is bound here, a parallel test's
        // outgoing connection may hold it briefly as its ephemeral local port.
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => break listener,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("peer cannot listen on port {port}: {e}"),
            }
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let rejected = Arc::new(Mutex::new(0usize));
        let task = {
            let received = Arc::clone(&received);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut connections = Vec::new();
                loop {
                    let (stream, _) = tokio::select! {
                        () = stop.cancelled() => break,
                        accepted = listener.accept() => accepted.unwrap(),
                    };
                    let received = Arc::clone(&received);
                    let stop = stop.clone();
                    let codec = codec.clone();
                    let rejected = Arc::clone(&rejected);
                    connections.push(tokio::spawn(async move {
                        let mut framed = Framed::new(stream, codec);
                        loop {
                            let frame = tokio::select! {
                                () = stop.cancelled() => break,
                                frame = framed.next() => frame,
                            };
                            let Some(Ok(MllpFrame::Message(payload))) = frame else {
                                if frame.is_none() {
                                    break;
                                }
                                continue;
                            };
                            received.lock().unwrap().push(payload.to_vec());
                            let reject = match reply {
                                PeerReply::Accept => false,
                                PeerReply::RejectFirst(n) => {
                                    let mut count = rejected.lock().unwrap();
                                    *count += 1;
                                    *count <= n
                                }
                                PeerReply::RejectControlId(id) => Message::parse(&payload)
                                    .is_ok_and(|m| m.control_id().raw() == id.as_bytes()),
                            };
                            let answer = match Message::parse(&payload) {
                                Ok(m) if m.msh().is_some() => {
                                    let code = if reject {
                                        AckCode::ApplicationError
                                    } else {
                                        AckCode::ApplicationAccept
                                    };
                                    Bytes::from(AckBuilder::new(&m).code(code).build().unwrap())
                                }
                                _ => Bytes::from(vec![
                                    if reject {
                                        CommitAck::Nak
                                    } else {
                                        CommitAck::Ack
                                    }
                                    .byte(),
                                ]),
                            };
                            if framed.send(answer).await.is_err() {
                                break;
                            }
                        }
                    }));
                }
                for c in connections {
                    c.abort();
                    let _ = c.await;
                }
            })
        };
        Self {
            port,
            received,
            stop,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Distinct MSH-10 control ids received.
    pub fn control_ids(&self) -> HashSet<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| {
                Message::parse(m)
                    .ok()
                    .map(|m| String::from_utf8_lossy(m.control_id().raw()).into_owned())
            })
            .collect()
    }

    /// Closes the listener and every connection.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}
