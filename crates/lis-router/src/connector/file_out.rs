//! File output: one file per message, written to a temporary name, fsynced, renamed into
//! place; the message leaves the queue only after that.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mllp_hl7::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::{Backoff, printable};
use crate::config::{Connection, FileNaming, FileOutSettings};
use crate::filename::{MAX_PART_LEN, sanitize};
use crate::store::{QueueStore, StoredMessage};

/// Messages written per directory fsync.
const BATCH: usize = 256;
/// Threads that fsync a batch's files concurrently.
const SYNC_THREADS: usize = 16;

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
        let (mut cursor, mut committed) =
            match (self.store.cursor(&queue, &name), self.store.watch(&queue)) {
                (Ok(c), Ok(w)) => (c, w),
                (Err(e), _) | (_, Err(e)) => {
                    error!("cannot start: {e}");
                    return;
                }
            };
        let mut namer = Namer::new(self.settings.clone());
        let mut backoff = Backoff::new(self.settings.retry_delay, self.settings.retry_max_delay);
        while !self.shutdown.is_cancelled() {
            let batch = match self.store.read(&queue, cursor, BATCH) {
                Ok(batch) => batch,
                Err(e) => {
                    error!("cannot read the queue: {e}");
                    if !backoff.sleep(&self.shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let Some(last) = batch.last().map(|m| m.seq) else {
                tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    changed = committed.changed() => if changed.is_err() { break },
                }
                continue;
            };
            // Finishes even during shutdown: a write in progress is completed.
            let worker_namer = std::mem::replace(&mut namer, Namer::new(self.settings.clone()));
            let joined = tokio::task::spawn_blocking(move || {
                let mut worker_namer = worker_namer;
                let result = write_batch(&mut worker_namer, &batch);
                (result, batch, worker_namer)
            })
            .await;
            let (result, batch) = match joined {
                Ok((result, batch, returned)) => {
                    namer = returned;
                    (result, batch)
                }
                Err(e) => (Err(std::io::Error::other(e.to_string())), Vec::new()),
            };
            match result {
                Ok(paths) => {
                    for path in &paths {
                        debug!("wrote {}", path.display());
                    }
                    backoff.reset();
                    cursor = last + 1;
                    if self.store.advance(&queue, &name, cursor).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    if self.log_failed_content {
                        for message in &batch {
                            warn!(
                                "cannot write message {} to {}: {e}; retrying: {}",
                                message.seq,
                                self.settings.dir.display(),
                                printable(&message.payload)
                            );
                        }
                    } else {
                        warn!(
                            "cannot write to {}: {e}; retrying",
                            self.settings.dir.display()
                        );
                    }
                    if !backoff.sleep(&self.shutdown).await {
                        break;
                    }
                }
            }
        }
    }
}

/// Writes every message to a temporary name, fsyncs the files (in parallel, so the
/// file system can fold them into few journal commits), renames them into place in
/// queue order, then fsyncs the directory once.
fn write_batch(namer: &mut Namer, batch: &[StoredMessage]) -> std::io::Result<Vec<PathBuf>> {
    let dir = namer.settings.dir.clone();
    std::fs::create_dir_all(&dir)?;
    let mut pending = Vec::with_capacity(batch.len());
    let result = (|| {
        for message in batch {
            let name = namer.name(&message.payload);
            let (final_path, temp_path) = namer.free_path(&dir, &name, &pending);
            let mut file = std::fs::File::create(&temp_path)?;
            pending.push((final_path, temp_path));
            file.write_all(&message.payload)?;
            if namer.settings.newline {
                file.write_all(b"\n")?;
            }
        }
        sync_files(pending.iter().map(|(_, temp)| temp.as_path()))?;
        for (final_path, temp_path) in &pending {
            std::fs::rename(temp_path, final_path)?;
        }
        sync_dir(&dir)
    })();
    if let Err(e) = result {
        for (_, temp_path) in &pending {
            let _ = std::fs::remove_file(temp_path);
        }
        return Err(e);
    }
    Ok(pending
        .into_iter()
        .map(|(final_path, _)| final_path)
        .collect())
}

/// fsyncs files on up to [`SYNC_THREADS`] threads.
fn sync_files<'a>(paths: impl Iterator<Item = &'a Path>) -> std::io::Result<()> {
    let paths: Vec<&Path> = paths.collect();
    let chunk = paths.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> std::io::Result<()> {
                    for path in part {
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(path)?
                            .sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread failed")))
        })
    })
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Makes file names: `prefix` + timestamp + `_` + counter + `suffix`, or with
/// `hl7prefix` `MSH-3_MSH-4_MSH-5_MSH-6_TYPE_timestamp_counter` + `suffix`; every
/// part sanitised.
#[derive(Debug)]
pub(crate) struct Namer {
    settings: FileOutSettings,
    counter: u32,
}

impl Namer {
    pub(crate) fn new(settings: FileOutSettings) -> Self {
        Self {
            settings,
            counter: 0,
        }
    }

    fn next_counter(&mut self) -> u32 {
        let value = self.counter;
        self.counter = (self.counter + 1) % 100_000;
        value
    }

    /// The stem of the next name (without suffix).
    pub(crate) fn name(&mut self, payload: &[u8]) -> String {
        let timestamp = chrono::Local::now().format("%Y%m%d%H%M%S");
        let counter = self.next_counter();
        let stem = match &self.settings.naming {
            FileNaming::Prefix(prefix) => {
                format!("{}{timestamp}_{counter:05}", sanitize(prefix, MAX_PART_LEN))
            }
            FileNaming::Hl7 => {
                let parts = match Message::parse(payload) {
                    Ok(m) if m.msh().is_some() => {
                        let field = |v: mllp_hl7::Value<'_>| {
                            sanitize(&String::from_utf8_lossy(v.raw()), MAX_PART_LEN)
                        };
                        [
                            field(m.sending_application()),
                            field(m.sending_facility()),
                            field(m.receiving_application()),
                            field(m.receiving_facility()),
                            sanitize(
                                &String::from_utf8_lossy(m.message_type().code),
                                MAX_PART_LEN,
                            ),
                        ]
                    }
                    _ => Default::default(),
                };
                let kind = if parts[4].is_empty() {
                    "NOTHL7"
                } else {
                    &parts[4]
                };
                format!(
                    "{}_{}_{}_{}_{kind}_{timestamp}_{counter:05}",
                    parts[0], parts[1], parts[2], parts[3]
                )
            }
        };
        // No hidden files: a leading dot would also look like a temporary name.
        match stem.strip_prefix('.') {
            Some(rest) => format!("_{rest}"),
            None => stem,
        }
    }

    /// A final path that exists neither on disk nor in this batch, and its temporary
    /// twin.
    fn free_path(
        &mut self,
        dir: &Path,
        stem: &str,
        taken: &[(PathBuf, PathBuf)],
    ) -> (PathBuf, PathBuf) {
        let suffix = sanitize(&self.settings.suffix, MAX_PART_LEN);
        let mut candidate = format!("{stem}{suffix}");
        let mut n = 1;
        let used = |c: &str| {
            let path = dir.join(c);
            path.exists() || taken.iter().any(|(p, _)| *p == path)
        };
        while used(&candidate) {
            candidate = format!("{stem}-{n}{suffix}");
            n += 1;
        }
        (dir.join(&candidate), dir.join(format!(".{candidate}.tmp")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(naming: FileNaming) -> FileOutSettings {
        FileOutSettings {
            dir: PathBuf::from("/nonexistent"),
            naming,
            suffix: ".hl7".into(),
            newline: false,
            retry_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn hl7_names_are_sanitised() {
        let mut namer = Namer::new(settings(FileNaming::Hl7));
        let name = namer.name(b"MSH|^~\\&|../../x|FAC/1|LIS|HOSP|20240101||ORU^R01|1|P|2.5\r");
        assert!(name.starts_with("____x_FAC_1_LIS_HOSP_ORU_"), "{name}");
        assert!(name.ends_with("_00000"), "{name}");
        assert!(!name.contains('/') && !name.contains(".."));
        let other = namer.name(b"not hl7");
        assert!(other.starts_with("____NOTHL7_"), "{other}");
    }

    #[test]
    fn prefix_names() {
        let mut namer = Namer::new(settings(FileNaming::Prefix("lab-".into())));
        let name = namer.name(b"x");
        assert!(
            name.starts_with("lab-") && name.ends_with("_00000"),
            "{name}"
        );
        assert_eq!(name.len(), "lab-".len() + 14 + 6);
    }
}
