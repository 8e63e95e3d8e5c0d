//! The socket output over loopback to a receiver that reads slowly but steadily: a
//! message that takes longer than `acktimeout` to cross the link is still delivered, on
//! the first connection.

mod common;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use mllp_hl7::{MllpCodec, MllpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_util::codec::Framed;

use common::{free_port, start};

/// 6 MB with a 1 s `acktimeout`, read as it arrives every 20 ms through a small receive
/// window (about 1.5 MB/s): about 4 s. The whole write was bounded by `acktimeout`, so
/// the router dropped the connection half-way and sent the message again from the start,
/// for ever. And the ACK wait began while up to 4 MB still sat in the router's socket
/// buffer, which this receiver needs well over a second to read before it can answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_on_a_slow_link_that_keeps_reading_is_delivered() {
    const SIZE: usize = 6 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (free_port(), free_port());
    let socket = TcpSocket::new_v4().unwrap();
    // A small receive window, so that the router's writes wait for this test's reads.
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    socket.bind(([127, 0, 0, 1], output).into()).unwrap();
    let listener = socket.listen(4).unwrap();
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {input}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
         createserversocket = False\nport = {output}\nacktimeout = 1\nretrydelay = 0.1\n"
    );
    let router = start(dir.path(), &text).await;

    let payload: Vec<u8> = (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", input))
        .await
        .unwrap();
    let codec =
        MllpCodec::with_config(MllpConfig::default().with_max_message_size(16 << 20)).unwrap();
    let mut sender = Framed::new(tcp, codec);
    sender.send(&payload[..]).await.unwrap();

    let (mut link, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the router connects")
        .unwrap();
    let started = Instant::now();
    let mut received = Vec::with_capacity(SIZE + 3);
    let mut chunk = vec![0; 64 * 1024];
    while received.len() < SIZE + 3 {
        let n = tokio::time::timeout(Duration::from_secs(10), link.read(&mut chunk))
            .await
            .expect("the router keeps sending")
            .unwrap();
        assert!(
            n > 0,
            "the router closed the link after {} of {} bytes ({:?})",
            received.len(),
            SIZE + 3,
            started.elapsed()
        );
        received.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(1),
        "the link was not slow: {took:?}"
    );
    assert_eq!(received.len(), SIZE + 3);
    assert_eq!(received[0], 0x0b);
    assert!(
        received[1..=SIZE] == payload[..],
        "the message arrived changed"
    );
    assert_eq!(&received[SIZE + 1..], b"\x1c\r");
    link.write_all(b"\x0b\x06\x1c\r").await.unwrap();

    // Acknowledged on the first connection: no resend follows.
    let again = tokio::time::timeout(Duration::from_millis(1500), listener.accept()).await;
    assert!(again.is_err(), "the router connected again to resend");
    let mut rest = [0u8; 16];
    let more = tokio::time::timeout(Duration::from_millis(300), link.read(&mut rest)).await;
    assert!(
        !matches!(more, Ok(Ok(n)) if n > 0),
        "the router sent more after the ACK"
    );
    router.shutdown().await;
}
