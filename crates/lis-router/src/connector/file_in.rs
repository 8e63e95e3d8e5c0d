//! File input: poll a directory, queue each stable file as one message, delete it only
//! after the commit; unreadable files go to `error/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{printable, printable_path};
use crate::config::{Connection, FileInSettings};
use crate::filename::{is_temporary_name, mask_matches, natural_cmp};
use crate::store::{Appender, StoreError};

/// The folder (inside `messagedir`) for files that cannot be read.
pub const ERROR_DIR: &str = "error";

/// Most bytes of file content held for one commit; a poll with more commits in groups.
const GROUP_BYTES: usize = 64 << 20;

/// What one file input needs.
#[derive(Debug)]
pub(crate) struct FileIn {
    pub(crate) connection: Arc<Connection>,
    pub(crate) settings: FileInSettings,
    pub(crate) appender: Appender,
    pub(crate) shutdown: CancellationToken,
}

type Look = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl FileIn {
    pub(crate) async fn run(self) {
        info!(
            "polling {} for `{}` every {:?}",
            self.settings.dir.display(),
            self.settings.filemask,
            self.settings.cycle
        );
        // Whether the last poll could not list the directory: said once, not every poll
        // (a share that went away, polled every `cycletime`, would fill the log).
        let mut unlistable = false;
        let mut kept = Kept::new();
        loop {
            self.poll(&mut unlistable, &mut kept).await;
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.cycle) => {}
            }
        }
    }

    /// One poll: two looks `settletime` apart, then the stable files in name order.
    async fn poll(&self, unlistable: &mut bool, kept: &mut Kept) {
        let first = match self.look().await {
            Ok(found) => found,
            Err(e) => {
                let dir = self.settings.dir.display();
                if *unlistable {
                    debug!("cannot list {dir}: {e}");
                } else {
                    warn!(
                        "cannot list {dir}: {e}; polling on, a line again once it can be \
                         listed"
                    );
                    *unlistable = true;
                }
                return;
            }
        };
        if *unlistable {
            warn!("{} can be listed again", self.settings.dir.display());
            *unlistable = false;
        }
        if first.is_empty() {
            return;
        }
        let stable: Look = if self.settings.settle.is_zero() {
            first
        } else {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.settle) => {}
            }
            // A set: a backlog of tens of thousands of files must not cost a poll
            // time quadratic in their number.
            let second: std::collections::HashSet<_> =
                self.look().await.unwrap_or_default().into_iter().collect();
            first
                .into_iter()
                .filter(|entry| {
                    let same = second.contains(entry);
                    if !same {
                        debug!(
                            "{} is still being written; left for the next poll",
                            printable_path(&entry.0)
                        );
                    }
                    same
                })
                .collect()
        };

        // An empty file has not been written yet (a producer creates it, then writes):
        // taken now, it would be deleted under the producer, whose data would then go to
        // a file no longer in the directory. It is left until it has content.
        let stable = stable.into_iter().filter(|(path, len, _)| {
            if *len == 0 {
                debug!("{} is empty; left for a later poll", printable_path(path));
            }
            *len > 0
        });
        // Files queued that could not be deleted: skipped while unchanged, so they do not
        // take `maxfiles` places nor go to the queue again every poll.
        kept.retain(|path, identity| identity_of(path).is_ok_and(|now| now == *identity));
        let stable = stable.filter(|(path, _, _)| {
            let skip = kept.contains_key(path);
            if skip {
                debug!(
                    "{} could not be deleted after it was queued, or moved to {ERROR_DIR}/, \
                     and is unchanged since; skipped",
                    printable_path(path)
                );
            }
            !skip
        });
        let stable: Look = stable.collect();

        // The files go to the store in groups, each committed whole or not at all and
        // awaited before the next: a failed commit stops the poll, so no file is ever
        // queued ahead of an earlier one that is retried later.
        let mut group: Vec<(PathBuf, Bytes, Identity)> = Vec::new();
        let mut group_bytes = 0;
        for (path, len, _) in stable.into_iter().take(self.settings.max_files) {
            if self.shutdown.is_cancelled() {
                break;
            }
            let max = self.settings.max_message_size;
            if len > max as u64 {
                self.quarantine(&path, &too_large(len, max), kept).await;
                continue;
            }
            if !group.is_empty() && group_bytes + len as usize > GROUP_BYTES {
                if !self.queue(std::mem::take(&mut group), kept).await {
                    return;
                }
                group_bytes = 0;
            }
            let read_path = path.clone();
            let read = tokio::task::spawn_blocking(move || read(&read_path, max)).await;
            let (content, identity) = match read {
                Ok(Ok(Read::Content(content, identity))) => (content, identity),
                Ok(Ok(Read::TooLarge(len))) => {
                    // Grown, or a different file by now (a link retargeted): the size
                    // listed is not what was opened.
                    self.quarantine(&path, &too_large(len, max), kept).await;
                    continue;
                }
                Ok(Ok(Read::NotAFile)) => {
                    // A link retargeted to a FIFO or a device since the listing: not
                    // read (a FIFO would block, a device never end); left alone.
                    warn!(
                        "{} is no longer a regular file (its link now leads elsewhere); \
                         skipped",
                        printable_path(&path)
                    );
                    continue;
                }
                Ok(Err(e)) => match read_failure(&e) {
                    ReadFailure::Vanished => {
                        info!(
                            "{} went away before it was read (another program took it); \
                             skipped",
                            printable_path(&path)
                        );
                        continue;
                    }
                    ReadFailure::Transient => {
                        // Later files wait too: taken now, they would be queued ahead of
                        // this one.
                        warn!(
                            "{} cannot be read now ({e}); it and the files after it are left \
                             for the next poll",
                            printable_path(&path)
                        );
                        break;
                    }
                    ReadFailure::Unreadable => {
                        self.quarantine(&path, &format!("cannot be read: {e}"), kept)
                            .await;
                        continue;
                    }
                },
                Err(e) => {
                    error!("reading {}: {e}", printable_path(&path));
                    continue;
                }
            };
            let content = self.trim(content);
            if content.is_empty() {
                // Queued, it would reach a socket output as an empty frame (a keep-alive
                // there) and a file output as an empty file.
                self.quarantine(
                    &path,
                    "holds only the newline that newline = True trims: no message",
                    kept,
                )
                .await;
                continue;
            }
            if self.connection.debug.log_content {
                info!("read {}: {}", printable_path(&path), printable(&content));
            }
            group_bytes += content.len();
            group.push((path, Bytes::from(content), identity));
        }
        if !group.is_empty() {
            self.queue(group, kept).await;
        }
    }

    /// Stores the files' contents in one commit, then deletes the files that are still
    /// what was read; `false` when nothing was stored (the files stay for the next poll).
    async fn queue(&self, group: Vec<(PathBuf, Bytes, Identity)>, kept: &mut Kept) -> bool {
        let mut paths = Vec::with_capacity(group.len());
        let mut payloads = Vec::with_capacity(group.len());
        let mut identities = Vec::with_capacity(group.len());
        for (path, payload, identity) in group {
            paths.push(path);
            payloads.push(payload);
            identities.push(identity);
        }
        let which = match (paths.first(), paths.last()) {
            (Some(first), Some(last)) if paths.len() > 1 => format!(
                "{} files ({} to {})",
                paths.len(),
                printable_path(first),
                printable_path(last)
            ),
            (Some(only), _) => printable_path(only),
            _ => return true,
        };
        let stored = match self.appender.submit_all(payloads).await {
            Ok(receipt) => receipt.await.unwrap_or(Err(StoreError::Closed)),
            Err(e) => Err(e),
        };
        let first = match stored {
            Ok(first) => first,
            Err(e) => {
                error!("cannot store {which}: {e}; left in place");
                return false;
            }
        };
        for ((seq, path), identity) in (first..).zip(&paths).zip(identities) {
            debug!("queued {} as message {seq}", printable_path(path));
            let target = path.clone();
            let read = identity.clone();
            let removed = tokio::task::spawn_blocking(move || remove_if_unchanged(&target, &read))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            match removed {
                Ok(Removal::Removed) => {}
                // Rewritten, or replaced by a new file of the same name, since it was read:
                // deleting it would lose what was not read.
                Ok(Removal::Changed) => warn!(
                    "queued {} as message {seq}, but it changed after it was read; left in \
                     place, to be read again",
                    printable_path(path)
                ),
                // Another program (another input on this folder, say) took it meanwhile.
                Ok(Removal::Gone) => info!(
                    "queued {} as message {seq}; it was gone before it could be deleted \
                     (another program took it)",
                    printable_path(path)
                ),
                Err(e) => {
                    // Read again every poll, it would be queued again every `cycletime`: a
                    // duplicate result per poll, for ever. Until it changes (or the router
                    // restarts) it is skipped.
                    error!(
                        "queued {} as message {seq} but cannot delete it ({e}); it is not \
                         read again while it stays unchanged (nor removed: fix the folder's \
                         permissions)",
                        printable_path(path)
                    );
                    kept.insert(path.clone(), identity);
                }
            }
        }
        true
    }

    /// Matching regular files, sorted, with size and mtime.
    async fn look(&self) -> std::io::Result<Look> {
        let dir = self.settings.dir.clone();
        let mask = self.settings.filemask.clone();
        let natural = self.settings.natural_order;
        let take_temporary = self.settings.take_temporary_names;
        tokio::task::spawn_blocking(move || list(&dir, &mask, take_temporary, natural))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    fn trim(&self, mut content: Vec<u8>) -> Vec<u8> {
        // One LF only: a CR before it is HL7's segment terminator, not part of the
        // newline that file output appends.
        if self.settings.newline && content.ends_with(b"\n") {
            content.truncate(content.len() - 1);
        }
        content
    }

    /// Moves a file that cannot be queued to `error/`, never deleting it. One that cannot
    /// be moved either is skipped while it stays unchanged (in `kept`): retried every poll,
    /// it would log an error each time and take a `maxfiles` place from good files.
    async fn quarantine(&self, path: &Path, why: &str, kept: &mut Kept) {
        let target_dir = self.settings.dir.join(ERROR_DIR);
        let from = path.to_owned();
        let moved = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            super::create_dir_all_synced(&target_dir)?;
            // The name as it is, not made UTF-8: two names differing only in invalid
            // bytes would otherwise become one, and the file's own name would be lost.
            let name = from.file_name().unwrap_or_default();
            let mut n = 0;
            loop {
                let target = target_dir.join(error_name(name, n));
                n += 1;
                match super::rename_no_replace(&from, &target) {
                    Ok(()) => return Ok(target),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match moved {
            Ok(Ok(target)) => error!(
                "{} {why}; moved to {}",
                printable_path(path),
                printable_path(&target)
            ),
            Ok(Err(e)) => {
                error!(
                    "{} {why}; cannot move it to {ERROR_DIR}/: {e}; it is not read again \
                     while it stays unchanged",
                    printable_path(path)
                );
                if let Ok(identity) = identity_of(path) {
                    kept.insert(path.to_owned(), identity);
                }
            }
            Err(e) => error!("{} {why}; {e}", printable_path(path)),
        }
    }
}

/// Which file a path named when it was read, and that file's state: compared before the
/// file is deleted, so that a file rewritten, or replaced by another of the same name,
/// after it was read is not deleted with content that was never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    /// The directory entry itself (a symbolic link, when it is one): device and inode.
    entry: (u64, u64),
    /// The file read: device, inode, size and modification time.
    file: (u64, u64, u64, Option<SystemTime>),
}

impl Identity {
    fn of(entry: &std::fs::Metadata, file: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (entry_id, file_id) = {
            use std::os::unix::fs::MetadataExt;
            ((entry.dev(), entry.ino()), (file.dev(), file.ino()))
        };
        #[cfg(not(unix))]
        let (entry_id, file_id) = {
            let _ = entry;
            ((0, 0), (0, 0))
        };
        Self {
            entry: entry_id,
            file: (file_id.0, file_id.1, file.len(), file.modified().ok()),
        }
    }
}

/// Files queued but not deleted, with their identity then.
type Kept = std::collections::HashMap<PathBuf, Identity>;

/// The identity of the file `path` names now.
fn identity_of(path: &Path) -> std::io::Result<Identity> {
    Ok(Identity::of(
        &std::fs::symlink_metadata(path)?,
        &std::fs::metadata(path)?,
    ))
}

/// What reading an input file found.
#[derive(Debug)]
enum Read {
    /// Its content, with its identity as it was before the read (a write during the read
    /// changes its modification time, so the file is then not deleted).
    Content(Vec<u8>, Identity),
    /// More than the maximum message size: at least this many bytes.
    TooLarge(u64),
    /// Not a regular file once opened (a link retargeted since the listing).
    NotAFile,
}

fn too_large(len: u64, max: usize) -> String {
    format!("{len} bytes exceed maxmessagesize {max}")
}

/// Reads a regular file of at most `max` bytes. The path may name something else than
/// what was listed by now (a link retargeted): it is opened without blocking (a FIFO
/// would wait for a writer for ever), checked to be a regular file, and read no further
/// than `max` (`/dev/zero` never ends).
fn read(path: &Path, max: usize) -> std::io::Result<Read> {
    use std::io::Read as _;
    let entry = std::fs::symlink_metadata(path)?;
    let mut options = std::fs::File::options();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
        options.custom_flags(i32::try_from(flags.bits()).unwrap_or_default());
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Read::NotAFile);
    }
    if meta.len() > max as u64 {
        return Ok(Read::TooLarge(meta.len()));
    }
    let identity = Identity::of(&entry, &meta);
    let mut content = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut content)?;
    if content.len() > max {
        return Ok(Read::TooLarge(content.len() as u64));
    }
    Ok(Read::Content(content, identity))
}

/// What became of an input file queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Deleted.
    Removed,
    /// Left: it is not what was read any more.
    Changed,
    /// Not there any more: someone else took it.
    Gone,
}

/// Deletes `path` if it still names the file read, unchanged.
fn remove_if_unchanged(path: &Path, read: &Identity) -> std::io::Result<Removal> {
    let entry = match std::fs::symlink_metadata(path) {
        Ok(entry) => entry,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(e),
    };
    let file = match std::fs::metadata(path) {
        Ok(file) => file,
        // A link whose file went away: not what was read either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Changed),
        Err(e) => return Err(e),
    };
    let now = Identity::of(&entry, &file);
    if now != *read {
        return Ok(Removal::Changed);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Removal::Removed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Removal::Gone),
        Err(e) => Err(e),
    }
}

/// `name`, or for `n` > 0 `name.n`, shortened where needed to fit a file name's 255 bytes
/// (the error/ folder may already hold a file of a name that long).
fn error_name(name: &std::ffi::OsStr, n: usize) -> std::ffi::OsString {
    if n == 0 {
        return name.to_owned();
    }
    let suffix = format!(".{n}");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let bytes = name.as_bytes();
        let keep = bytes.len().min(255 - suffix.len());
        let mut numbered = bytes[..keep].to_vec();
        numbered.extend_from_slice(suffix.as_bytes());
        std::ffi::OsString::from_vec(numbered)
    }
    #[cfg(not(unix))]
    {
        let mut numbered = name.to_owned();
        numbered.push(suffix);
        numbered
    }
}

/// What a failed read of an input file means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadFailure {
    /// It is gone: another program took it between the listing and the read.
    Vanished,
    /// The router, not the file, is short of something (open files, memory): read it
    /// again at the next poll. Moved to `error/`, a good file would need someone to
    /// move it back.
    Transient,
    /// The file itself cannot be read (permissions, I/O error): it goes to `error/`.
    Unreadable,
}

fn read_failure(error: &std::io::Error) -> ReadFailure {
    use std::io::ErrorKind;
    // ENFILE and EMFILE (too many open files in the system, in the process) have no
    // `ErrorKind` of their own; their numbers are the same on Linux, macOS and the BSDs.
    let out_of_files = cfg!(unix) && matches!(error.raw_os_error(), Some(23 | 24));
    match error.kind() {
        ErrorKind::NotFound => ReadFailure::Vanished,
        ErrorKind::Interrupted
        | ErrorKind::WouldBlock
        | ErrorKind::TimedOut
        | ErrorKind::OutOfMemory => ReadFailure::Transient,
        _ if out_of_files => ReadFailure::Transient,
        _ => ReadFailure::Unreadable,
    }
}

fn list(dir: &Path, mask: &str, take_temporary: bool, natural: bool) -> std::io::Result<Look> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // A name that is not UTF-8 is matched in its lossy form rather than skipped
        // unseen; the file itself is opened by its real path.
        let name = name.to_string_lossy();
        if (!take_temporary && is_temporary_name(&name)) || !mask_matches(mask, &name) {
            continue;
        }
        // Through a symbolic link, as Python's `os.path.isfile` looks: a link to a file is
        // read (and the link deleted once queued); a dangling one is left alone.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        found.push((entry.path(), meta.len(), meta.modified().ok()));
    }
    found.sort_by(|a, b| {
        let (a, b) = (
            a.0.file_name().unwrap_or_default(),
            b.0.file_name().unwrap_or_default(),
        );
        if natural {
            natural_cmp(&a.to_string_lossy(), &b.to_string_lossy())
        } else {
            a.cmp(b)
        }
    });
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file rewritten, or replaced by another file of the same name, between its read
    /// and the deletion that follows its commit is left in place (and read again at the
    /// next poll): deleted, its new content would be lost though never stored. An
    /// unchanged file is deleted as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_changed_after_its_read_is_not_deleted() {
        use crate::config::ConnectorKind;
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("in");
        std::fs::create_dir(&inbox).unwrap();
        let text = "[general]\nuseconnections = files, out\ndatadir = data\n\
                    [files]\ntranstech = file\ntransdir = in\nqueuename = q\nmessagedir = in\n\
                    [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
        let loaded = crate::config::load_str(text, &dir.path().join("router.cfg")).unwrap();
        let connection = loaded.config.connections[0].clone();
        let ConnectorKind::FileIn(settings) = connection.kind.clone() else {
            panic!("not a file input: {connection:?}");
        };
        let queues = [("q".to_owned(), vec!["out".to_owned()])];
        let store = crate::store::QueueStore::open(&dir.path().join("data"), &queues).unwrap();
        let input = FileIn {
            connection: Arc::new(connection),
            settings,
            appender: store.appender("q").unwrap(),
            shutdown: CancellationToken::new(),
        };
        let [same, replaced, rewritten] =
            ["same.hl7", "replaced.hl7", "rewritten.hl7"].map(|name| inbox.join(name));
        let mut group = Vec::new();
        for path in [&same, &replaced, &rewritten] {
            std::fs::write(path, b"MSH|first").unwrap();
            let Read::Content(content, identity) = read(path, 1024).unwrap() else {
                panic!("not read");
            };
            group.push((path.clone(), Bytes::from(content), identity));
        }
        // After the read, before the commit: a producer renames a new file over one name
        // and writes into the other.
        let fresh = inbox.join(".fresh");
        std::fs::write(&fresh, b"MSH|second").unwrap();
        std::fs::rename(&fresh, &replaced).unwrap();
        std::fs::write(&rewritten, b"MSH|second, longer").unwrap();

        assert!(input.queue(group, &mut Kept::new()).await);
        assert!(!same.exists());
        assert_eq!(std::fs::read(&replaced).unwrap(), b"MSH|second");
        assert_eq!(std::fs::read(&rewritten).unwrap(), b"MSH|second, longer");
        let stored = store.read("q", 0, 10).unwrap();
        assert_eq!(stored.len(), 3);
        assert!(stored.iter().all(|m| m.payload == b"MSH|first"));
        drop(input);
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }

    /// By the time an input opens a name it may lead elsewhere than the file listed (a
    /// link retargeted): a FIFO is not waited on (the input hung for good, and with it
    /// shutdown), a device is not read (`/dev/zero` filled memory, whatever the cap), and a
    /// regular file is read no further than the maximum message size.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_a_regular_file_within_the_size_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.hl7");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(read(&fifo, 1000), Ok(Read::NotAFile)));
        let zero = dir.path().join("zero.hl7");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(read(&zero, 1000), Ok(Read::NotAFile)));
        let big = dir.path().join("big.hl7");
        std::fs::write(&big, vec![b'x'; 1001]).unwrap();
        assert!(matches!(read(&big, 1000), Ok(Read::TooLarge(1001))));
        let fits = dir.path().join("fits.hl7");
        std::fs::write(&fits, vec![b'x'; 1000]).unwrap();
        assert!(matches!(read(&fits, 1000), Ok(Read::Content(c, _)) if c.len() == 1000));
    }

    /// A file queued that another program took before it could be deleted is gone, not
    /// "changed" (it was logged as an error, as if it could not be deleted).
    #[test]
    fn a_file_taken_by_another_program_is_gone_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.hl7");
        std::fs::write(&path, b"MSH|1").unwrap();
        let Read::Content(_, identity) = read(&path, 100).unwrap() else {
            panic!("not read");
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            remove_if_unchanged(&path, &identity).unwrap(),
            Removal::Gone
        );
        std::fs::write(&path, b"MSH|2, longer").unwrap();
        assert_eq!(
            remove_if_unchanged(&path, &identity).unwrap(),
            Removal::Changed
        );
        let Read::Content(_, identity) = read(&path, 100).unwrap() else {
            panic!("not read");
        };
        assert_eq!(
            remove_if_unchanged(&path, &identity).unwrap(),
            Removal::Removed
        );
        assert!(!path.exists());
    }

    /// A name in error/ already, even one of the longest a file name can be, gets a
    /// numbered one that still fits.
    #[cfg(unix)]
    #[test]
    fn error_names_are_numbered_within_the_name_limit() {
        use std::ffi::OsStr;
        assert_eq!(error_name(OsStr::new("a.hl7"), 0), "a.hl7");
        assert_eq!(error_name(OsStr::new("a.hl7"), 2), "a.hl7.2");
        let long = "x".repeat(255);
        let numbered = error_name(OsStr::new(&long), 12);
        assert_eq!(numbered.len(), 255);
        assert!(numbered.to_string_lossy().ends_with("x.12"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(&numbered), b"fits").unwrap();
    }

    /// A file another program took between the listing and the read is skipped, and a
    /// shortage of the router's (open files, memory) leaves the file for the next poll;
    /// both moved the file to `error/` with an error line, for good.
    #[test]
    fn only_a_file_that_cannot_be_read_goes_to_the_error_folder() {
        use std::io::{Error, ErrorKind};
        let dir = tempfile::tempdir().unwrap();
        let gone = std::fs::read(dir.path().join("taken.hl7")).unwrap_err();
        assert_eq!(read_failure(&gone), ReadFailure::Vanished);
        #[cfg(unix)]
        for too_many_open_files in [23, 24] {
            let e = Error::from_raw_os_error(too_many_open_files);
            assert_eq!(read_failure(&e), ReadFailure::Transient, "{e}");
        }
        assert_eq!(
            read_failure(&Error::from(ErrorKind::OutOfMemory)),
            ReadFailure::Transient
        );
        // A directory where a file was (EISDIR), or no permission: the file's own fault.
        let is_dir = std::fs::read(dir.path()).unwrap_err();
        assert_eq!(read_failure(&is_dir), ReadFailure::Unreadable, "{is_dir}");
        let denied = Error::from(ErrorKind::PermissionDenied);
        assert_eq!(read_failure(&denied), ReadFailure::Unreadable);
    }

    /// A symbolic link to a file is listed, with the file's size, as Python sees it; links
    /// to directories and dangling links are not. Links were skipped at every poll, silently.
    #[cfg(unix)]
    #[test]
    fn links_to_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("result.hl7");
        std::fs::write(&target, b"MSH|^~\\&|").unwrap();
        let link = dir.path().join("linked.hl7");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("dir.hl7")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("gone.hl7"))
            .unwrap();
        let found = list(dir.path(), "*.hl7", false, false).unwrap();
        let listed: Vec<(&PathBuf, u64)> = found.iter().map(|(p, len, _)| (p, *len)).collect();
        assert_eq!(listed, [(&link, 9)]);
    }

    /// Temporary-looking names are skipped, unless the mask asks for them.
    #[test]
    fn temporary_names_are_listed_only_when_the_mask_asks_for_them() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["R1.TMP", "R2.hl7", "R3.hl7.part", ".hidden.hl7"] {
            std::fs::write(dir.path().join(name), b"MSH|").unwrap();
        }
        let names = |mask: &str, take: bool| -> Vec<String> {
            list(dir.path(), mask, take, false)
                .unwrap()
                .iter()
                .map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names("*", false), ["R2.hl7"]);
        assert_eq!(names("*.TMP", true), ["R1.TMP"]);
    }

    /// A file whose name is not UTF-8 is listed (and so queued, or moved to `error/`), not
    /// skipped without a trace.
    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_are_listed() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"r\xe9sultat.hl7"));
        std::fs::write(&odd, b"MSH|").unwrap();
        std::fs::write(dir.path().join("plain.hl7"), b"MSH|").unwrap();
        let found = list(dir.path(), "*.hl7", false, false).unwrap();
        let paths: Vec<&PathBuf> = found.iter().map(|(p, _, _)| p).collect();
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert!(paths.contains(&&odd), "{paths:?}");
    }
}
