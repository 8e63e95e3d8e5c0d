//! Crash and stop tests of the router binary: kill -9 and SIGTERM never lose an
//! acknowledged message; limits refuse misbehaving senders.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{AckCode, CommitAck, MllpClient, MllpCodec, MllpFrame, Reply};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

fn config(inp: u16, peer_port: u16) -> String {
    format!(
        "[general]\nuseconnections = in, out\ndatadir = store\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\nport = {peer_port}\n\
         usehl7 = True\nretrydelay = 0.05\nretrymaxdelay = 0.5\nacktimeout = 2\n"
    )
}

/// Senders that record every control id the router acknowledged, until stopped. Ids
/// start with `round`, so a message of one round cannot stand in for another's.
fn spawn_senders(
    port: u16,
    round: usize,
    senders: usize,
    acked: Arc<Mutex<HashSet<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..senders)
        .map(|s| {
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                let Ok(c) = MllpClient::connect(("127.0.0.1", port)).await else {
                    return;
                };
                let mut c = c.with_ack_timeout(Duration::from_secs(5));
                for i in 0.. {
                    let id = format!("R{round}S{s}M{i}");
                    match c.send(&oru(&id, "LAB")).await {
                        Ok(Reply::Ack {
                            code: AckCode::ApplicationAccept,
                            ..
                        }) => {
                            acked.lock().unwrap().insert(id);
                        }
                        _ => return, // the router died: this message was not acknowledged
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    std::fs::write(dir.path().join("router.cfg"), config(inp, peer_port)).unwrap();
    let acked = Arc::new(Mutex::new(HashSet::new()));

    // Round 1: no receiver yet, so acknowledged messages pile up in the store.
    let mut router = RouterProc::restart(dir.path()).await;
    let senders = spawn_senders(inp, 1, 4, Arc::clone(&acked));
    wait_until("300 acknowledged messages", || {
        acked.lock().unwrap().len() >= 300
    })
    .await;
    router.kill9();
    for s in senders {
        let _ = tokio::time::timeout(WAIT, s).await;
    }
    let acked_round1 = acked.lock().unwrap().clone();
    assert!(acked_round1.len() >= 300);

    // Round 2: a receiver is up; kill again while delivering and receiving.
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    let mut router = RouterProc::restart(dir.path()).await;
    let senders = spawn_senders(inp, 2, 4, Arc::clone(&acked));
    wait_until("more acknowledged messages", || {
        acked.lock().unwrap().len() >= acked_round1.len() + 300
    })
    .await;
    router.kill9();
    for s in senders {
        let _ = tokio::time::timeout(WAIT, s).await;
    }

    // Restart: every acknowledged message arrives (at least once).
    let _router = RouterProc::restart(dir.path()).await;
    let acked = acked.lock().unwrap().clone();
    wait_until("every acknowledged message delivered", || {
        let received = peer.control_ids();
        acked.iter().all(|id| received.contains(id))
    })
    .await;
    let received = peer.count();
    let distinct = peer.control_ids().len();
    eprintln!(
        "acknowledged {}, received {received} ({distinct} distinct)",
        acked.len()
    );
    peer.stop().await;
}

/// Control ids (MSH-10) of the delivered files in `dir`, with how often each occurs.
fn delivered_files(dir: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut ids = std::collections::HashMap::new();
    for path in files_in(dir) {
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let message = mllp_hl7::Message::parse(&text).expect("a delivered file holds HL7");
        let id = String::from_utf8_lossy(message.control_id().raw()).into_owned();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// kill -9 while the file output writes batches (temporary names, data sync, renames,
/// directory fsync, cursor commit): after the restart every acknowledged message is in
/// a file, at least once (a batch renamed before its cursor commit is written again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_file_output_batches_loses_nothing() {
    kill_9_during_file_output(None).await;
}

/// The same with `filesync = filesystem` (unnamed files, two file-system syncs a batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_file_system_synced_batches_loses_nothing() {
    kill_9_during_file_output(Some("filesystem")).await;
}

async fn kill_9_during_file_output(filesync: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let inp = free_port();
    let filesync = filesync.map_or(String::new(), |mode| format!("filesync = {mode}\n"));
    let config = format!(
        "[general]\nuseconnections = in, out\ndatadir = store\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\nusehl7 = True\nhl7prefix = True\n{filesync}"
    );
    std::fs::write(dir.path().join("router.cfg"), config).unwrap();
    let out = dir.path().join("out");
    let acked = Arc::new(Mutex::new(HashSet::new()));
    for round in 0..3 {
        let mut router = RouterProc::restart(dir.path()).await;
        let senders = spawn_senders(inp, round, 4, Arc::clone(&acked));
        let target = acked.lock().unwrap().len() + 400;
        wait_until("acknowledged messages while files are written", || {
            acked.lock().unwrap().len() >= target && !files_in(&out).is_empty()
        })
        .await;
        router.kill9();
        for s in senders {
            let _ = tokio::time::timeout(WAIT, s).await;
        }
        eprintln!(
            "round {round}: {} acknowledged, {} files",
            acked.lock().unwrap().len(),
            files_in(&out).len()
        );
    }

    let _router = RouterProc::restart(dir.path()).await;
    let acked = acked.lock().unwrap().clone();
    wait_until("every acknowledged message in a file", || {
        let files = delivered_files(&out);
        acked.iter().all(|id| files.contains_key(id))
    })
    .await;
    // Temporary files of batches cut by the kills are removed at the restart.
    wait_until("no temporary files left", || {
        std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
    })
    .await;
    let files = delivered_files(&out);
    let duplicated = files.values().filter(|&&n| n > 1).count();
    eprintln!(
        "acknowledged {}, files {} ({} distinct, {duplicated} written twice)",
        acked.len(),
        files.values().sum::<usize>(),
        files.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_keeps_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    std::fs::write(dir.path().join("router.cfg"), config(inp, peer_port)).unwrap();
    let mut router = RouterProc::restart(dir.path()).await;
    let mut c = MllpClient::connect(("127.0.0.1", inp))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    let mut acked = Vec::new();
    for i in 0..50 {
        let id = format!("T{i}");
        c.send(&oru(&id, "LAB")).await.unwrap();
        acked.push(id);
    }
    let status = router.terminate(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    // The server socket is closed.
    assert!(TcpStream::connect(("127.0.0.1", inp)).await.is_err());
    assert!(router.log_text().contains("router: started"));

    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    let _router = RouterProc::restart(dir.path()).await;
    wait_until("all 50 delivered after the restart", || {
        let ids = peer.control_ids();
        acked.iter().all(|id| ids.contains(id))
    })
    .await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_size_connections_and_idle_time() {
    let dir = tempfile::tempdir().unwrap();
    let (small, capped, idle) = (free_port(), free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = small, capped, idle, out\nloglvl = info\n\
         [small]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {small}\nmaxmessagesize = 100\n\
         [capped]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {capped}\nmaxconnections = 1\n\
         [idle]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {idle}\nidletimeout = 0.3\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;

    // Too large: a NAK commit block, then the connection is closed.
    let stream = TcpStream::connect(("127.0.0.1", small)).await.unwrap();
    let mut framed = Framed::new(stream, MllpCodec::new());
    framed.send(vec![b'x'; 500]).await.unwrap();
    let reply = tokio::time::timeout(WAIT, framed.next()).await.unwrap();
    assert!(
        matches!(reply, Some(Ok(MllpFrame::Commit(CommitAck::Nak)))),
        "{reply:?}"
    );
    let after = tokio::time::timeout(WAIT, framed.next()).await.unwrap();
    assert!(
        after.is_none() || matches!(after, Some(Err(_))),
        "{after:?}"
    );
    // A message within the limit is fine.
    let mut ok = MllpClient::connect(("127.0.0.1", small))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    assert_eq!(
        ok.send(b"small").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );

    // Connection cap: the second simultaneous connection is closed at once.
    let mut first = MllpClient::connect(("127.0.0.1", capped))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    assert_eq!(
        first.send(b"first").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );
    let mut second = TcpStream::connect(("127.0.0.1", capped)).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the over-limit connection must be closed");

    // Idle timeout: a silent connection is closed.
    let mut quiet = TcpStream::connect(("127.0.0.1", idle)).await.unwrap();
    let n = tokio::time::timeout(WAIT, quiet.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);

    let log = router.log_text();
    assert!(log.contains("exceeds the maximum message size"), "{log}");
    assert!(log.contains("connection limit of 1 reached"), "{log}");
    assert!(log.contains("idle for"), "{log}");
}

/// Connects and sends `count` HL7 messages whose MSH-3 is a megabyte (so is each ACK,
/// which echoes it), then never reads: the ACKs fill the socket buffers.
async fn deaf_sender(port: u16, tag: &str, count: usize) -> TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let big = "A".repeat(1 << 20);
    for i in 0..count {
        let message = format!(
            "\x0bMSH|^~\\&|{big}|FAC|LIS|HOSP|20240101||ORU^R01|{tag}{i}|P|2.5.1\rPID|1\r\x1c\r"
        );
        // The router may stop reading (and reset) once it gives up on this peer.
        if stream.write_all(message.as_bytes()).await.is_err() {
            break;
        }
    }
    stream
}

/// A sender that never reads its ACKs is disconnected after `acktimeout` (before, the
/// connection stayed pinned for ever), and does not hold up SIGTERM (before, the router
/// never exited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_never_reads_its_acks_is_dropped_and_does_not_block_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (deaf, held) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = deaf, held, out\nloglvl = info\n\
         [deaf]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {deaf}\nacktimeout = 0.5\n\
         [held]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {held}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;

    // Far more ACK bytes than the two sockets' buffers hold.
    let mut stream = deaf_sender(deaf, "D", 24).await;
    wait_until("the ACK send timed out", || {
        router
            .log_text()
            .contains("did not take its acknowledgement within")
    })
    .await;
    // Closed: reading drains what was sent and ends (EOF, or a reset for the frames the
    // router no longer read), instead of waiting for more.
    let mut sink = Vec::new();
    let drained = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
    assert!(drained.is_ok(), "the connection is still open");
    drop(stream);

    // With the default acktimeout (30 s), shutdown waits only a short grace for it.
    let _stream = deaf_sender(held, "H", 24).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = router.terminate(Duration::from_secs(6));
    assert!(status.success(), "exit status {status}");
    let log = router.log_text();
    assert!(
        log.contains("did not take its acknowledgement before shutdown"),
        "{log}"
    );
}

/// An ORU with a 4 MB NTE: the store must grow to hold it.
fn big_oru(id: &str) -> Vec<u8> {
    let mut big = oru(id, "LAB");
    big.extend_from_slice(b"NTE|1||");
    big.extend(std::iter::repeat_n(b'X', 4 << 20));
    big.push(b'\r');
    big
}

/// A router whose store file may not grow (as on a full disk), delivering to a peer:
/// the directory (kept alive), the peer, the router's input port and the router.
async fn start_with_a_full_store() -> (tempfile::TempDir, Peer, u16, RouterProc) {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(free_port(), PeerReply::Accept).await;
    let inp = free_port();
    // Ignoring SIGXFSZ turns a write past the limit into an EFBIG error.
    let router =
        RouterProc::start_after_shell(dir.path(), &config(inp, peer.port), "trap '' XFSZ;").await;
    let store_file = dir.path().join("store").join("router.redb");
    router.limit_file_size(Some(std::fs::metadata(&store_file).unwrap().len()));
    (dir, peer, inp, router)
}

/// A commit that fails (here the store file may not grow: `RLIMIT_FSIZE`, as on a full
/// disk) gets an error ACK, and the router recovers by itself once the disk takes writes
/// again. redb answers every call after one I/O error with an error until the database
/// is opened again, so without the writer reopening it the router would refuse every
/// message until restarted by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_after_a_failed_commit() {
    let (_dir, peer, inp, router) = start_with_a_full_store().await;

    let mut client = MllpClient::connect(("127.0.0.1", inp))
        .await
        .unwrap()
        .with_ack_timeout(Duration::from_secs(10));
    let big = big_oru("BIG1");
    let refused = client.send(&big).await.expect("a reply");
    assert!(
        !matches!(
            refused,
            Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            }
        ),
        "{refused:?}"
    );

    router.limit_file_size(None);
    // The router closes the connection after a refusal; the sender reconnects and
    // resends what was not acknowledged, and the store takes it now.
    let mut accepted = None;
    for _ in 0..50 {
        client = MllpClient::connect(("127.0.0.1", inp))
            .await
            .unwrap()
            .with_ack_timeout(Duration::from_secs(10));
        match client.send(&big).await.expect("a reply") {
            reply @ Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            } => {
                accepted = Some(reply);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        accepted.is_some(),
        "never accepted again:\n{}",
        router.log_text()
    );
    client.send(&oru("SMALL2", "LAB")).await.expect("a reply");
    wait_until("BIG1 and SMALL2 delivered", || {
        let ids = peer.control_ids();
        ids.contains("BIG1") && ids.contains("SMALL2")
    })
    .await;
    let log = router.log_text();
    assert!(log.contains("commit failed"), "{log}");
    assert!(log.contains("queue store reopened"), "{log}");
    peer.stop().await;
}

/// File input under a store that cannot commit: a poll's files are committed together or
/// not at all, stay in place while commits fail, and go out in name order once the
/// store takes writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_input_keeps_its_files_and_their_order_through_failed_commits() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(free_port(), PeerReply::Accept).await;
    let inbox = dir.path().join("in");
    std::fs::create_dir(&inbox).unwrap();
    let config = format!(
        "[general]\nuseconnections = files, out\ndatadir = store\n\
         [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
         filemask = *.hl7\ncycletime = 0.2\nsettletime = 0.1\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\n\
         port = {}\nusehl7 = True\nretrydelay = 0.05\nretrymaxdelay = 0.5\n",
        peer.port
    );
    // A first run creates the store; the second may not grow it (soft limit only, so
    // that it can be raised again).
    let mut first = RouterProc::start(dir.path(), &config).await;
    assert!(first.terminate(Duration::from_secs(5)).success());
    let size = std::fs::metadata(dir.path().join("store").join("router.redb"))
        .unwrap()
        .len();
    let files = [
        ("a.hl7", oru("FA", "LAB")),
        ("b.hl7", big_oru("FB")),
        ("c.hl7", oru("FC", "LAB")),
    ];
    for (name, body) in &files {
        std::fs::write(inbox.join(name), body).unwrap();
    }
    let prepare = format!("trap '' XFSZ; ulimit -S -f {};", size / 512);
    let router = RouterProc::start_after_shell(dir.path(), &config, &prepare).await;
    wait_until("a failed commit of the three files", || {
        router.log_text().contains("cannot store 3 files")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files_in(&inbox).len(), 3, "{}", router.log_text());
    assert_eq!(peer.count(), 0);

    router.limit_file_size(None);
    wait_until("the three files delivered", || peer.count() == 3).await;
    let order: Vec<Vec<u8>> = peer.received.lock().unwrap().clone();
    let expected: Vec<Vec<u8>> = files.iter().map(|(_, body)| body.clone()).collect();
    assert!(order == expected, "delivered out of order");
    wait_until("inbox drained", || files_in(&inbox).is_empty()).await;
    peer.stop().await;
}

/// A pipelining sender whose message fails to commit: what it sent behind that message
/// on the same connection is refused too (or left unanswered as the connection closes),
/// never stored ahead of it. Sent again on a new connection, the two arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_not_overtaken_by_a_message_pipelined_behind_it() {
    let (_dir, peer, inp, router) = start_with_a_full_store().await;

    let stream = TcpStream::connect(("127.0.0.1", inp)).await.unwrap();
    let mut framed = Framed::new(stream, MllpCodec::new());
    framed
        .send(bytes::Bytes::from(big_oru("BIG")))
        .await
        .unwrap();
    // Behind it before its reply: small enough to fit the store as it is.
    tokio::time::sleep(Duration::from_millis(300)).await;
    framed
        .send(bytes::Bytes::from(oru("AFTER", "LAB")))
        .await
        .unwrap();
    let mut replies = Vec::new();
    while let Ok(Some(Ok(MllpFrame::Message(reply)))) =
        tokio::time::timeout(WAIT, framed.next()).await
    {
        let message = mllp_hl7::Message::parse(&reply).unwrap();
        let ack = mllp_hl7::AckMessage::from_message(&message).unwrap();
        let id = String::from_utf8_lossy(ack.acknowledged_id.raw()).into_owned();
        replies.push((id, ack.code));
    }
    assert!(
        replies
            .iter()
            .all(|(_, code)| *code != AckCode::ApplicationAccept),
        "{replies:?}"
    );
    assert_eq!(replies.first().map(|(id, _)| id.as_str()), Some("BIG"));

    router.limit_file_size(None);
    // A refusal closes the connection: every attempt on a new one.
    for id in ["BIG", "AFTER"] {
        let body = if id == "BIG" {
            big_oru(id)
        } else {
            oru(id, "LAB")
        };
        let mut accepted = false;
        for _ in 0..50 {
            let mut client = MllpClient::connect(("127.0.0.1", inp))
                .await
                .unwrap()
                .with_ack_timeout(WAIT);
            if let Ok(Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            }) = client.send(&body).await
            {
                accepted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(accepted, "{id} never accepted:\n{}", router.log_text());
    }
    wait_until("both delivered", || peer.count() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = peer.received.lock().unwrap().clone();
    assert_eq!(received, [big_oru("BIG"), oru("AFTER", "LAB")]);
    peer.stop().await;
}

/// Messages no output of the configuration will deliver are named at start: a queue
/// renamed in the configuration leaves its backlog stored but unseen, and an output left
/// out loses the messages it had not delivered once the others have. Both were silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_changed_configuration_leaves_undelivered_are_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, dead) = (free_port(), free_port());
    let archive = dir.path().join("archive");
    // `lis` never reaches its receiver (nothing listens on `dead`): its messages stay.
    let config = |queue: &str, outputs: &str| {
        format!(
            "[general]\nuseconnections = in, {outputs}\ndatadir = store\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = {queue}\nusehl7 = True\nport = {inp}\n\
             [archive]\ntranstech = file\ntransdir = out\nqueuename = {queue}\nmessagedir = archive\n\
             [lis]\ntranstech = socket\ntransdir = out\nqueuename = {queue}\ncreateserversocket = False\n\
             port = {dead}\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
        )
    };
    let send = |ids: &'static [&'static str]| async move {
        let mut c = MllpClient::connect(("127.0.0.1", inp))
            .await
            .unwrap()
            .with_ack_timeout(WAIT);
        for id in ids {
            let reply = c.send(&oru(id, "LAB")).await.unwrap();
            assert_accepted(reply);
        }
    };
    let stop = |mut router: RouterProc| {
        assert!(router.terminate(Duration::from_secs(10)).success());
        router.log_text()
    };

    let router = RouterProc::start(dir.path(), &config("lab", "archive, lis")).await;
    send(&["A1", "A2", "A3"]).await;
    wait_until("3 archived", || files_in(&archive).len() == 3).await;
    stop(router);

    // `lis` left out: its 3 messages go once `archive` has delivered a later one.
    let router = RouterProc::start(dir.path(), &config("lab", "archive")).await;
    send(&["B1"]).await;
    wait_until("4 archived", || files_in(&archive).len() == 4).await;
    let log = stop(router);
    assert!(
        log.contains(
            "output `lis` of queue `lab` is not in the configuration: the 3 stored message(s)"
        ),
        "{log}"
    );

    // `lis` back: the 4 messages deleted meanwhile are not its any more.
    let router = RouterProc::start(dir.path(), &config("lab", "archive, lis")).await;
    send(&["C1", "C2"]).await;
    wait_until("6 archived", || files_in(&archive).len() == 6).await;
    let log = stop(router);
    assert!(
        log.contains("output `lis` of queue `lab` is back in the configuration, but 4 message(s)"),
        "{log}"
    );

    // The queue renamed: C1 and C2, still owed to `lis`, stay in `lab`.
    let router = RouterProc::start(dir.path(), &config("results", "archive, lis")).await;
    let log = stop(router);
    assert!(
        log.contains("the queue store holds 2 undelivered message(s) of queue `lab`"),
        "{log}"
    );
    // And nothing is said once the configuration serves every stored message.
    let router = RouterProc::start(dir.path(), &config("lab", "archive, lis")).await;
    let log = stop(router);
    assert!(!log.contains("configuration"), "{log}");
}

/// A router restarted within a second of writing a file began counting its names from 0
/// again, in the same second: its first message got the name of the previous run's
/// first message of that second, which the consumer had taken (a LIS archiving files by
/// name overwrote one). A new run's names are dated after the second it started in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_router_never_reuses_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\nsuffix = .hl7\n"
    );
    let out = dir.path().join("out");
    let mut router = RouterProc::start(dir.path(), &config).await;
    // Just after a full second, so that the rest runs within one second (on time).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_second = Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(Duration::from_secs(1) - into_second + Duration::from_millis(5)).await;
    let mut taken = Vec::new();
    for (run, payload) in [&b"FIRST"[..], b"SECOND"].into_iter().enumerate() {
        if run == 1 {
            assert!(router.terminate(Duration::from_secs(5)).success());
            router = RouterProc::restart(dir.path()).await;
        }
        let mut sender = client(port).await;
        assert_eq!(
            sender.send(payload).await.unwrap(),
            Reply::Commit(CommitAck::Ack)
        );
        wait_until("the file", || files_in(&out).len() == 1).await;
        // Taken by the consumer, as a LIS does, into its archive.
        let file = files_in(&out).remove(0);
        assert_eq!(std::fs::read(&file).unwrap(), payload);
        taken.push(file.file_name().unwrap().to_owned());
        std::fs::remove_file(&file).unwrap();
    }
    assert_ne!(taken[0], taken[1], "two messages under one file name");
}
