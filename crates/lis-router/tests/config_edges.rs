//! Configuration edge cases found in review: an empty `queuedb`, and file masks with a
//! character class that overlap another input's.

use std::path::Path;

use lis_router::config::load_str;

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
