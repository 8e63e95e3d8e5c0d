//! Property tests for the router's untrusted inputs: names built from message content stay one
//! safe file name, natural order is a total order, file masks match as a plain matcher does, and
//! the config loader takes any INI-like text (the real option set, Python-style values, odd
//! numbers, comments, Latin-1 bytes) without panicking and with every line it names real.

use std::cmp::Ordering;
use std::path::Path;

use lis_router::config::{ConfigError, Diagnostic, Loaded, load_bytes, load_str};
use lis_router::filename::{MAX_PART_LEN, hl7_name_head, mask_matches, natural_cmp, sanitize};
use proptest::prelude::*;
use proptest::sample::select;

/// Characters that matter to a file name, or to the code that cleans one.
const HOSTILE: &[char] = &[
    '.', '.', '.', '/', '\\', '\0', ' ', '_', '-', ':', '*', '?', '~', '\r', '\n', 'a', 'Z', '0',
    '9', 'é', 'Ä', '€', '\u{fffd}', '\u{202e}', '😀',
];

fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(select(HOSTILE), 0..max)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        1 => proptest::collection::vec(any::<char>(), 0..max)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
    ]
}

fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// What a name made of untrusted text must be to stay in its directory.
fn assert_safe_name(name: &str, max_len: usize) -> Result<(), TestCaseError> {
    prop_assert!(name.len() <= max_len, "{name:?} longer than {max_len}");
    prop_assert!(name.chars().all(is_safe), "{name:?}: unsafe character");
    prop_assert!(!name.contains(".."), "{name:?}");
    prop_assert!(name != "." && name != "..", "{name:?}");
    Ok(())
}

/// Header field text: hostile, and mostly without the CR or LF that would end the MSH segment
/// before the fields after it.
fn header_field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => hostile_text(90).prop_map(|t| t.replace(['\r', '\n'], "")),
        1 => hostile_text(90),
    ]
}

/// An HL7 message whose header fields and type are hostile, under random delimiters, or bytes.
fn hl7_payload() -> impl Strategy<Value = Vec<u8>> {
    let delimiters = proptest::sample::subsequence(&b"|^~\\&/.#!"[..], 5).prop_shuffle();
    let header = (
        delimiters,
        proptest::collection::vec(header_field(), 4),
        header_field(),
        hostile_text(20),
    )
        .prop_map(|(d, fields, kind, rest)| {
            let (field, component) = (char::from(d[0]), char::from(d[1]));
            let mut text = format!(
                "MSH{field}{}{field}",
                d[1..].iter().map(|&b| char::from(b)).collect::<String>()
            );
            for f in &fields {
                text.push_str(f);
                text.push(field);
            }
            text.push_str(&format!(
                "20240101{field}{field}{kind}{component}R01{field}{rest}\r"
            ));
            text.into_bytes()
        });
    prop_oneof![
        3 => header,
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(|tail| {
            let mut payload = b"MSH|^~\\&|".to_vec();
            payload.extend_from_slice(&tail);
            payload
        }),
    ]
}

/// Names where digit runs with leading zeros, and so ties, are common.
fn natural_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        select(&['0', '0', '1', '2', '9', 'a', '_', '.', 'é'][..]),
        0..7,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A plain matcher for the masks `mask_matches` documents, written independently of it: the
/// mask is read into tokens first, then matched by dynamic programming.
#[derive(Debug)]
enum Token {
    Star,
    One,
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
    Literal(char),
}

fn tokens(mask: &[char]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < mask.len() {
        match mask[i] {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '[' => {
                let mut j = i + 1;
                // As Python's fnmatch: only `!` negates, `^` is a member.
                let negate = mask.get(j) == Some(&'!');
                if negate {
                    j += 1;
                }
                // `]` right after the opening (and any `!`) is a member.
                let body_start = j;
                let close = (body_start + 1..mask.len()).find(|&k| mask[k] == ']');
                let Some(close) = close else {
                    out.push(Token::Literal('['));
                    i += 1;
                    continue;
                };
                let body = &mask[body_start..close];
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        items.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Token::Class { negate, items });
                i = close + 1;
                continue;
            }
            c => out.push(Token::Literal(c)),
        }
        i += 1;
    }
    out
}

fn reference_match(mask: &str, name: &str) -> bool {
    let mask: Vec<char> = mask.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let tokens = tokens(&mask);
    // can[t][n]: tokens[t..] match name[n..].
    let mut can = vec![vec![false; name.len() + 1]; tokens.len() + 1];
    can[tokens.len()][name.len()] = true;
    for t in (0..tokens.len()).rev() {
        for n in (0..=name.len()).rev() {
            can[t][n] = match &tokens[t] {
                Token::Star => can[t + 1][n] || (n < name.len() && can[t][n + 1]),
                Token::One => n < name.len() && can[t + 1][n + 1],
                Token::Literal(c) => n < name.len() && name[n] == *c && can[t + 1][n + 1],
                Token::Class { negate, items } => {
                    n < name.len()
                        && items.iter().any(|&(lo, hi)| (lo..=hi).contains(&name[n])) != *negate
                        && can[t + 1][n + 1]
                }
            };
        }
    }
    can[0][0]
}

/// Every key the loader knows, in both cases, and a few it does not.
const KEYS: &[&str] = &[
    "logfile",
    "loglvl",
    "useconnections",
    "datadir",
    "maxmessagesize",
    "transtech",
    "transdir",
    "usehl7",
    "queuename",
    "debug",
    "queuedb",
    "useack",
    "createserversocket",
    "ipaddr",
    "port",
    "sob",
    "eod",
    "eob",
    "maxconnections",
    "idletimeout",
    "acktimeout",
    "retrydelay",
    "retrymaxdelay",
    "maxrefusals",
    "messagedir",
    "outputdir",
    "newline",
    "filemask",
    "cycletime",
    "maxfiles",
    "naturalorder",
    "settletime",
    "hl7prefix",
    "prefix",
    "suffix",
    "filesync",
    "PORT",
    "TransTech",
    "unknownkey",
];

const VALUES: &[&str] = &[
    "chr(0x0b)",
    "chr(11)",
    "chr(013)",
    "chr(0o13)",
    "chr(0b1011)",
    "chr(28) + chr(13)",
    "chr(300)",
    "chr(-1)",
    "chr(+11)",
    "chr()",
    "chr(",
    "chr(08)",
    "0x1c",
    "0x",
    "'\\x1c\\r'",
    "'\\x+1'",
    "'\\x'",
    "'\\777'",
    "'\\'",
    "\"a\\\"+\" + chr(13)",
    "\"ab\" 'cd'",
    "'ab' cd",
    "\"unterminated",
    "'",
    "\"",
    "''",
    "\"\"",
    "+",
    "++",
    "'é' + '€'",
    "True",
    "False",
    "\"true\"",
    "yes",
    "maybe",
    "socket",
    "file",
    "FILE",
    "in",
    "out",
    "q",
    "in, out",
    "in, in",
    "general",
    ",,,",
    "0",
    "-0",
    "-0.0",
    "+0.0",
    "1",
    "1.5",
    "-1",
    "0.001",
    "1e308",
    "1e309",
    "1e-320",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "65535",
    "65536",
    "1023",
    "2575",
    "debug",
    "prod",
    "filesystem",
    "{'logcontent': True}",
    "{\"logcontent\": \"maybe\", 'x': 1}",
    "{'a': 'b': 'c'}",
    "{logcontent: True}",
    "{",
    "}",
    "{}",
    "%(x)s",
    "value ; comment",
    "value;not",
    "; only",
    "#hash",
    "/srv/out",
    "../../etc",
    "out",
    "*.hl7",
    "f_[0-9]*.dat",
    "a/b",
    ".",
    "..",
    ".hl7",
    "lab-",
    "",
    " ",
];

/// One line of an INI-like file.
fn ini_line() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        6 => select(KEYS).prop_map(str::to_owned),
        1 => hostile_text(8),
    ];
    let value = prop_oneof![
        6 => select(VALUES).prop_map(str::to_owned),
        1 => hostile_text(12),
    ];
    let section = prop_oneof![
        select(
            &[
                "general", "in", "out", "files", "DEFAULT", "default", "", " in "
            ][..]
        )
        .prop_map(|s| format!("[{s}]")),
        hostile_text(6).prop_map(|s| format!("[{s}]")),
        Just("[unclosed".to_owned()),
        Just("[a]b]".to_owned()),
    ];
    let indent = || select(&["", "", "", " ", "    ", "\t"][..]);
    let separator = select(&["=", " = ", ":", " : ", "==", " "][..]);
    let line = prop_oneof![
        2 => section,
        8 => (indent(), key, separator, value)
            .prop_map(|(indent, key, sep, value)| format!("{indent}{key}{sep}{value}")),
        1 => (indent(), select(&["#", ";", "  #", "rem "][..]), hostile_text(10))
            .prop_map(|(indent, mark, text)| format!("{indent}{mark}{text}")),
        1 => Just(String::new()),
    ];
    prop_oneof![
        8 => line.prop_map(String::into_bytes),
        // Latin-1 (or any) bytes, as configs written on Windows have.
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

/// Values written for `key` in real configs, and the edges of what it takes.
fn values_for(key: &str) -> &'static [&'static str] {
    match key.to_ascii_lowercase().as_str() {
        "usehl7" | "useack" | "createserversocket" | "newline" | "naturalorder" | "hl7prefix" => &[
            "True", "False", "yes", "off", "0", "1", "\"true\"", "'False'", "maybe", "",
        ],
        "port" | "maxmessagesize" | "maxconnections" | "maxfiles" | "maxrefusals" => &[
            "2575",
            "1024",
            "1023",
            "65535",
            "65536",
            "0",
            "1",
            "-1",
            "+5",
            "0x10",
            "1e3",
            "1073741824",
            "1073741825",
            "4294967296",
            "18446744073709551616",
            "\"50\"",
        ],
        "idletimeout" | "acktimeout" | "retrydelay" | "retrymaxdelay" | "cycletime"
        | "settletime" => &[
            "0", "-0", "-0.0", "+0", "0.0", "1e-320", "5e-324", "0.01", "0.009", "0.05", "0.049",
            "1", "30", "600", "3600", "86400", "86401", "604800", "604801", "1e308", "1e309",
            "inf", "-inf", "nan", "NaN", "-1", "1_0", ".5", "5.", "'2.5'",
        ],
        "sob" | "eod" | "eob" => &[
            "chr(0x0b)",
            "chr(11)",
            "chr(013)",
            "chr(0x1c)",
            "chr(28) + chr(13)",
            "chr(13)",
            "''",
            "\"\"",
            "'\\x1c\\r'",
            "'\\x+1'",
            "'\\777'",
            "\"<SB>\"",
            "chr(300)",
            "chr(-1)",
            "+",
        ],
        "transtech" => &["socket", "file", "FILE", "pipe", ""],
        "transdir" => &["in", "out", "IN", "both", ""],
        "messagedir" | "outputdir" | "datadir" | "logfile" | "queuedb" => &[
            "out",
            "in",
            "/srv/out",
            "../x",
            "\"quoted dir\"",
            "",
            " ",
            "db/queue.db",
            "db/",
            "\"db/\"",
            "/",
        ],
        "prefix" | "suffix" => &[
            ".hl7", ".dat", "lab-", "", "\"\"", ".", "..", "../x", "a/b", "é", "''", "a b",
        ],
        "filemask" => &["*", "*.hl7", "f_[0-9]*.dat", "[", "[!a]", "a/b", "", "?"],
        "filesync" => &["file", "filesystem", "FileSystem", "disk"],
        "loglvl" => &[
            "debug", "info", "prod", "warning", "error", "critical", "loud",
        ],
        "debug" => &[
            "{'logcontent': True}",
            "{\"logcontent\": \"maybe\", 'x': 1}",
            "\"{'logcontent': True}\"",
            "{'a': 'b': 'c'}",
            "{logcontent: True}",
            "{",
            "{}",
            "{'x': '%(y)s'}",
        ],
        "ipaddr" => &["127.0.0.1", "0.0.0.0", "::1", "", "host name"],
        "queuename" => &["q", "q2", "", "\"q\"", " q "],
        _ => VALUES,
    }
}

/// `key = value` with a key of the real option set and a value it might be given.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    select(KEYS)
        .prop_flat_map(|key| {
            (
                Just(key),
                select(&[" = ", "=", ": ", " =  "][..]),
                prop_oneof![
                    6 => select(values_for(key)).prop_map(str::to_owned),
                    1 => select(VALUES).prop_map(str::to_owned),
                    1 => hostile_text(12),
                ],
            )
        })
        .prop_map(|(key, sep, value)| format!("{key}{sep}{value}").into_bytes())
}

/// A line of a section that is meant to work: mostly `key = value` from the real option set,
/// with now and then a comment, a continuation, or bytes.
fn section_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => entry(),
        2 => select(&["# für das Labor", "; chr(11)", "#", ";"][..])
            .prop_map(|c| c.as_bytes().to_vec()),
        1 => Just(Vec::new()),
        1 => (select(&[" ", "    ", "\t"][..]), select(VALUES))
            .prop_map(|(indent, v)| format!("{indent}{v}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

/// Lines of the connection section `name`: those that make it a connector (now and then
/// wrong), then any others.
fn connection_section(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let weighted = |choices: &'static [&'static str]| select(choices);
    (
        prop_oneof![4 => Just("socket"), 4 => Just("file"), 1 => weighted(values_for("transtech"))],
        prop_oneof![4 => Just("in"), 4 => Just("out"), 1 => weighted(values_for("transdir"))],
        prop_oneof![6 => Just("q"), 1 => weighted(values_for("queuename"))],
        proptest::option::weighted(
            0.9,
            prop_oneof![3 => Just("out"), 1 => weighted(values_for("messagedir"))],
        ),
        proptest::collection::vec(section_line(), 0..6),
    )
        .prop_map(move |(tech, dir, queue, messagedir, lines)| {
            let mut text =
                format!("[{name}]\ntranstech = {tech}\ntransdir = {dir}\nqueuename = {queue}\n");
            if let Some(messagedir) = messagedir.filter(|_| tech != "socket") {
                text.push_str(&format!("messagedir = {messagedir}\n"));
            }
            let mut text = text.into_bytes();
            for line in lines {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            text
        })
}

/// A file shaped like a real config: `[general]` naming (most of) the connections that follow,
/// perhaps a `[DEFAULT]`, every section full of real keys with odd values.
fn structured_file() -> impl Strategy<Value = Vec<u8>> {
    const NAMES: &[&str] = &[
        "in",
        "out",
        "files",
        "sock-out",
        "Out",
        "a b",
        ".",
        "général",
    ];
    proptest::sample::subsequence(NAMES, 1..5)
        .prop_flat_map(|names| {
            let sections: Vec<_> = names.iter().map(|&n| connection_section(n)).collect();
            (
                Just(names),
                sections,
                proptest::collection::vec(section_line(), 0..4),
                proptest::option::of(proptest::collection::vec(section_line(), 0..4)),
                select(
                    &[
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        ", missing",
                        ", in",
                        ",",
                        ", general",
                    ][..],
                ),
            )
        })
        .prop_map(|(names, sections, general, defaults, extra)| {
            let mut text =
                format!("[general]\nuseconnections = {}{extra}\n", names.join(", ")).into_bytes();
            for line in general {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            if let Some(defaults) = defaults {
                text.extend_from_slice(b"[DEFAULT]\n");
                for line in defaults {
                    text.extend_from_slice(&line);
                    text.push(b'\n');
                }
            }
            for section in sections {
                text.extend_from_slice(&section);
            }
            text
        })
}

/// Free-form INI-like lines, often after connections that work, so that the lines after them
/// reach the per-connector checks.
fn free_form_file() -> impl Strategy<Value = Vec<u8>> {
    let start = select(
        &[
            "",
            "[general]\nuseconnections = in, out, files\n",
            "[general]\nuseconnections = in, out, files\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusehl7 = True\n\
             [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n",
        ][..],
    );
    let ending = select(&["\n", "\r\n", "\r"][..]);
    (start, proptest::collection::vec(ini_line(), 0..30), ending).prop_map(
        |(start, lines, ending)| {
            let mut bytes = start.as_bytes().to_vec();
            for line in lines {
                bytes.extend_from_slice(&line);
                bytes.extend_from_slice(ending.as_bytes());
            }
            bytes
        },
    )
}

fn ini_file() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => structured_file(), 1 => free_form_file()]
}

fn same(a: &Result<Loaded, ConfigError>, b: &Result<Loaded, ConfigError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (
            Err(ConfigError::Invalid { problems, warnings }),
            Err(ConfigError::Invalid {
                problems: other_problems,
                warnings: other_warnings,
            }),
        ) => problems == other_problems && warnings == other_warnings,
        _ => false,
    }
}

fn check_lines(diagnostics: &[Diagnostic], lines: usize) -> Result<(), TestCaseError> {
    for d in diagnostics {
        if let Some(line) = d.line {
            prop_assert!(
                (1..=lines.max(1)).contains(&line),
                "line {line} of {lines}: {d}"
            );
        }
        let _ = d.to_string();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn sanitized_names_are_safe(
        text in hostile_text(100),
        max_len in prop_oneof![0..100usize, Just(usize::MAX)],
    ) {
        let safe = sanitize(&text, max_len);
        assert_safe_name(&safe, max_len)?;
        // Safe text stays as it is.
        prop_assert_eq!(&sanitize(&safe, usize::MAX), &safe);
        // Nothing is dropped but what the cut removes: one character out per character in,
        // a run of dots counting as one.
        if max_len == usize::MAX {
            prop_assert!(safe.chars().count() <= text.chars().count());
            prop_assert_eq!(safe.is_empty(), text.is_empty());
        }
    }

    #[test]
    fn hl7_name_heads_are_safe(payload in hl7_payload()) {
        let head = hl7_name_head(&payload);
        assert_safe_name(&head, 5 * MAX_PART_LEN + 4)?;
        prop_assert!(head.matches('_').count() >= 4, "{head:?}");
    }

    #[test]
    fn natural_order_is_a_total_order(
        a in natural_name(),
        b in natural_name(),
        c in natural_name(),
    ) {
        for (x, y) in [(&a, &b), (&b, &c), (&a, &c)] {
            let order = natural_cmp(x, y);
            prop_assert_eq!(order, natural_cmp(y, x).reverse(), "{:?} {:?}", x, y);
            prop_assert_eq!(order == Ordering::Equal, x == y, "{:?} {:?}", x, y);
        }
        prop_assert_eq!(natural_cmp(&a, &a), Ordering::Equal);
        let all = [&a, &b, &c];
        for x in all {
            for y in all {
                for z in all {
                    if natural_cmp(x, y).is_le() && natural_cmp(y, z).is_le() {
                        prop_assert!(natural_cmp(x, z).is_le(), "{:?} {:?} {:?}", x, y, z);
                    }
                }
            }
        }
    }

    #[test]
    fn natural_order_compares_numbers_by_value(prefix in natural_name(), n: u32, m: u32) {
        let (x, y) = (format!("{prefix}_{n}.dat"), format!("{prefix}_{m}.dat"));
        prop_assert_eq!(natural_cmp(&x, &y), n.cmp(&m));
    }

    #[test]
    fn masks_match_as_a_plain_matcher_does(
        mask in proptest::collection::vec(select(&['a', 'b', '*', '?', '[', ']', '!', '^', '-'][..]), 0..8),
        name in proptest::collection::vec(select(&['a', 'b', 'c', '[', ']', '!', '-'][..]), 0..8),
    ) {
        let (mask, name): (String, String) = (mask.into_iter().collect(), name.into_iter().collect());
        prop_assert_eq!(mask_matches(&mask, &name), reference_match(&mask, &name), "{:?} {:?}", mask, name);
    }

    #[test]
    fn masks_take_any_text(mask in hostile_text(20), name in hostile_text(20)) {
        let _ = mask_matches(&mask, &name);
        prop_assert!(mask_matches("*", &name));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_loader_takes_any_ini_like_text(bytes in ini_file()) {
        let lines = String::from_utf8_lossy(&bytes).lines().count();
        let path = Path::new("/nonexistent/router.cfg");
        let loaded = load_bytes(&bytes, path);
        match &loaded {
            Ok(loaded) => {
                prop_assert!(!loaded.config.connections.is_empty());
                check_lines(&loaded.warnings, lines)?;
            }
            Err(ConfigError::Invalid { problems, warnings }) => {
                prop_assert!(!problems.is_empty());
                check_lines(problems, lines)?;
                check_lines(warnings, lines)?;
            }
            Err(other) => prop_assert!(false, "no file was read, yet: {other}"),
        }
        if let Err(e) = &loaded {
            let _ = e.to_string();
        }
        // UTF-8 text reads the same through either door.
        if let Ok(text) = std::str::from_utf8(&bytes) {
            prop_assert!(same(&load_str(text, path), &loaded));
        }
    }
}
