//! The async client, server and codec over real loopback TCP.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{
    AckBuilder, AckCode, AckMessage, ClientError, CommitAck, Message, MllpClient, MllpCodec,
    MllpFrame, MllpServer, Reply, Response, auto_ack, serve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

fn oru(id: usize) -> Vec<u8> {
    format!("MSH|^~\\&|ANALYZER|LAB|LIS|HOSP|20240101120000||ORU^R01^ORU_R01|MSG{id}|P|2.5.1\rPID|1||{id}\rOBX|1|NM|GLU||5.{id}|mmol/L\r").into_bytes()
}

async fn start_server<H, F>(handler: H) -> SocketAddr
where
    H: Fn(MllpFrame) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<Response>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, MllpCodec::new(), handler));
    address
}

async fn auto_ack_server() -> SocketAddr {
    start_server(|frame| async move { auto_ack(&frame) }).await
}

fn assert_ack_for(reply: &Reply, id: usize) {
    let Reply::Ack { code, payload } = reply else {
        panic!("expected an HL7 ACK, got {reply:?}");
    };
    assert_eq!(*code, AckCode::ApplicationAccept);
    let ack = Message::parse(payload).unwrap();
    let msa = AckMessage::from_message(&ack).unwrap();
    assert_eq!(msa.acknowledged_id.raw(), format!("MSG{id}").as_bytes());
}

/// `reply` is an HL7 ACK with MSA-1 `code`.
fn assert_ack_code(reply: &Reply, code: AckCode) {
    assert!(
        matches!(reply, Reply::Ack { code: got, .. } if *got == code),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sends_and_awaits_each_ack() {
    let address = auto_ack_server().await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5));
    for id in 0..20 {
        let reply = client.send(&oru(id)).await.unwrap();
        assert_ack_for(&reply, id);
    }
    assert_eq!(client.stale_replies(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_messages_get_their_acks_in_order() {
    let address = auto_ack_server().await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(10));
    let messages: Vec<Vec<u8>> = (0..500).map(oru).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let replies = client.send_all(&refs).await.unwrap();
    assert_eq!(replies.len(), 500);
    for (id, reply) in replies.iter().enumerate() {
        assert_ack_for(reply, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_handles_frames_written_in_one_write_and_byte_by_byte() {
    let address = auto_ack_server().await;
    let mut wire = b"junk before the first frame".to_vec();
    for id in 0..5 {
        mllp_hl7::encode_frame(&oru(id), &mut wire).unwrap();
    }
    // One write carrying five frames.
    let stream = TcpStream::connect(address).await.unwrap();
    let mut framed = Framed::new(stream, MllpCodec::new());
    framed.get_mut().write_all(&wire).await.unwrap();
    for id in 0..5 {
        let Some(Ok(MllpFrame::Message(payload))) = framed.next().await else {
            panic!("no ACK {id}")
        };
        let ack = Message::parse(&payload).unwrap();
        assert_eq!(
            ack.get("MSA-2").unwrap().unwrap().raw(),
            format!("MSG{id}").as_bytes()
        );
    }
    // The same bytes one at a time.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for byte in &wire {
        stream.write_all(&[*byte]).await.unwrap();
    }
    let mut framed = Framed::new(stream, MllpCodec::new());
    for id in 0..5 {
        let Some(Ok(MllpFrame::Message(payload))) = framed.next().await else {
            panic!("no ACK {id}")
        };
        let ack = Message::parse(&payload).unwrap();
        assert_eq!(
            ack.get("MSA-2").unwrap().unwrap().raw(),
            format!("MSG{id}").as_bytes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ack_times_out() {
    let address = start_server(|_frame| async { None }).await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_millis(200));
    let error = client.send(&oru(1)).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Timeout { pending: 1, ref unframed, .. } if unframed.is_empty()),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "mllp client: 1 acknowledgement(s) still missing after 200ms"
    );
}

/// Answers in another framing than the client's (a bare `ACK`, or MLLP with another end
/// block), and what the client's error says of each.
const UNFRAMED_ANSWERS: [(&[u8], &str); 2] = [
    (b"ACK\r", "the peer sent 4 byte(s) outside MLLP frames"),
    (
        b"\x0bMSH|^~\\&|LIS\x03\r",
        "the peer sent a frame begun and not ended",
    ),
];

/// A peer that reads one whole frame, writes `answer`, then holds the connection open
/// until the client closes it, or closes it at once. The whole frame is read first: bytes
/// left unread at a close would turn it into a reset, and the client might lose the answer.
async fn peer_answering_once(
    answer: &'static [u8],
    hold_open: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !seen.ends_with(b"\x1c\x0d") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        stream.write_all(answer).await.unwrap();
        if hold_open {
            let _ = stream.read(&mut buf).await;
        }
    });
    (address, peer)
}

/// Whether an error message opens with `opening` and then names what came unframed.
fn names_unframed(message: &str, opening: &str, says: &str) -> bool {
    message.starts_with(opening)
        && message.contains(says)
        && message.contains(r#"this client expects frames as "\x0B" ... "\x1C\r""#)
}

/// A peer that answers, but not in the client's framing, makes the timeout say so. It read
/// as a peer that never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_what_came_outside_mllp_frames() {
    for (answer, says) in UNFRAMED_ANSWERS {
        let (address, peer) = peer_answering_once(answer, true).await;
        let mut client = MllpClient::connect(address)
            .await
            .unwrap()
            .with_ack_timeout(Duration::from_millis(300));
        let message = client.send(&oru(1)).await.unwrap_err().to_string();
        let opening = "mllp client: 1 acknowledgement(s) still missing after 300ms; ";
        assert!(names_unframed(&message, opening, says), "{message}");
        drop(client);
        peer.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_ack_for_another_message_is_not_taken() {
    // The server first answers with an ACK for a message that is not in flight (a late
    // ACK of an earlier, timed-out message), then with the right one.
    let address = server_answering(|message| {
        let stale = Message::parse(b"MSH|^~\\&|A||B||1||ORU^R01|OLD-1|P|2.5").unwrap();
        vec![
            AckBuilder::new(&stale).build().unwrap(),
            AckBuilder::new(message).build().unwrap(),
        ]
    })
    .await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5));
    assert_ack_for(&client.send(&oru(7)).await.unwrap(), 7);
    assert_eq!(client.stale_replies(), 1);
}

/// A receiver that cannot read a message cannot echo its control id: its AR with an empty
/// MSA-2 answers the one message in flight. It was counted stale, and the sender saw a
/// timeout (and would resend) instead of the refusal. An AA without an id still proves
/// nothing and is not taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ack_without_a_control_id_answers_the_only_message_in_flight() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, MllpCodec::new());
        let mut answers = [
            &b"MSH|^~\\&|LIS||LAB||20240101||ACK|1|P|2.5\rMSA|AR||cannot parse message\r"[..],
            b"MSH|^~\\&|LIS||LAB||20240101||ACK|2|P|2.5\rMSA|AA|\r",
        ]
        .into_iter();
        while let Some(Ok(MllpFrame::Message(_))) = framed.next().await {
            match answers.next() {
                Some(answer) => framed.send(answer).await.unwrap(),
                None => break,
            }
        }
    });
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_millis(500));
    let reply = client.send(&oru(1)).await.unwrap();
    assert!(
        matches!(
            reply,
            Reply::Ack {
                code: AckCode::ApplicationReject,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(client.stale_replies(), 0);
    let error = client.send(&oru(2)).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    assert_eq!(client.stale_replies(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_2_commit_acknowledgements_over_tcp() {
    let address = start_server(|frame| async move {
        match frame {
            MllpFrame::Message(payload) if payload.starts_with(b"MSH") => {
                Some(Response::Commit(CommitAck::Ack))
            }
            MllpFrame::Message(_) => Some(Response::Commit(CommitAck::Nak)),
            _ => None,
        }
    })
    .await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5));
    assert_eq!(
        client.send(&oru(1)).await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );
    assert_eq!(
        client.send(b"not hl7").await.unwrap(),
        Reply::Commit(CommitAck::Nak)
    );
    // On the wire it is exactly the 4-byte block.
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut wire = Vec::new();
    mllp_hl7::encode_frame(&oru(2), &mut wire).unwrap();
    stream.write_all(&wire).await.unwrap();
    let mut block = [0u8; 4];
    stream.read_exact(&mut block).await.unwrap();
    assert_eq!(block, CommitAck::Ack.to_block());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connection_is_reported() {
    // The whole frame read, then the connection dropped without a reply.
    let (address, _) = peer_answering_once(b"", false).await;
    let mut client = MllpClient::connect(address).await.unwrap();
    let error = client.send(&oru(1)).await.unwrap_err();
    assert!(
        matches!(error, ClientError::Closed { pending: 1, ref unframed } if unframed.is_empty()),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "mllp client: connection closed with 1 acknowledgement(s) missing"
    );
}

/// A peer that answers in another framing and hangs up: the close names what it sent,
/// as a timeout does. Before, it read as a peer that closed without answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_names_what_came_outside_mllp_frames() {
    for (answer, says) in UNFRAMED_ANSWERS {
        let (address, _) = peer_answering_once(answer, false).await;
        let mut client = MllpClient::connect(address)
            .await
            .unwrap()
            .with_ack_timeout(Duration::from_secs(10));
        let error = client.send(&oru(1)).await.unwrap_err();
        assert!(
            matches!(error, ClientError::Closed { pending: 1, ref unframed } if !unframed.is_empty()),
            "{error:?}"
        );
        let opening = "mllp client: connection closed with 1 acknowledgement(s) missing; ";
        assert!(names_unframed(&error.to_string(), opening, says), "{error}");
    }
}

/// A message whose MSH-15 asks for no accept ACK (NE, or ER on success), or an ACK, gets
/// none from a standard receiver; the client does not wait for one (before, it timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_is_awaited_when_msh_15_asks_for_none() {
    let address = auto_ack_server().await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(2))
        .with_accept_ack_types(true);
    let enhanced = |id: &str, accept: &str| {
        format!("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|{id}|P|2.5.1|||{accept}|NE\rPID|1\r")
            .into_bytes()
    };
    let (never, on_error, always) = (enhanced("N1", "NE"), enhanced("E1", "ER"), oru(3));
    let replies = client
        .send_all(&[&never, &always, &on_error])
        .await
        .unwrap();
    assert_eq!(replies[0], Reply::NotRequested);
    assert_ack_for(&replies[1], 3);
    assert_eq!(replies[2], Reply::NotRequested);
    assert_eq!(client.send(&never).await.unwrap(), Reply::NotRequested);
    // MSH-15 = AL still waits for (and gets) its accept ACK.
    let reply = client.send(&enhanced("A1", "AL")).await.unwrap();
    assert_ack_code(&reply, AckCode::CommitAccept);
    // An ACK relayed onward is never acknowledged: nothing to wait for either.
    let relayed = b"MSH|^~\\&|C|D|A|B|20240101||ACK^R01^ACK|K1|P|2.5.1\rMSA|AA|N1\r";
    assert_eq!(client.send(relayed).await.unwrap(), Reply::NotRequested);
    assert_eq!(client.stale_replies(), 0);
    // By default every message waits for a reply: this receiver sends none for NE.
    let mut waiting = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_millis(200));
    let error = waiting.send(&never).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
}

/// A receiver in enhanced mode that sends, for each message, its commit accept (CA, when
/// MSH-15 asks for one) and then, on the same connection, its application ACK (here AE).
async fn enhanced_mode_server() -> SocketAddr {
    server_answering(|message| {
        let mut replies = Vec::new();
        if message.acknowledged_on_success() {
            let accept = AckBuilder::new(message).code(AckCode::CommitAccept);
            replies.push(accept.build().unwrap());
        }
        let application = AckBuilder::new(message).code(AckCode::ApplicationError);
        replies.push(application.build().unwrap());
        replies
    })
    .await
}

/// A receiver of one connection that answers each message with `replies(message)`, 50 ms
/// apart (so a client sees them in separate reads).
async fn server_answering<F>(replies: F) -> SocketAddr
where
    F: Fn(&Message<'_>) -> Vec<Vec<u8>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, MllpCodec::new());
        while let Some(Ok(MllpFrame::Message(payload))) = framed.next().await {
            let message = Message::parse(&payload).unwrap();
            for (i, reply) in replies(&message).iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                framed.send(&reply[..]).await.unwrap();
            }
        }
    });
    address
}

/// With `with_application_acks`, a message whose MSH-16 asks for an application ACK gets it
/// as its reply: after NE (no accept ACK) it was `NotRequested` and the AE that followed was
/// skipped as stale; after AL the CA was taken and the AE skipped the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_acks_are_awaited_when_msh_16_asks_for_them() {
    let enhanced = |id: &str, accept: &str, application: &str| {
        format!(
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|{id}|P|2.5.1|||{accept}|{application}\rPID|1\r"
        )
        .into_bytes()
    };
    let mut client = MllpClient::connect(enhanced_mode_server().await)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5))
        .with_accept_ack_types(true)
        .with_application_acks(true);
    for (id, accept) in [("N1", "NE"), ("A1", "AL")] {
        let reply = client.send(&enhanced(id, accept, "AL")).await.unwrap();
        let Reply::Ack { code, payload } = &reply else {
            panic!("{id}: {reply:?}");
        };
        assert_eq!(*code, AckCode::ApplicationError, "{id}");
        let ack = AckMessage::parse(payload).unwrap();
        assert_eq!(ack.acknowledged_id.raw(), id.as_bytes());
    }
    assert_eq!(client.stale_replies(), 0);

    // Without the option, as before: the accept ACK (or none) is the reply, and the
    // application ACK that follows is stale.
    let mut accept_only = MllpClient::connect(enhanced_mode_server().await)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5))
        .with_accept_ack_types(true);
    let reply = accept_only.send(&enhanced("N2", "NE", "AL")).await.unwrap();
    assert_eq!(reply, Reply::NotRequested);
    let reply = accept_only.send(&enhanced("A2", "AL", "AL")).await.unwrap();
    assert_ack_code(&reply, AckCode::CommitAccept);
}

/// A batch with a payload that cannot be framed fails before anything is queued. Before,
/// the messages ahead of it stayed in the write buffer and went out, unasked, with the next
/// send, and their ACKs were counted as stale (the caller, told the batch failed, would
/// send them a second time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_by_the_encoder_sends_nothing() {
    let (client_side, mut peer) = tokio::io::duplex(64 * 1024);
    let mut client =
        MllpClient::new(client_side, MllpCodec::new()).with_ack_timeout(Duration::from_secs(5));
    let good = oru(1);
    let bad = b"MSH|^~\\&|A\x1c\rPID|1\r".to_vec();
    let error = client.send_all(&[&good, &bad]).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Codec(mllp_hl7::CodecError::Encode(
                mllp_hl7::EncodeError::ContainsEndBlock { .. }
            ))
        ),
        "{error}"
    );
    // The next send puts only its own message on the wire.
    let next = oru(2);
    let sending = tokio::spawn(async move {
        let reply = client.send(&next).await;
        (reply, client)
    });
    let mut framed = Framed::new(&mut peer, MllpCodec::new());
    let Some(Ok(MllpFrame::Message(first))) = framed.next().await else {
        panic!("no frame")
    };
    let first = Message::parse(&first).unwrap();
    assert_eq!(
        first.control_id().raw(),
        b"MSG2",
        "only the new message is sent"
    );
    let ack = AckBuilder::new(&first).build().unwrap();
    framed.send(&ack[..]).await.unwrap();
    let (reply, client) = sending.await.unwrap();
    assert_ack_for(&reply.unwrap(), 2);
    assert_eq!(client.stale_replies(), 0);
}

/// MSA-2 is matched to MSH-10 by value: the same control ID written with other escape
/// sequences, or with the ACK's own delimiters, is the same ID. Our own server writes a raw
/// LF of MSH-10 as `\X0A\` in MSA-2; before, the client compared raw bytes and timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_matched_by_the_decoded_control_id() {
    let address = auto_ack_server().await;
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(2));
    let with_lf = b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|ID\nX|P|2.5\rPID|1\r";
    let reply = client.send(with_lf).await.unwrap();
    assert!(matches!(reply, Reply::Ack { .. }), "{reply:?}");
    assert_eq!(client.stale_replies(), 0);

    // A receiver that answers in standard delimiters a message that declared others:
    // MSH-10 `A|1` (the `|` is data under `#` as field separator) comes back as `A\F\1`.
    let (client_side, mut peer) = tokio::io::duplex(64 * 1024);
    let mut client =
        MllpClient::new(client_side, MllpCodec::new()).with_ack_timeout(Duration::from_secs(2));
    let sending = tokio::spawn(async move {
        let message = b"MSH#^~\\&#A#B#C#D#20240101##ORU^R01#A|1#P#2.5\rPID#1\r";
        client.send(message).await
    });
    let mut framed = Framed::new(&mut peer, MllpCodec::new());
    let Some(Ok(MllpFrame::Message(_))) = framed.next().await else {
        panic!("no frame")
    };
    let ack = b"MSH|^~\\&|C|D|A|B|20240101||ACK^R01^ACK|9|P|2.5\rMSA|AA|A\\F\\1\r";
    framed.send(&ack[..]).await.unwrap();
    let reply = sending.await.unwrap().unwrap();
    assert!(
        matches!(
            reply,
            Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            }
        ),
        "{reply:?}"
    );
}

/// A large pipelined batch: while the client is still writing, the server's ACKs fill the
/// pipe back to the client. The client used to read no ACK before its last write was
/// flushed, so both sides waited on each other for ever (and the ACK timeout, which only
/// covered the reading, never fired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_transport_buffers_does_not_deadlock() {
    let (client_side, server_side) = tokio::io::duplex(8 * 1024);
    tokio::spawn(mllp_hl7::serve_connection(
        server_side,
        MllpCodec::new(),
        |frame| async move { auto_ack(&frame) },
    ));
    let mut client =
        MllpClient::new(client_side, MllpCodec::new()).with_ack_timeout(Duration::from_secs(20));
    let messages: Vec<Vec<u8>> = (0..2000).map(oru).collect();
    let batch: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let replies = tokio::time::timeout(Duration::from_secs(30), client.send_all(&batch))
        .await
        .expect("send_all deadlocked")
        .unwrap();
    assert_eq!(replies.len(), 2000);
    for (id, reply) in replies.iter().enumerate() {
        assert_ack_for(reply, id);
    }
}

/// A peer that accepts the connection but never reads: the write cannot complete, and
/// the ACK timeout still ends the send instead of leaving it blocked for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_timeout_also_bounds_a_write_the_peer_never_reads() {
    let (client_side, _server_side) = tokio::io::duplex(1024);
    let mut client =
        MllpClient::new(client_side, MllpCodec::new()).with_ack_timeout(Duration::from_millis(200));
    let mut large = oru(1);
    large.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let error = tokio::time::timeout(Duration::from_secs(10), client.send(&large))
        .await
        .expect("send blocked past its ACK timeout")
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Timeout { pending: 1, .. }),
        "{error}"
    );
}

/// An ack timeout too long for the clock (`Duration::MAX`, "wait as long as it takes") panicked
/// in `send` ("overflow when adding duration to instant"); it now means no deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_timeout_beyond_the_clock_waits_without_a_deadline() {
    let address = auto_ack_server().await;
    let stream = TcpStream::connect(address).await.unwrap();
    let mut client = MllpClient::new(stream, MllpCodec::new()).with_ack_timeout(Duration::MAX);
    let reply = client.send(&oru(1)).await.unwrap();
    assert_ack_for(&reply, 1);
}

/// `get_ref` and `get_mut` reach the stream itself: its addresses and options, and a
/// shutdown between messages that the peer sees as the end of the connection; the client
/// still works in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_ref_and_get_mut_reach_the_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, MllpCodec::new());
        let mut answered = 0;
        while let Some(frame) = framed.next().await {
            let Ok(MllpFrame::Message(payload)) = frame else {
                panic!("{frame:?}")
            };
            let ack = AckBuilder::new(&Message::parse(&payload).unwrap())
                .build()
                .unwrap();
            framed.send(&ack[..]).await.unwrap();
            answered += 1;
        }
        // The client's shutdown ended the stream of frames.
        answered
    });
    let mut client = MllpClient::connect(address)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5));
    assert_eq!(client.get_ref().peer_addr().unwrap(), address);
    // `connect` turns Nagle off; `get_mut` can turn it back on, and off again.
    assert!(client.get_ref().nodelay().unwrap());
    client.get_mut().set_nodelay(false).unwrap();
    assert!(!client.get_ref().nodelay().unwrap());
    assert_ack_for(&client.send(&oru(1)).await.unwrap(), 1);
    client.get_mut().set_nodelay(true).unwrap();
    assert!(client.get_ref().nodelay().unwrap());
    assert_ack_for(&client.send(&oru(2)).await.unwrap(), 2);

    client.get_mut().shutdown().await.unwrap();
    assert_eq!(server.await.unwrap(), 2);
}

/// Starts an auto-ACK `server` on a loopback port.
async fn start_limited(server: MllpServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        server
            .serve(listener, |frame| async move { auto_ack(&frame) })
            .await
    });
    address
}

/// Reads until the peer closes; panics if it has not within 5 s.
async fn closed_by_peer(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut seen))
        .await
        .expect("the server kept the connection open")
        .unwrap();
    seen
}

/// A connection that goes silent in the middle of a message is closed after the idle
/// timeout, its partial frame unanswered; one that keeps completing messages is not. The
/// server had no idle timeout: a stalled peer held its task and socket for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_closes_a_connection_idle_past_its_timeout() {
    let idle = Duration::from_millis(300);
    let address = start_limited(MllpServer::new(MllpCodec::new()).idle_timeout(Some(idle))).await;

    let mut stalled = TcpStream::connect(address).await.unwrap();
    stalled.write_all(b"\x0bMSH|^~\\&|A|B|C|D|").await.unwrap();
    assert_eq!(
        closed_by_peer(&mut stalled).await,
        b"",
        "no reply to a partial frame"
    );

    // Messages 100 ms apart: never idle for 300 ms, for four times that.
    let mut busy = MllpClient::connect(address).await.unwrap();
    for id in 0..12 {
        assert_ack_for(&busy.send(&oru(id)).await.unwrap(), id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `serve_connection` reports the idle close as a `TimedOut` error, and a server without
/// an idle timeout waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_is_reported_as_timed_out() {
    let (_client, server_side) = tokio::io::duplex(1024);
    let server = MllpServer::new(MllpCodec::new()).idle_timeout(Some(Duration::from_millis(50)));
    let error = server
        .serve_connection(server_side, |frame| async move { auto_ack(&frame) })
        .await
        .unwrap_err();
    let mllp_hl7::CodecError::Io(io) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("idle for 0.05 s"), "{error}");

    let (_client, server_side) = tokio::io::duplex(1024);
    let patient = MllpServer::new(MllpCodec::new()).idle_timeout(None);
    let waiting = tokio::time::timeout(
        Duration::from_millis(300),
        patient.serve_connection(server_side, |frame| async move { auto_ack(&frame) }),
    );
    assert!(
        waiting.await.is_err(),
        "it closed a connection without a timeout"
    );
}

/// A peer that sends but never reads its ACKs is closed once a reply has waited the idle
/// timeout, instead of holding the connection with a write that cannot complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_replies_is_closed() {
    let (mut client, server_side) = tokio::io::duplex(256);
    let server = MllpServer::new(MllpCodec::new()).idle_timeout(Some(Duration::from_millis(200)));
    let serving = tokio::spawn(async move {
        server
            .serve_connection(server_side, |frame| async move { auto_ack(&frame) })
            .await
    });
    // Each ACK is over 100 bytes: a few fill the 256-byte pipe nobody reads.
    for id in 0..8 {
        let mut frame = vec![0x0b];
        frame.extend_from_slice(&oru(id));
        frame.extend_from_slice(b"\x1c\r");
        if client.write_all(&frame).await.is_err() {
            break;
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("a blocked reply held the connection")
        .unwrap();
    assert!(ended.unwrap_err().to_string().contains("idle for"));
}

/// Over `max_connections`, a new connection is closed at once while the ones served carry
/// on; when one ends, its place is free again. There was no cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    let address = start_limited(MllpServer::new(MllpCodec::new()).max_connections(2)).await;
    let mut first = MllpClient::connect(address).await.unwrap();
    let mut second = MllpClient::connect(address).await.unwrap();
    // Both served: the server has taken both slots before the third connects.
    assert_ack_for(&first.send(&oru(1)).await.unwrap(), 1);
    assert_ack_for(&second.send(&oru(2)).await.unwrap(), 2);

    let mut third = TcpStream::connect(address).await.unwrap();
    assert_eq!(closed_by_peer(&mut third).await, b"");
    assert_ack_for(&first.send(&oru(3)).await.unwrap(), 3);

    drop(second);
    // The slot is freed when the server's task sees the close: retry until it has.
    let mut served = None;
    for _ in 0..50 {
        let mut client = MllpClient::connect(address)
            .await
            .unwrap()
            .with_ack_timeout(Duration::from_secs(2));
        if let Ok(reply) = client.send(&oru(4)).await {
            served = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ack_for(&served.expect("the freed slot was never reused"), 4);
}

/// In enhanced mode `auto_ack` answers as MSH-15 and MSH-16 ask: `NE`/`AL` got nothing
/// (the default enhanced-mode code is CA, which NE refuses), so a sender asking for the
/// application acknowledgement alone waited for ever; `AL`/`AL` got the CA only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_answers_msh_15_and_msh_16_in_enhanced_mode() {
    let address = auto_ack_server().await;
    let stream = TcpStream::connect(address).await.unwrap();
    let mut framed = Framed::new(stream, MllpCodec::new());
    let mut codes_for = async |accept: &str, application: &str, id: &str| {
        let message = format!(
            "MSH|^~\\&|ANALYZER|LAB|LIS|HOSP|20240101||OUL^R22^OUL_R22|{id}|P|2.5.1|||{accept}|{application}\r"
        );
        framed.send(message.as_bytes()).await.unwrap();
        // A marker in original mode after it: its AA ends what this message got.
        framed.send(&oru(9)[..]).await.unwrap();
        let mut codes = Vec::new();
        loop {
            let Some(Ok(MllpFrame::Message(payload))) =
                tokio::time::timeout(Duration::from_secs(5), framed.next())
                    .await
                    .unwrap()
            else {
                panic!("no reply")
            };
            let ack = Message::parse(&payload).unwrap();
            let msa = AckMessage::from_message(&ack).unwrap();
            if msa.acknowledged_id.raw() == b"MSG9" {
                return codes;
            }
            assert_eq!(msa.acknowledged_id.raw(), id.as_bytes());
            codes.push(msa.code);
        }
    };
    assert_eq!(
        codes_for("NE", "AL", "A1").await,
        [AckCode::ApplicationAccept]
    );
    assert_eq!(
        codes_for("AL", "AL", "A2").await,
        [AckCode::CommitAccept, AckCode::ApplicationAccept]
    );
    assert_eq!(codes_for("AL", "NE", "A3").await, [AckCode::CommitAccept]);
    assert_eq!(codes_for("NE", "NE", "A4").await, []);
}

/// After a message in enhanced mode returned on its accept ACK, its application ACK comes
/// while a payload without a control id waits: it is a late reply, not that payload's ACK
/// (the payload took it, and reported success for a message never answered).
#[tokio::test]
async fn an_ack_naming_a_control_id_does_not_answer_a_payload_without_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut link = Framed::new(tcp, MllpCodec::new());
        let Some(Ok(MllpFrame::Message(_))) = link.next().await else {
            panic!("no message A");
        };
        link.send(&b"MSH|^~\\&|R|F|S|F|1||ACK|1|P|2.5.1\rMSA|CA|A1\r"[..])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        link.send(&b"MSH|^~\\&|R|F|S|F|1||ACK|2|P|2.5.1\rMSA|AA|A1\r"[..])
            .await
            .unwrap();
        let Some(Ok(MllpFrame::Message(_))) = link.next().await else {
            panic!("no payload B");
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // B's own reply: an ACK without a control id.
        link.send(&b"MSH|^~\\&|R|F|S|F|1||ACK|3|P|2.5.1\rMSA|AE|\r"[..])
            .await
            .unwrap();
        let _ = link.next().await;
    });
    let mut client = MllpClient::connect(addr)
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(5));
    let a = client
        .send(b"MSH|^~\\&|S|F|R|F|1||ORU^R01|A1|P|2.5.1|||AL|AL\rPID|1\r")
        .await
        .unwrap();
    assert_ack_code(&a, AckCode::CommitAccept);
    let b = client.send(b"plain text payload, no MSH-10").await.unwrap();
    assert!(
        matches!(
            b,
            Reply::Ack {
                code: AckCode::ApplicationError,
                ..
            }
        ),
        "{b:?}"
    );
    drop(client);
    receiver.await.unwrap();
}
