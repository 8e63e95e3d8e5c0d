//! The socket output over loopback against a receiver in enhanced mode: an ACK naming
//! another message's control id never counts for a message without one.

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{MllpClient, MllpCodec, MllpFrame};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use common::{free_port, start};

fn oru(id: &str, msh15: &str, msh16: &str) -> Vec<u8> {
    format!("MSH|^~\\&|LAB|F|LIS|H|20240101||ORU^R01|{id}|P|2.5.1|||{msh15}|{msh16}\rPID|1||{id}\r")
        .into_bytes()
}

fn ack(code: &str, id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|LIS|H|LAB|F|20240101||ACK|X{id}|P|2.5.1\rMSA|{code}|{id}\r").into_bytes()
}

/// A (MSH-15/16 AL/AL) gets its accept ACK at once and its application ACK 300 ms later,
/// while B, which has no control id, waits for its reply; the receiver refuses B a second
/// later. B took A's application ACK for its own and counted as delivered, and its
/// refusal then landed on C. B must be sent again, before C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_ack_after_the_accept_ack_is_not_taken_for_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (free_port(), free_port());
    let listener = TcpListener::bind(("127.0.0.1", output)).await.unwrap();
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {input}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {output}\nacktimeout = 3\nretrydelay = 0.2\n\
         retrymaxdelay = 1\n"
    );
    let router = start(dir.path(), &text).await;
    let mut sender = MllpClient::connect(("127.0.0.1", input)).await.unwrap();
    sender.send(&oru("A1", "AL", "AL")).await.unwrap();
    sender
        .send(b"MSH|^~\\&|LAB|F|LIS|H|20240101||ORU^R01||P|2.5.1\rPID|1||B\r")
        .await
        .unwrap();
    sender.send(&oru("C1", "", "")).await.unwrap();

    let (tcp, _) = listener.accept().await.unwrap();
    let mut link = Framed::new(tcp, MllpCodec::new());
    let mut seen = Vec::new();
    let started = Instant::now();
    while !seen.contains(&"C1".to_owned()) && started.elapsed() < Duration::from_secs(10) {
        let Ok(Some(Ok(MllpFrame::Message(m)))) =
            tokio::time::timeout(Duration::from_secs(10), link.next()).await
        else {
            break;
        };
        let id = String::from_utf8_lossy(mllp_hl7::Message::parse(&m).unwrap().control_id().raw())
            .into_owned();
        seen.push(id.clone());
        match id.as_str() {
            "A1" => {
                link.send(&ack("CA", "A1")[..]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                link.send(&ack("AA", "A1")[..]).await.unwrap();
            }
            // B: refused once, a second later, then accepted.
            "" if seen.iter().filter(|s| s.is_empty()).count() == 1 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                link.send(&ack("AE", "")[..]).await.unwrap();
            }
            _ => link.send(&ack("AA", &id)[..]).await.unwrap(),
        }
    }
    router.shutdown().await;
    assert_eq!(seen, ["A1", "", "", "C1"]);
}
