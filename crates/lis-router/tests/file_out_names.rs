//! The file output's folder and names: a folder gone before the first message is not
//! made again, and no name is given to two messages nor taken for a Windows device.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{free_port, start};

fn oru(id: usize) -> Vec<u8> {
    format!("MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|M{id}|P|2.5.1\rPID|1\r").into_bytes()
}

/// docs/router.md: "A `messagedir` that disappears while the router runs (a share
/// unmounted, the folder deleted) is not made again ... the messages wait in the queue
/// until the folder is back (a restart makes it, as at every start)". The folder goes
/// away after the start but before the output's first batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messagedir_gone_before_the_first_message_is_not_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = share/lis\n\
         suffix = .hl7\nretrydelay = 0.1\nretrymaxdelay = 0.2\n"
    );
    let out = dir.path().join("share").join("lis");
    let router = start(dir.path(), &text).await;
    // The output made the folder at start.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.is_dir() {
        assert!(Instant::now() < deadline, "messagedir not made at start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The share goes away (unmounted: the mount point's folder is empty and has no `lis`).
    std::fs::remove_dir(&out).unwrap();

    let mut client = mllp_hl7::MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap();
    client.send(&oru(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let remade = out.is_dir();
    let files: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !remade,
        "the vanished messagedir was made again and the message written into it: {files:?}"
    );
    // The share is back: the message waited in the queue and is written now.
    std::fs::create_dir(&out).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let written = loop {
        let files: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
            .collect();
        if !files.is_empty() {
            break files;
        }
        assert!(Instant::now() < deadline, "the message never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    router.shutdown().await;
    assert_eq!(written.len(), 1);
    assert_eq!(std::fs::read(&written[0]).unwrap(), oru(1));
}

/// Waits for the one visible file in `dir`, takes it away as a consumer does (moves it to
/// its archive) and returns its name.
async fn consume_one(dir: &Path, archive: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        if let [name] = names.as_slice() {
            std::fs::create_dir_all(archive).unwrap();
            let target = archive.join(name);
            assert!(
                !target.exists(),
                "{name} was already delivered once: archive overwritten"
            );
            std::fs::rename(dir.join(name), target).unwrap();
            return name.clone();
        }
        assert!(Instant::now() < deadline, "no file in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sleeps until just after the wall clock's next full second, so that what follows runs
/// within one second (the timestamp in file names has one-second resolution).
async fn at_the_start_of_a_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(Duration::from_secs(1) - into + Duration::from_millis(5)).await;
}

/// Two outputs (two queues) write to one messagedir with the same naming, and the
/// consumer takes each file as it arrives (moving it to its archive). Each output's
/// counter starts at 0, so within one second the second output gives its first message
/// the name the first output gave its own: two different messages under one file name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_outputs_sharing_a_messagedir_never_reuse_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let text = format!(
        "[general]\nuseconnections = ina, inb, outa, outb\ndatadir = data\n\
         [ina]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = a\nport = {pa}\n\
         [inb]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = b\nport = {pb}\n\
         [outa]\ntranstech = file\ntransdir = out\nqueuename = a\nmessagedir = out\nsuffix = .hl7\n\
         [outb]\ntranstech = file\ntransdir = out\nqueuename = b\nmessagedir = out\nsuffix = .hl7\n"
    );
    let router = start(dir.path(), &text).await;
    let (out, archive) = (dir.path().join("out"), dir.path().join("archive"));
    let mut a = mllp_hl7::MllpClient::connect(("127.0.0.1", pa))
        .await
        .unwrap();
    let mut b = mllp_hl7::MllpClient::connect(("127.0.0.1", pb))
        .await
        .unwrap();
    at_the_start_of_a_second().await;
    a.send(&oru(1)).await.unwrap();
    let first = consume_one(&out, &archive).await;
    b.send(&oru(2)).await.unwrap();
    let second = consume_one(&out, &archive).await;
    router.shutdown().await;
    assert_ne!(first, second, "two messages delivered under one file name");
}

/// The same across a restart in one process: each start's counter began again at 0, so a
/// message written in the second of the restart got the name of the previous run's first
/// message of that second. (A new process is the router app's test
/// `a_restarted_router_never_reuses_a_file_name`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_reuses_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\nsuffix = .hl7\n"
    );
    let (out, archive) = (dir.path().join("out"), dir.path().join("archive"));
    at_the_start_of_a_second().await;
    let router = start(dir.path(), &text).await;
    let mut client = mllp_hl7::MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap();
    client.send(&oru(1)).await.unwrap();
    let first = consume_one(&out, &archive).await;
    drop(client);
    router.shutdown().await;
    let router = start(dir.path(), &text).await;
    let mut client = mllp_hl7::MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap();
    client.send(&oru(2)).await.unwrap();
    let second = consume_one(&out, &archive).await;
    router.shutdown().await;
    assert_ne!(first, second, "two messages delivered under one file name");
}

/// A hostile or odd MSH-3 must not give a name that Windows reads as a device: `NUL.x`
/// (or `CON.`, `AUX.`, `COM1.`, `LPT1.`) followed by anything after the dot is the device
/// itself to Windows (a LIS reading `messagedir` over SMB, or the router on Windows: the
/// message is "written" to NUL and counted as delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7prefix_names_are_never_windows_device_names() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!(
        "[general]\nuseconnections = in, out\ndatadir = data\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nusehl7 = True\nqueuename = q\nmessagedir = out\n\
         hl7prefix = True\nsuffix = .hl7\n"
    );
    let router = start(dir.path(), &text).await;
    let out = dir.path().join("out");
    let mut client = mllp_hl7::MllpClient::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let hostile = ["NUL.x", "con.", "AUX.1", "COM1.", "LPT1.LAB"];
    for (i, msh3) in hostile.iter().enumerate() {
        let message =
            format!("MSH|^~\\&|{msh3}|FAC|LIS|HOSP|20240101||ORU^R01|W{i}|P|2.5.1\rPID|1\r");
        client.send(message.as_bytes()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let names = loop {
        let names: Vec<String> = std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if names.len() == hostile.len() {
            break names;
        }
        assert!(Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    router.shutdown().await;
    let reserved = |name: &str| {
        let base = name
            .split('.')
            .next()
            .unwrap()
            .trim_end_matches(' ')
            .to_ascii_uppercase();
        matches!(base.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || (base.len() == 4
                && (base.starts_with("COM") || base.starts_with("LPT"))
                && base.as_bytes()[3].is_ascii_digit())
    };
    let devices: Vec<&String> = names.iter().filter(|n| reserved(n)).collect();
    assert!(
        devices.is_empty(),
        "names Windows reads as devices: {devices:?}"
    );
}
