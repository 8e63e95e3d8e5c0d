//! Python 2.7 ConfigParser's line rules, which SocketReader configs were written against:
//! what a line is (a comment, a header, a key, the continuation of a value), which lines
//! it refuses, and where each section and key is, so that every problem names its line.
//! The INI reader (configparser) parses the values; this module makes it read the lines
//! as Python does, or says where it cannot.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::Diagnostic;

/// The text of a config file's bytes, line by line: a line that is UTF-8 as such, any
/// other as Latin-1 (which maps every byte to a character), and the numbers of those
/// lines. Deciding per line keeps a UTF-8 path (`/srv/Müller`) as written when a comment
/// elsewhere was saved in a Windows code page.
pub(super) fn decode_lines(bytes: &[u8]) -> (String, BTreeSet<usize>) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_owned(), BTreeSet::new());
    }
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    let mut latin1_lines = BTreeSet::new();
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(_) => {
                // Python 2's ConfigParser reads bytes, so SocketReader configs written on
                // Windows (a `# für` comment, a path) work there.
                text.extend(line.iter().map(|&b| char::from(b)));
                latin1_lines.insert(n + 1);
            }
        }
    }
    (text, latin1_lines)
}

/// Two line rules of Python 2.7's ConfigParser that the INI reader does not share. A line
/// whose first word is `rem` in any case, written from the first column, is a comment (as in
/// `REM written by setup`); the reader would take it for a key. A section header ends at its
/// first `]` (`[in]x]` names `in`, whatever follows is ignored); the reader would name it
/// `in]x`. Line numbers stay as they are.
pub(super) fn python_2_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = &line[content.len()..];
        let is_rem = content.starts_with(['r', 'R'])
            && content
                .split_whitespace()
                .next()
                .is_some_and(|word| word.eq_ignore_ascii_case("rem"));
        if is_rem {
            out.push_str(ending);
        } else if let Some(rest) = content.strip_prefix('[')
            && let Some(end) = rest.find(']')
            && end > 0
        {
            out.push('[');
            out.push_str(&rest[..=end]);
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A line like `[]` or `[]x]`: Python 2.7's ConfigParser needs at least one character
/// before the first `]` of a header and refuses the file otherwise. The INI reader would
/// take it for a section with an empty or odd name and quietly file the keys below it
/// there, so the only error left would be a misleading "no section [x]" elsewhere.
pub(super) fn empty_section_header(file: &Path, text: &str) -> Option<Diagnostic> {
    text.lines().enumerate().find_map(|(n, line)| {
        let trimmed = line.trim();
        trimmed.starts_with("[]").then(|| Diagnostic {
            file: file.to_owned(),
            line: Some(n + 1),
            section: None,
            key: None,
            message: format!(
                "`{trimmed}` is not a section header: a section name goes between `[` and \
                 the first `]`, and here that is empty"
            ),
        })
    })
}

/// Where sections and keys are, and what is defined twice.
#[derive(Debug, Default)]
pub(super) struct LineIndex {
    pub(super) sections: HashMap<String, usize>,
    pub(super) keys: HashMap<(String, String), usize>,
    duplicate_sections: Vec<(String, usize, usize)>,
    duplicate_keys: Vec<(String, String, usize, usize)>,
    /// Indented lines that look like `key = value` but continue the value above them:
    /// (section, continued key, line).
    continued_keys: Vec<(String, String, usize)>,
    /// Indented lines that look like `[section]` under a key: Python reads them as part
    /// of its value, the INI reader as a header. (section, key, line, text).
    indented_headers: Vec<(String, String, usize, String)>,
    /// Indented comments under a key: Python 2.7 takes `;` and `#` as comments only
    /// from the first column, so it reads them as part of the value; the INI reader
    /// skips them. (section, key, line).
    indented_comments: Vec<(String, String, usize)>,
    /// Indented lines with no key above them to continue (a section's first line, or
    /// before any section): Python 2.7 refuses them, the INI reader takes them as they
    /// read. (section, line, what they are read as).
    stray_indents: Vec<(Option<String>, usize, StrayIndent)>,
    /// Section headers with spaces inside the brackets, around the name: Python keeps
    /// them as part of the name, the INI reader trims them. (section, line, as written).
    spaced_headers: Vec<(String, usize, String)>,
    /// Lines Python 2.7's ConfigParser refuses: (section, line, text). Section `None`:
    /// before the first section header (a `MissingSectionHeaderError` there); otherwise
    /// a line without `=` or `:` (a `ParsingError`).
    unreadable: Vec<(Option<String>, usize, String)>,
    /// How a key given more than once was written the last time, by (section, lowercase
    /// key): the INI reader keeps `Port` and `port` apart, Python keeps the last one.
    pub(super) last_spelling: HashMap<(String, String), String>,
}

/// What an indented line that continues no key is read as.
#[derive(Debug, Clone)]
enum StrayIndent {
    /// The header of the section the line is filed under.
    Header,
    Key(String),
    Comment,
}

impl StrayIndent {
    fn read_as(&self, section: Option<&str>) -> String {
        match self {
            Self::Header => format!("the section header `[{}]`", section.unwrap_or_default()),
            Self::Key(_) => "a key".to_owned(),
            Self::Comment => "a comment".to_owned(),
        }
    }
}

impl LineIndex {
    pub(super) fn scan(text: &str) -> Self {
        let mut index = Self::default();
        let mut section = String::from("default");
        let mut in_section = false;
        // The key whose value a deeper-indented line continues, and its indentation (the
        // rule configparser applies with `multiline`, as Python's ConfigParser does).
        let mut current: Option<(String, usize)> = None;
        for (n, line) in text.lines().enumerate() {
            let number = n + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            // Python 2.7 continues the last key's value on any indented line, and refuses
            // an indented line with no key to continue (a section's first line, or before
            // the first section).
            let continued = current
                .as_ref()
                .filter(|(_, key_indent)| indent > *key_indent)
                .map(|(key, _)| key.clone());
            let stray = indent > 0 && continued.is_none();
            if trimmed.starts_with([';', '#']) {
                if let Some(key) = continued {
                    index.indented_comments.push((section.clone(), key, number));
                } else if stray {
                    let at = in_section.then(|| section.clone());
                    index.stray_indents.push((at, number, StrayIndent::Comment));
                }
                continue;
            }
            if let Some(key) = continued {
                if !trimmed.starts_with('[') {
                    if trimmed.contains(['=', ':']) {
                        index.continued_keys.push((section.clone(), key, number));
                    }
                    continue;
                }
                // `[]` is refused on its own (`empty_section_header`).
                if trimmed[1..].find(']').is_some_and(|end| end > 0) {
                    index
                        .indented_headers
                        .push((section.clone(), key, number, trimmed.to_owned()));
                }
            }
            if let Some(rest) = trimmed.strip_prefix('[')
                && let Some(end) = rest.find(']')
            {
                current = None;
                in_section = true;
                section = rest[..end].trim().to_owned();
                if section.len() != end {
                    index
                        .spaced_headers
                        .push((section.clone(), number, rest[..end].to_owned()));
                }
                if stray {
                    index
                        .stray_indents
                        .push((Some(section.clone()), number, StrayIndent::Header));
                }
                if let Some(&first) = index.sections.get(&section) {
                    index
                        .duplicate_sections
                        .push((section.clone(), first, number));
                } else {
                    index.sections.insert(section.clone(), number);
                }
                continue;
            }
            if !in_section {
                index.unreadable.push((None, number, trimmed.to_owned()));
            }
            let Some(at) = trimmed.find(['=', ':']) else {
                if in_section {
                    index
                        .unreadable
                        .push((Some(section.clone()), number, trimmed.to_owned()));
                }
                // A key without a value: later deeper lines continue it.
                current = Some((trimmed.to_ascii_lowercase(), indent));
                continue;
            };
            let spelling = trimmed[..at].trim();
            let key = spelling.to_ascii_lowercase();
            if stray && in_section {
                index.stray_indents.push((
                    Some(section.clone()),
                    number,
                    StrayIndent::Key(key.clone()),
                ));
            }
            index
                .last_spelling
                .insert((section.clone(), key.clone()), spelling.to_owned());
            current = Some((key.clone(), indent));
            if let Some(first) = index.keys.insert((section.clone(), key.clone()), number) {
                index
                    .duplicate_keys
                    .push((section.clone(), key, first, number));
            }
        }
        index
    }

    /// The problems and warnings of the lines themselves: what Python 2.7 refuses or
    /// reads otherwise than the INI reader, and what is defined twice.
    pub(super) fn diagnostics(&self, file: &Path) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        for (name, first, again) in self.duplicate_sections.iter().cloned() {
            problems.push(Diagnostic {
                file: file.to_owned(),
                line: Some(again),
                section: Some(name),
                key: None,
                message: format!(
                    "section defined twice (first at line {first}); section names must be unique"
                ),
            });
        }
        for (section, key, line) in self.continued_keys.iter().cloned() {
            warnings.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                section: Some(section),
                key: Some(key),
                message: "this indented line is part of this key's value (as in Python's \
                          ConfigParser), not a key of its own; remove the indentation to make \
                          it one"
                    .into(),
            });
        }
        for (section, key, line, header) in self.indented_headers.iter().cloned() {
            problems.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                section: Some(section),
                key: Some(key),
                message: format!(
                    "`{header}` is indented under this key: Python's ConfigParser (SocketReader) \
                     reads it as part of the key's value, not as a section header; remove the \
                     indentation to make it one"
                ),
            });
        }
        for (section, key, line) in self.indented_comments.iter().cloned() {
            warnings.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                section: Some(section),
                key: Some(key),
                message: "this indented comment is part of this key's value in Python's \
                          ConfigParser (SocketReader), which takes `;` and `#` as comments only \
                          from the first column; read here as a comment; remove the indentation"
                    .into(),
            });
        }
        for (section, line, stray) in self.stray_indents.iter().cloned() {
            let key = match &stray {
                StrayIndent::Key(key) => Some(key.clone()),
                StrayIndent::Header | StrayIndent::Comment => None,
            };
            let read_as = stray.read_as(section.as_deref());
            warnings.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                section,
                key,
                message: format!(
                    "this line is indented with no key above it to continue: Python's \
                     ConfigParser (SocketReader) refuses it; read here as {read_as}; remove \
                     the indentation"
                ),
            });
        }
        for (section, line, written) in self.spaced_headers.iter().cloned() {
            warnings.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                message: format!(
                    "`[{written}]` has spaces around the section name: Python's ConfigParser \
                     (SocketReader) keeps them, so its section is `{written}`, which \
                     `useconnections = {section}` does not name; read here as `[{section}]`; \
                     remove the spaces"
                ),
                section: Some(section),
                key: None,
            });
        }
        for (section, key, first, again) in self.duplicate_keys.iter().cloned() {
            warnings.push(Diagnostic {
                file: file.to_owned(),
                line: Some(again),
                section: Some(section),
                key: Some(key),
                message: format!("key given twice (also at line {first}); the last value is used"),
            });
        }

        for (section, line, text) in self.unreadable.iter().cloned() {
            let message = match &section {
                None => format!(
                    "`{text}` comes before the first section header; put it in a section such \
                     as [general]"
                ),
                Some(_) => format!(
                    "`{text}` is not a setting; write key = value (or key: value), a [section] \
                     header, or a comment starting with ; or #"
                ),
            };
            problems.push(Diagnostic {
                file: file.to_owned(),
                line: Some(line),
                section,
                key: None,
                message,
            });
        }
        (problems, warnings)
    }
}

/// Python 2.7 ConfigParser's inline comment rule: the first `;` on the key's own line
/// starts a comment if whitespace precedes it; `#` never does, nor anything on
/// continuation lines.
pub(super) fn strip_inline_comment(value: String) -> String {
    let first_line_end = value.find('\n').unwrap_or(value.len());
    match value[..first_line_end].find(';') {
        Some(pos) if pos > 0 && value[..pos].ends_with(char::is_whitespace) => {
            format!("{}{}", value[..pos].trim(), &value[first_line_end..])
        }
        _ => value,
    }
}

#[cfg(test)]
pub(in crate::config) mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, Loaded, load_bytes, load_str};

    pub(in crate::config) fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(ToString::to_string).collect()
    }

    /// Python 2.7's rule, which SocketReader configs are written for: `#` inside a value is
    /// text, `;` too unless whitespace precedes it; full-line comments still work.
    #[test]
    fn only_the_first_line_of_a_continued_value_has_an_inline_comment() {
        assert_eq!(
            strip_inline_comment("in, ; first\nout ; kept".into()),
            "in,\nout ; kept"
        );
        assert_eq!(strip_inline_comment("a;b ; c".into()), "a;b ; c");
    }

    /// `REM` lines are comments in Python 2.7's ConfigParser, so a SocketReader config
    /// may hold them anywhere; an indented one, or a word that only starts with rem, is
    /// not one.
    #[test]
    fn rem_lines_are_comments_as_in_python_2() {
        let text = "REM written by setup\r\n[general]\r\nuseconnections = in, out\r\n\
                    rem\tthe LIS side\r\nRem\r\n\
                    [in]\r\ntranstech = socket\r\ntransdir = in\r\nqueuename = q\r\n\
                    [out]\r\ntranstech = file\r\ntransdir = out\r\nqueuename = q\r\n\
                    messagedir = /srv/out\r\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.config.connections.len(), 2);
        // Line numbers after a REM line are still the file's.
        let bad = text.replace(
            "queuename = q\r\nmessagedir",
            "queuename = q\r\nport = 1\r\nmessagedir",
        );
        let warnings = match load_str(&bad, Path::new("r.cfg")) {
            Ok(loaded) => loaded.warnings,
            Err(ConfigError::Invalid { warnings, .. }) => warnings,
            Err(e) => panic!("{e}"),
        };
        assert!(
            warnings
                .iter()
                .any(|w| w.line == Some(14) && w.key.as_deref() == Some("port")),
            "{warnings:?}"
        );
        // `remote = x` is a key, as in Python.
        let remote = text.replace("Rem\r\n", "remote = x\r\n");
        let loaded = load_str(&remote, Path::new("r.cfg")).unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.key.as_deref() == Some("remote")),
            "{:?}",
            loaded.warnings
        );
    }

    /// Python 2.7 ends a section header at its first `]`; the rest of the line is not
    /// part of the name.
    #[test]
    fn a_section_header_ends_at_its_first_bracket() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]x] the LIS side\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 80\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n";
        let Err(ConfigError::Invalid { problems, .. }) = load_str(text, Path::new("r.cfg")) else {
            panic!("port 80 is refused");
        };
        // The section is `in`, so its problem has the key's line.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].section.as_deref(), Some("in"));
        assert_eq!(problems[0].line, Some(7));
        let fixed = text.replace("port = 80", "port = 2575");
        assert!(load_str(&fixed, Path::new("r.cfg")).is_ok());
    }

    /// An indented `[section]` under a key continues the key's value in Python 2.7, so
    /// SocketReader never sees that section; it is refused with its line, not read as the
    /// header it looks like (a config that worked here and nowhere else).
    #[test]
    fn an_indented_section_header_under_a_key_is_refused() {
        let text = "[general]\nuseconnections = in, out\n\
                    \x20 [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n";
        let Err(ConfigError::Invalid { problems, .. }) = load_str(text, Path::new("r.cfg")) else {
            panic!("the indented header is refused");
        };
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:3: [general] useconnections: `[in]` is indented under this key: Python's \
              ConfigParser (SocketReader) reads it as part of the key's value, not as a section \
              header; remove the indentation to make it one"
            ]
        );
        // Not indented, it is a header.
        assert!(load_str(&text.replace("  [in]", "[in]"), Path::new("r.cfg")).is_ok());
    }

    /// Python 2.7 refuses an indented line with no key above it to continue, and reads an
    /// indented comment under a key as part of the value. Both are read here as they look
    /// (no meaning is lost), with a warning naming the line, since the file would not load
    /// in SocketReader or would load with another value.
    #[test]
    fn indented_lines_python_reads_otherwise_are_warned() {
        let text = "  [general]\nuseconnections = in, out\n  ; the LIS side\n\
                    [in]\n  # port 2575 is taken\n  transtech = socket\ntransdir = in\n\
                    queuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\n\
                    messagedir = /srv/out\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let refused = "with no key above it to continue: Python's ConfigParser (SocketReader) \
                       refuses it; read here as";
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:3: [general] useconnections: this indented comment is part of this \
                 key's value in Python's ConfigParser (SocketReader), which takes `;` and `#` \
                 as comments only from the first column; read here as a comment; remove the \
                 indentation"
                    .to_owned(),
                format!(
                    "r.cfg:1: [general]: this line is indented {refused} the section header \
                     `[general]`; remove the indentation"
                ),
                format!(
                    "r.cfg:5: [in]: this line is indented {refused} a comment; remove the \
                     indentation"
                ),
                format!(
                    "r.cfg:6: [in] transtech: this line is indented {refused} a key; remove \
                     the indentation"
                ),
            ]
        );
        // Read as they look: both connections, the comment not in the list.
        assert_eq!(loaded.config.connections.len(), 2);
        assert_eq!(loaded.config.connections[0].name, "in");
        // Under a key, deeper lines that are not comments still continue it, unwarned
        // (Python does the same).
        let continued = text.replace("in, out\n  ; the LIS side", "in,\n  out");
        let loaded = load_str(&continued, Path::new("r.cfg")).unwrap();
        assert!(
            !messages(&loaded.warnings)
                .iter()
                .any(|w| w.starts_with("r.cfg:3:")),
            "{:?}",
            loaded.warnings
        );
        // Unindented, nothing is warned.
        let plain: String = text
            .lines()
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        let loaded = load_str(&plain, Path::new("r.cfg")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    /// Python 2.7 keeps the spaces inside a header's brackets in the section's name, so
    /// SocketReader finds no `[ in ]` for `useconnections = in`; the name is read trimmed
    /// here, with a warning naming the line (it was trimmed silently: found by comparing
    /// the loader with Python 2.7's ConfigParser on generated files).
    #[test]
    fn a_section_name_with_spaces_around_it_is_warned() {
        let text = "[general]\nuseconnections = in, out\n\
                    [ in ]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out\t] ; files\ntranstech = file\ntransdir = out\nqueuename = q\n\
                    messagedir = /srv/out\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:3: [in]: `[ in ]` has spaces around the section name: Python's \
                 ConfigParser (SocketReader) keeps them, so its section is ` in `, which \
                 `useconnections = in` does not name; read here as `[in]`; remove the spaces",
                "r.cfg:7: [out]: `[out\t]` has spaces around the section name: Python's \
                 ConfigParser (SocketReader) keeps them, so its section is `out\t`, which \
                 `useconnections = out` does not name; read here as `[out]`; remove the spaces",
            ]
        );
        assert_eq!(loaded.config.connections.len(), 2);
        let plain = text.replace("[ in ]", "[in]").replace("[out\t]", "[out]");
        let loaded = load_str(&plain, Path::new("r.cfg")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    /// `[]x]` and `[]` name no section in Python 2.7 (a parsing error there); they are
    /// refused with their line, not read as a section whose keys then go missing.
    #[test]
    fn an_empty_section_header_is_refused_with_its_line() {
        for header in ["[]x] the LIS side", "[]", "  []in]"] {
            let text = format!(
                "[general]\nuseconnections = in, out\n\
                 {header}\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                 [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n"
            );
            let Err(ConfigError::Invalid { problems, .. }) = load_str(&text, Path::new("r.cfg"))
            else {
                panic!("{header:?} is refused");
            };
            assert_eq!(
                messages(&problems),
                [format!(
                    "r.cfg:3: `{}` is not a section header: a section name goes between `[` \
                     and the first `]`, and here that is empty",
                    header.trim()
                )]
            );
        }
    }

    /// Python 2.7's ConfigParser refuses a file with a line that is not `key = value`,
    /// `key: value`, a section header or a comment (`port 2575`, a lost `=`), and one
    /// with keys before the first section; SocketReader then does not start. Here the
    /// first was an unknown key, with a warning, and the router listened on the default
    /// port instead; the second was ignored without a word.
    #[test]
    fn lines_python_cannot_read_are_errors_with_their_line() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 2575\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n";
        assert!(load_str(text, Path::new("r.cfg")).is_ok());

        let bare = text.replace("port = 2575", "port 2575");
        let Err(ConfigError::Invalid { problems, warnings }) = load_str(&bare, Path::new("r.cfg"))
        else {
            panic!("a line without = or : is refused");
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:7: [in]: `port 2575` is not a setting; write key = value (or key: value), \
              a [section] header, or a comment starting with ; or #"
            ]
        );
        // Also in a section that is not used: Python refuses the whole file.
        let unused = format!("{text}[spare]\ntranstech = file\nsomething\n");
        let Err(ConfigError::Invalid { problems, .. }) = load_str(&unused, Path::new("r.cfg"))
        else {
            panic!("a line without = or : is refused anywhere");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(15));
        // A continuation line needs no `=`, and an empty value is a value.
        let continued = text
            .replace("useconnections = in, out", "useconnections = in,\n    out")
            .replace("port = 2575", "port = 2575\nipaddr =");
        assert!(load_str(&continued, Path::new("r.cfg")).is_ok());

        let before = format!("; router\nlogfile = /var/log/router.log\n{text}");
        let Err(ConfigError::Invalid { problems, .. }) = load_str(&before, Path::new("r.cfg"))
        else {
            panic!("a key before the first section is refused");
        };
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:2: `logfile = /var/log/router.log` comes before the first section \
              header; put it in a section such as [general]"
            ]
        );
    }

    /// Notepad (before Windows 10 1903) saves UTF-8 with a byte-order mark; it was read
    /// as part of the first line, so `[general]` there was not seen and the error said the
    /// section was missing.
    #[test]
    fn a_byte_order_mark_at_the_start_is_ignored() {
        let text = "[general]\r\nuseconnections = in, out\r\n\
                    [in]\r\ntranstech = socket\r\ntransdir = in\r\nqueuename = q\r\n\
                    [out]\r\ntranstech = file\r\ntransdir = out\r\nqueuename = q\r\n\
                    messagedir = /srv/out\r\n";
        let with_bom = format!("\u{feff}{text}");
        let loaded = load_str(&with_bom, Path::new("r.cfg")).unwrap();
        assert_eq!(loaded.config.connections.len(), 2);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // Read from bytes too, also when the rest is not UTF-8 (read as Latin-1).
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        assert!(load_bytes(&bytes, Path::new("r.cfg")).is_ok());
        let mut latin1 = b"\xef\xbb\xbf".to_vec();
        latin1.extend_from_slice(text.replace("[in]", "[in] ; f\u{fc}r").as_bytes());
        let latin1: Vec<u8> = latin1
            .iter()
            .copied()
            .filter(|&b| b != 0xc3)
            .map(|b| if b == 0xbc { 0xfc } else { b })
            .collect();
        let loaded = load_bytes(&latin1, Path::new("r.cfg")).unwrap();
        assert_eq!(loaded.config.connections.len(), 2);
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        // Line numbers are the file's.
        let bad = with_bom.replace(
            "queuename = q\r\nmessagedir",
            "queuename = q\r\nport = 1\r\nmessagedir",
        );
        let (Err(ConfigError::Invalid { warnings, .. }) | Ok(Loaded { warnings, .. })) =
            load_str(&bad, Path::new("r.cfg"))
        else {
            panic!()
        };
        assert!(
            warnings
                .iter()
                .any(|w| w.line == Some(11) && w.key.as_deref() == Some("port")),
            "{warnings:?}"
        );
    }
}
