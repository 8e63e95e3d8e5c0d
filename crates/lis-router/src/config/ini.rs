//! The SocketReader INI loader: configparser for the syntax, read line by line as Python
//! 2.7 reads it (`lines`), and our own checks for the semantics.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use configparser::ini::Ini;

use super::lines::{
    LineIndex, decode_lines, empty_section_header, python_2_lines, strip_inline_comment,
};
use super::value;
use super::{
    ConfigError, Connection, ConnectorKind, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PORT, DebugOptions, Diagnostic, FileInSettings, FileNaming, FileOutSettings, FileSync,
    General, LogLevel, RouterConfig, SocketSettings, TlsSettings,
};
use crate::filename::is_temporary_name;

/// A loaded configuration and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated configuration.
    pub config: RouterConfig,
    /// Problems that do not stop the router (unknown keys, ignored options).
    pub warnings: Vec<Diagnostic>,
}

const GENERAL_KEYS: &[&str] = &[
    "logfile",
    "loglvl",
    "useconnections",
    "datadir",
    "maxmessagesize",
];
const COMMON_KEYS: &[&str] = &["transtech", "transdir", "usehl7", "queuename", "debug"];
const SOCKET_KEYS: &[&str] = &[
    "queuedb",
    "useack",
    "createserversocket",
    "ipaddr",
    "port",
    "sob",
    "eod",
    "eob",
    "maxmessagesize",
    "acktimeout",
    "retrydelay",
    "retrymaxdelay",
    "usetls",
];
/// The keys that mean nothing without `usetls = True` (socket connectors).
const TLS_DETAIL_KEYS: &[&str] = &[
    "tlscert",
    "tlskey",
    "tlsca",
    "tlscrl",
    "tlsservername",
    "tlsinsecure",
];
/// Read by socket inputs only; `maxconnections` by servers among them.
const SOCKET_IN_KEYS: &[&str] = &["idletimeout"];
const SOCKET_SERVER_IN_KEYS: &[&str] = &["maxconnections"];
const SOCKET_OUT_KEYS: &[&str] = &["maxrefusals"];
const FILE_KEYS: &[&str] = &["messagedir", "outputdir", "newline", "queuedb"];
const FILE_IN_KEYS: &[&str] = &[
    "filemask",
    "cycletime",
    "maxfiles",
    "naturalorder",
    "settletime",
    "maxmessagesize",
];
const FILE_OUT_KEYS: &[&str] = &[
    "hl7prefix",
    "prefix",
    "suffix",
    "filesync",
    "retrydelay",
    "retrymaxdelay",
];
const ALL_CONNECTION_KEYS: &[&[&str]] = &[
    COMMON_KEYS,
    SOCKET_KEYS,
    TLS_DETAIL_KEYS,
    SOCKET_IN_KEYS,
    SOCKET_SERVER_IN_KEYS,
    SOCKET_OUT_KEYS,
    FILE_KEYS,
    FILE_IN_KEYS,
    FILE_OUT_KEYS,
];
const DEBUG_KEYS: &[&str] = &["logcontent"];
/// The byte-order mark some Windows editors put at the start of a UTF-8 file.
const UTF8_BOM: &str = "\u{feff}";

/// Reads and validates a config file (see [`load_bytes`] for how its bytes are read).
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Invalid`] with
/// every problem found otherwise.
pub fn load_file(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    load_bytes(&bytes, path)
}

/// Validates the bytes of a config file, as [`load_file`] reads them: as UTF-8, or, when
/// they are not, as Latin-1 with a warning naming the first line that is not UTF-8.
/// `path` names the file in messages and anchors relative paths (its directory).
///
/// ```
/// let bytes = b"# f\xfcr das Labor\n[general]\nuseconnections = in, out\n\
///               [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
///               [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
/// let loaded = lis_router::config::load_bytes(bytes, "/etc/router.cfg".as_ref())?;
/// assert_eq!(loaded.config.connections.len(), 2);
/// assert_eq!(loaded.warnings[0].line, Some(1));
/// # Ok::<(), lis_router::config::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError::Invalid`] with every problem found.
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, ConfigError> {
    // A UTF-8 byte-order mark (Notepad writes one) is not text, even in a file that is
    // otherwise read as Latin-1.
    let bytes = bytes.strip_prefix(UTF8_BOM.as_bytes()).unwrap_or(bytes);
    let (text, latin1_lines) = decode_lines(bytes);
    let mut result = load_text(&text, path, latin1_lines.clone());
    if let Some(&line) = latin1_lines.iter().next() {
        let more = match latin1_lines.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let warning = Diagnostic {
            file: path.to_owned(),
            line: Some(line),
            section: None,
            key: None,
            message: format!(
                "this line{more} is not UTF-8; read as Latin-1 (a path there names the file \
                 by its bytes, as in Python 2), the other lines as UTF-8"
            ),
        };
        match &mut result {
            Ok(loaded) => loaded.warnings.insert(0, warning),
            Err(ConfigError::Invalid { warnings, .. }) => warnings.insert(0, warning),
            Err(_) => {}
        }
    }
    result
}

/// Validates config text; `path` names it in messages and anchors relative paths (its
/// directory).
///
/// ```
/// let text = "[general]\nuseconnections = in, out\n\
///             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 2575\n\
///             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /tmp/out\n";
/// let loaded = lis_router::config::load_str(text, "/etc/router.cfg".as_ref())?;
/// assert_eq!(loaded.config.connections.len(), 2);
/// assert_eq!(loaded.config.general.datadir, std::path::Path::new("/etc/router-data"));
///
/// let bad = text.replace("port = 2575", "port = 80");
/// let error = lis_router::config::load_str(&bad, "/etc/router.cfg".as_ref()).unwrap_err();
/// assert!(error.to_string().contains("/etc/router.cfg:7: [in] port: 80 is out of range; allowed: 1024..65535"));
/// # Ok::<(), lis_router::config::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError::Invalid`] with every problem found.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    load_text(text, path, BTreeSet::new())
}

/// [`load_str`] for text whose `latin1_lines` were decoded from Latin-1 bytes.
fn load_text(
    text: &str,
    path: &Path,
    latin1_lines: BTreeSet<usize>,
) -> Result<Loaded, ConfigError> {
    // Left in, the mark would be part of the first line and hide a `[general]` there.
    let text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
    let as_python_reads = python_2_lines(text);
    let text = as_python_reads.as_str();
    let index = LineIndex::scan(text);
    let (problems, warnings) = index.diagnostics(path);
    let mut ctx = Ctx {
        file: path.to_owned(),
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        index,
        latin1_lines,
        default_keys: HashSet::new(),
        problems,
        warnings,
    };
    if let Some(problem) = empty_section_header(&ctx.file, text) {
        ctx.problems.push(problem);
        return Err(ConfigError::Invalid {
            problems: ctx.problems,
            warnings: ctx.warnings,
        });
    }

    // Python 2.7's ConfigParser, which SocketReader uses, has no `#` inline comments and
    // takes `;` as one only after whitespace (see `strip_inline_comment`); configparser's
    // own rule would cut `/srv/lab#2` or `sob = "#"`.
    let mut defaults = Ini::new_cs().defaults();
    defaults.enable_inline_comments = false;
    // Python's ConfigParser continues a value on indented lines (`useconnections = a,`
    // then `    b`); configparser does so only when asked.
    defaults.multiline = true;
    let mut ini = Ini::new_from_defaults(defaults);
    let raw = match ini.read(text.to_owned()) {
        Ok(map) => map,
        Err(message) => {
            ctx.problems.push(Diagnostic {
                file: ctx.file.clone(),
                line: None,
                section: None,
                key: None,
                message: format!("not a valid INI file: {message}"),
            });
            return Err(ConfigError::Invalid {
                problems: ctx.problems,
                warnings: ctx.warnings,
            });
        }
    };
    // Keys are case-insensitive as in Python's ConfigParser; section names are not. Of a
    // key written in several cases (`port`, `Port`), the spelling written last wins, as
    // the last value does in Python.
    let sections: BTreeMap<String, HashMap<String, Option<String>>> = raw
        .into_iter()
        .map(|(name, keys)| {
            let mut lowered = HashMap::with_capacity(keys.len());
            for (spelling, value) in keys {
                let key = spelling.to_ascii_lowercase();
                let written_last = ctx
                    .index
                    .last_spelling
                    .get(&(name.clone(), key.clone()))
                    .is_none_or(|last| *last == spelling);
                if written_last || !lowered.contains_key(&key) {
                    lowered.insert(key, value.map(strip_inline_comment));
                }
            }
            (name, lowered)
        })
        .collect();

    warn_interpolation(&mut ctx, &sections);
    warn_comment_taken_for_a_value(&mut ctx, &sections);
    let sections = inherit_defaults(&mut ctx, sections);
    let config = build(&mut ctx, &sections);
    match config {
        Some(config) if ctx.problems.is_empty() => Ok(Loaded {
            config,
            warnings: ctx.warnings,
        }),
        _ => {
            ctx.problems.sort_by_key(|d| d.line.unwrap_or(0));
            Err(ConfigError::Invalid {
                problems: ctx.problems,
                warnings: ctx.warnings,
            })
        }
    }
}

/// Python's `ConfigParser` (not `RawConfigParser`) would expand `%(name)s`; which one
/// SocketReader uses is not known, so the value is used as written, with a warning.
fn warn_interpolation(ctx: &mut Ctx, sections: &BTreeMap<String, HashMap<String, Option<String>>>) {
    for (section, keys) in sections {
        let mut keys: Vec<_> = keys.iter().collect();
        keys.sort();
        for (key, value) in keys {
            if value.as_deref().is_some_and(|v| v.contains("%(")) {
                ctx.warn(
                    section,
                    Some(key),
                    "`%(...)s` is not expanded (no ConfigParser interpolation); the value is \
                     used as written"
                        .into(),
                );
            }
        }
    }
}

/// `key = ; note`: Python 2.7 takes `;` for a comment only after whitespace, and the
/// whitespace after `=` is not part of the value, so the value is `; note` (with Windows line
/// ends it becomes empty instead, a quirk of its rule). Used as Python reads it on Linux,
/// with a warning, since a comment was surely meant.
fn warn_comment_taken_for_a_value(
    ctx: &mut Ctx,
    sections: &BTreeMap<String, HashMap<String, Option<String>>>,
) {
    for (section, keys) in sections {
        let mut keys: Vec<_> = keys.iter().collect();
        keys.sort();
        for (key, value) in keys {
            if let Some(value) = value.as_deref().filter(|v| v.starts_with(';')) {
                let first_line = value.lines().next().unwrap_or_default();
                ctx.warn(
                    section,
                    Some(key),
                    format!(
                        "the value is `{first_line}`: a `;` right after `=` is text, not a \
                         comment (as in Python's ConfigParser); for an empty value with a \
                         comment, put the comment on a line of its own"
                    ),
                );
            }
        }
    }
}

/// Python's ConfigParser section whose keys every other section inherits.
const DEFAULTS_SECTION: &str = "DEFAULT";

/// Gives every section the `[DEFAULT]` keys it does not set itself, as Python's
/// ConfigParser does, and drops `[DEFAULT]` (it is not a connection). Inherited keys are
/// recorded in `Ctx::default_keys`, so that they are checked once, in `[DEFAULT]`.
fn inherit_defaults(
    ctx: &mut Ctx,
    mut sections: BTreeMap<String, HashMap<String, Option<String>>>,
) -> BTreeMap<String, HashMap<String, Option<String>>> {
    let Some(defaults) = sections.remove(DEFAULTS_SECTION) else {
        return sections;
    };
    ctx.default_keys = defaults.keys().cloned().collect();
    let mut keys: Vec<&String> = defaults
        .iter()
        .filter_map(|(key, value)| value.is_some().then_some(key))
        .collect();
    keys.sort();
    for key in keys {
        let known = std::iter::once(GENERAL_KEYS)
            .chain(ALL_CONNECTION_KEYS.iter().copied())
            .any(|set| set.contains(&key.as_str()));
        if !known {
            ctx.warn(
                DEFAULTS_SECTION,
                Some(key),
                "unknown key for every section; ignored".into(),
            );
        }
    }
    for keys in sections.values_mut() {
        for (key, value) in &defaults {
            keys.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    sections
}

/// The line that sets each key: in its section, or in `[DEFAULT]` when the section
/// inherits it. `messagedir` stands for its old name `outputdir` too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyLines(HashMap<(String, String), usize>);

impl KeyLines {
    pub(crate) fn line(&self, section: &str, key: &str) -> Option<usize> {
        Self::line_in(&self.0, section, key)
    }

    fn line_in(keys: &HashMap<(String, String), usize>, section: &str, key: &str) -> Option<usize> {
        let in_section =
            |section: &str, key: &str| keys.get(&(section.to_owned(), key.to_owned())).copied();
        let also = match key {
            "messagedir" => Some("outputdir"),
            _ => None,
        };
        in_section(section, key)
            .or_else(|| also.and_then(|other| in_section(section, other)))
            .or_else(|| in_section(DEFAULTS_SECTION, key))
            .or_else(|| also.and_then(|other| in_section(DEFAULTS_SECTION, other)))
    }
}

struct Ctx {
    file: PathBuf,
    base: PathBuf,
    index: LineIndex,
    /// The lines read as Latin-1 (see `decode_lines`).
    latin1_lines: BTreeSet<usize>,
    /// The keys of `[DEFAULT]`, which every section inherits.
    default_keys: HashSet<String>,
    problems: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx {
    /// The line that sets `key` in `section`, or in `[DEFAULT]` when the section inherits it.
    fn key_line(&self, section: &str, key: &str) -> Option<usize> {
        KeyLines::line_in(&self.index.keys, section, key)
    }

    fn diagnostic(&self, section: &str, key: Option<&str>, message: String) -> Diagnostic {
        let line = key
            .and_then(|key| self.key_line(section, key))
            .or_else(|| self.index.sections.get(section).copied());
        Diagnostic {
            file: self.file.clone(),
            line,
            section: Some(section.to_owned()),
            key: key.map(str::to_owned),
            message,
        }
    }

    fn error(&mut self, section: &str, key: Option<&str>, message: String) {
        let diagnostic = self.diagnostic(section, key, message);
        self.problems.push(diagnostic);
    }

    fn warn(&mut self, section: &str, key: Option<&str>, message: String) {
        let diagnostic = self.diagnostic(section, key, message);
        self.warnings.push(diagnostic);
    }

    /// The path that `key` of `section` names, relative to the config file's directory.
    fn resolve(&self, section: &str, key: &str, path: &str) -> PathBuf {
        let path = self.path_as_python_2_reads(section, key, path);
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    /// A path written on a Latin-1 line is the bytes written, as Python 2 passes them to
    /// the operating system (`/srv/M\xfcller`), not their characters in UTF-8.
    #[cfg(unix)]
    fn path_as_python_2_reads(&self, section: &str, key: &str, path: &str) -> PathBuf {
        use std::os::unix::ffi::OsStringExt as _;
        let on_latin1_line = self
            .key_line(section, key)
            .is_some_and(|line| self.latin1_lines.contains(&line));
        let bytes: Option<Vec<u8>> = on_latin1_line
            .then(|| path.chars().map(|c| u8::try_from(c).ok()).collect())
            .flatten();
        match bytes {
            Some(bytes) => PathBuf::from(std::ffi::OsString::from_vec(bytes)),
            None => PathBuf::from(path),
        }
    }

    /// Elsewhere a path is its characters (Windows takes Latin-1 ones as its code page's).
    #[cfg(not(unix))]
    fn path_as_python_2_reads(&self, _section: &str, _key: &str, path: &str) -> PathBuf {
        PathBuf::from(path)
    }
}

/// One section's values with typed getters that record problems.
struct Section<'s> {
    name: &'s str,
    keys: &'s HashMap<String, Option<String>>,
}

impl Section<'_> {
    /// The value; `None` also for a line without `=` or `:`, which is an error of its own
    /// (see `LineIndex::unreadable`).
    fn raw(&self, key: &str) -> Option<String> {
        self.keys.get(key).cloned().flatten()
    }

    fn text(&self, key: &str) -> Option<String> {
        self.raw(key).map(|v| value::unquote(&v).to_owned())
    }

    fn parsed<T>(
        &self,
        ctx: &mut Ctx,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.raw(key) {
            None => default,
            Some(raw) => parse(&raw).unwrap_or_else(|message| {
                ctx.error(self.name, Some(key), message);
                default
            }),
        }
    }

    fn boolean(&self, ctx: &mut Ctx, key: &str, default: bool) -> bool {
        self.parsed(ctx, key, default, value::boolean)
    }

    fn seconds(&self, ctx: &mut Ctx, key: &str, default: f64, min: f64, max: f64) -> Duration {
        self.parsed(ctx, key, Duration::from_secs_f64(default), |raw| {
            value::seconds(raw, min, max)
        })
    }

    fn integer(&self, ctx: &mut Ctx, key: &str, default: u64, min: u64, max: u64) -> u64 {
        self.parsed(ctx, key, default, |raw| value::integer(raw, min, max))
    }

    fn warn_unknown(&self, ctx: &mut Ctx, allowed: &[&[&str]], what: &str) {
        // Lines without a value are errors already (see `LineIndex::unreadable`).
        let mut keys: Vec<&String> = self
            .keys
            .iter()
            .filter_map(|(key, value)| value.is_some().then_some(key))
            .collect();
        keys.sort();
        for key in keys {
            let inherited = ctx.default_keys.contains(key)
                && !ctx
                    .index
                    .keys
                    .contains_key(&(self.name.to_owned(), key.clone()));
            // A [DEFAULT] key reaches every section; it is checked once, there.
            if !inherited && !allowed.iter().any(|set| set.contains(&key.as_str())) {
                let known = ALL_CONNECTION_KEYS
                    .iter()
                    .any(|set| set.contains(&key.as_str()));
                let why = if known {
                    // A key of another kind of connection: a copied section, or a wrong
                    // `transdir` or `createserversocket`.
                    format!("does nothing for {what}; ignored")
                } else {
                    format!("unknown key for {what}; ignored")
                };
                ctx.warn(self.name, Some(key), why);
            }
        }
    }
}

/// For a section that is missing: the one spelt the same but for case, if any, since section
/// names are case-sensitive (as in Python's ConfigParser) and `[General]` reads as a different
/// section.
fn case_hint(sections: &BTreeMap<String, HashMap<String, Option<String>>>, name: &str) -> String {
    sections
        .keys()
        .find(|s| s.eq_ignore_ascii_case(name))
        .map(|s| format!(" (there is a [{s}]: section names are case-sensitive)"))
        .unwrap_or_default()
}

fn build(
    ctx: &mut Ctx,
    sections: &BTreeMap<String, HashMap<String, Option<String>>>,
) -> Option<RouterConfig> {
    let Some(general_keys) = sections.get("general") else {
        ctx.problems.push(Diagnostic {
            file: ctx.file.clone(),
            line: None,
            section: Some("general".into()),
            key: None,
            message: format!(
                "missing section; it must list the connections in useconnections{}",
                case_hint(sections, "general")
            ),
        });
        return None;
    };
    let general = Section {
        name: "general",
        keys: general_keys,
    };
    general.warn_unknown(ctx, &[GENERAL_KEYS], "[general]");
    let logfile = general
        .text("logfile")
        .filter(|f| !f.is_empty())
        .map(|f| ctx.resolve("general", "logfile", &f));
    let loglvl = general.parsed(
        ctx,
        "loglvl",
        LogLevel::Warning,
        |raw| match value::unquote(raw).to_ascii_lowercase().as_str() {
            "critical" => Ok(LogLevel::Critical),
            "error" => Ok(LogLevel::Error),
            "warning" => Ok(LogLevel::Warning),
            "prod" => Ok(LogLevel::Prod),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            other => Err(format!(
                "unknown log level `{other}`; allowed: critical, error, warning, prod, info, debug"
            )),
        },
    );
    let default_max_size = general.integer(
        ctx,
        "maxmessagesize",
        DEFAULT_MAX_MESSAGE_SIZE as u64,
        1,
        1 << 30,
    ) as usize;

    let names: Vec<String> = match general.text("useconnections") {
        None => {
            ctx.error(
                "general",
                None,
                "missing key useconnections: a comma-separated list of the connection sections to run".into(),
            );
            return None;
        }
        Some(list) => list
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
    };
    if names.is_empty() {
        ctx.error(
            "general",
            Some("useconnections"),
            "is empty; list the connection sections to run, e.g. socket-in_1, file-out_1".into(),
        );
    }

    let mut connections = Vec::new();
    // Queues with a connection that has errors of its own: whether they lack inputs or
    // outputs is not known, and saying so would point at the wrong section.
    let mut spoiled_queues = HashSet::new();
    let mut seen = Vec::new();
    for name in &names {
        if seen.contains(name) {
            ctx.error(
                "general",
                Some("useconnections"),
                format!("names connection `{name}` twice"),
            );
            continue;
        }
        seen.push(name.clone());
        if name == "general" {
            ctx.error(
                "general",
                Some("useconnections"),
                "cannot name [general] as a connection".into(),
            );
            continue;
        }
        let Some(keys) = sections.get(name) else {
            ctx.error(
                "general",
                Some("useconnections"),
                format!(
                    "names connection `{name}`, but there is no section [{name}]{}",
                    case_hint(sections, name)
                ),
            );
            continue;
        };
        let section = Section { name, keys };
        if let Some(connection) = connection(ctx, &section, default_max_size) {
            connections.push(connection);
        } else if let Some(Some(queue)) = keys.get("queuename") {
            spoiled_queues.insert(value::unquote(queue).to_owned());
        }
    }

    check_queues(ctx, &connections, &spoiled_queues);
    check_ports(ctx, &connections);
    check_file_output_names(ctx, &connections);
    check_file_input_dirs(ctx, &connections);

    let datadir = match general.text("datadir").filter(|d| !d.is_empty()) {
        Some(dir) => ctx.resolve("general", "datadir", &dir),
        None => queuedb_dir(ctx, sections, &names).unwrap_or_else(|| ctx.base.join("router-data")),
    };

    Some(RouterConfig {
        source: ctx.file.clone(),
        general: General {
            logfile,
            loglvl,
            datadir,
        },
        connections,
        key_lines: KeyLines(ctx.index.keys.clone()),
    })
}

/// SocketReader's `queuedb` is a file path; its directory holds our store.
fn queuedb_dir(
    ctx: &mut Ctx,
    sections: &BTreeMap<String, HashMap<String, Option<String>>>,
    names: &[String],
) -> Option<PathBuf> {
    let dirs: Vec<(&String, PathBuf)> = names
        .iter()
        .filter_map(|name| {
            let raw = sections.get(name)?.get("queuedb")?.as_ref()?;
            // An empty one is none, as `datadir`'s is: resolved, it named the config
            // file's own folder (`/etc/router`) as the store's.
            if value::unquote(raw).trim().is_empty() {
                return None;
            }
            let path = ctx.resolve(name, "queuedb", value::unquote(raw));
            let dir = if path.is_dir() || raw.trim_end_matches(['"', '\'']).ends_with('/') {
                path
            } else {
                path.parent()?.to_path_buf()
            };
            Some((name, dir))
        })
        .collect();
    let (first_name, first) = dirs.first()?.clone();
    // The store follows the first of them: reordering `useconnections` would move it to
    // a fresh directory and leave the backlog behind, unseen.
    if let Some((name, other)) = dirs.iter().find(|(_, dir)| *dir != first) {
        ctx.warn(
            name,
            Some("queuedb"),
            format!(
                "names {}, but [{first_name}] names {}: the queue store lives in the first \
                 connection's, {}; set datadir in [general] so that it does not move when \
                 useconnections changes",
                other.display(),
                first.display(),
                first.display()
            ),
        );
    }
    Some(first)
}

fn connection(ctx: &mut Ctx, section: &Section<'_>, default_max_size: usize) -> Option<Connection> {
    let name = section.name;
    let transtech = section.text("transtech").map(|t| t.to_ascii_lowercase());
    let transdir = section.text("transdir").map(|t| t.to_ascii_lowercase());
    let queue = section.text("queuename");
    let use_hl7 = section.boolean(ctx, "usehl7", false);
    let debug = debug_options(ctx, section);

    let transtech = match transtech.as_deref() {
        Some(t @ ("file" | "socket")) => t.to_owned(),
        Some(other) => {
            ctx.error(
                name,
                Some("transtech"),
                format!("unknown transtech `{other}`; allowed: file, socket"),
            );
            return None;
        }
        None => {
            ctx.error(name, None, "missing key transtech (file or socket)".into());
            return None;
        }
    };
    let input = match transdir.as_deref() {
        Some("in") => true,
        Some("out") => false,
        Some(other) => {
            ctx.error(
                name,
                Some("transdir"),
                format!("unknown transdir `{other}`; allowed: in, out"),
            );
            return None;
        }
        None => {
            ctx.error(name, None, "missing key transdir (in or out)".into());
            return None;
        }
    };
    let queue = match queue {
        Some(q) if !q.trim().is_empty() => q.trim().to_owned(),
        Some(_) => {
            ctx.error(
                name,
                Some("queuename"),
                "is empty; name the queue this connection uses".into(),
            );
            return None;
        }
        None => {
            ctx.error(
                name,
                None,
                "missing key queuename: the queue that binds inputs to outputs".into(),
            );
            return None;
        }
    };

    let kind = if transtech == "socket" {
        let what = if input {
            "a socket input"
        } else {
            "a socket output"
        };
        if input {
            let settings = socket(ctx, section, default_max_size, true)?;
            if settings.server {
                let keys = [
                    COMMON_KEYS,
                    SOCKET_KEYS,
                    TLS_DETAIL_KEYS,
                    SOCKET_IN_KEYS,
                    SOCKET_SERVER_IN_KEYS,
                ];
                section.warn_unknown(ctx, &keys, what);
            } else {
                let keys = [COMMON_KEYS, SOCKET_KEYS, TLS_DETAIL_KEYS, SOCKET_IN_KEYS];
                section.warn_unknown(ctx, &keys, "a client socket input");
            }
            ConnectorKind::SocketIn(settings)
        } else {
            let keys = [COMMON_KEYS, SOCKET_KEYS, TLS_DETAIL_KEYS, SOCKET_OUT_KEYS];
            section.warn_unknown(ctx, &keys, what);
            let refusals = section.integer(ctx, "maxrefusals", 0, 0, 1_000_000);
            let mut settings = socket(ctx, section, default_max_size, false)?;
            settings.max_refusals = u32::try_from(refusals).ok().filter(|&n| n > 0);
            ConnectorKind::SocketOut(settings)
        }
    } else if input {
        section.warn_unknown(ctx, &[COMMON_KEYS, FILE_KEYS, FILE_IN_KEYS], "a file input");
        ConnectorKind::FileIn(file_in(ctx, section, default_max_size)?)
    } else {
        section.warn_unknown(
            ctx,
            &[COMMON_KEYS, FILE_KEYS, FILE_OUT_KEYS],
            "a file output",
        );
        ConnectorKind::FileOut(file_out(ctx, section, use_hl7)?)
    };
    Some(Connection {
        name: name.to_owned(),
        queue,
        use_hl7,
        kind,
        debug,
    })
}

fn debug_options(ctx: &mut Ctx, section: &Section<'_>) -> DebugOptions {
    let mut options = DebugOptions::default();
    let entries = section.parsed(ctx, "debug", Vec::new(), |raw| {
        value::python_dict(value::unquote(raw))
    });
    for (key, raw) in entries {
        match key.as_str() {
            "logcontent" => match value::boolean(&raw) {
                Ok(on) => options.log_content = on,
                Err(message) => ctx.error(
                    section.name,
                    Some("debug"),
                    format!("\"logcontent\": {message}"),
                ),
            },
            _ => ctx.warn(
                section.name,
                Some("debug"),
                format!(
                    "unknown debug option \"{key}\"; ignored (known: {})",
                    DEBUG_KEYS.join(", ")
                ),
            ),
        }
    }
    options
}

fn socket(
    ctx: &mut Ctx,
    section: &Section<'_>,
    default_max_size: usize,
    input: bool,
) -> Option<SocketSettings> {
    let name = section.name;
    let before = ctx.problems.len();
    let server = section.boolean(ctx, "createserversocket", true);
    let ipaddr = section.text("ipaddr");
    if server && ipaddr.as_deref().is_some_and(|h| h.trim().is_empty()) {
        // Python binds `''` to every interface; a migrated config that relied on that would
        // silently stop taking remote senders.
        ctx.warn(
            section.name,
            Some("ipaddr"),
            "is empty: listening on 127.0.0.1 only (SocketReader listened on every \
             interface); write ipaddr = 0.0.0.0 to accept other hosts"
                .into(),
        );
    }
    let host = ipaddr
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = section.integer(ctx, "port", u64::from(DEFAULT_PORT), 1024, 65535) as u16;
    let start_block = section.parsed(ctx, "sob", vec![0x0b], value::delimiter);
    let end_block = section.parsed(ctx, "eod", vec![0x1c], value::delimiter);
    let trailer = section.parsed(ctx, "eob", vec![0x0d], value::trailer);
    let use_ack = section.boolean(ctx, "useack", true);
    let max_message_size =
        section.integer(ctx, "maxmessagesize", default_max_size as u64, 1, 1 << 30) as usize;
    let max_connections = section.integer(
        ctx,
        "maxconnections",
        DEFAULT_MAX_CONNECTIONS as u64,
        1,
        10_000,
    ) as usize;
    let idle = section.seconds(ctx, "idletimeout", 600.0, 0.0, 7.0 * 86_400.0);
    let ack_timeout = section.seconds(ctx, "acktimeout", 30.0, 0.05, 3_600.0);
    let (retry_delay, retry_max_delay) = backoff(ctx, section);
    let tls = tls(ctx, section, server, input);
    if start_block == end_block {
        ctx.error(
            name,
            Some("eod"),
            "equals sob; the start and end delimiters must differ".into(),
        );
    }
    let settings = SocketSettings {
        server,
        host,
        port,
        start_block,
        end_block,
        trailer,
        use_ack,
        max_message_size,
        max_connections,
        idle_timeout: (!idle.is_zero()).then_some(idle),
        ack_timeout,
        retry_delay,
        retry_max_delay,
        max_refusals: None,
        tls,
    };
    (ctx.problems.len() == before).then_some(settings)
}

/// `usetls` and the `tls*` keys. A `tls*` key without `usetls = True` is an error, not
/// a warning: the section reads as encrypted while its messages would cross the
/// network in the clear.
fn tls(ctx: &mut Ctx, section: &Section<'_>, server: bool, input: bool) -> Option<TlsSettings> {
    let name = section.name;
    let on = section.boolean(ctx, "usetls", false);
    if !on {
        for key in TLS_DETAIL_KEYS {
            if section.raw(key).is_some() {
                ctx.error(
                    name,
                    Some(key),
                    "is set but usetls is not True: the connection would not be encrypted; \
                     add usetls = True (or remove the key)"
                        .into(),
                );
            }
        }
        return None;
    }
    let path = |key: &str| {
        section
            .text(key)
            .filter(|p| !p.trim().is_empty())
            .map(|p| ctx.resolve(section.name, key, p.trim()))
    };
    let settings = TlsSettings {
        cert: path("tlscert"),
        key: path("tlskey"),
        ca: path("tlsca"),
        crl: path("tlscrl"),
        server_name: section
            .text("tlsservername")
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        insecure: section.boolean(ctx, "tlsinsecure", false),
    };
    match (&settings.cert, &settings.key) {
        (None, _) if server => ctx.error(
            name,
            Some("tlscert"),
            "missing: a TLS server socket needs tlscert = FILE (its PEM certificate chain) \
             and tlskey = FILE (its private key)"
                .into(),
        ),
        (Some(_), None) => ctx.error(
            name,
            Some("tlskey"),
            "missing: tlscert needs its private key, tlskey = FILE (PEM)".into(),
        ),
        (None, Some(_)) => ctx.error(
            name,
            Some("tlscert"),
            "missing: tlskey needs its certificate chain, tlscert = FILE (PEM)".into(),
        ),
        _ => {}
    }
    if settings.crl.is_some() && settings.ca.is_none() && !settings.insecure {
        ctx.error(
            name,
            Some("tlscrl"),
            "needs tlsca = FILE: revocation lists are checked for certificates from the CAs \
             in tlsca"
                .into(),
        );
    }
    if server && !input && settings.ca.is_none() {
        ctx.warn(
            name,
            Some("usetls"),
            "a TLS server output without tlsca hands its messages to any client that \
             connects; set tlsca so that only receivers with a certificate from it are served"
                .into(),
        );
    }
    if server {
        for key in ["tlsservername", "tlsinsecure"] {
            if section.raw(key).is_some() {
                ctx.warn(
                    name,
                    Some(key),
                    "does nothing for a server socket (it is a client socket's check of the \
                     server's certificate); ignored"
                        .into(),
                );
            }
        }
    } else if settings.insecure {
        for key in ["tlsca", "tlscrl"] {
            if section.raw(key).is_some() {
                ctx.warn(
                    name,
                    Some(key),
                    "does nothing with tlsinsecure = True; ignored".into(),
                );
            }
        }
        ctx.warn(
            name,
            Some("tlsinsecure"),
            "the server's certificate is not checked: anyone on the path can pose as the \
             server (for tests only)"
                .into(),
        );
    }
    Some(settings)
}

/// `retrydelay` and `retrymaxdelay`, the first delay and the ceiling of a retry backoff.
fn backoff(ctx: &mut Ctx, section: &Section<'_>) -> (Duration, Duration) {
    let retry_delay = section.seconds(ctx, "retrydelay", 1.0, 0.01, 3_600.0);
    let retry_max_delay = section.seconds(ctx, "retrymaxdelay", 30.0, 0.01, 86_400.0);
    if retry_max_delay < retry_delay {
        ctx.error(
            section.name,
            Some("retrymaxdelay"),
            "is smaller than retrydelay; the backoff ceiling must be at least the first delay"
                .into(),
        );
    }
    (retry_delay, retry_max_delay)
}

fn message_dir(ctx: &mut Ctx, section: &Section<'_>) -> Option<PathBuf> {
    let dir = section
        .text("messagedir")
        .map(|dir| ("messagedir", dir))
        .or_else(|| section.text("outputdir").map(|dir| ("outputdir", dir)));
    match dir {
        Some((key, dir)) if !dir.trim().is_empty() => {
            Some(ctx.resolve(section.name, key, dir.trim()))
        }
        _ => {
            ctx.error(
                section.name,
                Some("messagedir"),
                "missing: a file connector needs messagedir = PATH (the directory to read from or write to)".into(),
            );
            None
        }
    }
}

/// A `prefix` or `suffix` as it goes into file names. One that would reach outside
/// `messagedir` (a path separator, `..`) or is too long is an error; other characters outside
/// the safe set (a space, say, which SocketReader wrote as it was) become `_`, with a warning,
/// so that the SocketReader config still starts.
fn name_part(ctx: &mut Ctx, section: &str, key: &str, text: String) -> String {
    if text.contains(['/', '\\']) || text.contains("..") {
        ctx.error(
            section,
            Some(key),
            format!(
                "`{text}` is not allowed in a file name: it could name a path outside messagedir \
                 (no '/', '\\' or '..')"
            ),
        );
        return text;
    }
    if text.len() > 64 {
        ctx.error(section, Some(key), "is longer than 64 characters".into());
        return text;
    }
    let safe = crate::filename::sanitize_part(&text, usize::MAX);
    if safe != text {
        ctx.warn(
            section,
            Some(key),
            format!(
                "`{text}` is written `{safe}`: file names keep letters, digits, '.', '_' and '-'"
            ),
        );
    }
    safe
}

/// The shortest `cycletime`: a shorter one is raised to it, with a warning.
const MIN_CYCLE: Duration = Duration::from_millis(10);

fn file_in(
    ctx: &mut Ctx,
    section: &Section<'_>,
    default_max_size: usize,
) -> Option<FileInSettings> {
    let before = ctx.problems.len();
    let dir = message_dir(ctx, section);
    let newline = section.boolean(ctx, "newline", false);
    let filemask = section
        .text("filemask")
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|| "*".to_owned());
    if filemask.is_empty() || filemask.contains(['/', '\\']) {
        ctx.error(
            section.name,
            Some("filemask"),
            format!("`{filemask}` is not a file name pattern; allowed: * ? [abc] without path separators"),
        );
    }
    // Names like these are skipped as files still being written; a mask that asks for
    // them must get them, or the connection silently reads nothing.
    let take_temporary_names = is_temporary_name(&filemask);
    if take_temporary_names {
        ctx.warn(
            section.name,
            Some("filemask"),
            format!(
                "`{filemask}` matches names that usually mark a file still being written \
                 (.tmp, .part, hidden, ...); they are taken here, once their size and mtime \
                 hold still for settletime"
            ),
        );
    }
    // SocketReader sleeps `cycletime` between polls, so 0 (poll without pause) is a valid
    // SocketReader setting; a poll loop without any pause would take a whole CPU core.
    let mut cycle = section.seconds(ctx, "cycletime", 120.0, 0.0, 86_400.0);
    if cycle < MIN_CYCLE {
        ctx.warn(
            section.name,
            Some("cycletime"),
            format!(
                "{} s: polling every {} s, the shortest period",
                cycle.as_secs_f64(),
                MIN_CYCLE.as_secs_f64()
            ),
        );
        cycle = MIN_CYCLE;
    }
    let max_files = section.integer(ctx, "maxfiles", 50, 1, 1000) as usize;
    let natural_order = section.boolean(ctx, "naturalorder", false);
    let settle = section.seconds(ctx, "settletime", 0.5, 0.0, 600.0);
    let max_message_size =
        section.integer(ctx, "maxmessagesize", default_max_size as u64, 1, 1 << 30) as usize;
    let dir = dir?;
    (ctx.problems.len() == before).then_some(FileInSettings {
        dir,
        filemask,
        take_temporary_names,
        cycle,
        max_files,
        newline,
        natural_order,
        settle,
        max_message_size,
    })
}

fn file_out(ctx: &mut Ctx, section: &Section<'_>, use_hl7: bool) -> Option<FileOutSettings> {
    let name = section.name;
    let before = ctx.problems.len();
    let dir = message_dir(ctx, section);
    let newline = section.boolean(ctx, "newline", false);
    let hl7prefix = section.boolean(ctx, "hl7prefix", false);
    let prefix = section.text("prefix");
    let suffix = section.text("suffix").unwrap_or_else(|| ".dat".to_owned());
    let sync = section.parsed(
        ctx,
        "filesync",
        FileSync::File,
        |raw| match value::unquote(raw).to_ascii_lowercase().as_str() {
            "file" => Ok(FileSync::File),
            "filesystem" => Ok(FileSync::Filesystem),
            other => Err(format!(
                "unknown filesync `{other}`; allowed: file, filesystem"
            )),
        },
    );
    let (retry_delay, retry_max_delay) = backoff(ctx, section);
    // `prefix =` or `prefix = ""` (templates list every key) is no prefix.
    let prefix = prefix.filter(|p| !p.is_empty());
    if hl7prefix && prefix.is_some() {
        ctx.error(
            name,
            Some("hl7prefix"),
            "cannot be combined with prefix; use one of them".into(),
        );
    }
    if hl7prefix && !use_hl7 {
        ctx.error(
            name,
            Some("hl7prefix"),
            "needs usehl7 = True (names come from MSH-3..MSH-9)".into(),
        );
    }
    let prefix = prefix.map(|p| name_part(ctx, name, "prefix", p));
    let suffix = name_part(ctx, name, "suffix", suffix);
    let dir = dir?;
    let naming = if hl7prefix {
        FileNaming::Hl7
    } else {
        FileNaming::Prefix(prefix.unwrap_or_default())
    };
    (ctx.problems.len() == before).then_some(FileOutSettings {
        dir,
        naming,
        suffix,
        newline,
        sync,
        retry_delay,
        retry_max_delay,
    })
}

fn check_queues(ctx: &mut Ctx, connections: &[Connection], spoiled: &HashSet<String>) {
    let mut queues: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for c in connections {
        let entry = queues.entry(c.queue.as_str()).or_default();
        if c.kind.is_input() {
            entry.0.push(&c.name);
        } else {
            entry.1.push(&c.name);
        }
    }
    for (queue, (inputs, outputs)) in queues {
        if spoiled.contains(queue) {
            continue;
        }
        if outputs.is_empty() {
            for input in inputs {
                ctx.error(
                    input,
                    Some("queuename"),
                    format!("queue `{queue}` has inputs but no outputs; add an output connection with queuename = {queue} to useconnections"),
                );
            }
        } else if inputs.is_empty() {
            for output in outputs {
                ctx.warn(
                    output,
                    Some("queuename"),
                    format!("queue `{queue}` has no inputs; this output only delivers what is already stored"),
                );
            }
        }
    }
}

fn check_ports(ctx: &mut Ctx, connections: &[Connection]) {
    let mut bound: Vec<(&str, u16, &str)> = Vec::new();
    for c in connections {
        let (ConnectorKind::SocketIn(s) | ConnectorKind::SocketOut(s)) = &c.kind else {
            continue;
        };
        if !s.server {
            continue;
        }
        let clash = bound
            .iter()
            .find(|(host, port, _)| *port == s.port && binds_overlap(host, &s.host));
        if let Some((host, _, other)) = clash {
            let on = if *host == s.host {
                String::new()
            } else {
                format!(" (listening on {host}:{})", s.port)
            };
            ctx.error(
                &c.name,
                Some("port"),
                format!(
                    "{}:{} is already used by server connection [{other}]{on}",
                    s.host, s.port
                ),
            );
        }
        bound.push((&s.host, s.port, &c.name));
    }
}

/// Whether two servers on one port would fight over it: the same address, or a wildcard
/// address that takes in the other (`0.0.0.0` every IPv4 address; `::` every address, since
/// Linux's IPv6 sockets take IPv4 too unless told otherwise). Host names are compared as
/// written: resolving them here would make `--check` depend on the resolver.
fn binds_overlap(a: &str, b: &str) -> bool {
    use std::net::IpAddr;
    let ip = |h: &str| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
    };
    match (ip(a), ip(b)) {
        (Ok(x), Ok(y)) => {
            let covers = |w: IpAddr, o: IpAddr| w.is_unspecified() && (w.is_ipv6() || o.is_ipv4());
            x == y || covers(x, y) || covers(y, x)
        }
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// File outputs sharing a directory tell their temporary files apart by their names made
/// file-safe; two names that become the same (`out 1` and `out_1`) would remove each
/// other's files at start-up.
fn check_file_output_names(ctx: &mut Ctx, connections: &[Connection]) {
    let mut owners: HashMap<(PathBuf, String), &str> = HashMap::new();
    for c in connections {
        let ConnectorKind::FileOut(settings) = &c.kind else {
            continue;
        };
        let safe = crate::filename::sanitize_part(&c.name, crate::filename::MAX_PART_LEN);
        if let Some(other) = owners.insert((settings.dir.clone(), safe.clone()), &c.name) {
            ctx.error(
                &c.name,
                None,
                format!(
                    "writes to the same messagedir as [{other}], and both names read `{safe}` \
                     in file names (temporary names tell outputs apart by it); rename one \
                     section"
                ),
            );
        }
    }
}

/// Two file inputs polling one directory race for its files: each file goes to whichever
/// reads it first, some to both queues. Refused when their masks surely take the same
/// files (equal, or one matching the other's text, as `*` does every mask); warned about
/// otherwise, since masks such as `a*` and `*b` may still share names.
fn check_file_input_dirs(ctx: &mut Ctx, connections: &[Connection]) {
    let mut readers: Vec<(&PathBuf, &str, &str)> = Vec::new();
    for c in connections {
        let ConnectorKind::FileIn(settings) = &c.kind else {
            continue;
        };
        let mask = settings.filemask.as_str();
        for &(dir, other, other_mask) in &readers {
            if *dir != settings.dir {
                continue;
            }
            if literal_ends_differ(mask, other_mask) {
                continue;
            }
            let overlap = crate::filename::mask_matches(mask, other_mask)
                || crate::filename::mask_matches(other_mask, mask);
            let message = format!(
                "reads the same messagedir as [{other}] (filemask `{mask}` here, \
                 `{other_mask}` there): a file both masks match goes to whichever reads it \
                 first, or to both"
            );
            if overlap {
                ctx.error(
                    &c.name,
                    Some("messagedir"),
                    format!(
                        "{message}; give each its own folder, or masks that match no file in common"
                    ),
                );
            } else {
                ctx.warn(
                    &c.name,
                    Some("messagedir"),
                    format!("{message}; make sure no file name matches both masks"),
                );
            }
        }
        readers.push((&settings.dir, &c.name, mask));
    }
}

/// Whether two masks can match no name in common for certain because their literal
/// starts, or their literal ends, differ (`*.hl7` and `*.astm`; `res_*` and `qc_*`).
fn literal_ends_differ(a: &str, b: &str) -> bool {
    // `]` too: read from the end, a character class ends there (`*.[hH][lL]7`).
    let wild = |c: &char| matches!(c, '*' | '?' | '[' | ']');
    let differ = |a: &mut dyn Iterator<Item = char>, b: &mut dyn Iterator<Item = char>| {
        a.zip(b)
            .take_while(|(x, y)| !wild(x) && !wild(y))
            .any(|(x, y)| x != y)
    };
    differ(&mut a.chars(), &mut b.chars()) || differ(&mut a.chars().rev(), &mut b.chars().rev())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectorKind;
    use crate::config::lines::tests::messages;

    /// `suffix = ; none` sets the suffix `; none` (then sanitised), as in Python 2.7 (with LF line ends; with
    /// CRLF, Python's rule makes it empty), whatever the line ends: with a warning naming the
    /// line, since a comment was meant. It was taken silently.
    #[test]
    fn a_comment_right_after_the_equals_sign_is_a_value_with_a_warning() {
        for ending in ["\n", "\r\n"] {
            let text = "[general]\nuseconnections = in, out\n\
                        [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                        [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n\
                        suffix = ; none\n"
                .replace('\n', ending);
            let loaded = load_str(&text, Path::new("r.cfg")).unwrap();
            assert_eq!(
                messages(&loaded.warnings),
                [
                    "r.cfg:12: [out] suffix: the value is `; none`: a `;` right after `=` is \
                     text, not a comment (as in Python's ConfigParser); for an empty value with \
                     a comment, put the comment on a line of its own",
                    "r.cfg:12: [out] suffix: `; none` is written `__none`: file names keep \
                     letters, digits, '.', '_' and '-'"
                ]
            );
        }
    }

    #[test]
    fn inline_comments_follow_python_2_7() {
        let text = "# a comment line\n; another\n[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = lab;2\nport = 22222 ; the port\n\
                    sob = \"#\"\neod = ';'\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = lab;2\nmessagedir = /srv/lab#2\n";
        let loaded = load_str(text, Path::new("/etc/router/router.cfg")).unwrap();
        let connections = &loaded.config.connections;
        let input = connections.iter().find(|c| c.name == "in").unwrap();
        assert_eq!(input.queue, "lab;2");
        let ConnectorKind::SocketIn(socket) = &input.kind else {
            panic!("{input:?}");
        };
        assert_eq!(socket.port, 22222);
        assert_eq!(socket.start_block, b"#");
        assert_eq!(socket.end_block, b";");
        let output = connections.iter().find(|c| c.name == "out").unwrap();
        let ConnectorKind::FileOut(files) = &output.kind else {
            panic!("{output:?}");
        };
        assert_eq!(files.dir, Path::new("/srv/lab#2"));
    }

    fn connection<'c>(loaded: &'c Loaded, name: &str) -> &'c Connection {
        let found = loaded.config.connections.iter().find(|c| c.name == name);
        found.unwrap_or_else(|| panic!("no connection {name}"))
    }

    /// Python's ConfigParser gives every section the `[DEFAULT]` keys it does not set.
    #[test]
    fn default_section_keys_reach_every_section() {
        let text = "[DEFAULT]\ntranstech = socket\nqueuename = q\nusehl7 = True\ncolour = red\n\
                    [general]\nuseconnections = in, out, files\n\
                    [in]\ntransdir = in\nport = 23001\n\
                    [out]\ntransdir = out\nport = 23002\nusehl7 = False\n\
                    [files]\ntranstech = file\ntransdir = out\nmessagedir = /srv/out\n";
        let loaded = load_str(text, Path::new("/etc/router.cfg")).unwrap();
        assert_eq!(loaded.config.connections.len(), 3);
        let input = connection(&loaded, "in");
        assert!(matches!(input.kind, ConnectorKind::SocketIn(_)));
        assert_eq!((input.queue.as_str(), input.use_hl7), ("q", true));
        let output = connection(&loaded, "out");
        assert!(matches!(output.kind, ConnectorKind::SocketOut(_)));
        assert!(!output.use_hl7, "a section's own value wins");
        assert!(matches!(
            connection(&loaded, "files").kind,
            ConnectorKind::FileOut(_)
        ));
        // Keys a section inherits are not unknown there (`port` means nothing to a file
        // output, `transtech` nothing to [general]); an unknown [DEFAULT] key is named once.
        assert_eq!(
            messages(&loaded.warnings),
            ["/etc/router.cfg:5: [DEFAULT] colour: unknown key for every section; ignored"]
        );

        // An inherited value that is wrong is reported at its [DEFAULT] line.
        let bad = text.replace("transtech = socket", "transtech = ftp");
        let Err(ConfigError::Invalid { problems, .. }) = load_str(&bad, Path::new("r.cfg")) else {
            panic!()
        };
        assert!(
            messages(&problems).contains(
                &"r.cfg:2: [in] transtech: unknown transtech `ftp`; allowed: file, socket"
                    .to_owned()
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn interpolation_is_not_done_and_says_so() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = %(base)s/out\n";
        let loaded = load_str(text, Path::new("/etc/router.cfg")).unwrap();
        let ConnectorKind::FileOut(files) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(files.dir, Path::new("/etc/%(base)s/out"));
        assert_eq!(
            messages(&loaded.warnings),
            [
                "/etc/router.cfg:11: [out] messagedir: `%(...)s` is not expanded (no ConfigParser \
              interpolation); the value is used as written"
            ]
        );
    }

    /// A mask for temporary-looking names (an instrument that writes `*.TMP` results)
    /// read nothing, without a word: such names were always skipped as files still being
    /// written. They are taken when the mask asks for them, with a warning.
    #[test]
    fn a_filemask_for_temporary_names_takes_them_and_warns() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = /in\n\
                    filemask = *.TMP\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /out\n";
        let loaded = load_str(text, Path::new("/etc/router.cfg")).unwrap();
        let ConnectorKind::FileIn(files) = &connection(&loaded, "in").kind else {
            panic!()
        };
        assert!(files.take_temporary_names);
        assert_eq!(
            messages(&loaded.warnings),
            [
                "/etc/router.cfg:8: [in] filemask: `*.TMP` matches names that usually mark a \
                 file still being written (.tmp, .part, hidden, ...); they are taken here, once \
                 their size and mtime hold still for settletime"
            ]
        );
        let usual = load_str(&text.replace("*.TMP", "*.hl7"), Path::new("r.cfg")).unwrap();
        let ConnectorKind::FileIn(files) = &connection(&usual, "in").kind else {
            panic!()
        };
        assert!(!files.take_temporary_names);
        assert!(usual.warnings.is_empty(), "{:?}", usual.warnings);
    }

    /// Values SocketReader configs are written with that were refused or misread.
    #[test]
    fn empty_prefix_quoted_debug_and_octal_delimiters() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    sob = chr(013)\neod = chr(034)\ndebug = \"{'logcontent': True}\"\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nusehl7 = True\n\
                    messagedir = /srv/out\nhl7prefix = True\nprefix = \"\"\n";
        let loaded = load_str(text, Path::new("/etc/router.cfg")).unwrap();
        let input = connection(&loaded, "in");
        let ConnectorKind::SocketIn(socket) = &input.kind else {
            panic!()
        };
        assert_eq!(
            (socket.start_block.as_slice(), socket.end_block.as_slice()),
            (&[0x0b][..], &[0x1c][..])
        );
        assert!(input.debug.log_content);
        let ConnectorKind::FileOut(files) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(files.naming, FileNaming::Hl7);
        for empty in ["prefix =", "prefix = ''"] {
            let text = text.replace("prefix = \"\"", empty);
            assert!(load_str(&text, Path::new("r.cfg")).is_ok(), "{empty}");
        }
    }

    /// A prefix or suffix only ever goes inside a name, so a lone `.` stays allowed (unlike
    /// a whole name `.`, which `sanitize` turns into `_`); `..` does not.
    #[test]
    fn a_lone_dot_prefix_or_suffix_is_allowed() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\n\
                    messagedir = /srv/out\nprefix = .\nsuffix = .\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::FileOut(files) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(files.naming, FileNaming::Prefix(".".into()));
        assert_eq!(files.suffix, ".");
        let twice = text.replace("suffix = .", "suffix = ..");
        assert!(load_str(&twice, Path::new("r.cfg")).is_err());
    }

    /// `maxrefusals` is an output's: 0 (the default) resends for ever; on an input it
    /// is an unknown key.
    #[test]
    fn maxrefusals_belongs_to_socket_outputs() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nmaxrefusals = 2\n\
                    [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = 2600\n\
                    maxrefusals = 5\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::SocketOut(out) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(out.max_refusals, Some(5));
        assert_eq!(
            messages(&loaded.warnings),
            ["r.cfg:7: [in] maxrefusals: does nothing for a socket input; ignored"]
        );
        let text = text.replace("maxrefusals = 5", "maxrefusals = 0");
        let loaded = load_str(&text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::SocketOut(out) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(out.max_refusals, None);
    }

    /// Keys only a server input reads: on an output, or `maxconnections` on a client input,
    /// they did nothing without a word.
    #[test]
    fn input_and_server_keys_elsewhere_are_warned_about() {
        let text = "[general]\nuseconnections = in, pull, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nmaxconnections = 4\n\
                    idletimeout = 60\n\
                    [pull]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 2601\n\
                    createserversocket = False\nmaxconnections = 4\nidletimeout = 60\n\
                    [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = 2600\n\
                    maxconnections = 4\nidletimeout = 60\ncolour = red\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:15: [pull] maxconnections: does nothing for a client socket input; ignored",
                "r.cfg:24: [out] colour: unknown key for a socket output; ignored",
                "r.cfg:23: [out] idletimeout: does nothing for a socket output; ignored",
                "r.cfg:22: [out] maxconnections: does nothing for a socket output; ignored",
            ]
        );
    }

    /// `usetls` keys: paths resolve against the config's folder, client-only keys on a
    /// server and `tlsca` beside `tlsinsecure` are warned about, and TLS keys on a file
    /// connector do nothing.
    #[test]
    fn tls_keys_are_read_per_socket_role() {
        let text = "[general]\nuseconnections = in, lis, files\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nusetls = True\n\
                    tlscert = certs/in.pem\ntlskey = /etc/keys/in.key\ntlsinsecure = True\n\
                    tlsservername = lab\n\
                    [lis]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = 2600\n\
                    createserversocket = False\nusetls = True\ntlsca = ca.pem\n\
                    tlsinsecure = True\n\
                    [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n\
                    usetls = True\n";
        let loaded = load_str(text, Path::new("/srv/router/r.cfg")).unwrap();
        let ConnectorKind::SocketIn(input) = &connection(&loaded, "in").kind else {
            panic!()
        };
        let tls = input.tls.as_ref().unwrap();
        assert_eq!(
            tls.cert.as_deref(),
            Some(Path::new("/srv/router/certs/in.pem"))
        );
        assert_eq!(tls.key.as_deref(), Some(Path::new("/etc/keys/in.key")));
        let ConnectorKind::SocketOut(output) = &connection(&loaded, "lis").kind else {
            panic!()
        };
        assert!(output.tls.as_ref().unwrap().insecure);
        assert_eq!(
            messages(&loaded.warnings),
            [
                "/srv/router/r.cfg:11: [in] tlsservername: does nothing for a server socket (it \
                 is a client socket's check of the server's certificate); ignored",
                "/srv/router/r.cfg:10: [in] tlsinsecure: does nothing for a server socket (it \
                 is a client socket's check of the server's certificate); ignored",
                "/srv/router/r.cfg:19: [lis] tlsca: does nothing with tlsinsecure = True; \
                 ignored",
                "/srv/router/r.cfg:20: [lis] tlsinsecure: the server's certificate is not \
                 checked: anyone on the path can pose as the server (for tests only)",
                "/srv/router/r.cfg:26: [files] usetls: does nothing for a file output; ignored",
            ]
        );
        // A TLS server output without tlsca serves whoever connects.
        let serving = text.replace(
            "createserversocket = False\nusetls = True\ntlsca = ca.pem\ntlsinsecure = True\n",
            "usetls = True\ntlscert = out.pem\ntlskey = out.key\n",
        );
        let loaded = load_str(&serving, Path::new("r.cfg")).unwrap();
        assert!(
            messages(&loaded.warnings).contains(
                &"r.cfg:17: [lis] usetls: a TLS server output without tlsca hands its messages \
                  to any client that connects; set tlsca so that only receivers with a \
                  certificate from it are served"
                    .to_owned()
            ),
            "{:?}",
            messages(&loaded.warnings)
        );
        // Without usetls, a tls key is an error: the section reads as encrypted.
        let plain = text.replace("usetls = True\ntlsca", "tlsca");
        let errors = load_str(&plain, Path::new("r.cfg")).unwrap_err();
        assert!(
            errors
                .to_string()
                .contains("[lis] tlsca: is set but usetls is not True"),
            "{errors}"
        );
    }

    /// Two file outputs on one directory whose names read the same once made file-safe
    /// would remove each other's temporary files.
    #[test]
    fn file_outputs_on_one_directory_need_names_that_stay_apart() {
        let text = "[general]\nuseconnections = in, out 1, out_1\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out 1]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n\
                    [out_1]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n";
        let Err(ConfigError::Invalid { problems, .. }) = load_str(text, Path::new("r.cfg")) else {
            panic!()
        };
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:12: [out_1]: writes to the same messagedir as [out 1], and both names read \
                 `out_1` in file names (temporary names tell outputs apart by it); rename one \
                 section"
            ]
        );
        let apart = text.replacen("messagedir = /srv/out\n", "messagedir = /srv/other\n", 1);
        assert!(load_str(&apart, Path::new("r.cfg")).is_ok());
    }

    /// Two file inputs on one directory race for its files: refused when their masks take
    /// the same files, warned about when they may.
    #[test]
    fn file_inputs_on_one_directory_need_masks_apart() {
        let text = |mask_a: &str, mask_b: &str| {
            format!(
                "[general]\nuseconnections = a, b, out\n\
                 [a]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = /srv/in\n\
                 filemask = {mask_a}\n\
                 [b]\ntranstech = file\ntransdir = in\nqueuename = r\nmessagedir = /srv/in\n\
                 filemask = {mask_b}\n\
                 [out]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
                 [out2]\ntranstech = socket\ntransdir = out\nqueuename = r\nport = 22223\n"
            )
            .replace(
                "useconnections = a, b, out",
                "useconnections = a, b, out, out2",
            )
        };
        for (a, b) in [("*", "*.hl7"), ("*.hl7", "*.hl7"), ("*.hl7", "*")] {
            let Err(ConfigError::Invalid { problems, .. }) =
                load_str(&text(a, b), Path::new("r.cfg"))
            else {
                panic!("{a} {b}")
            };
            assert_eq!(
                messages(&problems),
                [format!(
                    "r.cfg:13: [b] messagedir: reads the same messagedir as [a] (filemask `{b}` \
                     here, `{a}` there): a file both masks match goes to whichever reads it \
                     first, or to both; give each its own folder, or masks that match no file \
                     in common"
                )]
            );
        }
        for (a, b) in [("*.hl7", "*.astm"), ("res_*", "qc_*"), ("a?.txt", "b?.txt")] {
            let loaded = load_str(&text(a, b), Path::new("r.cfg")).unwrap();
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        }
        let loaded = load_str(&text("a*", "*b"), Path::new("r.cfg")).unwrap();
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:13: [b] messagedir: reads the same messagedir as [a] (filemask `*b` here, \
              `a*` there): a file both masks match goes to whichever reads it first, or to \
              both; make sure no file name matches both masks"
            ]
        );
    }

    /// An output with errors of its own does not make its queue look output-less.
    #[test]
    fn a_broken_output_does_not_blame_its_inputs() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\n";
        let Err(ConfigError::Invalid { problems, .. }) = load_str(text, Path::new("r.cfg")) else {
            panic!()
        };
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:7: [out] messagedir: missing: a file connector needs messagedir = PATH (the \
              directory to read from or write to)"
            ]
        );
    }

    /// A key written in several cases takes the value written last, as in Python (the
    /// warning says so); it took whichever spelling a hash map listed last.
    #[test]
    fn a_key_written_in_several_cases_takes_the_last_value() {
        for spellings in [
            ["port", "Port", "port"],
            ["Port", "port", "PORT"],
            ["PORT", "port", "Port"],
        ] {
            let keys: String = spellings
                .iter()
                .zip([2001, 2002, 2575])
                .map(|(key, port)| format!("{key} = {port}\n"))
                .collect();
            let text = format!(
                "[general]\nuseconnections = in, out\n\
                 [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n{keys}\
                 [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n"
            );
            // Hash maps are seeded afresh for each load: load often.
            for _ in 0..32 {
                let loaded = load_str(&text, Path::new("r.cfg")).unwrap();
                let ConnectorKind::SocketIn(socket) = &loaded.config.connections[0].kind else {
                    panic!("[in] is a socket input");
                };
                assert_eq!(socket.port, 2575, "{spellings:?}");
            }
        }
    }

    /// Two servers whose addresses overlap on one port cannot both listen: the second would
    /// fail only at start-up, so `--check` refuses it.
    #[test]
    fn servers_on_overlapping_addresses_and_one_port_are_refused() {
        let config = |a: &str, b: &str| {
            format!(
                "[general]\nuseconnections = a, b, out\n\
                 [a]\ntranstech = socket\ntransdir = in\nqueuename = q\nipaddr = {a}\nport = 2575\n\
                 [b]\ntranstech = socket\ntransdir = in\nqueuename = q\nipaddr = {b}\nport = 2575\n\
                 [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n"
            )
        };
        for (a, b) in [
            ("127.0.0.1", "127.0.0.1"),
            ("0.0.0.0", "127.0.0.1"),
            ("10.1.2.3", "0.0.0.0"),
            ("::", "127.0.0.1"),
            ("::1", "[::]"),
            ("::1", "0:0:0:0:0:0:0:1"),
            ("LabHost", "labhost"),
        ] {
            let err = load_str(&config(a, b), Path::new("r.cfg")).unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "r.cfg:14: [b] port: {b}:2575 is already used by server connection [a]"
                )),
                "{a} / {b}: {err}"
            );
        }
        let err = load_str(&config("0.0.0.0", "127.0.0.1"), Path::new("r.cfg")).unwrap_err();
        assert!(
            err.to_string().contains("[a] (listening on 0.0.0.0:2575)"),
            "{err}"
        );
        for (a, b) in [
            ("127.0.0.1", "127.0.0.2"),
            ("0.0.0.0", "::1"),
            ("127.0.0.1", "::1"),
            ("labhost", "127.0.0.1"),
        ] {
            assert!(
                load_str(&config(a, b), Path::new("r.cfg")).is_ok(),
                "{a} / {b}"
            );
        }
    }

    /// An empty `ipaddr` on a server means every interface in Python; here it means the
    /// loopback default, which a migrated config must hear about.
    #[test]
    fn an_empty_server_ipaddr_warns_that_only_loopback_listens() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nipaddr =\n\
                    [out]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = 2575\n\
                    createserversocket = False\nipaddr = \"\"\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::SocketIn(socket) = &loaded.config.connections[0].kind else {
            panic!("[in] is a socket input");
        };
        assert_eq!(socket.host, "127.0.0.1");
        // Only the server warns: a client with no address connects to the loopback anyway.
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:7: [in] ipaddr: is empty: listening on 127.0.0.1 only (SocketReader \
                 listened on every interface); write ipaddr = 0.0.0.0 to accept other hosts"
            ]
        );
    }

    /// Without `datadir` the store lives where the first connection's `queuedb` points;
    /// when connections point to different places, reordering them moved the store to a
    /// fresh directory without a word.
    #[test]
    fn queuedb_directories_that_differ_are_warned_about() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nqueuedb = a/sr.db\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n\
                    queuedb = b/sr.db\n";
        let loaded = load_str(text, Path::new("/etc/router/r.cfg")).unwrap();
        assert_eq!(loaded.config.general.datadir, Path::new("/etc/router/a"));
        assert_eq!(
            messages(&loaded.warnings),
            [
                "/etc/router/r.cfg:13: [out] queuedb: names /etc/router/b, but [in] names \
                 /etc/router/a: the queue store lives in the first connection's, \
                 /etc/router/a; set datadir in [general] so that it does not move when \
                 useconnections changes"
            ]
        );
        // The same place everywhere, or datadir set: nothing to say.
        let same = text.replace("b/sr.db", "a/sr.db");
        assert!(
            load_str(&same, Path::new("/etc/router/r.cfg"))
                .unwrap()
                .warnings
                .is_empty()
        );
        let pinned = text.replace("[general]\n", "[general]\ndatadir = store\n");
        assert!(
            load_str(&pinned, Path::new("/etc/router/r.cfg"))
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    /// A file output's backoff is checked as a socket's is: a ceiling below the first
    /// delay was accepted there, and the output waited `retrydelay` once, then the
    /// smaller ceiling.
    #[test]
    fn a_file_output_refuses_a_backoff_ceiling_below_its_first_delay() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = /srv/out\n\
                    retrydelay = 5\nretrymaxdelay = 1\n";
        let Err(ConfigError::Invalid { problems, .. }) = load_str(text, Path::new("r.cfg")) else {
            panic!("retrymaxdelay < retrydelay is refused");
        };
        assert_eq!(
            messages(&problems),
            [
                "r.cfg:13: [out] retrymaxdelay: is smaller than retrydelay; the backoff ceiling \
              must be at least the first delay"
            ]
        );
        let fixed = text.replace("retrymaxdelay = 1", "retrymaxdelay = 5");
        assert!(load_str(&fixed, Path::new("r.cfg")).is_ok());
    }

    /// A `prefix` with a space (SocketReader wrote it as it was) refused the start; it is
    /// now written with `_`, with a warning. One that could leave `messagedir` is still refused.
    #[test]
    fn a_prefix_with_unsafe_characters_is_written_safe_with_a_warning() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\n\
                    messagedir = /srv/out\nprefix = lab result \nsuffix = .h l7\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::FileOut(out) = &connection(&loaded, "out").kind else {
            panic!()
        };
        assert_eq!(out.naming, FileNaming::Prefix("lab_result".into()));
        assert_eq!(out.suffix, ".h_l7");
        assert_eq!(
            messages(&loaded.warnings),
            [
                "r.cfg:12: [out] prefix: `lab result` is written `lab_result`: file names keep \
                 letters, digits, '.', '_' and '-'",
                "r.cfg:13: [out] suffix: `.h l7` is written `.h_l7`: file names keep letters, \
                 digits, '.', '_' and '-'"
            ]
        );
        for hostile in ["../x", "a/b", "a\\b", "a..b"] {
            let bad = text.replace("lab result ", hostile);
            let err = load_str(&bad, Path::new("r.cfg")).unwrap_err();
            assert!(
                err.to_string()
                    .contains("could name a path outside messagedir"),
                "{hostile}: {err}"
            );
        }
    }

    /// SocketReader sleeps `cycletime` seconds between polls, so `cycletime = 0` (poll
    /// again at once) starts there; it was refused as out of range. It now polls at the
    /// shortest period, with a warning.
    #[test]
    fn a_cycletime_of_zero_polls_at_the_shortest_period() {
        let text = "[general]\nuseconnections = in, out\n\
                    [in]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = /srv/in\n\
                    cycletime = 0\n\
                    [out]\ntranstech = socket\ntransdir = out\nqueuename = q\n";
        let loaded = load_str(text, Path::new("r.cfg")).unwrap();
        let ConnectorKind::FileIn(files) = &connection(&loaded, "in").kind else {
            panic!()
        };
        assert_eq!(files.cycle, MIN_CYCLE);
        assert_eq!(
            messages(&loaded.warnings),
            ["r.cfg:8: [in] cycletime: 0 s: polling every 0.01 s, the shortest period"]
        );
        // A negative period is still refused.
        assert!(load_str(&text.replace("= 0\n", "= -1\n"), Path::new("r.cfg")).is_err());
    }

    /// What SocketReader's README gives as each option's default, for a config that sets
    /// none of them.
    #[test]
    fn options_left_out_take_socketreaders_defaults() {
        let text = "[general]\nuseconnections = sin, sout, fin, fout\n\
                    [sin]\ntranstech = socket\ntransdir = in\nqueuename = q\n\
                    [fout]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n\
                    [fin]\ntranstech = file\ntransdir = in\nqueuename = r\nmessagedir = in\n\
                    [sout]\ntranstech = socket\ntransdir = out\nqueuename = r\nport = 22223\n";
        let loaded = load_str(text, Path::new("/etc/r.cfg")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let general = &loaded.config.general;
        assert_eq!(
            (general.loglvl, general.logfile.as_ref()),
            (LogLevel::Warning, None)
        );
        let sin = connection(&loaded, "sin");
        assert!(!sin.use_hl7, "usehl7 defaults to False");
        assert!(!sin.debug.log_content, "debug defaults to {{}}");
        let ConnectorKind::SocketIn(socket) = &sin.kind else {
            panic!()
        };
        assert!(socket.server, "createserversocket defaults to True");
        assert_eq!((socket.host.as_str(), socket.port), ("127.0.0.1", 22222));
        assert_eq!(
            (
                socket.start_block.as_slice(),
                socket.end_block.as_slice(),
                socket.trailer.as_slice()
            ),
            (&[0x0b][..], &[0x1c][..], &[0x0d][..])
        );
        assert!(socket.use_ack, "useack defaults to True");
        let ConnectorKind::FileIn(fin) = &connection(&loaded, "fin").kind else {
            panic!()
        };
        assert_eq!(fin.filemask, "*");
        assert_eq!(fin.cycle, Duration::from_secs(120));
        assert_eq!(fin.max_files, 50);
        assert!(!fin.newline && !fin.natural_order);
        let ConnectorKind::FileOut(fout) = &connection(&loaded, "fout").kind else {
            panic!()
        };
        assert_eq!(fout.naming, FileNaming::Prefix(String::new()));
        assert_eq!(fout.suffix, ".dat");
        assert!(!fout.newline);
    }
}
