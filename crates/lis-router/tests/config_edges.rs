//! Configuration edge cases found in review: an empty `queuedb`, file masks with a
//! character class that overlap another input's, and files mixing UTF-8 and Latin-1 lines.

use std::path::Path;

use lis_router::config::{ConnectorKind, load_bytes, load_str};

const BASE: &str = "[general]\nuseconnections = in, out\n\
    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 23001\n\
    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";

/// An empty `queuedb =` is none, as an empty `datadir =` is: resolved, it made the config
/// file's own folder the store's.
#[test]
fn an_empty_queuedb_is_no_queuedb() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("router.cfg");
    for empty in ["queuedb =", "queuedb = \"\"", "queuedb = ''"] {
        let text = BASE.replace("port = 23001", &format!("port = 23001\n{empty}"));
        let loaded = load_str(&text, &cfg).unwrap();
        assert_eq!(
            loaded.config.general.datadir,
            dir.path().join("router-data"),
            "{empty}"
        );
    }
}

/// Two file inputs on one folder whose masks can take the same file race for it: warned
/// about. A mask ending in a character class (`*.[hH][lL]7`) was taken for one whose
/// literal end differs from `*.hl7`'s, and accepted without a word.
#[test]
fn overlapping_masks_with_a_character_class_are_noticed() {
    let text = "[general]\nuseconnections = a, b, out\n\
        [a]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = /srv/in\nfilemask = *.[hH][lL]7\n\
        [b]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = /srv/in\nfilemask = *.hl7\n\
        [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n";
    match load_str(text, Path::new("/etc/router/router.cfg")) {
        Err(e) => assert!(e.to_string().contains("reads the same messagedir"), "{e}"),
        Ok(loaded) => assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.message.contains("reads the same messagedir")),
            "accepted silently: {:?}",
            loaded.warnings
        ),
    }
}

/// A config saved partly in a Windows code page: a Latin-1 comment no longer turns the
/// UTF-8 `messagedir` on another line into mojibake (`/srv/MÃ¼ller`), and a path on a
/// Latin-1 line is its bytes, as Python 2 hands them to the operating system.
#[test]
fn latin_1_lines_leave_utf_8_paths_alone() {
    let mut config =
        b"# f\xfcr das Labor\n[general]\nlogfile = /var/log/r\xe9sultats.log\n".to_vec();
    config.extend_from_slice(
        BASE.replace("[general]\n", "")
            .replace("messagedir = out", "messagedir = /srv/M\u{fc}ller")
            .as_bytes(),
    );

    let loaded = load_bytes(&config, Path::new("/etc/router/router.cfg")).unwrap();
    let out = loaded
        .config
        .connections
        .iter()
        .find(|c| c.name == "out")
        .unwrap();
    let ConnectorKind::FileOut(settings) = &out.kind else {
        panic!("{:?}", out.kind)
    };
    assert_eq!(settings.dir, Path::new("/srv/M\u{fc}ller"));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let logfile = loaded.config.general.logfile.as_deref().unwrap();
        assert_eq!(logfile.as_os_str().as_bytes(), b"/var/log/r\xe9sultats.log");
    }
    // One warning names the first Latin-1 line and how many more there are.
    let warning = &loaded.warnings[0];
    assert_eq!(warning.line, Some(1), "{warning:?}");
    assert!(
        warning.message.contains("and 1 more is not UTF-8"),
        "{}",
        warning.message
    );
}
