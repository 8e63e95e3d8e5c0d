//! The four connectors: socket in / out and file in / out.

pub(crate) mod file_in;
pub(crate) mod file_out;
pub(crate) mod socket_in;
pub(crate) mod socket_out;
mod undeliverable;

use std::path::Path;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Connects a client connector to its peer; a connection that reached itself (a TCP
/// self-connect, see [`mllp_hl7::refuse_self_connect`]) is closed and reported as an error.
pub(crate) async fn connect(address: &str) -> std::io::Result<TcpStream> {
    mllp_hl7::refuse_self_connect(TcpStream::connect(address).await?)
}

/// Most bytes of messages an output reads from its queue at a time (one message larger
/// than this is still read, alone): messages wait in the queue, not in memory.
const READ_BYTES: usize = 64 << 20;

/// Exponential backoff for retries and reconnects: doubles from `first` up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps for the next delay; false when shutdown came first.
    pub(crate) async fn sleep(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// ASTM E1381's enquiry, the first byte an ASTM sender writes on a connection.
pub(crate) const ENQ: u8 = 0x05;

/// Pause after a failed `accept`.
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Failed accepts in a row on one listener (out of file descriptors, say): the first is
/// logged, then one line when they end, not one per [`ACCEPT_RETRY`] however long it lasts.
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    in_a_row: u64,
}

impl AcceptFailures {
    pub(crate) fn failed(&mut self, e: &std::io::Error) {
        self.in_a_row += 1;
        if self.in_a_row == 1 {
            tracing::warn!(
                "accept failed: {e}; new connections wait until it works again \
                 (retried every {ACCEPT_RETRY:?})"
            );
        }
    }

    pub(crate) fn succeeded(&mut self) {
        if self.in_a_row > 0 {
            tracing::warn!(
                "accepting connections again after {} failed accept(s)",
                self.in_a_row
            );
            self.in_a_row = 0;
        }
    }
}

/// How long a shutdown still waits for a peer: to take the ACKs owed to it (socket in), or
/// to acknowledge the message in flight (socket out).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Ends [`SHUTDOWN_GRACE`] after `shutdown` is cancelled.
pub(crate) async fn shutdown_grace(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

/// Where an output resumes: its durable cursor and a watch on the queue's last committed
/// sequence number. `None` (logged) when the store cannot say.
pub(crate) fn resume_point(
    store: &crate::store::QueueStore,
    queue: &str,
    output: &str,
) -> Option<(u64, tokio::sync::watch::Receiver<u64>)> {
    match (store.cursor(queue, output), store.watch(queue)) {
        (Ok(cursor), Ok(committed)) => Some((cursor, committed)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("cannot start: {e}");
            None
        }
    }
}

/// The `attempt`th file name for `stem`, for taking the next free name without replacing
/// a file: `stem` + `suffix`, then `stem-1` + `suffix`, ...
pub(crate) fn numbered_name(stem: &str, attempt: usize, suffix: &str) -> String {
    if attempt == 0 {
        format!("{stem}{suffix}")
    } else {
        format!("{stem}-{attempt}{suffix}")
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` rather than replace a file there.
/// On Linux one call (`RENAME_NOREPLACE`), so nothing created at `to` meanwhile is lost;
/// where the file system does not support that, and elsewhere, a look first and then a
/// plain rename, which cannot rule out replacing a file created in between.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags};
        use rustix::io::Errno;
        match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// Makes a directory's entries durable (the names of files just created or linked).
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `create_dir_all` that also makes the new directories' names durable: the parent of
/// each directory it creates is synced, top down, so that files later synced inside
/// cannot be lost with their directory in a power failure. Returns the directories
/// created.
pub(crate) fn create_dir_all_synced(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut missing: Vec<std::path::PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(dir)?;
    for created in &missing {
        match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(missing)
}

/// Directories cannot be opened for syncing here; their entries are made durable by
/// the file system.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// How many protocol problems (junk, broken frames, stray replies) of one connection,
/// or one wait for an ACK, are logged one by one; the rest are counted. Two bytes of
/// garbage can make one such problem, so without a bound a peer streaming garbage
/// writes the log as fast as it sends.
pub(crate) const NOISE_LINES: u64 = 10;

/// Bounds the log lines one peer's protocol noise can cause (see [`NOISE_LINES`]).
#[derive(Debug, Default)]
pub(crate) struct NoiseLog {
    seen: u64,
}

impl NoiseLog {
    /// Counts one problem; whether to log it. The first one not logged is announced.
    pub(crate) fn admit(&mut self, peer: &dyn std::fmt::Display, what: &str) -> bool {
        self.seen += 1;
        if self.seen == NOISE_LINES + 1 {
            tracing::warn!("{peer}: more {what} follow; counted, not logged one by one");
        }
        self.seen <= NOISE_LINES
    }

    /// How many were counted but not logged.
    pub(crate) fn unlogged(&self) -> u64 {
        self.seen.saturating_sub(NOISE_LINES)
    }
}

/// Text a peer chose (a message, an ACK's reason, a control id, a dropped file's name)
/// made fit for one log line: line breaks, terminal escapes and other control or
/// direction-changing characters are written as escapes, so a peer cannot forge log
/// lines or rewrite the operator's terminal. Invalid UTF-8 becomes U+FFFD.
pub(crate) fn printable(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => shown.push_str("\\r"),
            '\n' => shown.push_str("\\n"),
            '\t' => shown.push_str("\\t"),
            // C0, DEL and C1 controls; line and paragraph separators; the bidirectional
            // embeddings, overrides and isolates ("trojan source").
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                use std::fmt::Write as _;
                let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
            }
            c => shown.push(c),
        }
    }
    shown
}

/// A path whose file name a peer chose (an input file), for a log line: see [`printable`].
pub(crate) fn printable_path(path: &Path) -> String {
    printable(path.as_os_str().as_encoded_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_could_forge_a_log_line_or_drive_a_terminal() {
        let hostile =
            "ok\r\n2026-01-01T00:00:00Z ERROR forged\t\x1b[2J\u{7f}\u{85}\u{2028}\u{202e}é";
        assert_eq!(
            printable(hostile.as_bytes()),
            "ok\\r\\n2026-01-01T00:00:00Z ERROR forged\\t\\u{1b}[2J\\u{7f}\\u{85}\\u{2028}\\u{202e}é"
        );
        assert_eq!(printable(b"MSH|^~\\&|\xff"), "MSH|^~\\&|\u{fffd}");
        assert_eq!(printable_path(Path::new("in/a\nb.hl7")), "in/a\\nb.hl7");
    }

    #[test]
    fn backoff_doubles_to_the_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    #[test]
    fn create_dir_all_synced_reports_the_directories_it_made_top_down() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b").join("c");
        let made = create_dir_all_synced(&deep).unwrap();
        assert!(deep.is_dir());
        let expected: Vec<_> = ["a", "a/b", "a/b/c"]
            .iter()
            .map(|p| root.path().join(p))
            .collect();
        assert_eq!(made, expected);
        assert!(create_dir_all_synced(&deep).unwrap().is_empty());
        let more = create_dir_all_synced(&root.path().join("a").join("d")).unwrap();
        assert_eq!(more, [root.path().join("a").join("d")]);
        // A file in the way is an error, not a silent success.
        std::fs::write(root.path().join("f"), b"").unwrap();
        assert!(create_dir_all_synced(&root.path().join("f").join("g")).is_err());
    }
}
