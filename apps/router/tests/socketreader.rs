//! SocketReader 1.2.4's README, clause by clause, against the real router binary: file
//! naming, booleans in every spelling Python's ConfigParser takes, file masks, order,
//! `maxfiles` and deletion, log levels with `prod`, and the bugs of SocketReader's tracker
//! that must not come back (ACKing ACKs, pre-2.3.1 ACKs, file handles leaking in long
//! runs, an output directory that went away).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use mllp_hl7::{AckCode, AckMessage, CommitAck, Message, Reply};

/// Local time as SocketReader's names carry it (Python's `time.strftime`).
fn local_timestamp() -> String {
    let out = Command::new("date").arg("+%Y%m%d%H%M%S").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Splits `HEAD` + `timestamp` + `_` + `counter` + `suffix`, checking each part's form
/// and that the timestamp is local time between `before` and `after`; the counter.
#[track_caller]
fn counter_of(name: &str, head: &str, suffix: &str, before: &str, after: &str) -> u32 {
    let middle = name
        .strip_prefix(head)
        .and_then(|n| n.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("{name} is not {head}TIMESTAMP_COUNTER{suffix}"));
    let (timestamp, counter) = middle.split_once('_').unwrap();
    assert!(
        timestamp.len() == 14 && timestamp.bytes().all(|b| b.is_ascii_digit()),
        "{name}: timestamp YYYYmmddHHMMSS"
    );
    assert!(
        before <= timestamp && timestamp <= after,
        "{name}: local time between {before} and {after}"
    );
    assert!(
        counter.len() == 5 && counter.bytes().all(|b| b.is_ascii_digit()),
        "{name}: counter of 5 digits"
    );
    counter.parse().unwrap()
}

/// README 4.2.2.2: `prefix` + `timestamp_iterator` + `suffix` (`.dat` by default, no
/// prefix by default), `hl7prefix` as
/// `SRCSYSTEM_SRCFACILITY_DSTSYSTEM_DSTFACILITY_MSGTYPE_timestamp_iterator.suffix`
/// (`ORBIS_UKD_OPUSL_UKD_ADT_20101102124510_00000.hl7`), and `newline` appending an LF;
/// `outputdir`, the 0.3.x name of `messagedir`, for the plain output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_file_names_and_newline_as_the_readme_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, pre, plain, hl7\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [pre]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = pre\n\
         prefix = lab-\nsuffix = .txt\nnewline = True\n\
         [plain]\ntranstech = file\ntransdir = out\nqueuename = q\noutputdir = plain\n\
         [hl7]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = hl7\n\
         usehl7 = True\nhl7prefix = True\nsuffix = .hl7\n"
    );
    let before = local_timestamp();
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(port).await;
    let adt = b"MSH|^~\\&|ORBIS|UKD|OPUSL|UKD|20101102124510||ADT^A01|N1|P|2.3\rPID|1\r".to_vec();
    let messages = [oru("N0", "LAB"), adt];
    for message in &messages {
        assert_accepted(c.send(message).await.unwrap());
    }
    for out in ["pre", "plain", "hl7"] {
        let out = dir.path().join(out);
        wait_until("two files", || files_in(&out).len() == 2).await;
    }
    let after = local_timestamp();

    let pre = dir.path().join("pre");
    for (i, name) in names_in(&pre).iter().enumerate() {
        assert_eq!(counter_of(name, "lab-", ".txt", &before, &after), i as u32);
        let mut expected = messages[i].clone();
        expected.push(b'\n');
        assert_eq!(std::fs::read(pre.join(name)).unwrap(), expected, "{name}");
    }
    let plain = dir.path().join("plain");
    for (i, name) in names_in(&plain).iter().enumerate() {
        assert_eq!(counter_of(name, "", ".dat", &before, &after), i as u32);
        assert_eq!(std::fs::read(plain.join(name)).unwrap(), messages[i]);
    }
    let hl7 = dir.path().join("hl7");
    let mut names = names_in(&hl7);
    names.sort_by_key(|n| n.rsplit('_').next().unwrap().to_owned());
    assert_eq!(
        counter_of(
            &names[0],
            "LAB_LABFAC_LIS_HOSP_ORU_",
            ".hl7",
            &before,
            &after
        ),
        0
    );
    assert_eq!(
        counter_of(
            &names[1],
            "ORBIS_UKD_OPUSL_UKD_ADT_",
            ".hl7",
            &before,
            &after
        ),
        1
    );
}

/// Booleans in the spellings Python's `ConfigParser.getboolean` takes (`1`, `yes`, `on`,
/// `true` in any case, and their negatives), and values in quotes, as the README advises
/// for paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booleans_in_every_getboolean_spelling_and_quoted_values() {
    let dir = tempfile::tempdir().unwrap();
    let (loud, silent) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = loud, silent, out\nloglvl = \"info\"\n\
         [loud]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = yes\nuseack = 1\n\
         createserversocket = On\nipaddr = \"127.0.0.1\"\nport = \"{loud}\"\n\
         [silent]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = TRUE\n\
         useack = no\ncreateserversocket = true\nport = '{silent}'\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nusehl7 = 1\nhl7prefix = YES\n\
         newline = off\nmessagedir = \"out/\"\nsuffix = \".hl7\"\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let mut c = client(loud).await;
    // usehl7 = yes: an HL7 ACK.
    assert_acknowledges(c.send(&oru("B1", "LAB")).await.unwrap(), b"B1");
    let mut quiet = client_waiting(silent, Duration::from_millis(500)).await;
    assert!(
        quiet.send(&oru("B2", "LAB")).await.is_err(),
        "useack = no: no reply"
    );
    let out = dir.path().join("out");
    wait_until("two files", || files_in(&out).len() == 2).await;
    let mut bodies = Vec::new();
    for name in names_in(&out) {
        assert!(
            name.starts_with("LAB_LABFAC_LIS_HOSP_ORU_") && name.ends_with(".hl7"),
            "hl7prefix = YES, suffix in quotes: {name}"
        );
        bodies.push(std::fs::read(out.join(name)).unwrap());
    }
    assert!(bodies.contains(&oru("B1", "LAB")), "newline = off");
    assert!(bodies.contains(&oru("B2", "LAB")), "newline = off");
}

/// README 4.2.2.1: `filemask` as the console's glob (Python's fnmatch: case matters, `?`
/// is one character, `]` first in a set is a member), files read in plain name order
/// (`f_10` before `f_2`), at most `maxfiles` per poll, and deleted (not moved) once read;
/// `cycletime = 0` polls again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_input_masks_order_maxfiles_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let taken = ["]_5.dat", "f_1.dat", "f_10.dat", "f_2.dat"];
    let left = ["F_3.dat", "f_4.DAT", "f_.dat", "g_1.dat", "f_6.dat.txt"];
    for name in taken.iter().chain(&left) {
        std::fs::write(a.join(name), name.as_bytes()).unwrap();
    }
    for i in 1..=5 {
        std::fs::write(b.join(format!("b{i}.dat")), format!("b{i}")).unwrap();
    }
    let config = "[general]\nuseconnections = fin-a, fout-a, fin-b, fout-b\n\
         [fin-a]\ntranstech = file\ntransdir = in\nqueuename = qa\nmessagedir = a\n\
         filemask = []f]_?*.dat\ncycletime = 0\nmaxfiles = 2\nsettletime = 0.05\n\
         [fout-a]\ntranstech = file\ntransdir = out\nqueuename = qa\nmessagedir = out-a\n\
         [fin-b]\ntranstech = file\ntransdir = in\nqueuename = qb\nmessagedir = b\n\
         cycletime = 60\nmaxfiles = 2\nsettletime = 0.05\n\
         [fout-b]\ntranstech = file\ntransdir = out\nqueuename = qb\nmessagedir = out-b\n";
    let router = RouterProc::start(dir.path(), config).await;
    let (out_a, out_b) = (dir.path().join("out-a"), dir.path().join("out-b"));
    wait_until("the matching files", || {
        files_in(&out_a).len() == taken.len()
    })
    .await;
    // The counter gives the order the output wrote them in: the queue's.
    let mut names = names_in(&out_a);
    names.sort_by_key(|n| n.rsplit('_').next().unwrap().to_owned());
    let bodies: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(out_a.join(n)).unwrap())
        .collect();
    assert_eq!(bodies, taken, "plain name order");
    let mut rest = names_in(&a);
    rest.sort();
    let mut expected: Vec<String> = left.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(
        rest, expected,
        "only the matching files are taken, and deleted"
    );
    assert!(!a.join("error").exists(), "nothing moved aside");

    // One poll takes two files; the next is a minute away.
    wait_until("the first poll's files", || files_in(&out_b).len() == 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(files_in(&out_b).len(), 2, "maxfiles = 2 per poll");
    assert_eq!(names_in(&b), ["b3.dat", "b4.dat", "b5.dat"]);
    assert!(
        router
            .log_text()
            .contains("[fin-a] cycletime: 0 s: polling every 0.01 s"),
        "{}",
        router.log_text()
    );
}

/// SocketReader bug #13 (ACKing ACKs: an endless loop between two routers) and #12 (an
/// exception while acknowledging messages before 2.3.1): an ACK is routed but never
/// answered; HL7 2.1 and 2.2 messages get their ACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_never_acknowledged_and_old_versions_are() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    let ack = b"MSH|^~\\&|LIS|HOSP|LAB|LABFAC|20240101||ACK^R01^ACK|A9|P|2.5.1\rMSA|AA|N0\r";
    let mut c = client_waiting(port, Duration::from_millis(700)).await;
    assert!(c.send(ack).await.is_err(), "an ACK got a reply");
    for (version, id) in [("2.1", "OLD21"), ("2.2", "OLD22"), ("2.3", "OLD23")] {
        let message = format!(
            "MSH|^~\\&|ADT|H|LAB|F|199912271408||ADT^A04|{id}|P|{version}\rEVN|A04\rPID|1\r"
        );
        let mut c = client(port).await;
        let Reply::Ack { code, payload } = c.send(message.as_bytes()).await.unwrap() else {
            panic!("{version}: an HL7 ACK");
        };
        assert_eq!(code, AckCode::ApplicationAccept, "{version}");
        let reply = Message::parse(&payload).unwrap();
        let acked = AckMessage::from_message(&reply).unwrap().acknowledged_id;
        assert_eq!(acked.raw(), id.as_bytes(), "{version}");
    }
    let out = dir.path().join("out");
    wait_until("four files", || files_in(&out).len() == 4).await;
    let bodies: Vec<Vec<u8>> = files_in(&out)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(bodies.contains(&ack.to_vec()), "the ACK itself is routed");
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// SocketReader 1.2.0 fixed "running out of file handles after long run times": hundreds
/// of connections and files later, the router holds no more descriptors than before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_files_leave_no_open_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let config = format!(
        "[general]\nuseconnections = sin, fin, out\n\
         [sin]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
         [fin]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
         cycletime = 0.05\nsettletime = 0.05\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let out = dir.path().join("out");
    // Warm up every path once (the store's files, the output directory, a poll).
    assert_accepted(client(port).await.send(&oru("W0", "LAB")).await.unwrap());
    std::fs::write(inbox.join("w1.hl7"), oru("W1", "LAB")).unwrap();
    wait_until("the warm-up files", || files_in(&out).len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = open_files(router.pid());

    for i in 0..200 {
        let mut c = client(port).await;
        assert_accepted(c.send(&oru(&format!("S{i}"), "LAB")).await.unwrap());
        if i % 2 == 0 {
            std::fs::write(
                inbox.join(format!("f{i}.hl7")),
                oru(&format!("F{i}"), "LAB"),
            )
            .unwrap();
        }
    }
    wait_until("every message filed", || {
        files_in(&out).len() == 2 + 200 + 100
    })
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = open_files(router.pid());
        if now <= baseline + 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{now} open files, {baseline} before"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a socket-in -> file-out router in `dir` writing to `messagedir` (relative to
/// `dir`): "first" is delivered to `first_out`, then `break_it` takes the folder away and
/// "second" is sent; returns once the router has logged `logged` and half a second more
/// has passed, so that a wrong write would have happened.
async fn output_folder_taken_away(
    dir: &Path,
    messagedir: &str,
    first_out: &Path,
    break_it: impl FnOnce(),
    logged: &str,
) -> RouterProc {
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, out\n\
         [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = {messagedir}\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let router = RouterProc::start(dir, &config).await;
    let mut c = client(port).await;
    assert_eq!(
        c.send(b"first").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );
    wait_until("the first file", || files_in(first_out).len() == 1).await;
    break_it();
    assert_eq!(
        c.send(b"second").await.unwrap(),
        Reply::Commit(CommitAck::Ack)
    );
    wait_until("the taken folder is logged", || {
        router.log_text().contains(logged)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    router
}

/// The tracker's "Output Directory Error" (a VPN share holding `messagedir` went away):
/// the output survives, and writes the next message once the directory is there again.
/// It does not make the directory itself: made under the mount point, it would take files
/// the consumer never sees once the share is back (it did, silently, counting them as
/// delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_directory_that_went_away_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    let out = share.join("out");
    let router = output_folder_taken_away(
        dir.path(),
        "share/out",
        &out,
        || std::fs::remove_dir_all(&share).unwrap(),
        "the folder is gone",
    )
    .await;
    assert!(!share.exists(), "the folder was made again");
    let log = router.log_text();
    assert!(
        log.contains("conn{name=out}") && log.contains("the messages wait in the queue"),
        "{log}"
    );
    // The share is back.
    std::fs::create_dir_all(&out).unwrap();
    wait_until("the second file", || files_in(&out).len() == 1).await;
    assert_eq!(std::fs::read(&files_in(&out)[0]).unwrap(), b"second");
}

/// A share unmounted under a running router leaves its mount point, an empty folder on
/// another file system, where `messagedir` was: the output does not write there (the
/// consumer would never see those files once the share is back), it waits, and writes
/// to the share when it is back. Emulated without root by a link to the "share" (a
/// folder on tmpfs) that is turned to a folder on the test's own file system.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_directory_now_on_another_file_system_is_not_written_to() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(share) = tempfile::tempdir_in("/dev/shm").ok().filter(|shm| {
        std::fs::metadata(shm.path()).unwrap().dev() != std::fs::metadata(dir.path()).unwrap().dev()
    }) else {
        panic!("this test needs /dev/shm on another file system than the temporary folder");
    };
    let mount_point = dir.path().join("mount-point");
    std::fs::create_dir_all(mount_point.join("out")).unwrap();
    std::fs::create_dir_all(share.path().join("out")).unwrap();
    // `link` -> the share; turned to the mount point by a rename over it.
    let point_link_to = |target: &Path| {
        let staged = dir.path().join("link.new");
        std::os::unix::fs::symlink(target, &staged).unwrap();
        std::fs::rename(&staged, dir.path().join("link")).unwrap();
    };
    point_link_to(share.path());
    let on_share = share.path().join("out");
    let router = output_folder_taken_away(
        dir.path(),
        "link/out",
        &on_share,
        || point_link_to(&mount_point),
        "on another file system",
    )
    .await;
    assert!(
        files_in(&mount_point.join("out")).is_empty(),
        "written under the mount point"
    );
    assert!(
        router.log_text().contains("the messages wait in the queue"),
        "{}",
        router.log_text()
    );
    // The share is back.
    point_link_to(share.path());
    wait_until("the second file", || files_in(&on_share).len() == 2).await;
    let contents: Vec<Vec<u8>> = files_in(&on_share)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(contents.contains(&b"second".to_vec()), "{contents:?}");
}

/// README 4.1: levels critical, error, warning (the default), prod, info, debug from high
/// to low; `prod` adds the failed transfers with their full content to `warning`, and
/// `info` shows everything but `debug`, so it has them too; `error` has no warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_levels_and_prod_show_failed_transfers_as_the_readme_orders_them() {
    let mut runs = Vec::new();
    for level in ["error", "warning", "prod", "info"] {
        let dir = tempfile::tempdir().unwrap();
        let (port, peer_port) = (free_port(), free_port());
        let peer = Peer::start(peer_port, PeerReply::RejectFirst(1)).await;
        let config = format!(
            "[general]\nuseconnections = in, out\nloglvl = {level}\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\nport = {port}\n\
             [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nusehl7 = True\n\
             createserversocket = False\nport = {peer_port}\nretrydelay = 0.05\n"
        );
        let router = RouterProc::start(dir.path(), &config).await;
        let mut c = client(port).await;
        assert_accepted(c.send(&oru("P1", "CONTENT-MARKER")).await.unwrap());
        runs.push((level, dir, router, peer));
    }
    for (level, _dir, router, peer) in runs {
        wait_until("the resent message", || peer.count() == 2).await;
        // The refusal's line is written before the resend.
        let log = router.log_text();
        let failed = log.contains("delivery of message");
        let content = log.contains("CONTENT-MARKER");
        let expected = match level {
            "error" => (false, false),
            "warning" => (true, false),
            _ => (true, true),
        };
        assert_eq!((failed, content), expected, "loglvl = {level}:\n{log}");
        peer.stop().await;
    }
}

/// An input directory that cannot be listed (a share that went away, or is not mounted
/// yet) is said once, and once again when it can be listed, however short `cycletime`:
/// with `cycletime = 0` it was a warning every 10 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_directory_that_cannot_be_listed_is_logged_once_per_outage() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[general]\nuseconnections = fin, out\n\
         [fin]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = share/in\n\
         cycletime = 0\nsettletime = 0.01\n\
         [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    let router = RouterProc::start(dir.path(), config).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let inbox = dir.path().join("share/in");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("m.hl7"), oru("D1", "LAB")).unwrap();
    let out = dir.path().join("out");
    wait_until("the file", || files_in(&out).len() == 1).await;
    let log = router.log_text();
    assert_eq!(log.matches("cannot list").count(), 1, "{log}");
    assert_eq!(log.matches("can be listed again").count(), 1, "{log}");
}
