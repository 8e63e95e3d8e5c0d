//! End-to-end tests of the router binary: real config files, real loopback sockets,
//! real files, a real redb store.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{
    AckBuilder, AckCode, AckMessage, CommitAck, Message, MllpClient, MllpCodec, MllpConfig,
    MllpFrame, Reply,
};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_ack_mllp_ack_and_no_ack_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (hl7, mllp, silent) = (free_port(), free_port(), free_port());
    let config = format!(
        r#"[general]
useconnections = hl7-in, mllp-in, silent-in, files
loglvl = info

[hl7-in]
transtech = socket
transdir = in
queuename = q
usehl7 = True
port = {hl7}

[mllp-in]
transtech = socket
transdir = in
queuename = q
port = {mllp}

[silent-in]
transtech = socket
transdir = in
queuename = q
useack = False
port = {silent}

[files]
transtech = file
transdir = out
queuename = q
messagedir = "out"
"#
    );
    let _router = RouterProc::start(dir.path(), &config).await;

    // HL7 with usehl7: an HL7 ACK in original mode (AA, MSA-2 = MSH-10).
    let mut c = client(hl7).await;
    let payload = assert_acknowledges(c.send(&oru("MSG1", "LAB")).await.unwrap(), b"MSG1");
    let ack = Message::parse(&payload).unwrap();
    assert_eq!(ack.sending_application().raw(), b"LIS", "MSH-3/5 swapped");

    // Enhanced mode (MSH-15 = AL): a commit accept CA.
    let enhanced = b"MSH|^~\\&|LAB|F|LIS|H|20240101||ORU^R01|ENH1|P|2.5.1|||AL|NE\rPID|1\r";
    let Reply::Ack { code, .. } = c.send(enhanced).await.unwrap() else {
        panic!("expected an HL7 ACK");
    };
    assert_eq!(code, AckCode::CommitAccept);

    // Non-HL7 payload on the same usehl7 connection: the MLLP commit block.
    assert_eq!(
        c.send(b"plain text").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );

    // usehl7 = False: MLLP commit ACK block even for HL7.
    let mut m = client(mllp).await;
    assert_eq!(
        m.send(&oru("MSG2", "LAB")).await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );

    // useack = False: nothing comes back, the message is still routed.
    let silent_client = MllpClient::connect(("127.0.0.1", silent))
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_millis(500));
    let mut silent_client = silent_client;
    assert!(
        silent_client.send(b"no ack please").await.is_err(),
        "no reply expected"
    );

    let out = dir.path().join("out");
    wait_until("5 files", || files_in(&out).len() == 5).await;
    let contents: Vec<Vec<u8>> = files_in(&out)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(contents.contains(&oru("MSG1", "LAB")));
    assert!(contents.contains(&b"no ack please".to_vec()));
    for path in files_in(&out) {
        assert!(
            path.extension().unwrap() == "dat",
            "default suffix .dat: {path:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_two_outputs_in_order_with_retry_on_ae() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    // The receiver rejects the first two deliveries with AE: they must be resent.
    let peer = Peer::start(peer_port, PeerReply::RejectFirst(2)).await;
    let config = format!(
        "[general]\nuseconnections = in, files, lis\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = lab\nport = {inp}\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = lab\nmessagedir = out\nsuffix = .hl7\n\
         [lis]\ntranstech = socket\ntransdir = out\nqueuename = lab\ncreateserversocket = False\n\
         ipaddr = 127.0.0.1\nport = {peer_port}\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(inp).await;
    for i in 0..20 {
        let reply = c.send(&oru(&format!("ID{i:03}"), "LAB")).await.unwrap();
        assert_accepted(reply);
    }
    let out = dir.path().join("out");
    wait_until("20 files", || files_in(&out).len() == 20).await;
    wait_until("20 distinct messages at the peer", || {
        peer.control_ids().len() == 20
    })
    .await;
    // Per-input order at the socket output, the rejected first message resent twice.
    let received = peer.received.lock().unwrap().clone();
    assert_eq!(received.len(), 22);
    assert_eq!(received[0], oru("ID000", "LAB"));
    assert_eq!(received[1], oru("ID000", "LAB"));
    let accepted: Vec<Vec<u8>> = received[2..].to_vec();
    let expected: Vec<Vec<u8>> = (0..20).map(|i| oru(&format!("ID{i:03}"), "LAB")).collect();
    assert_eq!(accepted, expected);
    // And in order in the file output (names sort by timestamp and counter).
    let files: Vec<Vec<u8>> = files_in(&out)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(files, expected);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_in_to_socket_out_to_mllp_server_and_back_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let back = free_port();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/oru_r01_2.4_ghh_lab_glucose.hl7"
    ))
    .unwrap();
    // f_2 before f_10 in natural order; newline = True trims the trailing LF.
    let messages: Vec<(String, Vec<u8>)> = (1..=12)
        .map(|i| (format!("f_{i}.hl7"), oru(&format!("F{i:02}"), "FILELAB")))
        .collect();
    for (name, body) in &messages {
        let mut body = body.clone();
        body.push(b'\n');
        std::fs::write(inbox.join(name), body).unwrap();
    }
    std::fs::write(inbox.join("ghh.hl7"), &sample).unwrap();
    std::fs::write(inbox.join("ignored.txt"), b"not matched by the mask").unwrap();
    // Only the newline that is trimmed: no message, moved aside rather than queued empty.
    std::fs::write(inbox.join("f_0.hl7"), b"\n").unwrap();
    let config = format!(
        "[general]\nuseconnections = files-in, to-lis, from-lis, files-out\n\
         [files-in]\ntranstech = file\ntransdir = in\nqueuename = outbound\nmessagedir = in\n\
         filemask = *.hl7\ncycletime = 0.2\nmaxfiles = 5\nnewline = True\nnaturalorder = True\nsettletime = 0.1\n\
         [to-lis]\ntranstech = socket\ntransdir = out\nqueuename = outbound\ncreateserversocket = False\nport = {back}\nusehl7 = True\n\
         [from-lis]\ntranstech = socket\ntransdir = in\nqueuename = inbound\nport = {back}\nusehl7 = True\n\
         [files-out]\ntranstech = file\ntransdir = out\nqueuename = inbound\nusehl7 = True\nhl7prefix = True\n\
         messagedir = out\nsuffix = .hl7\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let out = dir.path().join("out");
    wait_until("13 files back", || files_in(&out).len() == 13).await;
    wait_until("inbox drained", || files_in(&inbox).len() == 1).await;
    assert_eq!(files_in(&inbox), [inbox.join("ignored.txt")]);
    assert_eq!(
        files_in(&inbox.join("error")),
        [inbox.join("error/f_0.hl7")]
    );
    let mut numbered: Vec<Vec<u8>> = Vec::new();
    for path in files_in(&out) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        if name.starts_with("FILELAB_LABFAC_LIS_HOSP_ORU_") {
            numbered.push(body);
        } else {
            assert_eq!(body, sample, "{name}");
            assert!(
                name.starts_with("GHH_LAB_ELAB-3_GHH_OE_BLDG4_ORU_"),
                "{name}"
            );
        }
    }
    // Natural order across polls of at most 5 files, one trailing newline removed.
    let expected: Vec<Vec<u8>> = messages.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(numbered, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7prefix_names_and_a_hostile_msh3_stay_inside_messagedir() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n[in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nusehl7 = True\nhl7prefix = True\nmessagedir = deep/out\nsuffix = .hl7\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(port).await;
    c.send(&oru("H1", "../../x")).await.unwrap();
    c.send(&oru("H2", "ANALYZER")).await.unwrap();
    let out = dir.path().join("deep/out");
    wait_until("2 files", || files_in(&out).len() == 2).await;
    let names: Vec<String> = files_in(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("____x_LABFAC_LIS_HOSP_ORU_") && n.ends_with(".hl7")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("ANALYZER_LABFAC_LIS_HOSP_ORU_")),
        "{names:?}"
    );
    for name in &names {
        assert!(!name.contains(".."), "{name}");
        // MSH3_MSH4_MSH5_MSH6_TYPE_timestamp(14)_counter(5).suffix
        let stem = name.strip_suffix(".hl7").unwrap();
        let parts: Vec<&str> = stem.rsplitn(3, '_').collect();
        assert_eq!(parts[0].len(), 5, "{name}");
        assert_eq!(parts[1].len(), 14, "{name}");
    }
    // Nothing escaped: only the files above exist outside the store and logs.
    assert!(!dir.path().join("x").exists());
    assert!(!dir.path().join("deep/x").exists());
    assert!(files_in(&dir.path().join("deep")).is_empty());
}

/// Routes `payloads` from a socket input to a socket output, both with the delimiter
/// settings `delimiters` (config lines) that spell `framing`: every payload gets a commit
/// block in that framing, and the peer receives every payload, in order.
async fn round_trip_with_framing(framing: MllpConfig, delimiters: [&str; 2], payloads: &[&[u8]]) {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let peer = Peer::start_with(
        peer_port,
        PeerReply::Accept,
        MllpCodec::with_config(framing.clone()).unwrap(),
    )
    .await;
    let [in_delimiters, out_delimiters] = delimiters;
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {inp}\n{in_delimiters}\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n{out_delimiters}"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let stream = TcpStream::connect(("127.0.0.1", inp)).await.unwrap();
    let mut c =
        MllpClient::new(stream, MllpCodec::with_config(framing).unwrap()).with_ack_timeout(WAIT);
    // The commit block comes back in the same custom framing.
    for payload in payloads {
        assert_eq!(
            c.send(payload).await.unwrap(),
            Reply::Commit(CommitAck::Ack)
        );
    }
    wait_until("every message at the peer", || {
        peer.count() == payloads.len()
    })
    .await;
    let expected: Vec<Vec<u8>> = payloads.iter().map(|p| p.to_vec()).collect();
    assert_eq!(*peer.received.lock().unwrap(), expected);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_delimiters_frame_both_ways() {
    let framing = MllpConfig::default()
        .with_start_block(b"START-BLOCK".to_vec())
        .with_end_block(vec![0x1c, 0x1c])
        .with_trailer(b"\r\n".to_vec());
    round_trip_with_framing(
        framing,
        [
            "sob = \"START-BLOCK\"\neod = chr(0x1c) + chr(28)\neob = '\\r\\n'\n",
            "sob = \"START-BLOCK\"\neod = chr(28)+chr(0x1c)\neob = chr(13) + chr(10)\n",
        ],
        &[b"custom framed 1", b"custom framed 2"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_socket_reconnects_after_the_peer_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\nacktimeout = 2\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    let mut c = client(inp).await;
    c.send(&oru("R1", "LAB")).await.unwrap();
    wait_until("R1 delivered", || peer.control_ids().contains("R1")).await;
    peer.stop().await;

    // Queued while the peer is down; delivered after it comes back on the same port.
    c.send(&oru("R2", "LAB")).await.unwrap();
    c.send(&oru("R3", "LAB")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("R2 and R3 delivered after reconnect", || {
        let ids = peer.control_ids();
        ids.contains("R2") && ids.contains("R3")
    })
    .await;
    peer.stop().await;
}

/// A receiving system connecting to a server-mode socket output: connects, reads one
/// MLLP frame and answers it with an HL7 ACK.
async fn receiver(port: u16) -> Framed<TcpStream, MllpCodec> {
    Framed::new(
        TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
        MllpCodec::new(),
    )
}

async fn receive_and_ack(link: &mut Framed<TcpStream, MllpCodec>) -> String {
    let frame = tokio::time::timeout(WAIT, link.next())
        .await
        .expect("a message within the wait")
        .expect("connection open")
        .unwrap();
    let MllpFrame::Message(payload) = frame else {
        panic!("expected a message, got {frame:?}");
    };
    let message = Message::parse(&payload).unwrap();
    let ack = AckBuilder::new(&message).build().unwrap();
    link.send(Bytes::from(ack)).await.unwrap();
    String::from_utf8_lossy(message.control_id().raw()).into_owned()
}

/// An ACK is matched to its message by the control ID's value, not its bytes: a message
/// with `#` as field separator and MSH-10 `A|1` is acknowledged by a receiver writing
/// standard delimiters as MSA-2 `A\F\1`. Compared as bytes, that ACK was skipped as a late
/// one, and the message was sent again after the ACK timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_matched_by_the_control_ids_value() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, outp) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\nport = {outp}\n\
         acktimeout = 1\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;
    for id in ["A|1", "B2"] {
        let message = format!("MSH#^~\\&#LAB#F#LIS#H#20240101##ORU^R01#{id}#P#2.5.1\rPID#1");
        assert_accepted(sender.send(message.as_bytes()).await.unwrap());
    }
    let mut link = receiver(outp).await;
    let mut next_id = async || {
        let frame = tokio::time::timeout(WAIT, link.next())
            .await
            .expect("a message within the wait")
            .expect("connection open")
            .unwrap();
        let MllpFrame::Message(payload) = frame else {
            panic!("expected a message, got {frame:?}");
        };
        let message = Message::parse(&payload).unwrap();
        let id = message.control_id().decoded().into_owned();
        let ack = format!(
            "MSH|^~\\&|LIS|H|LAB|F|20240101||ACK|X{}|P|2.5.1\rMSA|AA|{}",
            id.len(),
            String::from_utf8_lossy(&id).replace('|', "\\F\\")
        );
        link.send(Bytes::from(ack)).await.unwrap();
        String::from_utf8(id).unwrap()
    };
    assert_eq!(next_id().await, "A|1");
    // Not "A|1" again after the 1 s ACK timeout.
    assert_eq!(next_id().await, "B2");
}

/// `createserversocket = True` on an output: the router listens and the receiving system
/// connects. A receiver that connects while the queue is idle takes over from the
/// previous connection, which is closed: that one may be dead without a FIN (the
/// receiving host was restarted), and waiting for the next message's ACK timeout (here
/// 60 s) to find out would hold up delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_socket_output_serves_the_receiver_that_connected_last() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, outp) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = True\n\
         port = {outp}\nusehl7 = True\nacktimeout = 60\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;

    let mut first = receiver(outp).await;
    sender.send(&oru("S1", "LAB")).await.unwrap();
    assert_eq!(receive_and_ack(&mut first).await, "S1");

    // The first receiver goes silent but keeps its connection; a second one connects.
    let mut second = receiver(outp).await;
    wait_until("the second receiver taken on", || {
        router
            .log_text()
            .contains("closing the previous connection")
    })
    .await;
    sender.send(&oru("S2", "LAB")).await.unwrap();
    sender.send(&oru("S3", "LAB")).await.unwrap();
    assert_eq!(receive_and_ack(&mut second).await, "S2");
    assert_eq!(receive_and_ack(&mut second).await, "S3");
    // The router closed the first connection without sending it anything more.
    let after = tokio::time::timeout(WAIT, first.next()).await.unwrap();
    assert!(after.is_none(), "first receiver got {after:?}");

    // Not idle: a third receiver connects while S4 waits for its ACK. S4 is finished on
    // the second connection; S5 goes to the third.
    sender.send(&oru("S4", "LAB")).await.unwrap();
    sender.send(&oru("S5", "LAB")).await.unwrap();
    let frame = tokio::time::timeout(WAIT, second.next()).await.unwrap();
    let Some(Ok(MllpFrame::Message(s4))) = frame else {
        panic!("expected S4, got {frame:?}");
    };
    let mut third = receiver(outp).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s4 = Message::parse(&s4).unwrap();
    assert_eq!(s4.control_id().raw(), b"S4");
    second
        .send(Bytes::from(AckBuilder::new(&s4).build().unwrap()))
        .await
        .unwrap();
    assert_eq!(receive_and_ack(&mut third).await, "S5");
    let after = tokio::time::timeout(WAIT, second.next()).await.unwrap();
    assert!(after.is_none(), "second receiver got {after:?}");
}

/// A receiver that reads frames and never answers; counts them.
async fn silent_receiver(
    port: u16,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = {
        let seen = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = std::sync::Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut framed = Framed::new(stream, MllpCodec::new());
                    while let Some(Ok(MllpFrame::Message(payload))) = framed.next().await {
                        let id = Message::parse(&payload)
                            .map(|m| String::from_utf8_lossy(m.control_id().raw()).into_owned())
                            .unwrap_or_default();
                        seen.lock().unwrap().push(id);
                    }
                });
            }
        })
    };
    (seen, task)
}

/// A message whose MSH-15 asks for no accept ACK (NE), or for one only on error (ER), is
/// delivered once: waiting for an ACK the receiver rightly never sends would resend it
/// until copies pile up (two routers in a row did exactly that). So is an ACK routed as a
/// message: no receiver acknowledges an ACK, and waiting for one held every message queued
/// behind it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_mode_ne_and_er_messages_and_acks_are_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let (seen, task) = silent_receiver(peer_port).await;
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         usehl7 = True\nacktimeout = 0.2\nretrydelay = 0.05\nretrymaxdelay = 0.1\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(inp).await;
    for (id, message) in [
        (
            "NE1",
            "MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|NE1|P|2.5.1|||NE|NE\rPID|1\r",
        ),
        (
            "ER1",
            "MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|ER1|P|2.5.1|||ER|NE\rPID|1\r",
        ),
        (
            "ACK1",
            "MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ACK^R01^ACK|ACK1|P|2.5.1\rMSA|AA|M0\r",
        ),
    ] {
        // The input honours the same fields: NE gets no reply, ER none on success, an ACK
        // none at all.
        let mut raw = TcpStream::connect(("127.0.0.1", inp)).await.unwrap();
        let mut framed = Framed::new(&mut raw, MllpCodec::new());
        framed
            .send(Bytes::from_static(message.as_bytes()))
            .await
            .unwrap();
        wait_until(id, || seen.lock().unwrap().iter().any(|s| s == id)).await;
    }
    // Several ACK timeouts later, still one copy each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*seen.lock().unwrap(), ["NE1", "ER1", "ACK1"]);
    // A message asking for an ACK as usual still waits for one (and is resent).
    let _ = tokio::time::timeout(Duration::from_millis(100), c.send(&oru("AL1", "LAB"))).await;
    wait_until("AL1 resent", || {
        seen.lock().unwrap().iter().filter(|s| *s == "AL1").count() >= 2
    })
    .await;
    task.abort();
}

/// A receiver that takes the connection but never reads: the send times out like a missing
/// ACK (the output reconnects and retries), and SIGTERM still ends the router at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_reads_does_not_hang_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    // Bound here, port 0: a port picked free and bound later may be taken meanwhile.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {inp}\nmaxmessagesize = 67108864\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         maxmessagesize = 67108864\nacktimeout = 0.5\nretrydelay = 0.05\nretrymaxdelay = 0.1\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let codec = MllpCodec::with_config(MllpConfig::default().with_max_message_size(64 << 20));
    let stream = TcpStream::connect(("127.0.0.1", inp)).await.unwrap();
    let mut c = MllpClient::new(stream, codec.unwrap()).with_ack_timeout(WAIT);
    // Far more than the socket buffers hold.
    let big = vec![b'x'; 24 * 1024 * 1024];
    let reply = c.send(&big).await.unwrap();
    assert!(matches!(reply, Reply::Commit(CommitAck::Ack)), "{reply:?}");
    wait_until("the send timed out", || {
        router
            .log_text()
            .contains("the peer took none of the message for")
    })
    .await;
    let status = router.terminate(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_in_client_mode_reconnects() {
    // The router connects out to a sender (createserversocket = False on an input).
    let dir = tempfile::tempdir().unwrap();
    let sender_port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\ncreateserversocket = False\nport = {sender_port}\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    for round in 0..2 {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", sender_port))
            .await
            .unwrap();
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut c = MllpClient::new(stream, MllpCodec::new()).with_ack_timeout(WAIT);
        let body = format!("round {round}");
        assert_eq!(
            c.send(body.as_bytes()).await.unwrap(),
            Reply::Commit(CommitAck::Ack)
        );
        drop(c);
        drop(listener);
    }
    let out = dir.path().join("out");
    wait_until("2 files", || files_in(&out).len() == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_and_unreadable_input_files() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let config = "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\ncycletime = 0.1\n\
         settletime = 0.3\nmaxmessagesize = 4096\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    // A producer writing slowly: the file changes between the two looks of every poll.
    let slow = inbox.join("slow.hl7");
    std::fs::write(&slow, b"MSH|part1").unwrap();
    // A temporary name is never taken; a file too large for maxmessagesize goes to error/.
    std::fs::write(inbox.join("upload.hl7.tmp"), b"temp").unwrap();
    std::fs::write(inbox.join("huge.hl7"), vec![b'x'; 5000]).unwrap();
    let _router = RouterProc::start(dir.path(), config).await;
    let out = dir.path().join("out");
    let mut full = b"MSH|part1".to_vec();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let chunk = format!("|chunk{i}");
        full.extend_from_slice(chunk.as_bytes());
        std::fs::write(&slow, &full).unwrap();
        assert!(files_in(&out).is_empty(), "a half-written file was taken");
    }
    wait_until("the finished file", || files_in(&out).len() == 1).await;
    assert_eq!(std::fs::read(&files_in(&out)[0]).unwrap(), full);
    let error_dir = inbox.join("error");
    wait_until("huge.hl7 in error/", || error_dir.join("huge.hl7").exists()).await;
    assert_eq!(
        std::fs::read(error_dir.join("huge.hl7")).unwrap().len(),
        5000
    );
    assert!(inbox.join("upload.hl7.tmp").exists());
    assert!(!slow.exists());
}

/// A file that is still empty has not been written yet (a producer opens it, then
/// writes): it is left for a later poll. It was queued as an empty message and deleted,
/// so what the producer wrote next went into a file no longer in the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_input_file_is_left_until_it_has_content() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let config = "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\ncycletime = 0.05\n\
         settletime = 0.05\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    let slow = inbox.join("a_slow.hl7");
    // The producer has created its file and holds it open, not yet written.
    let mut producer = std::fs::File::create(&slow).unwrap();
    std::fs::write(inbox.join("b_done.hl7"), oru("B1", "LAB")).unwrap();
    let _router = RouterProc::start(dir.path(), config).await;
    let out = dir.path().join("out");
    wait_until("the finished file", || !files_in(&out).is_empty()).await;
    // Many polls later the empty file is still there, and nothing else was delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files_in(&out).len(), 1, "an empty file was queued");
    assert!(slow.exists(), "the empty file was taken");
    // The producer writes: the message is delivered with its content.
    std::io::Write::write_all(&mut producer, &oru("A1", "LAB")).unwrap();
    drop(producer);
    wait_until("the slow file", || files_in(&out).len() == 2).await;
    let contents: Vec<Vec<u8>> = files_in(&out)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(contents.contains(&oru("A1", "LAB")), "{contents:?}");
    assert!(!slow.exists());
}

/// An empty frame (some senders' keep-alive) gets the commit block and is not queued:
/// it was stored, so a file output wrote a 0-byte file for each, and a socket output sent
/// it on to a receiver that may never answer one, holding up everything behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_frame_is_acknowledged_and_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;
    assert!(matches!(
        sender.send(b"").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    ));
    assert_accepted(sender.send(&oru("M1", "LAB")).await.unwrap());
    assert!(matches!(
        sender.send(b"").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    ));
    let out = dir.path().join("out");
    wait_until("M1 written", || !files_in(&out).is_empty()).await;
    // The last empty frame was acknowledged after M1 was committed: had it been queued,
    // its file would follow M1's within the output's batch window.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let contents: Vec<Vec<u8>> = files_in(&out)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(contents, [oru("M1", "LAB")]);
}

/// A receiver that answers without MLLP framing (a common misconfiguration) got only "no
/// acknowledgement within ..." in the log, as if it had said nothing; the log now says
/// what arrived outside any frame, which points at the framing settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_mllp_framing_is_named_in_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    // Bound here, port 0: a port picked free and bound later may be taken meanwhile.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let unframed_ack = "MSH|^~\\&|LIS|HOSP|LAB|LABFAC|20240101||ACK|A1|P|2.5.1\rMSA|AA|M1\r";
    let peer = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(unframed_ack.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {peer_port}\nacktimeout = 0.3\nretrydelay = 0.05\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;
    sender.send(&oru("M1", "LAB")).await.unwrap();
    let expected = format!(
        "no acknowledgement within 300ms; the peer sent {} bytes outside any MLLP frame",
        unframed_ack.len()
    );
    wait_until("the timeout naming the unframed reply", || {
        router.log_text().contains(&expected)
    })
    .await;
    peer.abort();
}

/// An ASTM E1381 sender pointed at a socket input (an integrator's `simulator --push
/// tcp://` at the router) sends ENQ and waits; the router said nothing until the sender
/// closed, over two minutes later ("skipped 10 bytes outside any frame"). It now names
/// the mistake as soon as the ENQ arrives, with the connection still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_astm_enq_on_a_socket_input_is_named_at_once() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut astm = TcpStream::connect(("127.0.0.1", inp)).await.unwrap();
    astm.write_all(&[0x05]).await.unwrap();
    wait_until("the log naming the ASTM sender", || {
        router
            .log_text()
            .contains("the connection opened with ENQ (0x05), an ASTM E1381 sender: this input takes MLLP frames only and will not answer it; ASTM instruments need an ASTM interface")
    })
    .await;
    // An MLLP sender is not taken for one.
    let mut sender = client(inp).await;
    assert_accepted(sender.send(&oru("M1", "LAB")).await.unwrap());
    assert_eq!(router.log_text().matches("ASTM E1381").count(), 1);
    drop(astm);
}

/// A message the output can never frame (a file holding the end-block sequence, or one
/// larger than the output's `maxmessagesize`) is kept under `datadir/undeliverable/`
/// and the queue goes on; before, the output retried it for ever and delivered nothing
/// after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unframeable_messages_are_kept_aside_and_do_not_block_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut with_end_block = oru("BAD1", "LAB");
    with_end_block.extend_from_slice(b"NTE|1||a\x1c\rb\r");
    let mut too_large = oru("BAD2", "LAB");
    too_large.extend(std::iter::repeat_n(b'x', 3000));
    std::fs::write(inbox.join("a.hl7"), &with_end_block).unwrap();
    std::fs::write(inbox.join("b.hl7"), &too_large).unwrap();
    std::fs::write(inbox.join("c.hl7"), oru("GOOD1", "LAB")).unwrap();
    let config = format!(
        "[general]\nuseconnections = files, to-lis\ndatadir = store\n\
         [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\ncycletime = 0.2\nsettletime = 0.05\n\
         [to-lis]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         usehl7 = True\nmaxmessagesize = 2000\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    wait_until("GOOD1 delivered", || peer.control_ids().contains("GOOD1")).await;
    assert_eq!(peer.count(), 1);
    let kept_dir = dir.path().join("store/undeliverable/to-lis");
    let kept: Vec<Vec<u8>> = files_in(&kept_dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(kept, [with_end_block, too_large]);
    let log = router.log_text();
    assert!(log.contains("end-of-frame sequence at byte 119"), "{log}");
    assert!(log.contains("kept in"), "{log}");
    peer.stop().await;
}

/// With `maxrefusals = 3`, a message the receiver refuses for good (AE every time) is
/// kept under `datadir/undeliverable/` after its third refusal, and the messages behind
/// it are delivered; without the option it would be resent for ever (the issue's "never
/// drop"), holding everything behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_maxrefusals_times_is_kept_aside_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let peer = Peer::start(peer_port, PeerReply::RejectControlId("BAD")).await;
    let config = format!(
        "[general]\nuseconnections = in, to-lis\ndatadir = store\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [to-lis]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\n\
         port = {peer_port}\nusehl7 = True\nmaxrefusals = 3\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;
    let bad = oru("BAD", "LAB");
    for message in [bad.clone(), oru("GOOD1", "LAB"), oru("GOOD2", "LAB")] {
        assert_accepted(sender.send(&message).await.unwrap());
    }
    wait_until("GOOD1 and GOOD2 delivered", || {
        let ids = peer.control_ids();
        ids.contains("GOOD1") && ids.contains("GOOD2")
    })
    .await;
    let received = peer.received.lock().unwrap().clone();
    let ids: Vec<String> = received
        .iter()
        .map(|m| String::from_utf8_lossy(Message::parse(m).unwrap().control_id().raw()).into())
        .collect();
    assert_eq!(ids, ["BAD", "BAD", "BAD", "GOOD1", "GOOD2"]);
    let kept: Vec<Vec<u8>> = files_in(&dir.path().join("store/undeliverable/to-lis"))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(kept, [bad]);
    let log = router.log_text();
    assert!(log.contains("refused 3 times in a row"), "{log}");
    peer.stop().await;
}

/// Delimiters in Python's other spellings (`'\v'`, octal, adjacent literals) and an empty
/// trailer (`eob = ''`: frames end with the end block alone), both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_escapes_and_an_empty_trailer() {
    let framing = MllpConfig::default()
        .with_end_block(vec![0x1c])
        .with_trailer(Vec::new());
    round_trip_with_framing(
        framing,
        [
            "sob = '\\v'\neod = \"\\034\"\neob = ''\n",
            "sob = '\\013'\neod = '\\x1c' \"\"\neob = \"\"\n",
        ],
        &[b"no trailer"],
    )
    .await;
}

/// Without `usehl7` an output treats payloads as opaque and waits for each one's commit
/// block, whatever MSH-15 says: the receiver sends one for every frame. Before, an NE
/// message counted as done at once, its commit block was taken for the next message's,
/// and that message's NAK went unnoticed: it was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usehl7_every_frame_waits_for_its_commit_block() {
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    // Bound here, port 0: a port picked free and bound later may be taken meanwhile.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let receiver = {
        let accepted = std::sync::Arc::clone(&accepted);
        tokio::spawn(async move {
            let mut frames = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let mut framed = Framed::new(stream, MllpCodec::new());
                while let Some(Ok(MllpFrame::Message(payload))) = framed.next().await {
                    frames += 1;
                    // The second frame is refused (NAK); every other one committed.
                    let commit = if frames == 2 {
                        CommitAck::Nak
                    } else {
                        let id = Message::parse(&payload)
                            .map(|m| String::from_utf8_lossy(m.control_id().raw()).into_owned())
                            .unwrap_or_default();
                        accepted.lock().unwrap().push(id);
                        CommitAck::Ack
                    };
                    if framed.send(commit).await.is_err() {
                        break;
                    }
                }
            }
        })
    };
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         acktimeout = 2\nretrydelay = 0.05\nretrymaxdelay = 0.1\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(inp).await;
    let ne = "MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|NE1|P|2.5.1|||NE|NE\rPID|1\r";
    for message in [ne.as_bytes().to_vec(), oru("M2", "LAB"), oru("M3", "LAB")] {
        assert_eq!(
            c.send(&message).await.unwrap(),
            Reply::Commit(CommitAck::Ack)
        );
    }
    wait_until("three messages committed by the receiver", || {
        accepted.lock().unwrap().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*accepted.lock().unwrap(), ["NE1", "M2", "M3"]);
    receiver.abort();
}

/// A receiver that takes one message per connection, ACKs it with AA and closes the
/// connection (hl7apy's server, or any receiver closing idle connections); records the
/// control IDs it received.
async fn one_message_per_connection(port: u16) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = std::sync::Arc::clone(&record);
            tokio::spawn(async move {
                let mut framed = Framed::new(stream, MllpCodec::new());
                if let Some(Ok(MllpFrame::Message(payload))) = framed.next().await {
                    let message = Message::parse(&payload).unwrap();
                    let id = String::from_utf8_lossy(message.control_id().raw()).into_owned();
                    record.lock().unwrap().push(id);
                    let ack = AckBuilder::new(&message).build().unwrap();
                    let _ = framed.send(Bytes::from(ack)).await;
                }
            });
        }
    });
    seen
}

/// Messages that expect no ACK (`useack = False`, or MSH-15 = NE with `usehl7`) are
/// delivered even when the receiver closed the previous connection: a write into a
/// closed connection succeeds locally, so the output looks before it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_are_not_written_into_a_connection_the_receiver_closed() {
    for (extra, msh15_16) in [("useack = False\n", ""), ("usehl7 = True\n", "NE|NE")] {
        let dir = tempfile::tempdir().unwrap();
        let (input, peer) = (free_port(), free_port());
        let seen = one_message_per_connection(peer).await;
        let config = format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {input}\n\
             [out]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
             createserversocket = False\nport = {peer}\nacktimeout = 1\n\
             retrydelay = 0.05\nretrymaxdelay = 0.1\n{extra}"
        );
        let _router = RouterProc::start(dir.path(), &config).await;
        let mut sender = client(input).await;
        let ids = ["M1", "M2", "M3", "M4"];
        for id in ids {
            let message = format!(
                "MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|{id}|P|2.5.1|||{msh15_16}\rPID|1\r"
            );
            assert_eq!(
                sender.send(message.as_bytes()).await.unwrap(),
                Reply::Commit(CommitAck::Ack)
            );
            // Time for the receiver's FIN to arrive before the next message goes out.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        wait_until(&format!("all four delivered ({extra:?})"), || {
            seen.lock().unwrap().len() >= ids.len()
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), ids, "{extra:?}");
    }
}

/// Real messages from `tests/data` (see SOURCES.md): LF and CR segment ends, a raw LF inside
/// a field, UTF-8 text, a batch, enhanced-mode headers. Each is acknowledged as its header
/// asks and lands in its own file byte for byte, named from its MSH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_messages_are_acknowledged_and_filed_byte_for_byte() {
    // File, the reply it gets (code and MSA-2), the start of its file name.
    type Expected = (&'static str, Option<(AckCode, &'static str)>, &'static str);
    let expected: [Expected; 10] = [
        (
            "adt_a01_2.5_wikipedia.hl7",
            Some((AckCode::ApplicationAccept, "01052901")),
            "MegaReg_XYZHospC_SuperOE_XYZImgCtr_ADT_",
        ),
        (
            "adt_a04_2.4_hl7std_example.hl7",
            Some((AckCode::ApplicationAccept, "MSG00001")),
            "ADT1_MCM_LABADT_MCM_ADT_",
        ),
        // MSH-15 = NE inside the batch: no acknowledgement at all.
        (
            "batch_fhs_bhs_adt_a04_2.5_vinah.hl7",
            None,
            "_ABCHS__AUSDHSV_ADT_",
        ),
        (
            "orm_o01_2.3_epic_xray.hl7",
            Some((AckCode::ApplicationAccept, "497")),
            "EPIC_EPIC___ORM_",
        ),
        (
            "oru_r01_2.3.1_mindray_bs200_glucose.hl7",
            Some((AckCode::ApplicationAccept, "1")),
            "Mindray_BS-200___ORU_",
        ),
        (
            "oru_r01_2.3.1_mindray_bs200_qc.hl7",
            Some((AckCode::ApplicationAccept, "1")),
            "Mindray_BS-200___ORU_",
        ),
        (
            "oru_r01_2.3_lab_hl7messageparser.hl7",
            Some((AckCode::CommitAccept, "3216598")),
            "LAB_MYFAC_LAB__ORU_",
        ),
        (
            "oru_r01_2.4_ghh_lab_glucose.hl7",
            Some((AckCode::ApplicationAccept, "CNTRL-3456")),
            "GHH_LAB_ELAB-3_GHH_OE_BLDG4_ORU_",
        ),
        (
            "oru_r01_2.5.1_nist_elr_lead.hl7",
            Some((AckCode::ApplicationAccept, "NIST-100929110701660")),
            "EHR_Application_2.16.840.1.113883.3.72.7.1_HL7_EHR_Facility_2.16.840.1.113883.3.72.7.2\
             _HL7_PH_Application_2.16.840.1.113883.3.72.7.3_HL7_PH_Facility_2.16.840.1.113883.3.72.7.4\
             _HL7_ORU_",
        ),
        (
            "oru_r01_2.5.1_synthetic_cbc_1k.hl7",
            Some((AckCode::CommitAccept, "MSG00001")),
            "ANALYZER_LAB1_LIS_HOSP_ORU_",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nusehl7 = True\nhl7prefix = True\n\
         messagedir = out\nsuffix = .hl7\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut c = MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(2));
    let mut sent = Vec::new();
    for (name, reply, _) in &expected {
        let bytes = std::fs::read(data.join(name)).unwrap();
        let got = c.send(&bytes).await;
        match (reply, got) {
            (Some((code, id)), Ok(Reply::Ack { code: got, payload })) => {
                assert_eq!(got, *code, "{name}");
                let ack = Message::parse(&payload).unwrap();
                let msa2 = AckMessage::from_message(&ack).unwrap().acknowledged_id;
                assert_eq!(msa2.raw(), id.as_bytes(), "{name}");
            }
            (None, Err(mllp_hl7::ClientError::Timeout { .. })) => {}
            (reply, got) => panic!("{name}: expected {reply:?}, got {got:?}"),
        }
        sent.push(bytes);
    }
    let out = dir.path().join("out");
    wait_until("every sample filed", || {
        files_in(&out).len() == expected.len()
    })
    .await;
    // The counter before the suffix gives the order the output wrote them in: the queue's.
    let mut filed: Vec<(String, Vec<u8>)> = files_in(&out)
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect();
    filed.sort_by_key(|(name, _)| name.rsplit('_').next().unwrap().to_owned());
    for (((name, _, prefix), bytes), (file, contents)) in expected.iter().zip(&sent).zip(&filed) {
        assert!(file.starts_with(prefix), "{name} filed as {file}");
        assert!(
            contents == bytes,
            "{name}: {file} differs from what was sent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logcontent_on_an_output_logs_what_it_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    // Only the outputs ask for the content; the input does not.
    let config = format!(
        "[general]\nuseconnections = in, files, lis\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = lab\nport = {inp}\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = lab\nmessagedir = out\n\
         debug = {{\"logcontent\": True}}\n\
         [lis]\ntranstech = socket\ntransdir = out\nqueuename = lab\ncreateserversocket = False\n\
         ipaddr = 127.0.0.1\nport = {peer_port}\ndebug = {{\"logcontent\": True}}\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(inp).await;
    c.send(&oru("LOGGED42", "LAB")).await.unwrap();
    let out = dir.path().join("out");
    wait_until("the file", || files_in(&out).len() == 1).await;
    wait_until("the peer's copy", || peer.count() == 1).await;
    wait_until("both outputs' content lines", || {
        let log = router.log_text();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("PID|1||LOGGED42"))
            .collect();
        lines.iter().any(|l| l.contains("conn{name=files}"))
            && lines.iter().any(|l| l.contains("conn{name=lis}"))
    })
    .await;
    assert!(
        !router
            .log_text()
            .lines()
            .any(|l| l.contains("conn{name=in}") && l.contains("LOGGED42")),
        "the input has no logcontent"
    );
    peer.stop().await;
}

/// A receiver that sends messages of its own on the output's connection (an analyzer that
/// answers an order with its results on the same link, as `simulator --order-results
/// link` does): such a message, HL7 without an MSA segment, is not the reply to the
/// message in hand. It was taken for a refusal, so an order the analyzer had accepted
/// was sent again, and the analyzer ran it twice. Now it is skipped, with a warning
/// naming it (an output does not route what it receives), and the wait for the ACK goes
/// on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receivers_own_message_on_the_output_link_is_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, outp) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\nport = {outp}\n\
         acktimeout = 10\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut sender = client(inp).await;
    for id in ["ORD1", "ORD2", "ORD3"] {
        let order = format!(
            "MSH|^~\\&|LIS|H|AN|F|20240101||ORM^O01|{id}|P|2.3.1\rORC|NW|{id}\rOBR|1|{id}||GLU\r"
        );
        assert_accepted(sender.send(order.as_bytes()).await.unwrap());
    }
    let mut link = receiver(outp).await;
    let mut received = Vec::new();
    // The analyzer's results for each order go out before the order's ACK, so they are
    // the first thing the output reads while it waits for that ACK.
    while received.len() < 3 {
        let frame = tokio::time::timeout(WAIT, link.next())
            .await
            .expect("a message within the wait")
            .expect("connection open")
            .unwrap();
        let MllpFrame::Message(payload) = frame else {
            panic!("expected a message, got {frame:?}");
        };
        let message = Message::parse(&payload).unwrap();
        let id = String::from_utf8_lossy(message.control_id().raw()).into_owned();
        let results = format!(
            "MSH|^~\\&|AN|F|LIS|H|20240101||ORU^R01|RES-{id}|P|2.3.1\rOBR|1|{id}||GLU\rOBX|1|NM|GLU||5.5\r"
        );
        link.send(Bytes::from(results)).await.unwrap();
        let ack = AckBuilder::new(&message).build().unwrap();
        link.send(Bytes::from(ack)).await.unwrap();
        received.push(id);
    }
    assert_eq!(
        received,
        ["ORD1", "ORD2", "ORD3"],
        "an order was sent twice"
    );
    wait_until("the warnings about the receiver's own messages", || {
        router
            .log_text()
            .matches("sent a message of its own (ORU^R01, control id RES-ORD")
            .count()
            == 3
    })
    .await;
    let log = router.log_text();
    assert!(!log.contains("delivery of message"), "{log}");
}

/// Whether this host lets an unprivileged process make a network namespace of its own
/// (`unshare -rn`), where the ephemeral port range can be narrowed without touching the
/// host's.
fn private_network_namespace() -> bool {
    std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs two routers in a network namespace of their own whose ephemeral port range is
/// `port` alone, so that every connection attempt to `port` while nothing listens there
/// reaches itself: `first` (the one that connects) starts, tries for a second, then
/// `second` starts listening on `port` (again if a connection attempt held the port at
/// that instant). `message` is put into `MESSAGE_AT` beforehand; returns the files in
/// `DELIVERED_IN` once one is there (or after 10 s) and the two routers' logs.
fn two_routers_in_a_namespace(
    port: u16,
    first: &str,
    second: &str,
    message_at: &str,
    delivered_in: &str,
    message: &[u8],
) -> (tempfile::TempDir, Vec<std::path::PathBuf>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, config) in [("a", first), ("b", second)] {
        std::fs::create_dir_all(dir.path().join(name).join("in")).unwrap();
        std::fs::write(dir.path().join(name).join("router.cfg"), config).unwrap();
    }
    std::fs::write(dir.path().join(message_at).join("result.hl7"), message).unwrap();
    let script = format!(
        r#"set -u
ip link set lo up
echo "{port} {next}" > /proc/sys/net/ipv4/ip_local_port_range
"$0" -c a/router.cfg 2> a.log &
A=$!
sleep 1.5
for i in 1 2 3 4 5 6 7 8 9 10; do
  "$0" -c b/router.cfg 2>> b.log &
  B=$!
  sleep 0.5
  if kill -0 $B 2>/dev/null; then break; fi
done
for i in $(seq 1 100); do
  [ -n "$(ls {delivered_in} 2>/dev/null)" ] && break
  sleep 0.1
done
kill $A $B 2>/dev/null
wait
"#,
        next = port + 1
    );
    let status = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", &script, env!("CARGO_BIN_EXE_router")])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let delivered = files_in(&dir.path().join(delivered_in));
    let (a, b) = (log("a.log"), log("b.log"));
    (dir, delivered, a, b)
}

/// A client output whose receiver is down, on a port inside the host's ephemeral range
/// (32768-60999 on Linux), can connect to itself: the kernel may give the connection
/// that very port as its local one, and the SYN meets itself (a TCP self-connect). The
/// output then delivered its messages into its own socket, with `useack = False` counted
/// them as delivered and lost them, and held the port, so the receiver could not listen
/// on it when it came back. Now a connection that reached itself is closed at once,
/// without TIME_WAIT, and tried again later. Skipped where a network namespace cannot
/// be made.
#[test]
fn a_client_output_that_connects_to_itself_does_not_deliver_into_itself() {
    if !private_network_namespace() {
        eprintln!("skipped: unshare -rn is not available here");
        return;
    }
    let port = 40000;
    let (_dir, delivered, sender, receiver) = two_routers_in_a_namespace(
        port,
        &format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
             cycletime = 0.1\nsettletime = 0\n\
             [out]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
             createserversocket = False\nport = {port}\nuseack = False\n\
             retrydelay = 0.05\nretrymaxdelay = 0.2\n"
        ),
        &format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
             useack = False\n\
             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
        ),
        "a/in",
        "b/out",
        &oru("SELF1", "LAB"),
    );
    assert_eq!(
        delivered.len(),
        1,
        "the message did not reach the receiver\nsender:\n{sender}\nreceiver:\n{receiver}"
    );
    assert_eq!(std::fs::read(&delivered[0]).unwrap(), oru("SELF1", "LAB"));
    assert!(sender.contains("reached itself"), "{sender}");
}

/// The same for a client input (`createserversocket = False` on an input): connected to
/// itself it waited for messages that could never come, for `idletimeout` (600 s), and
/// meanwhile the sender could not listen on its own port.
#[test]
fn a_client_input_that_connects_to_itself_lets_the_sender_listen() {
    if !private_network_namespace() {
        eprintln!("skipped: unshare -rn is not available here");
        return;
    }
    let port = 40002;
    let (_dir, delivered, receiver, sender) = two_routers_in_a_namespace(
        port,
        &format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\n\
             createserversocket = False\nport = {port}\n\
             retrydelay = 0.05\nretrymaxdelay = 0.2\n\
             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
        ),
        &format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
             cycletime = 0.1\nsettletime = 0\n\
             [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
             port = {port}\n"
        ),
        "b/in",
        "a/out",
        &oru("SELF2", "LAB"),
    );
    assert_eq!(
        delivered.len(),
        1,
        "the message did not reach the receiver\nreceiver:\n{receiver}\nsender:\n{sender}"
    );
    assert_eq!(std::fs::read(&delivered[0]).unwrap(), oru("SELF2", "LAB"));
    assert!(receiver.contains("reached itself"), "{receiver}");
}
