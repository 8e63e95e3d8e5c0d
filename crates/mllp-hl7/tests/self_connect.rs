//! `MllpClient::connect` and TCP self-connects. Alone in its test binary: it runs itself
//! again in a network namespace of its own (`unshare -rn`), whose ephemeral port range
//! it narrows to one port.
#![cfg(all(feature = "tokio", target_os = "linux"))]

use mllp_hl7::MllpClient;
use tokio::net::TcpListener;

const PORT: u16 = 40000;
const CHILD: &str = "MLLP_HL7_SELF_CONNECT_CHILD";

/// With nothing listening on a port inside the host's ephemeral range (32768-60999 on
/// Linux), the kernel may give a connection to that port the same port as its local one,
/// and the SYN meets itself (a TCP self-connect). `connect` returned such a connection
/// as connected: a sender wrote its messages into its own socket (one that expects no
/// ACK counted them as delivered), and the port stayed taken, so the receiver could not
/// listen on it. Now it is an error, and the port is free at once (closed with a reset,
/// no TIME_WAIT). In the namespace every attempt reaches itself; skipped where such a
/// namespace cannot be made.
#[test]
fn connect_refuses_a_connection_that_reached_itself() {
    if std::env::var_os(CHILD).is_some() {
        in_the_namespace();
        return;
    }
    let namespace = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !namespace {
        eprintln!("skipped: unshare -rn is not available here");
        return;
    }
    let script = format!(
        "ip link set lo up && echo '{PORT} {}' > /proc/sys/net/ipv4/ip_local_port_range \
         && exec \"$0\" \"$@\"",
        PORT + 1
    );
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "connect_refuses_a_connection_that_reached_itself",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

fn in_the_namespace() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let error = MllpClient::connect(("127.0.0.1", PORT))
            .await
            .map(|client| client.into_inner().local_addr())
            .expect_err("connected to a port nothing listens on");
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{error}"
        );
        assert!(error.to_string().contains("reached itself"), "{error}");
        // The receiver can listen on its port right away.
        TcpListener::bind(("127.0.0.1", PORT))
            .await
            .expect("the port is free");
    });
}
