//! The router's untrusted inputs: config file bytes (UTF-8 or Latin-1) into the loader, and
//! message bytes and file names into the output-name and input-mask functions. No panic on any
//! input; every name built from message content stays one safe file name.
#![no_main]

use std::cmp::Ordering;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lis_router::config::{ConfigError, ConnectorKind, Diagnostic, FileNaming, load_bytes};
use lis_router::filename::{
    MAX_PART_LEN, hl7_name_head, is_temporary_name, mask_matches, natural_cmp, sanitize,
};

/// Connections that are valid on their own, so that fuzzed lines appended after them reach
/// the per-connector checks instead of stopping at a missing section.
const SKELETON: &[u8] = b"[general]\nuseconnections = in, out, files\n\
    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\n\
    [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";

/// The byte that separates the pieces of one input (never part of valid UTF-8).
const SEPARATOR: u8 = 0xff;

fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// What a name made of untrusted text must be to stay in its directory.
fn assert_safe_name(name: &str, max_len: usize, from: &[u8]) {
    assert!(
        name.len() <= max_len,
        "{from:?} -> {name:?}: longer than {max_len}"
    );
    assert!(
        name.chars().all(is_safe),
        "{from:?} -> {name:?}: unsafe character"
    );
    assert!(!name.contains(".."), "{from:?} -> {name:?}: contains ..");
    assert!(name != "." && name != "..", "{from:?} -> {name:?}");
}

fn check_diagnostics(diagnostics: &[Diagnostic], lines: usize) {
    for d in diagnostics {
        if let Some(line) = d.line {
            assert!(
                (1..=lines.max(1)).contains(&line),
                "line {line} of {lines}: {d}"
            );
        }
        let _ = d.to_string();
    }
}

fn config(bytes: &[u8]) {
    // Line numbers as the loader counts them: Latin-1 decoding keeps one character per byte,
    // so the lines are those of the bytes.
    let lines = String::from_utf8_lossy(bytes).lines().count();
    match load_bytes(bytes, Path::new("/fuzz/router.cfg")) {
        Ok(loaded) => {
            check_diagnostics(&loaded.warnings, lines);
            assert!(!loaded.config.connections.is_empty());
            for c in &loaded.config.connections {
                if let ConnectorKind::FileOut(settings) = &c.kind {
                    // Prefix and suffix go into names as written: the loader must have
                    // checked them.
                    let prefix = match &settings.naming {
                        FileNaming::Prefix(prefix) => prefix.as_str(),
                        FileNaming::Hl7 => "",
                    };
                    for part in [prefix, settings.suffix.as_str()] {
                        assert!(part.len() <= MAX_PART_LEN, "{part:?}");
                        assert!(
                            part.chars().all(is_safe) && !part.contains(".."),
                            "{part:?}"
                        );
                    }
                }
            }
        }
        Err(error) => {
            let ConfigError::Invalid { problems, warnings } = &error else {
                panic!("no file was read, yet: {error}");
            };
            assert!(!problems.is_empty());
            check_diagnostics(problems, lines);
            check_diagnostics(warnings, lines);
            let _ = error.to_string();
        }
    }
}

fn names(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let max_len = if knob == 0xff {
        usize::MAX
    } else {
        usize::from(knob)
    };
    let pieces: Vec<String> = rest
        .split(|&b| b == SEPARATOR)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let text = pieces[0].as_str();

    let safe = sanitize(text, max_len);
    assert_safe_name(&safe, max_len, rest);
    // Safe text is left as it is (the loader's check on prefix and suffix relies on it).
    assert_eq!(sanitize(&safe, usize::MAX), safe);

    let head = hl7_name_head(rest);
    assert_safe_name(&head, 5 * MAX_PART_LEN + 4, rest);
    let mut message = b"MSH|^~\\&|".to_vec();
    message.extend_from_slice(rest);
    let head = hl7_name_head(&message);
    assert_safe_name(&head, 5 * MAX_PART_LEN + 4, &message);

    let _ = is_temporary_name(text);
    if text.starts_with('.') {
        assert!(is_temporary_name(text));
    }

    let name = pieces.get(1).map_or("", String::as_str);
    let _ = mask_matches(text, name);
    assert!(mask_matches("*", name));
    if !name.contains(['*', '?', '[']) {
        assert!(mask_matches(name, name), "{name:?}");
        assert!(mask_matches(&format!("*{name}"), name), "{name:?}");
    }

    // A total order, consistent with equality.
    let third = pieces.get(2).map_or("", String::as_str);
    for (a, b) in [(text, name), (name, third), (text, third)] {
        let order = natural_cmp(a, b);
        assert_eq!(order, natural_cmp(b, a).reverse(), "{a:?} {b:?}");
        assert_eq!(order == Ordering::Equal, a == b, "{a:?} {b:?}");
    }
    let all = [text, name, third];
    for x in all {
        for y in all {
            for z in all {
                if natural_cmp(x, y).is_le() && natural_cmp(y, z).is_le() {
                    assert!(
                        natural_cmp(x, z).is_le(),
                        "not transitive: {x:?} {y:?} {z:?}"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    config(data);
    let mut filled = SKELETON.to_vec();
    filled.extend_from_slice(data);
    config(&filled);
    names(data);
});
