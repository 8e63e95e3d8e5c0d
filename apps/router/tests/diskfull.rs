//! The store on a file system that fills up: a real full disk (a small tmpfs, which
//! needs root to mount; the test says so and passes vacuously otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use mllp_hl7::{AckCode, MllpClient, Reply};

/// A small tmpfs mounted for the test's lifetime.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(at.to_owned()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn big_oru(id: &str) -> Vec<u8> {
    let mut m = oru(id, "LAB");
    m.extend_from_slice(b"NTE|1||");
    m.extend(std::iter::repeat_n(b'X', 256 << 10));
    m.push(b'\r');
    m
}

fn config(inp: u16, peer_port: u16) -> String {
    format!(
        "[general]\nuseconnections = in, out\ndatadir = store\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {inp}\n\
         [out]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\n\
         port = {peer_port}\nusehl7 = True\nretrydelay = 0.05\nretrymaxdelay = 0.2\n"
    )
}

/// Sends `id` on a new connection (a refused message closes its connection); true if
/// it was accepted.
/// Sends 256 KiB messages on one connection until one is refused (the disk is full);
/// returns the control ids acknowledged. The refusal closed that connection.
async fn fill_store(port: u16) -> Vec<String> {
    let mut client = MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    let mut acked = Vec::new();
    for i in 0..100 {
        let id = format!("D{i}");
        match client.send(&big_oru(&id)).await.unwrap() {
            Reply::Ack {
                code: AckCode::ApplicationAccept,
                ..
            } => acked.push(id),
            _ => break,
        }
    }
    assert!(acked.len() < 100, "the disk never filled");
    acked
}

/// After `delivered` messages of a full store went out: a new message is accepted within
/// 10 s and delivered.
async fn assert_stores_again(port: u16, peer: &Peer, router: &RouterProc, delivered: usize) {
    let accepted = send_until_accepted(port, "AFTER").await;
    assert!(
        accepted,
        "{delivered} messages delivered, yet the store still refuses new ones; log:\n{}",
        router.log_text()
    );
    wait_until("the new message delivered", || {
        peer.control_ids().contains("AFTER")
    })
    .await;
}

async fn send_alone(port: u16, id: &str) -> bool {
    let mut client = MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    matches!(
        client.send(&oru(id, "LAB")).await,
        Ok(Reply::Ack {
            code: AckCode::ApplicationAccept,
            ..
        })
    )
}

/// Tries to send `id` every 200 ms for up to 10 s; true once accepted.
async fn send_until_accepted(port: u16, id: &str) -> bool {
    for _ in 0..50 {
        if send_alone(port, id).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A router that ignores SIGXFSZ (so a file size limit makes writes fail, as a full
/// disk does) with 70 messages queued for its output, whose peer is not up yet: more than
/// the output reads at a time (64), so that it must read again later. Returns the
/// router, its input port, the output's peer port and the queued control ids.
async fn start_with_70_queued(dir: &Path) -> (RouterProc, u16, u16, Vec<String>) {
    let (inp, peer_port) = (free_port(), free_port());
    let router = RouterProc::start_after_shell(dir, &config(inp, peer_port), "trap '' XFSZ;").await;
    let mut client = MllpClient::connect(("127.0.0.1", inp))
        .await
        .unwrap()
        .with_ack_timeout(WAIT);
    let ids: Vec<String> = (0..70).map(|i| format!("M{i}")).collect();
    for id in &ids {
        assert_accepted(client.send(&oru(id, "LAB")).await.unwrap());
    }
    drop(client);
    (router, inp, peer_port, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_filled_its_disk_delivers_its_backlog_and_then_stores_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = SmallFs::mount(&dir.path().join("store"), "8m") else {
        eprintln!("not run: mounting a tmpfs needs root");
        return;
    };
    let (inp, peer_port) = (free_port(), free_port());
    let router = RouterProc::start(dir.path(), &config(inp, peer_port)).await;
    let reserve = dir
        .path()
        .join("store")
        .join(lis_router::store::RESERVE_FILE);
    assert!(reserve.exists(), "no reserve set aside at start");
    let acked = fill_store(inp).await;
    assert!(!acked.is_empty(), "nothing was stored");

    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("every acknowledged message delivered", || {
        let ids = peer.control_ids();
        acked.iter().all(|id| ids.contains(id))
    })
    .await;

    // The refused message closed its connection (what was pipelined behind it must not
    // overtake it), so every try is a new connection, as a sender's retry would be.
    assert_stores_again(inp, &peer, &router, acked.len()).await;
    assert!(reserve.exists(), "the reserve was not set aside again");
    let log = router.log_text();
    assert!(log.contains("gave back the 4 MiB reserve"), "{log}");
    assert!(log.contains("storing new messages again"), "{log}");
}

/// Another program fills the disk: messages are refused (never acknowledged unstored),
/// and once it frees its space the router stores again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_another_program_filled_refuses_messages_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let Some(_fs) = SmallFs::mount(&store, "8m") else {
        eprintln!("not run: mounting a tmpfs needs root");
        return;
    };
    let (inp, peer_port) = (free_port(), free_port());
    let router = RouterProc::start(dir.path(), &config(inp, peer_port)).await;
    assert!(send_alone(inp, "BEFORE").await);

    let filler = store.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![b'f'; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
    }
    let mut refused = 0;
    for i in 0..20 {
        if send_alone(inp, &format!("FULL{i}")).await {
            continue;
        }
        refused += 1;
        if refused == 3 {
            break;
        }
    }
    assert_eq!(refused, 3, "the full disk never refused a message");

    std::fs::remove_file(&filler).unwrap();
    assert!(
        send_until_accepted(inp, "AFTER").await,
        "still refused after the disk was freed; log:\n{}",
        router.log_text()
    );
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("BEFORE and AFTER delivered", || {
        let ids = peer.control_ids();
        ids.contains("BEFORE") && ids.contains("AFTER")
    })
    .await;
}

/// Fills the file system holding `path` with a file there, to the last block.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![b'f'; 4 << 10];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

/// A router restarted on a disk another program filled while it was stopped, with an
/// output added to its config (opening the store then writes its cursor): the reserve
/// the previous run left is what the store opens on, instead of the router refusing to
/// start with the space set aside for exactly this unused beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_restarted_on_a_full_disk_opens_its_store_on_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let Some(_fs) = SmallFs::mount(&store, "8m") else {
        eprintln!("not run: mounting a tmpfs needs root");
        return;
    };
    let (inp, peer_port, second_port) = (free_port(), free_port(), free_port());
    let mut router = RouterProc::start(dir.path(), &config(inp, peer_port)).await;
    for id in ["M0", "M1", "M2"] {
        assert!(send_alone(inp, id).await);
    }
    assert!(router.terminate(Duration::from_secs(5)).success());
    assert!(store.join(lis_router::store::RESERVE_FILE).exists());

    fill(&store.join("filler"));
    let config = config(inp, peer_port).replace(
        "useconnections = in, out",
        "useconnections = in, out, second",
    ) + &format!(
        "[second]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
         createserversocket = False\nport = {second_port}\nusehl7 = True\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    std::fs::write(dir.path().join("router.cfg"), config).unwrap();
    let router = RouterProc::restart(dir.path()).await;
    assert!(
        router
            .log_text()
            .contains("opening it again on the space of"),
        "{}",
        router.log_text()
    );
    let (peer, second) = (
        Peer::start(peer_port, PeerReply::Accept).await,
        Peer::start(second_port, PeerReply::Accept).await,
    );
    wait_until("M0..M2 delivered by both outputs", || {
        [&peer, &second].iter().all(|p| {
            let ids = p.control_ids();
            ["M0", "M1", "M2"].iter().all(|id| ids.contains(*id))
        })
    })
    .await;
}

/// The store runs out of space and cannot even be reopened (here a file size limit below
/// the store's pages; on a copy-on-write file system a full disk does that too), so
/// outputs cannot read it. Once it could be reopened, though still without room for the
/// reserve (as on a disk that is still full), the senders' retries, refused as they
/// are, must still get it reopened: otherwise the outputs never read again, the queue
/// never shrinks and the disk stays full for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_could_not_be_reopened_on_a_full_disk_is_reopened_for_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (router, inp, peer_port, ids) = start_with_70_queued(dir.path()).await;
    let size = std::fs::metadata(dir.path().join("store").join(lis_router::store::STORE_FILE))
        .unwrap()
        .len();

    // No page past the first can be written: the cursor moves fail, and so does reopening.
    router.limit_file_size(Some(4096));
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("the output unable to read the store", || {
        router.log_text().contains("cannot read the queue")
    })
    .await;
    // Whatever the output still held is delivered, its cursor moves failing.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The store's own pages can be written again, the 4 MiB reserve still not.
    router.limit_file_size(Some(size));
    let mut delivered = false;
    for i in 0..50 {
        if ids.iter().all(|id| peer.control_ids().contains(id)) {
            delivered = true;
            break;
        }
        assert!(!send_alone(inp, &format!("RETRY{i}")).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        delivered,
        "{} of 70 delivered; log:\n{}",
        peer.control_ids().len(),
        router.log_text()
    );
    peer.stop().await;
}

/// On a full disk the output delivers the whole backlog while every cursor move fails
/// (here a file size limit below the store's pages, lifted afterwards). Nothing is
/// delivered after that, so no later move would carry the cursor forward: the store
/// must commit the failed moves itself, or it never deletes the backlog, never gets its
/// reserve back and refuses new messages for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_moves_that_failed_on_a_full_disk_are_committed_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let Some(_fs) = SmallFs::mount(&store, "16m") else {
        eprintln!("not run: mounting a tmpfs needs root");
        return;
    };
    let (inp, peer_port) = (free_port(), free_port());
    let mut router =
        RouterProc::start_after_shell(dir.path(), &config(inp, peer_port), "trap '' XFSZ;").await;
    let acked = fill_store(inp).await;
    // Restarted, the output reads the whole backlog at once. Another program has taken
    // the rest of the disk: the reserve can be set aside once the backlog is deleted.
    assert!(router.terminate(Duration::from_secs(5)).success());
    fill(&store.join("filler"));
    let router =
        RouterProc::start_after_shell(dir.path(), &config(inp, peer_port), "trap '' XFSZ;").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    router.limit_file_size(Some(4096));
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("the backlog delivered", || {
        let ids = peer.control_ids();
        acked.iter().all(|id| ids.contains(id))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    router.limit_file_size(None);

    assert_stores_again(inp, &peer, &router, acked.len()).await;
    peer.stop().await;
}

/// A second router started by mistake on the same data directory fails (the store is
/// locked) and leaves the running router's reserve alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_router_on_the_same_store_leaves_the_reserve_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, peer_port) = (free_port(), free_port());
    let _router = RouterProc::start(dir.path(), &config(inp, peer_port)).await;
    let reserve = dir
        .path()
        .join("store")
        .join(lis_router::store::RESERVE_FILE);
    assert!(reserve.exists());
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_router"))
        .arg("-c")
        .arg(dir.path().join("router.cfg"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        reserve.exists(),
        "the second router removed the first one's reserve: {}",
        String::from_utf8_lossy(&second.stderr)
    );
}

/// An I/O error closed the store and reopening it failed too (a file size limit below
/// the store's pages). Once the disk takes writes again the store must reopen by itself,
/// even though no input sends anything: the outputs only read (and cannot while it is
/// closed), so waiting for the next request would leave the queue undelivered for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_could_not_be_reopened_reopens_without_new_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, peer_port, ids) = start_with_70_queued(dir.path()).await;

    router.limit_file_size(Some(4096));
    let peer = Peer::start(peer_port, PeerReply::Accept).await;
    wait_until("the store unable to reopen", || {
        router.log_text().contains("queue store cannot be reopened")
    })
    .await;

    // The output delivers what it held (its cursor moves failing, each reopen too), then
    // cannot read the rest.
    wait_until("the output's batch delivered", || {
        peer.control_ids().len() >= 64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(peer.control_ids().len() < ids.len());

    // The disk takes writes again; nothing else happens.
    router.limit_file_size(None);
    wait_until("the whole queue delivered without new messages", || {
        ids.iter().all(|id| peer.control_ids().contains(id))
    })
    .await;
    assert!(
        router.log_text().contains("queue store reopened"),
        "log:\n{}",
        router.log_text()
    );
    peer.stop().await;
}
