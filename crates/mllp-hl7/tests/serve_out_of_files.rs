//! `serve` outlives running out of file descriptors. Alone in its test binary: the limit
//! it lowers is the whole process's.
#![cfg(all(feature = "tokio", target_os = "linux"))]

use std::time::Duration;

use mllp_hl7::{CommitAck, MllpClient, MllpCodec, MllpFrame, Reply, Response, serve};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::net::{TcpListener, TcpStream};

/// Until now an accept that failed for want of file descriptors (EMFILE) ended `serve`,
/// and with it the listener: once connections had freed descriptors again, new senders
/// were refused. Now the server waits and goes on accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_goes_on_after_accepts_fail_for_want_of_file_descriptors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, MllpCodec::new(), |frame| async move {
        matches!(frame, MllpFrame::Message(_)).then_some(Response::Commit(CommitAck::Ack))
    }));

    // Leave room for a few dozen more descriptors, then use them all up with
    // connections: the server runs out while accepting the last ones.
    let saved = getrlimit(Resource::Nofile);
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_now + 40),
            maximum: saved.maximum,
        },
    )
    .unwrap();
    let mut held = Vec::new();
    let mut exhausted = false;
    for _ in 0..200 {
        match TcpStream::connect(addr).await {
            Ok(stream) => held.push(stream),
            Err(_) => {
                exhausted = true;
                break;
            }
        }
    }
    // The server's accepts now fail (EMFILE) for the connections still in its backlog.
    tokio::time::sleep(Duration::from_millis(300)).await;
    setrlimit(Resource::Nofile, saved).unwrap();
    drop(held);
    assert!(exhausted, "the descriptors were never used up");
    assert!(!server.is_finished(), "serve ended: {:?}", server.await);

    let mut client = MllpClient::connect(addr)
        .await
        .expect("the listener is still open")
        .with_ack_timeout(Duration::from_secs(5));
    assert!(matches!(
        client
            .send(b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|M1|P|2.5.1\r")
            .await,
        Ok(Reply::Commit(CommitAck::Ack))
    ));
}
