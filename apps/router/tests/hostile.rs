//! Hostile and broken network peers: what they can make the router log, and how it
//! tells what happened.

mod common;

use std::time::Duration;

use common::{RouterProc, WAIT, files_in, free_port, oru, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until `stream` has delivered one whole MLLP frame (`FS CR`); the bytes read.
async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(2).any(|w| w == b"\x1c\r") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        assert!(n > 0, "closed before a reply: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// `oru(id, msh3)` in an MLLP frame with the default delimiters.
fn framed_oru(id: &str, msh3: &str) -> Vec<u8> {
    let mut framed = b"\x0b".to_vec();
    framed.extend_from_slice(&oru(id, msh3));
    framed.extend_from_slice(b"\x1c\r");
    framed
}

/// Sends [`framed_oru`] on `stream`; the reply frame.
async fn send_oru(stream: &mut TcpStream, id: &str, msh3: &str) -> Vec<u8> {
    stream.write_all(&framed_oru(id, msh3)).await.unwrap();
    read_frame(stream).await
}

/// A sender that streams garbage (one junk byte and a start block, again and again: each
/// pair is junk plus an interrupted frame) must not get a log line per two bytes it
/// sends: before, 20 KB of it wrote 20,000 warnings, so a garbage stream could fill the
/// disk with log. The first few are logged, the rest counted and summed up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_sender_is_logged_a_few_times_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let garbage = b"J\x0b".repeat(10_000);
    stream.write_all(&garbage).await.unwrap();
    // Still served: a real message after the garbage is stored and acknowledged.
    let ack = send_oru(&mut stream, "AFTER-GARBAGE", "LAB").await;
    assert!(
        String::from_utf8_lossy(&ack).contains("MSA|AA|AFTER-GARBAGE"),
        "{ack:?}"
    );
    drop(stream);
    wait_until("the connection's summary line", || {
        router.log_text().contains("stray replies) not logged")
    })
    .await;
    let log = router.log_text();
    let lines = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(lines < 50, "{lines} warnings for one garbage sender");
    // The sum: one run of junk and 10,000 interrupted frames, less the few logged.
    let summed: u64 = log
        .lines()
        .find_map(|l| {
            let (before, _) = l.split_once(" more framing problems (")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no summary line: {log}"));
    assert!(
        (9_900..=10_001).contains(&summed),
        "{summed} counted: {log}"
    );
}

/// A message holding a start-block byte arrives as a frame interrupted by its own tail.
/// The tail was stored and acknowledged, so the sender took its whole message for stored;
/// now it is refused and nothing is stored. A whole message after it, on the same
/// connection, is served: with `usehl7` even when it ends an interrupted frame itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_of_a_message_cut_by_a_start_block_is_refused_not_stored() {
    for hl7 in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "[general]\nuseconnections = in, out\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
             usehl7 = {}\n\
             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n",
            if hl7 { "True" } else { "False" }
        );
        let mut router = RouterProc::start(dir.path(), &config).await;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut cut = b"\x0b".to_vec();
        cut.extend_from_slice(&oru("CUT", "LAB"));
        cut.extend_from_slice(b"OBX|2|ED|PDF||A\x0bTAILDATA\r\x1c\r");
        stream.write_all(&cut).await.unwrap();
        assert_eq!(
            read_frame(&mut stream).await,
            b"\x0b\x15\x1c\r",
            "hl7={hl7}"
        );
        // An empty tail would have been taken for a keep-alive and acknowledged.
        stream.write_all(b"\x0bHEAD\x0b\x1c\r").await.unwrap();
        assert_eq!(
            read_frame(&mut stream).await,
            b"\x0b\x15\x1c\r",
            "hl7={hl7}"
        );

        let mut whole = b"\x0bGAVE UP\x0b".to_vec();
        whole.extend_from_slice(&oru("WHOLE", "LAB"));
        whole.extend_from_slice(b"\x1c\r");
        stream.write_all(&whole).await.unwrap();
        let reply = read_frame(&mut stream).await;
        if hl7 {
            assert!(
                String::from_utf8_lossy(&reply).contains("MSA|AA|WHOLE"),
                "{reply:?}"
            );
        } else {
            // Without usehl7 the router cannot tell a tail from a message: refused too,
            // and accepted when sent again.
            assert_eq!(reply, b"\x0b\x15\x1c\r");
            assert_eq!(
                send_oru(&mut stream, "WHOLE", "LAB").await,
                b"\x0b\x06\x1c\r"
            );
        }
        let out = dir.path().join("out");
        wait_until("the whole message delivered", || files_in(&out).len() == 1).await;
        let delivered = std::fs::read(&files_in(&out)[0]).unwrap();
        assert_eq!(delivered, oru("WHOLE", "LAB"), "hl7={hl7}");
        let log = router.log_text();
        assert!(
            log.contains("they may be the tail of a message holding a start-block byte"),
            "{log}"
        );
        drop(stream);
        assert!(router.terminate(Duration::from_secs(10)).success());
        assert_eq!(files_in(&out).len(), 1, "hl7={hl7}: only the whole message");
    }
}

/// A router relaying from a socket input to a client output whose receiver is this test:
/// `MINE` sent and acknowledged, then the receiver's end of the output's connection, the
/// message read from it. `extra` is added to the output's section.
async fn relaying_to_this_test(dir: &std::path::Path, extra: &str) -> (RouterProc, TcpStream) {
    let port = free_port();
    // Bound here, port 0: a port picked free and bound later may be taken meanwhile.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {peer_port}\n{extra}"
    );
    let router = RouterProc::start(dir, &config).await;
    let mut sender = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    send_oru(&mut sender, "MINE", "LAB").await;

    let (mut link, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let got = read_frame(&mut link).await;
    assert!(String::from_utf8_lossy(&got).contains("|MINE|"));
    (router, link)
}

/// An HL7 ACK framed with the default MLLP delimiters, acknowledging `id`.
fn framed_ack(code: &str, id: &str) -> Vec<u8> {
    format!("\x0bMSH|^~\\&|LIS|H|LAB|F|20240101||ACK|A{id}|P|2.5.1\rMSA|{code}|{id}\r\x1c\r")
        .into_bytes()
}

/// A receiver that answers every message for another control id (a system echoing
/// its own MSH-10, say) holds the message for ever, as it must: such a reply
/// acknowledges nothing. But the log said only "no acknowledgement within ...", as if
/// the receiver were silent, and warned once per late negative reply, so a receiver
/// flooding them flooded the log. Now the timeout names the replies for other control
/// ids, and late replies are logged a few at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_for_other_control_ids_are_named_when_the_ack_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (router, mut link) =
        relaying_to_this_test(dir.path(), "acktimeout = 0.5\nretrydelay = 0.1\n").await;
    let mut replies = Vec::new();
    for i in 0..500 {
        replies.extend(framed_ack("AE", &format!("OLD{i}")));
    }
    replies.extend(framed_ack("AA", "NOTYOURS"));
    link.write_all(&replies).await.unwrap();
    wait_until("the ACK timeout", || {
        router.log_text().contains("delivery of message")
    })
    .await;
    let log = router.log_text();
    assert!(
        log.contains("the peer answered 501 time(s) for other control ids (last: NOTYOURS)"),
        "{log}"
    );
    let late = log.matches("late negative acknowledgement AE").count();
    assert!(late <= 10, "{late} late-ACK warnings");
}

/// At the default `loglvl` (warning), and at `prod`, `error` and `critical`, every line
/// lacked the connection's name: the span carrying it was at info level, so the filter
/// dropped it with the info lines. A warning must say which connection it is about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_name_their_connection_at_the_default_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = small-in, out\n\
         [small-in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\nmaxmessagesize = 100\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut big = b"\x0b".to_vec();
    big.extend(std::iter::repeat_n(b'x', 500));
    big.extend_from_slice(b"\x1c\r");
    stream.write_all(&big).await.unwrap();
    read_frame(&mut stream).await;
    wait_until("the refusal's log line", || {
        router
            .log_text()
            .contains("exceeds the maximum message size")
    })
    .await;
    let log = router.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("exceeds the maximum message size"))
        .unwrap();
    assert!(line.contains("conn{name=small-in}"), "{line}");
}

/// A sender pipelining large messages without reading its ACKs (each ACK echoes the
/// message's half-megabyte MSH-3, so they soon fill the socket back): the router
/// reads at most a bounded amount ahead of the replies it has sent, and TCP holds up
/// the rest. Before, it read up to 1024 messages ahead per connection into memory (and
/// ahead of the store's commits, however fast the sender), so a few senders of large
/// messages could exhaust its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_cannot_make_the_router_read_far_ahead_of_its_replies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // acktimeout: long enough that the router does not give up on the sender while it
    // is measured.
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\nacktimeout = 120\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (_replies, mut writer) = stream.into_split();
    let big = "A".repeat(512 << 10);
    let message =
        format!("\x0bMSH|^~\\&|{big}|FAC|LIS|HOSP|20240101||ORU^R01|P1|P|2.5.1\rPID|1\r\x1c\r")
            .into_bytes();
    // Sends until the router stops taking bytes for a while, or 400 MB are out.
    let limit = 400usize << 20;
    let mut sent = 0usize;
    while sent < limit {
        match tokio::time::timeout(Duration::from_secs(3), writer.write_all(&message)).await {
            Ok(Ok(())) => sent += message.len(),
            Ok(Err(e)) => panic!("connection failed after {sent} bytes: {e}"),
            Err(_) => break,
        }
    }
    // Bounded: 16 MiB of messages (the read-ahead budget), one message being read, and
    // what the two sockets' buffers hold (loopback autotuning: up to 32 + 4 MB).
    assert!(
        sent < 100 << 20,
        "the router took {} MB from a sender that reads no ACKs",
        sent >> 20
    );
}

/// A sender that trickles a message a byte at a time, too slowly to finish it within
/// `idletimeout`, is cut off (it gets no ACK, so it sends again: nothing is lost). The
/// log said it was "idle", which it was not, and said so at info level, so at the
/// default level a message dropped half-read left no trace. Now a warning says what
/// was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_trickled_too_slowly_is_dropped_with_a_warning_not_called_idle() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\nidletimeout = 0.5\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut message = b"\x0b".to_vec();
    message.extend_from_slice(&oru("SLOW", "LAB"));
    message.extend_from_slice(b"\x1c\r");
    let mut closed = false;
    for byte in &message[..message.len() - 2] {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Closed before the end of the message, or closed now.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the connection is still open")
        .unwrap_or(0);
    assert!(closed || n == 0, "got {:?}", &buf[..n]);
    wait_until("the warning", || {
        router
            .log_text()
            .contains("sent no complete message within")
    })
    .await;
    let log = router.log_text();
    assert!(!log.contains("idle for"), "{log}");
    assert!(log.contains("bytes of its unfinished message"), "{log}");
}

/// Connections over `maxconnections` are closed at once; each was logged, so a peer
/// reconnecting in a loop, or a flood of connections, wrote a warning per connection.
/// Now 10 a minute are logged and the rest counted (the count is logged with the next
/// refusal after that minute, or at stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_for_the_connection_limit_are_logged_a_few_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\nmaxconnections = 1\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let _held = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Accepted first, it holds the one place; every later connection is refused.
    let mut buf = [0u8; 16];
    for _ in 0..300 {
        let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let n = tokio::time::timeout(WAIT, extra.read(&mut buf))
            .await
            .expect("an over-limit connection stays open")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    let log = router.log_text();
    let refusals = log.matches("connection limit of 1 reached").count();
    assert!(refusals <= 10, "{refusals} refusals logged");
    let status = router.terminate(WAIT);
    assert!(status.success(), "{status}");
    let log = router.log_text();
    assert!(
        log.contains("290 more connections refused for the connection limit of 1"),
        "{log}"
    );
}

/// Out of file descriptors (a limit below what the connection caps allow), `accept`
/// fails until a connection closes. The input pauses and retries; it logged each
/// retry, ten warnings a second for as long as it lasted. Now the first failure is
/// logged, and the recovery, with the number of failed accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_is_logged_once_not_per_retry() {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\nmaxconnections = 1000\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let pid = Pid::from_raw(i32::try_from(router.pid()).unwrap()).unwrap();
    let open_fds = std::fs::read_dir(format!("/proc/{}/fd", router.pid()))
        .unwrap()
        .count() as u64;
    // The hard limit stays as it is, so that the soft one can be raised again.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", router.pid())).unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse().ok())
        .expect("the hard limit of open files");
    let set = |n: u64| {
        let limit = Rlimit {
            current: Some(n),
            maximum: Some(hard),
        };
        prlimit(Some(pid), Resource::Nofile, limit).expect("set RLIMIT_NOFILE");
    };
    set(open_fds + 2);
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    wait_until("a failed accept", || {
        router.log_text().contains("accept failed")
    })
    .await;
    // Long enough for a few retries.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(router.log_text().matches("accept failed").count(), 1);
    set(hard);
    wait_until("the recovery line", || {
        router
            .log_text()
            .contains("accepting connections again after")
    })
    .await;
}

/// A client input whose peer accepts and closes at once (a port forwarder whose back
/// end is down, say) must be retried with backoff, as a refused connection is. The
/// backoff started again on every successful connect, so such a peer was reconnected
/// to every `retrydelay` for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_input_backs_off_from_a_peer_that_closes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Bound here, port 0: a port picked free and bound later may be taken meanwhile.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\ncreateserversocket = False\n\
         port = {peer_port}\nretrydelay = 0.05\nretrymaxdelay = 5\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the input reconnects")
            .unwrap();
        accepted.push(std::time::Instant::now());
        drop(stream);
    }
    // Delays 0.05, 0.1, 0.2, 0.4, 0.8 s: the last gap is about 0.8 s (before, each
    // was about 0.05 s); half of it, against a late look at the clock.
    let last = accepted[5] - accepted[4];
    assert!(
        last >= Duration::from_millis(400),
        "reconnected after {last:?}"
    );
}

/// With `loglvl = prod` a failed delivery is logged with the message's content. A
/// receiver that answers AE for ever had the whole message written to the log at every
/// retry (a 16 MiB message every 30 s: 46 GB a day). Now the content goes with the
/// first failure of each message; the retries after it are logged without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_for_ever_is_logged_with_its_content_once() {
    let dir = tempfile::tempdir().unwrap();
    let (port, peer_port) = (free_port(), free_port());
    let peer = common::Peer::start(peer_port, common::PeerReply::RejectFirst(usize::MAX)).await;
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = prod\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {peer_port}\nretrydelay = 0.05\nretrymaxdelay = 0.1\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut sender = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    send_oru(&mut sender, "REFUSED", "CONTENT-MARKER").await;
    wait_until("five refusals", || peer.count() >= 5).await;
    wait_until("their log lines", || {
        router.log_text().matches("delivery of message").count() >= 4
    })
    .await;
    let log = router.log_text();
    assert_eq!(log.matches("CONTENT-MARKER").count(), 1, "{log}");
    peer.stop().await;
}

/// The same for a file output whose folder went away (a share unmounted for the night):
/// it logged the content of every message of its batch at every retry. Each message's
/// content is logged once, a message arriving during the failure included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_outputs_failed_messages_are_logged_with_their_content_once() {
    use mllp_hl7::{CommitAck, Reply};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = prod\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = share/out\n\
         retrydelay = 0.05\nretrymaxdelay = 0.1\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let out = dir.path().join("share").join("out");
    let mut sender = common::client(port).await;
    let accepted = Reply::Commit(CommitAck::Ack);
    assert_eq!(sender.send(b"first").await.unwrap(), accepted);
    wait_until("the first file", || files_in(&out).len() == 1).await;
    std::fs::remove_dir_all(dir.path().join("share")).unwrap();
    assert_eq!(sender.send(b"SECOND-MARKER").await.unwrap(), accepted);
    wait_until("retries", || {
        router.log_text().matches("cannot write").count() > 5
    })
    .await;
    assert_eq!(sender.send(b"THIRD-MARKER").await.unwrap(), accepted);
    let retries = router.log_text().matches("cannot write").count();
    wait_until("more retries", || {
        router.log_text().matches("cannot write").count() > retries + 5
    })
    .await;
    let log = router.log_text();
    assert_eq!(log.matches("SECOND-MARKER").count(), 1, "{log}");
    assert_eq!(log.matches("THIRD-MARKER").count(), 1, "{log}");
}

/// The router's memory after a few hundred megabytes of messages held for an output
/// that was down, then delivered: the store's page cache is bounded (redb's default,
/// 1 GiB, filled with the backlog's pages as they were written and read back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_after_a_backlog_of_hundreds_of_megabytes() {
    use common::assert_accepted;
    use common::{Peer, PeerReply};
    use mllp_hl7::MllpClient;
    let dir = tempfile::tempdir().unwrap();
    let (port, peer_port) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {peer_port}\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    const SENDERS: usize = 4;
    const EACH: usize = 75;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        senders.push(tokio::spawn(async move {
            let mut client = MllpClient::connect(("127.0.0.1", port))
                .await
                .unwrap()
                .with_ack_timeout(WAIT);
            for i in 0..EACH {
                let mut message = oru(&format!("BIG{s}-{i}"), "LAB");
                message.extend_from_slice(b"NTE|1||");
                message.extend(std::iter::repeat_n(b'X', 1 << 20));
                message.push(b'\r');
                let reply = client.send(&message).await.unwrap();
                assert_accepted(reply);
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    // 300 MiB: under load this takes longer than the usual wait.
    common::wait_until_within("every message delivered", 6 * WAIT, || {
        peer.count() >= SENDERS * EACH
    })
    .await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", router.pid())).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect(name)
    };
    let (peak, now) = (field("VmHWM:"), field("VmRSS:"));
    // With redb's default cache the peak was 677 MiB here; with the bounded one, 206 MiB.
    assert!(
        peak < 400 << 10,
        "peak resident memory {} MiB, now {} MiB, after {} MiB of messages",
        peak >> 10,
        now >> 10,
        SENDERS * EACH
    );
    peer.stop().await;
}

/// A file the router can read but not delete (a read-only share, a folder the LIS owns) was
/// queued again at every poll: a duplicate result every `cycletime`, for ever. It is queued
/// once, with one error line, and skipped while it stays unchanged. Run as `nobody` under
/// root (root may delete anything), else with the folder made read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_deleted_is_queued_once() {
    let dir = tempfile::tempdir().unwrap();
    let as_root = rustix::process::getuid().is_root();
    let inbox = dir.path().join("in");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("r1.hl7"), oru("R1", "LAB")).unwrap();
    let config = "[general]\nuseconnections = files, out\n\
                  [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
                  cycletime = 0.3\nsettletime = 0.05\n\
                  [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    let prepare = if as_root {
        // The router, as nobody, writes its store and output here but cannot delete from
        // `in`, which stays root's.
        set_mode(dir.path(), 0o777);
        set_mode(&inbox, 0o755);
        set_mode(&inbox.join("r1.hl7"), 0o644);
        AS_NOBODY
    } else {
        set_mode(&inbox, 0o555);
        ""
    };
    let router = RouterProc::start_after_shell(dir.path(), config, prepare).await;
    let out = dir.path().join("out");
    wait_until("the message is written", || {
        out.is_dir() && !files_in(&out).is_empty()
    })
    .await;
    wait_until("the error is logged", || {
        router.log_text().contains("cannot delete it")
    })
    .await;
    // Several more polls.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = files_in(&out);
    let log = router.log_text();
    set_mode(&inbox, 0o755);
    assert_eq!(written.len(), 1, "{written:?}\n{log}");
    assert_eq!(log.matches("cannot delete it").count(), 1, "{log}");
    assert!(
        log.contains("it is not read again while it stays unchanged"),
        "{log}"
    );
    assert!(inbox.join("r1.hl7").exists());
}

/// A file that cannot be read nor moved to `error/` is logged once and skipped while it
/// stays unchanged: it was tried again every poll, with an error line each time, taking
/// the poll's only `maxfiles` place, so the good file behind it was never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_moved_to_error_does_not_block_the_files_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let as_root = rustix::process::getuid().is_root();
    let inbox = dir.path().join("in");
    let error_dir = inbox.join("error");
    std::fs::create_dir_all(&error_dir).unwrap();
    std::fs::write(inbox.join("a1.hl7"), oru("A1", "LAB")).unwrap();
    std::fs::write(inbox.join("b1.hl7"), oru("B1", "LAB")).unwrap();
    let config = "[general]\nuseconnections = files, out\n\
                  [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
                  cycletime = 0.2\nsettletime = 0.05\nmaxfiles = 1\n\
                  [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    // a1.hl7 cannot be read, and error/ takes no file.
    set_mode(&inbox.join("a1.hl7"), 0o000);
    let prepare = if as_root {
        // As nobody, which root's mode 000 file and 755 error/ keep out.
        set_mode(dir.path(), 0o777);
        set_mode(&inbox, 0o777);
        set_mode(&inbox.join("b1.hl7"), 0o644);
        set_mode(&error_dir, 0o755);
        AS_NOBODY
    } else {
        set_mode(&error_dir, 0o555);
        ""
    };
    let router = RouterProc::start_after_shell(dir.path(), config, prepare).await;
    let out = dir.path().join("out");
    wait_until("b1.hl7 is delivered", || {
        out.is_dir() && files_in(&out).len() == 1
    })
    .await;
    // Several more polls.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let log = router.log_text();
    set_mode(&error_dir, 0o755);
    set_mode(&inbox.join("a1.hl7"), 0o644);
    assert_eq!(std::fs::read(&files_in(&out)[0]).unwrap(), oru("B1", "LAB"));
    assert_eq!(log.matches("cannot move it to error/").count(), 1, "{log}");
    assert!(
        log.contains("; it is not read again while it stays unchanged"),
        "{log}"
    );
    assert!(inbox.join("a1.hl7").exists());
}

/// Sets `path`'s permission bits.
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The shell prefix that runs the router as nobody: a test run as root, whom permissions
/// do not stop, takes them away this way.
const AS_NOBODY: &str = "exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$0\" \"$@\";";

/// A missing output `messagedir` is created at start, as docs/router.md says; it was made
/// only with the first message, so a folder that cannot be made went unnoticed until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_output_folder_is_created_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let config = "[general]\nuseconnections = files, out\n\
                  [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
                  [out]\ntranstech = file\ntransdir = out\nqueuename = q\n\
                  messagedir = spool/out\n";
    let _router = RouterProc::start(dir.path(), config).await;
    let out = dir.path().join("spool").join("out");
    wait_until("the output folder is created", || out.is_dir()).await;
}

/// What a forged log line looks like when a peer gets its text into one unescaped.
const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR forged: all results deleted";

/// Whether `log` holds a line `FORGED` began, or a raw terminal escape.
fn forged(log: &str) -> bool {
    log.lines().any(|l| l.starts_with(FORGED)) || log.contains('\x1b')
}

/// An error ACK's reason (MSA-3) was logged as the receiver wrote it: a line break in it
/// started a line of the receiver's choosing in the router's log, and an escape sequence
/// drove the operator's terminal. It is logged escaped, on its own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acks_reason_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (router, mut link) = relaying_to_this_test(dir.path(), "retrydelay = 5\n").await;
    let reply = format!(
        "\x0bMSH|^~\\&|LIS|H|LAB|F|20240101||ACK|AMINE|P|2.5.1\r\
         MSA|AE|MINE|no\n{FORGED}\x1b[2J\r\x1c\r"
    );
    link.write_all(reply.as_bytes()).await.unwrap();
    wait_until("the refusal's log line", || {
        router.log_text().contains("peer answered AE")
    })
    .await;
    let log = router.log_text();
    assert!(!forged(&log), "{log}");
    assert!(
        log.contains(&format!("peer answered AE: no\\n{FORGED}\\u{{1b}}[2J")),
        "{log}"
    );
}

/// Input files' names were logged as they were: whoever may drop files in the folder
/// could write log lines of their choosing with a line break in a name. Names are logged
/// escaped; a file quarantined keeps its own name, even one that is not UTF-8 (it was
/// renamed to a lossy UTF-8 version of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_file_names_cannot_forge_log_lines() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir(&inbox).unwrap();
    let hostile = format!("r1\n{FORGED}\x1b[2J.hl7");
    std::fs::write(inbox.join(&hostile), oru("R1", "LAB")).unwrap();
    let not_utf8 = std::ffi::OsStr::from_bytes(b"big\xff.hl7");
    std::fs::write(inbox.join(not_utf8), vec![b'x'; 200]).unwrap();
    let config = "[general]\nuseconnections = files, out\nloglvl = debug\n\
                  [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
                  cycletime = 0.3\nsettletime = 0.05\nmaxmessagesize = 150\n\
                  [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    let router = RouterProc::start(dir.path(), config).await;
    wait_until("both files are taken", || files_in(&inbox).is_empty()).await;
    wait_until("the quarantine's log line", || {
        router.log_text().contains("moved to")
    })
    .await;
    let log = router.log_text();
    assert!(!forged(&log), "{log}");
    assert!(
        log.contains(&format!("/r1\\n{FORGED}\\u{{1b}}[2J.hl7 as message")),
        "{log}"
    );
    assert!(inbox.join("error").join(not_utf8).is_file(), "{log}");
}

/// An empty frame from the receiver is a keep-alive, as the socket input takes one: the
/// output took it for an unreadable refusal and sent the acknowledged message again (with
/// `maxrefusals`, set it aside), though the receiver answered AA right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_frame_from_the_receiver_is_not_taken_for_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut router, mut link) = relaying_to_this_test(
        dir.path(),
        "acktimeout = 5\nretrydelay = 0.05\nmaxrefusals = 1\n",
    )
    .await;
    let mut reply = b"\x0b\x1c\r".to_vec();
    reply.extend(framed_ack("AA", "MINE"));
    link.write_all(&reply).await.unwrap();
    // Sent again, it would arrive within the retry delay.
    let mut buf = [0u8; 256];
    let again = tokio::time::timeout(Duration::from_millis(800), link.read(&mut buf)).await;
    assert!(
        again.is_err(),
        "read {:?} after the AA",
        again.map(|r| r.map(|n| buf[..n.min(buf.len())].to_vec()))
    );
    assert!(router.terminate(WAIT).success());
    let log = router.log_text();
    assert!(!log.contains("failed"), "{log}");
    assert!(
        !dir.path().join("router-data/undeliverable").exists(),
        "{log}"
    );
}

/// A client output whose peer accepts and closes at once (a port forwarder whose back end
/// is down) reconnected without pause: some 300 connections in 8 s. It now waits its
/// backoff between such connections, as the client input does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_output_backs_off_from_a_peer_that_closes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         createserversocket = False\nport = {peer_port}\nretrydelay = 0.2\nretrymaxdelay = 1\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let mut sender = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    send_oru(&mut sender, "MINE", "LAB").await;
    let mut accepted = 0;
    let watch = tokio::time::sleep(Duration::from_secs(3));
    tokio::pin!(watch);
    loop {
        tokio::select! {
            () = &mut watch => break,
            conn = listener.accept() => {
                drop(conn.unwrap());
                accepted += 1;
            }
        }
    }
    // 0.2 + 0.4 + 0.8 + 1 s of backoff: about 4 connections in 3 s.
    assert!((2..=8).contains(&accepted), "{accepted} connections in 3 s");
    assert!(router.terminate(WAIT).success());
}

/// A server output hands one receiver at a time over to its delivery. Receivers that
/// connected while a delivery waited for its ACK each waited with an open socket: 2,000
/// connections held 2,014 descriptors, and with the process's limit reached no input
/// could accept. Now a newer receiver replaces the one waiting, which is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_queueing_at_a_server_output_hold_no_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let (port, out_port) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, out\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
         port = {out_port}\nacktimeout = 60\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let mut sender = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    send_oru(&mut sender, "MINE", "LAB").await;
    // The receiver takes the message and never answers: the delivery waits 60 s.
    let mut receiver = TcpStream::connect(("127.0.0.1", out_port)).await.unwrap();
    read_frame(&mut receiver).await;
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", router.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    let mut others = Vec::new();
    for _ in 0..300 {
        others.push(TcpStream::connect(("127.0.0.1", out_port)).await.unwrap());
    }
    // Give the router time to accept them all.
    wait_until("the later receivers closed", || {
        router.log_text().matches("connected after it").count() >= 299
    })
    .await;
    let after = fds();
    assert!(
        after <= before + 3,
        "{before} descriptors, {after} after 300 receivers"
    );
    // The newest one is served next: the delivery loop adopts it at its next attempt.
    drop(others);
    assert!(router.terminate(WAIT).success());
}

/// `idletimeout` closes a connection that completes no message in that time. The timer
/// was restarted by every frame, so a peer sending a stray commit block (or junk) every
/// half second completed no message but kept its connection, and a `maxconnections`
/// slot, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_is_not_reset_by_frames_that_are_not_messages() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\nidletimeout = 1\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = std::time::Instant::now();
    let mut closed_after = None;
    while started.elapsed() < Duration::from_secs(5) {
        if stream.write_all(b"\x0b\x06\x1c\r").await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await
        {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.unwrap_or_else(|| {
        panic!(
            "no message in 5 s with idletimeout = 1, still open:\n{}",
            router.log_text()
        )
    });
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
}
