//! File output: one file per message, made durable before the message leaves the queue.
//!
//! Work is batched so that the output's syncs do not crowd out the input commits that
//! senders wait for: up to [`BATCH`] pending messages (gathered for at most
//! [`GATHER_WINDOW`] when fewer are pending) are written, made durable together, and the
//! cursor advanced for the whole batch in one store transaction. How a batch is made
//! durable is the connection's `filesync`:
//!
//! - `file`: each message goes to a temporary name, the files' data are synced
//!   concurrently, given their names in queue order (never over an existing file), the
//!   directory fsynced once.
//! - `filesystem`: on Linux each message goes to an unnamed file (`O_TMPFILE`); the file
//!   system is synced (contents), the files are linked into place in queue order, and
//!   the file system synced again (names). Where unnamed files are not supported,
//!   temporary names are used as with `file`, with the file system synced instead of
//!   each file.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{
    Backoff, READ_BYTES, create_dir_all_synced, numbered_name, printable, rename_no_replace,
    resume_point, sync_dir,
};
use crate::config::{Connection, FileNaming, FileOutSettings, FileSync};
use crate::filename::{MAX_PART_LEN, hl7_name_head, is_windows_device, sanitize_part};
use crate::store::{QueueStore, StoredMessage};

/// Most messages written per directory fsync and cursor commit.
const BATCH: usize = 256;
/// How long a short batch waits for more messages. Each batch costs the file system at
/// least two journal commits (file data, directory) and the store one transaction,
/// whatever its size; waiting a little for a fuller batch keeps those few under load.
/// Delivery to the directory is delayed by at most this; senders are not (they are
/// acknowledged at the store commit).
const GATHER_WINDOW: Duration = Duration::from_millis(20);
/// Threads that sync a batch's files concurrently (so the file system folds them into
/// few journal commits).
const SYNC_THREADS: usize = 8;

/// What one file output needs.
#[derive(Debug)]
pub(crate) struct FileOut {
    pub(crate) connection: Arc<Connection>,
    pub(crate) settings: FileOutSettings,
    pub(crate) store: Arc<QueueStore>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) log_failed_content: bool,
}

impl FileOut {
    pub(crate) async fn run(self) {
        let queue = self.connection.queue.clone();
        let name = self.connection.name.clone();
        let Some((mut cursor, mut committed)) = resume_point(&self.store, &queue, &name) else {
            return;
        };
        // Made at start, as the documentation says, so a folder that cannot be made is
        // said now rather than with the first message (the writer tries again then).
        // The folder as it is now, there or made, is the one written to: one that is gone
        // by the first message is not made again (see [`BatchWriter::write`]).
        let dir = self.settings.dir.clone();
        let mut folder = Folder::default();
        let made = tokio::task::spawn_blocking(move || {
            create_dir_all_synced(&dir).map(|made| (made, Folder::found(&dir)))
        })
        .await;
        match made {
            Ok(Ok((made, found))) => {
                if !made.is_empty() {
                    info!("created {}", self.settings.dir.display());
                }
                folder = found;
            }
            Err(_) => {}
            Ok(Err(e)) => warn!(
                "cannot create {}: {e}; tried again with the first message",
                self.settings.dir.display()
            ),
        }
        let (dir, owner) = (self.settings.dir.clone(), name.clone());
        match tokio::task::spawn_blocking(move || remove_stale_temporaries(&dir, &owner)).await {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(n)) => info!("removed {n} temporary file(s) left by an interrupted run"),
            Ok(Err(e)) => warn!("cannot clean up temporary files: {e}"),
        }
        let mut writer = Some(BatchWriter::new(self.settings.clone(), &name).with_folder(folder));
        // With `loglvl = prod`: the messages up to this one had their content logged with
        // a failure already; a retry logs only the failure (not a batch's content again at
        // every retry, for as long as a share is gone).
        let mut content_logged_through: Option<u64> = None;
        let mut backoff = Backoff::new(self.settings.retry_delay, self.settings.retry_max_delay);
        // Until when a short batch may wait to fill up (set when first seen short).
        let mut gathering: Option<Instant> = None;
        while !self.shutdown.is_cancelled() {
            // Sequence numbers are consecutive, so what is pending is known without
            // reading the queue: it is read once, when the batch is written.
            let pending = committed.borrow_and_update().saturating_sub(cursor);
            if pending == 0 {
                tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    changed = committed.changed() => if changed.is_err() { break },
                }
                continue;
            }
            if pending < BATCH as u64 {
                let deadline = *gathering.get_or_insert_with(|| Instant::now() + GATHER_WINDOW);
                if Instant::now() < deadline {
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep_until(deadline) => {}
                        changed = committed.changed() => if changed.is_err() { break },
                    }
                    // Look again (more may be pending) unless shutting down: then write
                    // what is there.
                    if !self.shutdown.is_cancelled() {
                        continue;
                    }
                }
            }
            gathering = None;
            // Finishes even during shutdown: a write in progress is completed.
            let Some(mut worker) = writer.take() else {
                break;
            };
            let (store, queue_name) = (Arc::clone(&self.store), queue.clone());
            // Reading a batch copies up to a megabyte: off the async workers too. In the
            // connection's span, so that what the writer logs names the connection.
            let span = tracing::Span::current();
            let joined = tokio::task::spawn_blocking(move || {
                let _in_span = span.enter();
                let outcome = store
                    .read_bounded(&queue_name, cursor, BATCH, READ_BYTES)
                    .map(|batch| {
                        let written = worker.write(&batch);
                        (batch, written)
                    });
                (outcome, worker)
            })
            .await;
            let outcome = match joined {
                Ok((outcome, returned)) => {
                    folder = returned.folder;
                    writer = Some(returned);
                    outcome
                }
                Err(e) => {
                    writer =
                        Some(BatchWriter::new(self.settings.clone(), &name).with_folder(folder));
                    Ok((Vec::new(), Err(std::io::Error::other(e.to_string()))))
                }
            };
            let (batch, written) = match outcome {
                Ok(read) => read,
                Err(e) => {
                    error!("cannot read the queue: {e}");
                    if !backoff.sleep(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let paths = match written {
                Ok(paths) => paths,
                Err(e) => {
                    let through = content_logged_through;
                    let unlogged = batch
                        .iter()
                        .filter(|m| through.is_none_or(|through| m.seq > through));
                    let mut logged = false;
                    if self.log_failed_content {
                        for message in unlogged {
                            warn!(
                                "cannot write message {} to {}: {e}; retrying: {}",
                                message.seq,
                                self.settings.dir.display(),
                                printable(&message.payload)
                            );
                            content_logged_through = Some(message.seq);
                            logged = true;
                        }
                    }
                    if !logged {
                        warn!(
                            "cannot write to {}: {e}; retrying",
                            self.settings.dir.display()
                        );
                    }
                    if !backoff.sleep(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let Some(last) = batch.last().map(|m| m.seq) else {
                // Nothing to read after all (cannot happen while this output alone moves
                // its cursor); wait for the next commit rather than spin.
                tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    changed = committed.changed() => if changed.is_err() { break },
                }
                continue;
            };
            for (path, message) in paths.iter().zip(&batch) {
                if self.connection.debug.log_content {
                    info!("wrote {}: {}", path.display(), printable(&message.payload));
                } else {
                    debug!("wrote {}", path.display());
                }
            }
            backoff.reset();
            cursor = last + 1;
            // One transaction for the whole batch, awaited so that a crash rewrites at
            // most the batch in hand (at-least-once). A failed commit is not fatal: the
            // next batch's advance covers this one.
            match self.store.advance(&queue, &name, cursor).await {
                Ok(receipt) => {
                    if let Ok(Err(e)) = receipt.await {
                        warn!("cursor not saved ({e}); a restart may rewrite files");
                    }
                }
                Err(_) => break,
            }
        }
    }
}

/// Writes batches of messages to files; keeps the naming counter, and what the file
/// system turned out to support, from one batch to the next.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    namer: Namer,
    folder: Folder,
    /// Temporary files of failed batches that could not be removed then; tried again
    /// with each batch.
    leftovers: Vec<PathBuf>,
    /// Whether to try unnamed files (`filesync = filesystem` on Linux); cleared for good
    /// once the file system refuses them.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    unnamed: bool,
}

impl BatchWriter {
    /// A writer for the output named `owner` (its temporary files carry the name, so
    /// that outputs sharing a directory never touch each other's).
    pub(crate) fn new(settings: FileOutSettings, owner: &str) -> Self {
        let unnamed = cfg!(target_os = "linux") && settings.sync == FileSync::Filesystem;
        Self {
            namer: Namer::new(settings, owner),
            folder: Folder::default(),
            leftovers: Vec::new(),
            unnamed,
        }
    }

    /// A writer that knows `messagedir` as found before its first batch (at start).
    pub(crate) fn with_folder(mut self, folder: Folder) -> Self {
        self.folder = folder;
        self
    }

    /// Writes the batch and makes it durable; returns the files' paths in queue order.
    /// On error nothing of the batch is left under a temporary name; files already in
    /// place stay (the batch is retried: at-least-once).
    ///
    /// A `messagedir` that vanishes once it was there is not made again: it is most often
    /// a share that went away, and a folder made in its place would sit under the mount
    /// point, its files hidden from the consumer once the share is back. The batch then
    /// fails (`NotFound`) and is retried until the folder is back. For the same reason a
    /// `messagedir` found on another file system than for the first batch (the share
    /// unmounted, its mount point holding a folder of the same name) is not written to:
    /// the batch is retried until the folder is on its own file system again. The check
    /// is by device number (Unix only), so a folder deleted and made again on the same
    /// file system is written to.
    pub(crate) fn write(&mut self, batch: &[StoredMessage]) -> std::io::Result<Vec<PathBuf>> {
        let dir = self.namer.settings.dir.clone();
        if !self.folder.ready {
            create_dir_all_synced(&dir)?;
            self.folder = Folder::found(&dir);
        } else if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the folder is gone (a share unmounted, or the folder deleted); not made \
                 again, so no file lands under a mount point: the messages wait in the queue \
                 until it is back (a restart makes it)",
            ));
        }
        if let (Some(first), Some(now)) = (self.folder.device, device_of(&dir))
            && first != now
        {
            return Err(std::io::Error::other(format!(
                "the folder is on another file system than at first (device {now:#x}, was \
                 {first:#x}: a share unmounted, its mount point left?); not written to, so no \
                 file lands under a mount point: the messages wait in the queue until it is \
                 back (a restart takes the folder as it is then)"
            )));
        }
        self.leftovers
            .retain(|path| match std::fs::remove_file(path) {
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
                Ok(()) => false,
            });
        match self.namer.settings.sync {
            FileSync::File => write_named(
                &mut self.namer,
                &dir,
                batch,
                sync_files,
                &mut self.leftovers,
            ),
            FileSync::Filesystem => {
                #[cfg(target_os = "linux")]
                if self.unnamed {
                    if let Some(paths) = unnamed::write(&mut self.namer, &dir, batch)? {
                        return Ok(paths);
                    }
                    warn!(
                        "{} does not support unnamed files; using temporary names",
                        dir.display()
                    );
                    self.unnamed = false;
                }
                write_named(
                    &mut self.namer,
                    &dir,
                    batch,
                    sync_file_system,
                    &mut self.leftovers,
                )
            }
        }
    }
}

/// What an output knows of its `messagedir`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Folder {
    /// Whether it was there (or made), at start or for a batch: after that it is never
    /// made again, see [`BatchWriter::write`].
    ready: bool,
    /// The file system (device number) it was on then; a batch finding it on another one
    /// waits, see [`BatchWriter::write`].
    device: Option<u64>,
}

impl Folder {
    /// `dir` as it is now, just found or made.
    fn found(dir: &Path) -> Self {
        Self {
            ready: true,
            device: device_of(dir),
        }
    }
}

/// The device number of the file system holding `dir` (following links), where there is
/// one to compare.
#[cfg(unix)]
fn device_of(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| m.dev())
}

#[cfg(not(unix))]
fn device_of(_dir: &Path) -> Option<u64> {
    None
}

/// Writes every message to a temporary name, makes their contents durable with `sync`,
/// gives them their names in queue order, then fsyncs the directory once. On error the
/// temporary files are removed; those that cannot be are added to `leftovers`.
fn write_named(
    namer: &mut Namer,
    dir: &Path,
    batch: &[StoredMessage],
    sync: fn(&[File]) -> std::io::Result<()>,
    leftovers: &mut Vec<PathBuf>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut temporaries = Vec::with_capacity(batch.len());
    let mut files = Vec::with_capacity(batch.len());
    let mut placed = Vec::with_capacity(batch.len());
    let result = (|| {
        for message in batch {
            let stem = namer.name(&message.payload);
            let temp_path = dir.join(namer.temporary(&stem));
            // Never truncate a file someone else is writing.
            let mut file = File::options()
                .write(true)
                .create_new(true)
                .open(&temp_path)?;
            temporaries.push((stem, temp_path));
            write_message(&mut file, &message.payload, namer.settings.newline)?;
            files.push(file);
        }
        sync(&files)?;
        drop(std::mem::take(&mut files));
        for (stem, temp_path) in &temporaries {
            placed.push(place(namer, dir, stem, temp_path)?);
        }
        sync_dir(dir)
    })();
    if let Err(e) = result {
        drop(files);
        for (_, temp_path) in temporaries {
            match std::fs::remove_file(&temp_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => leftovers.push(temp_path),
                _ => {}
            }
        }
        return Err(e);
    }
    Ok(placed)
}

/// Gives a durable temporary file its name without replacing a file already there (another
/// output, or another program, may write to the same directory; the next free name is
/// taken then): a rename that refuses to replace ([`rename_no_replace`]). A rename, not a
/// link: programs watching the folder (inotify's `IN_MOVED_TO`) see the file arrive.
fn place(namer: &Namer, dir: &Path, stem: &str, temp_path: &Path) -> std::io::Result<PathBuf> {
    let mut attempt = 0;
    loop {
        let path = dir.join(namer.candidate(stem, attempt));
        attempt += 1;
        match rename_no_replace(temp_path, &path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

fn write_message(file: &mut File, payload: &[u8], newline: bool) -> std::io::Result<()> {
    file.write_all(payload)?;
    if newline {
        file.write_all(b"\n")?;
    }
    Ok(())
}

/// Unnamed files (`O_TMPFILE`) linked into place once their contents are durable: no
/// temporary name is ever visible to the program reading `messagedir`, and a crash
/// leaves nothing behind to clean up.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Namer, StoredMessage, write_message};

    /// Writes the batch; `Ok(None)` when this file system (or a missing `/proc`) does
    /// not allow unnamed files, in which case nothing of the batch was written.
    pub(super) fn write(
        namer: &mut Namer,
        dir: &Path,
        batch: &[StoredMessage],
    ) -> std::io::Result<Option<Vec<PathBuf>>> {
        let dir_file = File::open(dir)?;
        let mut files = Vec::with_capacity(batch.len());
        for message in batch {
            let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(&dir_file, ".", flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => fd,
                // Older kernels read O_TMPFILE as O_DIRECTORY.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) if files.is_empty() => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            let mut file = File::from(fd);
            write_message(&mut file, &message.payload, namer.settings.newline)?;
            files.push(file);
        }
        // Contents first: a name must never reach the disk before what it names.
        rustix::fs::syncfs(&dir_file)?;
        let mut paths = Vec::with_capacity(batch.len());
        for (message, file) in batch.iter().zip(&files) {
            let stem = namer.name(&message.payload);
            let mut attempt = 0;
            let name = loop {
                let name = namer.candidate(&stem, attempt);
                match link(file, &dir_file, &name) {
                    Ok(()) => break name,
                    Err(Errno::EXIST) => attempt += 1,
                    Err(Errno::NOENT | Errno::PERM | Errno::OPNOTSUPP) if paths.is_empty() => {
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            paths.push(dir.join(name));
        }
        // The names, and the link counts of the files they name.
        rustix::fs::syncfs(&dir_file)?;
        Ok(Some(paths))
    }

    /// Gives the open unnamed `file` the name `name` in `dir`; fails with `EEXIST`
    /// rather than replace a file.
    fn link(file: &File, dir: &File, name: &str) -> rustix::io::Result<()> {
        // An unprivileged process can link an open file only through its /proc entry;
        // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (kept as the fallback without /proc).
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        match rustix::fs::linkat(CWD, proc_path.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW) {
            Err(Errno::NOENT) => rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH),
            other => other,
        }
    }
}

/// Removes the temporary files (`.NAME@OWNER.tmp`) this output left behind when killed;
/// their messages were not yet done, so they are written again from the queue. Other
/// outputs' temporary files in the same directory are left alone.
fn remove_stale_temporaries(dir: &Path, owner: &str) -> std::io::Result<usize> {
    let ending = temporary_ending(&sanitize_part(owner, MAX_PART_LEN));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(&ending) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// `fdatasync`s the files on up to [`SYNC_THREADS`] threads: the data and the size a
/// reader needs (the name is made durable by the directory fsync after the link or rename).
fn sync_files(files: &[File]) -> std::io::Result<()> {
    if files.len() <= 1 {
        return files.iter().try_for_each(File::sync_data);
    }
    let chunk = files.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().try_for_each(File::sync_data)))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread failed")))
        })
    })
}

/// Syncs the whole file system holding the files (`syncfs`): one flush for the batch
/// instead of one per file. Elsewhere than Linux, [`sync_files`].
fn sync_file_system(files: &[File]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(file) = files.first() {
        return Ok(rustix::fs::syncfs(file)?);
    }
    sync_files(files)
}

/// How the temporary names of the output `owner` (sanitised) end: `@OWNER.tmp`. A
/// sanitised name has no `@`, so no other output's ending ends with this one (with a
/// dot, output `a`'s `.a.tmp` would also match output `x.a`'s files).
fn temporary_ending(owner: &str) -> String {
    format!("@{owner}.tmp")
}

/// Longest file name in bytes on the usual file systems (ext4, XFS, NTFS, APFS).
const MAX_NAME_LEN: usize = 255;
/// Room kept in a name for a collision number (`-NNNNNNN`).
const COLLISION_RESERVE: usize = 8;

/// `text` cut to at most `max` bytes, on a character boundary.
fn shorten(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}

/// Makes file names: `prefix` + timestamp + `_` + counter + `suffix`, or with
/// `hl7prefix` `MSH-3_MSH-4_MSH-5_MSH-6_TYPE_timestamp_counter` + `suffix`; every
/// part sanitised.
#[derive(Debug)]
pub(crate) struct Namer {
    settings: FileOutSettings,
    /// `suffix`, sanitised once.
    suffix: String,
    /// The output's name, sanitised, for its temporary files.
    owner: String,
    /// Shared by the outputs writing to the same folder (see [`folder_counter`]).
    counter: Arc<AtomicU32>,
    /// The second (Unix time) before which no name may be dated (see [`first_second`]).
    not_before: i64,
}

/// The naming counter of `dir`, shared by every output of the process writing there.
/// Names are unique by second and counter; two outputs sharing a `messagedir`, each with
/// its own counter, gave the same name to two messages written in one second once the
/// consumer had taken the first file (placing never overwrites, but the name was reused).
fn folder_counter(dir: &Path) -> Arc<AtomicU32> {
    static COUNTERS: OnceLock<Mutex<HashMap<PathBuf, Arc<AtomicU32>>>> = OnceLock::new();
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut counters = COUNTERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Arc::clone(counters.entry(key).or_default())
}

/// The first second of this process's file names: the one after the second it began
/// naming in. A router restarted within a second would otherwise date its first names
/// like the previous run's last ones, counting again from 0 (the previous run has
/// exited before this one opens the queue store, so its names are all dated earlier).
fn first_second() -> i64 {
    static BEGAN: OnceLock<i64> = OnceLock::new();
    *BEGAN.get_or_init(|| chrono::Local::now().timestamp()) + 1
}

impl Namer {
    pub(crate) fn new(settings: FileOutSettings, owner: &str) -> Self {
        let suffix = sanitize_part(&settings.suffix, MAX_PART_LEN);
        let counter = folder_counter(&settings.dir);
        Self {
            settings,
            suffix,
            owner: sanitize_part(owner, MAX_PART_LEN),
            counter,
            not_before: first_second(),
        }
    }

    /// The temporary name for `stem`: hidden, and marked with the output's name.
    fn temporary(&self, stem: &str) -> String {
        format!(".{stem}{}{}", self.suffix, temporary_ending(&self.owner))
    }

    fn next_counter(&mut self) -> u32 {
        self.counter.fetch_add(1, Ordering::Relaxed) % 100_000
    }

    /// The stem of the next name (without suffix). In the second the process began
    /// naming in, waits for the next (see [`first_second`]); it is called off the async
    /// workers.
    pub(crate) fn name(&mut self, payload: &[u8]) -> String {
        let mut now = chrono::Local::now();
        if now.timestamp() < self.not_before {
            let into_second = u64::from(now.timestamp_subsec_nanos());
            std::thread::sleep(Duration::from_nanos(
                1_000_000_000u64.saturating_sub(into_second),
            ));
            now = chrono::Local::now();
        }
        let timestamp = now.format("%Y%m%d%H%M%S");
        let counter = self.next_counter();
        // The head is what gets shortened when the name would be too long; the tail keeps
        // names apart.
        let (head, tail) = match &self.settings.naming {
            FileNaming::Prefix(prefix) => (
                sanitize_part(prefix, MAX_PART_LEN),
                format!("{timestamp}_{counter:05}"),
            ),
            FileNaming::Hl7 => (hl7_name_head(payload), format!("_{timestamp}_{counter:05}")),
        };
        // Room for the temporary form (a leading dot and the ending) and a collision number.
        let reserve = 1 + temporary_ending(&self.owner).len() + COLLISION_RESERVE;
        let room = MAX_NAME_LEN.saturating_sub(reserve + self.suffix.len() + tail.len());
        let stem = format!("{}{tail}", shorten(&head, room));
        // No hidden files: a leading dot would also look like a temporary name. And no
        // Windows device names (an MSH-3 of `NUL.x`).
        match stem.strip_prefix('.') {
            Some(rest) => format!("_{rest}"),
            None if is_windows_device(&stem) => format!("_{stem}"),
            None => stem,
        }
    }

    /// The `attempt`th name for `stem` (see [`numbered_name`]).
    fn candidate(&self, stem: &str, attempt: usize) -> String {
        numbered_name(stem, attempt, &self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mllp_hl7::Message;
    use std::time::Duration;

    fn settings(naming: FileNaming) -> FileOutSettings {
        FileOutSettings {
            dir: PathBuf::from("/nonexistent"),
            naming,
            suffix: ".hl7".into(),
            newline: false,
            sync: FileSync::File,
            retry_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn hl7_names_are_sanitised() {
        let mut namer = Namer::new(settings(FileNaming::Hl7), "out");
        namer.counter = Arc::default();
        let name = namer.name(b"MSH|^~\\&|../../x|FAC/1|LIS|HOSP|20240101||ORU^R01|1|P|2.5\r");
        assert!(name.starts_with("____x_FAC_1_LIS_HOSP_ORU_"), "{name}");
        assert!(name.ends_with("_00000"), "{name}");
        assert!(!name.contains('/') && !name.contains(".."));
        let other = namer.name(b"not hl7");
        assert!(other.starts_with("____NOTHL7_"), "{other}");
    }

    fn oru(id: usize) -> bytes::Bytes {
        format!("MSH|^~\\&|LAB|FAC|LIS|HOSP|20240101||ORU^R01|M{id}|P|2.5.1\rPID|1\r")
            .into_bytes()
            .into()
    }

    /// Control ids (MSH-10) of the visible files in `dir`, with how often each occurs.
    fn delivered(dir: &Path) -> std::collections::BTreeMap<String, usize> {
        let mut ids = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let text = std::fs::read(entry.path()).unwrap();
            let message = Message::parse(&text).unwrap();
            let id = String::from_utf8_lossy(message.control_id().raw()).into_owned();
            *ids.entry(id).or_insert(0) += 1;
        }
        ids
    }

    /// The state kill -9 leaves between a batch's rename (and directory fsync) and the
    /// commit of its cursor advance: the files are in place, the store still has the
    /// messages at the old cursor. After the restart the batch is written again
    /// (duplicates), and nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_renamed_but_not_advanced_is_redelivered_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = dir.path().join("out");
        let queues = [("q".to_owned(), vec!["out".to_owned()])];

        // Before the crash: 10 messages committed (and acknowledged); the output wrote
        // a batch of the first 6, renamed them into place, synced the directory, and
        // the process died before the cursor advance was committed.
        let store = QueueStore::open(&data, &queues).unwrap();
        let appender = store.appender("q").unwrap();
        for id in 0..10 {
            appender.append(oru(id)).await.unwrap();
        }
        let batch = store
            .read("q", store.cursor("q", "out").unwrap(), 6)
            .unwrap();
        let mut writer = BatchWriter::new(
            FileOutSettings {
                dir: out.clone(),
                ..settings(FileNaming::Prefix("m-".into()))
            },
            "out",
        );
        writer.write(&batch).unwrap();
        drop(appender);
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
        let before = delivered(&out);
        assert_eq!(before.len(), 6);
        // A later batch cut while its files still had temporary names; and other
        // outputs' temporary files in the same directory (`x.out`'s name ends like
        // this one's), which must be left alone.
        std::fs::write(out.join(".m-20240101000000_00006.hl7@out.tmp"), b"MSH|^~").unwrap();
        std::fs::write(out.join(".m-20240101000000_00006.hl7@other.tmp"), b"MSH|^~").unwrap();
        std::fs::write(out.join(".m-20240101000000_00006.hl7@x.out.tmp"), b"MSH|^~").unwrap();

        // Restart: the output resumes from the committed cursor.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!(
            "[general]\nuseconnections = in, out\ndatadir = data\n\
             [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = {port}\n\
             [out]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\nprefix = m-\nsuffix = .hl7\n"
        );
        let loaded = crate::config::load_str(&text, &dir.path().join("router.cfg")).unwrap();
        let router = crate::Router::start(&loaded.config).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while delivered(&out).values().sum::<usize>() < 16 {
            assert!(
                std::time::Instant::now() < deadline,
                "not redelivered: {:?}",
                delivered(&out)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        router.shutdown().await;

        let after = delivered(&out);
        for id in 0..10 {
            let copies = after.get(&format!("M{id}")).copied().unwrap_or(0);
            // The interrupted batch twice (at-least-once), the rest once.
            assert_eq!(copies, if id < 6 { 2 } else { 1 }, "M{id}: {after:?}");
        }
        let mut leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            [
                ".m-20240101000000_00006.hl7@other.tmp",
                ".m-20240101000000_00006.hl7@x.out.tmp"
            ]
        );
    }

    fn stored(ids: std::ops::Range<usize>) -> Vec<StoredMessage> {
        ids.map(|id| StoredMessage {
            seq: id as u64,
            payload: oru(id).to_vec(),
        })
        .collect()
    }

    /// Every file of a batch lands under its own name with exactly its message (and the
    /// newline asked for), in queue order, even when names collide with files already
    /// there; no temporary or hidden file is left.
    fn writes_a_batch(sync: FileSync, unnamed: Option<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut writer = BatchWriter::new(
            FileOutSettings {
                dir: out.clone(),
                newline: true,
                sync,
                ..settings(FileNaming::Prefix("m-".into()))
            },
            "out",
        );
        if let Some(unnamed) = unnamed {
            writer.unnamed = unnamed;
        }
        // Squat on the names the first batch will want (same second, counter 0..3).
        std::fs::create_dir_all(&out).unwrap();
        let naming = writer.namer.settings.clone();
        let stem = |counter: u32| {
            let mut namer = Namer::new(naming.clone(), "out");
            namer.counter = Arc::new(AtomicU32::new(counter));
            namer.name(b"")
        };
        for counter in 0..3 {
            std::fs::write(out.join(format!("{}.hl7", stem(counter))), b"squatter").unwrap();
        }
        let (second_before, batch) = (stem(0), stored(0..40));
        let paths = writer.write(&batch).unwrap();
        assert_eq!(paths.len(), 40);
        if stem(0) == second_before {
            // Still the same second: the first three names were taken.
            let renamed = paths
                .iter()
                .filter(|p| p.to_string_lossy().ends_with("-1.hl7"))
                .count();
            assert_eq!(renamed, 3, "{paths:?}");
        }
        if unnamed.is_none() && sync == FileSync::Filesystem {
            assert_eq!(
                writer.unnamed,
                cfg!(target_os = "linux"),
                "unnamed files refused"
            );
        }
        for (path, message) in paths.iter().zip(&batch) {
            assert!(path.starts_with(&out), "{}", path.display());
            let mut expected = message.payload.clone();
            expected.push(b'\n');
            assert_eq!(std::fs::read(path).unwrap(), expected, "{}", path.display());
        }
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 43, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        let squatters = names
            .iter()
            .filter(|n| std::fs::read(out.join(n)).unwrap() == b"squatter")
            .count();
        assert_eq!(squatters, 3);
        // A second batch continues the counter and the order.
        let more = writer.write(&stored(40..45)).unwrap();
        assert_eq!(more.len(), 5);
        assert!(more.iter().all(|p| p.exists()));
    }

    #[test]
    fn file_sync_per_file_writes_a_batch() {
        writes_a_batch(FileSync::File, None);
    }

    #[test]
    fn file_system_sync_with_unnamed_files_writes_a_batch() {
        writes_a_batch(FileSync::Filesystem, None);
    }

    #[test]
    fn file_system_sync_with_temporary_names_writes_a_batch() {
        writes_a_batch(FileSync::Filesystem, Some(false));
    }

    /// Header fields of 64 characters and more (each part is cut to 64) would make a name
    /// longer than the 255 bytes file systems take, and the output would retry that batch
    /// for ever. The name is shortened, keeping the timestamp and counter, and written.
    #[test]
    fn long_header_fields_still_make_a_writable_name() {
        let long = "A".repeat(80);
        let payload = format!(
            "MSH|^~\\&|{long}|{long}|{long}|{long}|20240101||{long}^R01|LONG1|P|2.5.1\rPID|1\r"
        );
        for sync in [FileSync::File, FileSync::Filesystem] {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = BatchWriter::new(
                FileOutSettings {
                    dir: dir.path().to_owned(),
                    suffix: format!(".{}", "s".repeat(80)),
                    sync,
                    ..settings(FileNaming::Hl7)
                },
                &"o".repeat(80),
            );
            let batch = vec![StoredMessage {
                seq: 0,
                payload: payload.clone().into_bytes(),
            }];
            let paths = writer.write(&batch).unwrap();
            let name = paths[0].file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.trim_end_matches(writer.namer.suffix.as_str());
            let temporary = writer.namer.temporary(stem);
            assert!(
                temporary.len() + COLLISION_RESERVE <= MAX_NAME_LEN,
                "{temporary}"
            );
            assert!(name.starts_with("AAAA"), "{name}");
            assert!(name.contains("_00000."), "{name}");
            assert_eq!(std::fs::read(&paths[0]).unwrap(), payload.as_bytes());
        }
    }

    /// Two outputs (two queues, say) writing to one directory with the same naming make
    /// the same names in the same second. Neither may replace or truncate the other's
    /// file: every message lands exactly once.
    #[test]
    fn two_outputs_sharing_a_directory_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::thread::scope(|scope| {
            for (owner, first) in [("left", 0), ("right", 10_000)] {
                let out = out.clone();
                scope.spawn(move || {
                    let mut writer = BatchWriter::new(
                        FileOutSettings {
                            dir: out,
                            ..settings(FileNaming::Prefix("m-".into()))
                        },
                        owner,
                    );
                    for batch in 0..20 {
                        let start = first + batch * 50;
                        writer.write(&stored(start..start + 50)).unwrap();
                    }
                });
            }
        });
        let ids = delivered(&out);
        assert_eq!(ids.len(), 2000, "distinct messages");
        assert!(ids.values().all(|&n| n == 1), "{ids:?}");
    }

    /// Names from hostile content, under any naming, suffix and output name.
    mod names {
        use super::*;
        use proptest::prelude::*;

        fn payload() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(|tail| [
                    &b"MSH|^~\\&|"[..],
                    &tail
                ]
                .concat()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Every form of a file's name is one file name in `messagedir`: safe characters,
            /// within 255 bytes, and the final one neither hidden nor `.` or `..`.
            #[test]
            fn every_name_is_one_safe_file_name(
                payload in payload(),
                hl7: bool,
                prefix in "[a-zA-Z0-9._/-]{0,80}",
                suffix in "[a-zA-Z0-9._/-]{0,80}",
                owner in "\\PC{0,80}",
                attempt in prop_oneof![Just(0usize), 1..10usize, Just(9_999_999usize)],
            ) {
                let naming = if hl7 { FileNaming::Hl7 } else { FileNaming::Prefix(prefix) };
                let mut namer = Namer::new(FileOutSettings { suffix, ..settings(naming) }, &owner);
                let stem = namer.name(&payload);
                let name = namer.candidate(&stem, attempt);
                let temporary = namer.temporary(&stem);
                let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
                prop_assert!(name.len() <= MAX_NAME_LEN, "{name}");
                prop_assert!(name.chars().all(safe) && !name.contains(".."), "{name}");
                prop_assert!(!name.starts_with('.') && name != "..", "{name}");
                prop_assert!(temporary.len() + COLLISION_RESERVE <= MAX_NAME_LEN, "{temporary}");
                prop_assert!(temporary.starts_with('.'), "{temporary}");
                prop_assert!(temporary.chars().all(|c| safe(c) || c == '@'), "{temporary}");
            }
        }
    }

    #[test]
    fn prefix_names() {
        let mut namer = Namer::new(settings(FileNaming::Prefix("lab-".into())), "out");
        namer.counter = Arc::default();
        let name = namer.name(b"x");
        assert!(
            name.starts_with("lab-") && name.ends_with("_00000"),
            "{name}"
        );
        assert_eq!(name.len(), "lab-".len() + 14 + 6);
    }

    /// SocketReader's iterator has five digits (`..._20101102124510_00000.hl7`): after
    /// 99999 the counter starts again at 00000, never growing a sixth digit.
    #[test]
    fn the_counter_keeps_five_digits_and_wraps() {
        let mut namer = Namer::new(settings(FileNaming::Prefix(String::new())), "out");
        namer.counter = Arc::new(AtomicU32::new(99_999));
        assert!(namer.name(b"x").ends_with("_99999"));
        assert!(namer.name(b"x").ends_with("_00000"));
        assert!(namer.name(b"x").ends_with("_00001"));
    }
}
