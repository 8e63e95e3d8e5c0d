//! The command line: --check with good and bad configs (the table of errors), default
//! config file names, --version; SIGHUP's reopening of the logfile.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::run_router as router;

const GOOD: &str = r#"; A SocketReader config, unchanged.
[general]
logfile = ""
loglvl = prod
useconnections = socket-in_1, file-out_1, file-in_1, socket-out_1

[socket-in_1]
transtech = socket
transdir = in
usehl7 = True
queuename = Queue_1
createserversocket = True
ipaddr = 127.0.0.1
port = 22250
sob = chr(0x0b)
eod = chr(28)
eob = chr(0x0d)
debug = {"logcontent": False, "nacksonly": True}
colour = blue

[file-out_1]
transtech = file
transdir = out
usehl7 = True
queuename = Queue_1
messagedir = "out/"
hl7prefix = True
suffix = .hl7

[file-in_1]
transtech = file
transdir = in
queuename = Queue_2
messagedir = 'in'
filemask = *.dat
cycletime = 5
maxfiles = 10

[socket-out_1]
transtech = socket
transdir = out
queuename = Queue_2
queuedb = "queues/sr.db"
createserversocket = False
ipaddr = "localhost"
port = 22251
useack = True
"#;

#[test]
fn check_accepts_a_socketreader_config_and_warns_about_unknowns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("socketReader.cfg"), GOOD).unwrap();
    // No -c: router.cfg is absent, socketReader.cfg is used.
    let out = router(dir.path(), &["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("socketReader.cfg: configuration OK (4 connection(s), 2 queue(s)"),
        "{stdout}"
    );
    // The queuedb directory holds the store when datadir is absent.
    assert!(stdout.contains("queues"), "{stdout}");
    assert!(
        stderr.contains("socketReader.cfg:19: [socket-in_1] colour: unknown key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[socket-in_1] debug: unknown debug option \"nacksonly\""),
        "{stderr}"
    );
    // An input's folder is not created (it is polled until it appears): worth a word.
    assert!(
        stderr.contains("socketReader.cfg:34: [file-in_1] messagedir: ")
            && stderr.contains("in does not exist; the input polls it until it appears"),
        "{stderr}"
    );
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let out = router(dir.path(), &["--check"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("does not exist"), "{stderr}");

    // router.cfg takes precedence over socketReader.cfg.
    std::fs::write(dir.path().join("router.cfg"), "[general]\n").unwrap();
    let out = router(dir.path(), &["--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("router.cfg:"));
}

#[test]
fn check_refuses_bad_configs_naming_file_section_key_and_line() {
    // (what to change in GOOD, the expected message fragment)
    let table: &[(&str, &str, &str)] = &[
        (
            "transtech = file\ntransdir = out",
            "transtech = ftp\ntransdir = out",
            "bad.cfg:22: [file-out_1] transtech: unknown transtech `ftp`; allowed: file, socket",
        ),
        (
            "transdir = in\nusehl7",
            "transdir = sideways\nusehl7",
            "bad.cfg:9: [socket-in_1] transdir: unknown transdir `sideways`; allowed: in, out",
        ),
        (
            "port = 22250",
            "port = 80",
            "bad.cfg:14: [socket-in_1] port: 80 is out of range; allowed: 1024..65535",
        ),
        (
            "port = 22251",
            "port = 70000",
            "[socket-out_1] port: 70000 is out of range; allowed: 1024..65535",
        ),
        (
            "hl7prefix = True",
            "hl7prefix = True\nprefix = lab_",
            "[file-out_1] hl7prefix: cannot be combined with prefix",
        ),
        (
            "hl7prefix = True",
            "hl7prefix = True\nfilesync = sometimes",
            "[file-out_1] filesync: unknown filesync `sometimes`; allowed: file, filesystem",
        ),
        (
            "messagedir = \"out/\"\n",
            "",
            "[file-out_1] messagedir: missing: a file connector needs messagedir",
        ),
        (
            "queuename = Queue_1\nmessagedir",
            "queuename = Queue_9\nmessagedir",
            "bad.cfg:11: [socket-in_1] queuename: queue `Queue_1` has inputs but no outputs",
        ),
        (
            "[file-in_1]",
            "[socket-in_1]\nport = 3000\n[file-in_1]",
            "[socket-in_1]: section defined twice (first at line 7)",
        ),
        (
            "usehl7 = True\nqueuename = Queue_1\nmessagedir",
            "usehl7 = maybe\nqueuename = Queue_1\nmessagedir",
            "[file-out_1] usehl7: `maybe` is not a boolean",
        ),
        (
            "maxfiles = 10",
            "maxfiles = 5000",
            "[file-in_1] maxfiles: 5000 is out of range; allowed: 1..1000",
        ),
        (
            "sob = chr(0x0b)",
            "sob = chr(0x1c)",
            "[socket-in_1] eod: equals sob",
        ),
        (
            "eob = chr(0x0d)",
            "eob = START",
            "[socket-in_1] eob: `START` is not a delimiter",
        ),
        (
            "loglvl = prod",
            "loglvl = verbose",
            "bad.cfg:4: [general] loglvl: unknown log level `verbose`",
        ),
        (
            "file-in_1, socket-out_1",
            "file-in_1, socket-out_1, ghost",
            "[general] useconnections: names connection `ghost`, but there is no section [ghost]",
        ),
        (
            "suffix = .hl7",
            "suffix = /../../etc.hl7",
            "[file-out_1] suffix: `/../../etc.hl7` is not allowed in a file name",
        ),
        (
            "debug = {\"logcontent\": False, \"nacksonly\": True}",
            "debug = logcontent",
            "[socket-in_1] debug: `logcontent`: expected a Python dict",
        ),
        (
            "cycletime = 5",
            "cycletime = soon",
            "[file-in_1] cycletime: `soon` is not a number of seconds",
        ),
        (
            "usehl7 = True\nqueuename = Queue_1\nmessagedir",
            "queuename = Queue_1\nmessagedir",
            "[file-out_1] hl7prefix: needs usehl7 = True",
        ),
        (
            "useack = True\n",
            "useack = True\nmaxrefusals = -3\n",
            "[socket-out_1] maxrefusals: `-3` is not a whole number; allowed: 0..1000000",
        ),
        // Section names are case-sensitive (as in SocketReader); the error used to say only
        // that [general] was missing.
        (
            "[general]",
            "[General]",
            "bad.cfg: [general]: missing section; it must list the connections in useconnections (there is a [General]: section names are case-sensitive)",
        ),
        (
            "[file-out_1]",
            "[File-Out_1]",
            "names connection `file-out_1`, but there is no section [file-out_1] (there is a [File-Out_1]: section names are case-sensitive)",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (from, to, expected) in table {
        assert!(GOOD.contains(from), "table entry does not apply: {from}");
        let bad = GOOD.replacen(from, to, 1);
        std::fs::write(dir.path().join("bad.cfg"), &bad).unwrap();
        let out = router(dir.path(), &["--check", "-c", "bad.cfg"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expected}\n{stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
        assert!(
            !dir.path().join("router-data").exists(),
            "--check must not create the store"
        );
    }
    // The router also refuses to start (not only --check).
    std::fs::write(
        dir.path().join("bad.cfg"),
        GOOD.replace("port = 22250", "port = 80"),
    )
    .unwrap();
    let out = router(dir.path(), &["--configfile", "bad.cfg"]);
    assert_eq!(out.status.code(), Some(2));
    // A missing file and no file at all.
    let out = router(dir.path(), &["-c", "missing.cfg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file missing.cfg"));
    let empty = tempfile::tempdir().unwrap();
    let out = router(empty.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("router.cfg or socketReader.cfg"));
}

/// Writes `config` as `dir/router.cfg`, checks it passes `--check` with `connections`
/// connections; returns the warnings (stderr).
fn check_ok(dir: &Path, config: &[u8], connections: usize) -> String {
    std::fs::write(dir.join("router.cfg"), config).unwrap();
    let out = router(dir, &["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("configuration OK ({connections} connection(s)")),
        "{stdout}"
    );
    stderr
}

/// Python's ConfigParser continues a value on deeper-indented lines: a long
/// `useconnections` split over lines works; an indented `key = value` line is part of the
/// value above it, which the warning says (before, the line was read as a key and the
/// whole list cut short).
#[test]
fn check_reads_continuation_lines_as_python_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[general]\nuseconnections = in,\n    out\n\
                  [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                  [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n  suffix = .hl7\n";
    let stderr = check_ok(dir.path(), config.as_bytes(), 2);
    assert!(
        stderr.contains(
            "router.cfg:13: [out] messagedir: this indented line is part of this key's value"
        ),
        "{stderr}"
    );
}

/// Python 2 reads config files as bytes: one written in a Windows code page (a German
/// comment) works there, so it works here: that line is read as Latin-1, with a warning.
#[test]
fn check_reads_a_latin_1_config() {
    let dir = tempfile::tempdir().unwrap();
    // UTF-8 first (so byte and character offsets differ), then the Latin-1 byte.
    let mut config = "# Ergebnisse: Bahnhofstraße\n# Straße".as_bytes().to_vec();
    config.push(0xfc); // u-umlaut in Latin-1 / Windows-1252
    config.extend_from_slice(b"ber das LIS\r\n");
    config.extend_from_slice(GOOD.replace('\n', "\r\n").as_bytes());
    let stderr = check_ok(dir.path(), &config, 4);
    assert!(
        stderr.contains("router.cfg:2: this line is not UTF-8; read as Latin-1"),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = router(dir.path(), &["--version"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(concat!("router ", env!("CARGO_PKG_VERSION")))
    );
    let out = router(dir.path(), &["-h"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--configfile") && help.contains("--check"),
        "{help}"
    );
}

/// Paths that cannot work on this machine fail `--check` as well as the start, naming the
/// key and its line: `--check` said "configuration OK" for a datadir that is a file, and the start then
/// failed with "cannot create data directory …: File exists".
#[test]
fn check_refuses_paths_that_cannot_work_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    std::fs::write(dir.path().join("in"), "not a folder").unwrap();
    let config = GOOD
        .replace(
            "logfile = \"\"",
            "logfile = missing/router.log\ndatadir = a-file/store",
        )
        .replace("messagedir = 'in'", "messagedir = in");
    std::fs::write(dir.path().join("router.cfg"), &config).unwrap();
    let expected = [
        "router.cfg:4: [general] datadir: ",
        "a-file/store cannot be created: ",
        "a-file is not a directory",
        "router.cfg:3: [general] logfile: missing/router.log: its folder missing does not exist",
        "router.cfg:35: [file-in_1] messagedir: ",
        "in exists and is not a directory",
    ];
    for args in [&["--check"][..], &[]] {
        let out = router(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: `{part}` in:\n{stderr}");
        }
        assert!(!stderr.contains("configuration OK"), "{stderr}");
    }
    // The same config with usable paths passes; missing directories are created at start.
    let fixed = config
        .replace("a-file/store", "store")
        .replace("missing/router.log", "router.log")
        .replace("messagedir = in", "messagedir = incoming");
    std::fs::write(dir.path().join("router.cfg"), &fixed).unwrap();
    let out = router(dir.path(), &["--check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the router with stdout (`stdout_closed`) or stderr (otherwise) a pipe nobody reads
/// any more, as in `router --check | head -0`: writing there fails with EPIPE (Rust ignores
/// SIGPIPE), which `println!` / `eprintln!` turn into a panic (exit 101).
fn router_into_closed_pipe(dir: &Path, args: &[&str], stdout_closed: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_router"));
    command.args(args).current_dir(dir);
    let closed = if stdout_closed {
        test_support::ClosedStream::Stdout
    } else {
        test_support::ClosedStream::Stderr
    };
    test_support::output_into_closed_pipe(command, closed)
}

/// `router --check | head -0` (or any reader that quits before the verdict): the verdict is
/// lost, the exit status still says it. Before, the `configuration OK` line panicked
/// ("failed printing to stdout: Broken pipe", exit 101); so did a warning or an error on a
/// stderr pipe whose reader had gone.
#[test]
fn a_closed_output_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("router.cfg"), GOOD).unwrap();
    let out = router_into_closed_pipe(dir.path(), &["--check"], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Warnings (the GOOD config has unknown keys) and errors go to stderr.
    let out = router_into_closed_pipe(dir.path(), &["--check"], false);
    assert_eq!(out.status.code(), Some(0));
    let out = router_into_closed_pipe(dir.path(), &["-c", "missing.cfg"], false);
    assert_eq!(out.status.code(), Some(2));
}

/// SIGHUP opens the logfile again at its path, so that logrotate can move it away without
/// `copytruncate` (lines went on into the moved file before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_opens_the_logfile_again_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = format!(
        "[general]\nlogfile = router.log\nloglvl = info\nuseconnections = in, files\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let mut router = common::RouterProc::start(dir.path(), &config).await;
    let log = dir.path().join("router.log");
    let rotated = dir.path().join("router.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    router.signal(rustix::process::Signal::HUP);
    common::wait_until("the new logfile", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("SIGHUP: logfile opened again"))
    })
    .await;
    let mut client = common::client(port).await;
    common::assert_acknowledges(
        client.send(&common::oru("AFTER", "LAB")).await.unwrap(),
        b"AFTER",
    );
    common::wait_until("the message's log line", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("connection from"))
    })
    .await;
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("started with 2 connection(s)"), "{old}");
    // Like every line about a connection, in its span.
    assert!(
        old.contains(&format!(
            "INFO conn{{name=in}}: listening on 127.0.0.1:{port}"
        )),
        "{old}"
    );
    assert!(!old.contains("connection from"), "{old}");
    // Without TLS, SIGHUP says there was nothing else to read.
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(
        new.contains("SIGHUP: no connection uses TLS, nothing to read again"),
        "{new}"
    );
    assert!(
        router
            .terminate(std::time::Duration::from_secs(10))
            .success()
    );
}
