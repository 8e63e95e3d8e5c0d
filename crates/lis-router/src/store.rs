//! The durable queue store: one redb file, one table per queue, one cursor per output,
//! and a single writer thread that groups whatever arrived while the previous commit
//! was syncing, plus under load what arrives within a short window, into one
//! transaction (group commit).
//!
//! Every commit uses `Durability::Immediate` (redb's default), so a message is on disk
//! when [`Appender::submit`]'s receiver yields its sequence number; `Durability::None`
//! would not survive `kill -9`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::reserve::{RESERVE_BYTES, RESERVE_FILE};
use crate::reserve::{SpaceReserve, is_full, is_out_of_space};

/// The store's file inside the data directory.
pub const STORE_FILE: &str = "router.redb";
/// Most requests folded into one transaction.
pub const MAX_BATCH: usize = 1024;
/// Longest the writer holds a transaction open for senders still on their way.
///
/// Under load (the previous transaction carried at least [`GATHER_MIN_APPENDS`]
/// messages), senders are acknowledged together and come back together, but not all
/// within the same microsecond: committing as soon as the first is back splits them into
/// a train of half-full transactions, each paying a full fsync. So the writer waits until
/// as many messages are in hand as last time, or this long. A single sender never waits.
const GATHER_WINDOW: Duration = Duration::from_micros(300);
/// Messages in the previous transaction from which the writer uses [`GATHER_WINDOW`].
const GATHER_MIN_APPENDS: usize = 4;
/// How often the writer looks for more requests while gathering.
const GATHER_POLL: Duration = Duration::from_micros(20);

/// How often the writer tries to set its reserve aside again while the disk is full.
const RESERVE_RETRY: Duration = Duration::from_millis(250);

/// The store's page cache. redb's default, 1 GiB, fills with a backlog's pages as they are
/// written and read back (300 MiB held for an output that was down: 677 MiB resident at the
/// peak, 206 MiB with this). Messages are read back soon after they are written, and the
/// file system's page cache serves what this one does not hold.
const CACHE_BYTES: usize = 64 << 20;

/// How often a store that could not be reopened after an error is tried again while no
/// request comes.
const REOPEN_RETRY: Duration = Duration::from_millis(500);
/// How often the writer looks for a request meanwhile.
const REOPEN_POLL: Duration = Duration::from_millis(10);

const CURSORS: TableDefinition<'static, &str, u64> = TableDefinition::new("cursors");

/// Why the store failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {error}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error. It is in the message, so it is not also the `source()`: a printer
        /// of the error chain would show it twice.
        error: std::io::Error,
    },
    /// redb reported an error (the file is locked by another router, damaged, or the
    /// disk failed).
    #[error("queue store {}: {error}", path.display())]
    Database {
        /// The store file.
        path: PathBuf,
        /// The redb error (in the message, so not also the `source()`).
        error: Box<redb::Error>,
    },
    /// The writer thread has stopped (the router is shutting down).
    #[error("queue store is closed")]
    Closed,
    /// A commit failed (disk full, I/O error); nothing of that batch is stored.
    #[error("queue store commit failed: {0}")]
    CommitFailed(String),
    /// The disk is full: new messages are refused until the outputs have delivered
    /// enough for the store to set its reserve aside again (see [`RESERVE_FILE`]).
    #[error(
        "queue store's disk is full: new messages are refused until outputs have delivered enough to free space"
    )]
    DiskFull,
    /// The store is being opened again after a failed commit; try again shortly.
    #[error("queue store is being reopened after an error")]
    Reopening,
    /// An earlier message of the same source (see [`Appender::source`]) was not stored,
    /// so this one is not either: stored, it would be ahead of the earlier one when that
    /// is sent again.
    #[error("not stored: an earlier message from the same source was not stored")]
    SourceHalted,
    /// A queue that the store was not opened with.
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its sequence number in the queue (increasing, never reused).
    pub seq: u64,
    /// The message.
    pub payload: Vec<u8>,
}

enum Request {
    /// Messages stored together: one transaction, consecutive sequence numbers; `done`
    /// gets the first.
    Append {
        queue: usize,
        payloads: Vec<Bytes>,
        done: oneshot::Sender<Result<u64, StoreError>>,
        /// Set once an append of this source fails (see [`Appender::source`]).
        halted: Option<Arc<SourceState>>,
    },
    Advance {
        queue: usize,
        output: usize,
        next: u64,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

struct QueueMeta {
    name: String,
    table: String,
    outputs: Vec<String>,
    committed: watch::Sender<u64>,
}

struct Shared {
    /// `None` while the writer opens the database again after a failed commit.
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    queues: Vec<QueueMeta>,
}

impl Shared {
    fn database(&self) -> Option<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The queues and their outputs, as the store was opened with them.
    fn layout(&self) -> Vec<(String, Vec<String>)> {
        self.queues
            .iter()
            .map(|q| (q.name.clone(), q.outputs.clone()))
            .collect()
    }
}

/// Where every queue stands: per queue its next sequence number and oldest retained
/// message, and per output its cursor.
struct Positions {
    seqs: Vec<(u64, u64)>,
    cursors: Vec<Vec<u64>>,
    /// Messages that no output of the configuration will deliver, for the log: a queue
    /// or an output left out of it (see [`load`]).
    unserved: Vec<String>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The durable queues of one router.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use lis_router::store::QueueStore;
///
/// let dir = tempfile::tempdir()?;
/// let store = QueueStore::open(dir.path(), &[("q".into(), vec!["out".into()])])?;
/// let seq = store.appender("q")?.append("MSH|^~\\&|A".into()).await?;
/// let batch = store.read("q", store.cursor("q", "out")?, 10)?;
/// assert_eq!(batch[0].seq, seq);
/// store.advance("q", "out", seq + 1).await?.await??;
/// store.close();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QueueStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    cursors: HashMap<(String, String), u64>,
    writer: Option<JoinHandle<()>>,
}

impl QueueStore {
    /// Opens (or creates) `dir/router.redb` with `queues`, each with its outputs; starts
    /// the writer thread. A new output starts at the oldest message still stored.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the directory or the database cannot be opened (another
    /// router holding it included).
    pub fn open(dir: &Path, queues: &[(String, Vec<String>)]) -> Result<Self, StoreError> {
        crate::connector::create_dir_all_synced(dir).map_err(|error| StoreError::DataDir {
            path: dir.to_owned(),
            error,
        })?;
        let path = dir.join(STORE_FILE);
        let err = |e: redb::Error| StoreError::Database {
            path: path.clone(),
            error: Box::new(e),
        };
        let mut reserve = SpaceReserve::new(dir.join(RESERVE_FILE));
        let open = || -> Result<(Database, Positions), redb::Error> {
            let db = open_database(&path)?;
            let positions = load(&db, queues)?;
            Ok((db, positions))
        };
        // On a full disk opening may need a few pages of its own (a new queue's table, a
        // new output's cursor): the previous run's reserve is there for that, and set
        // aside again below. Only then, as the error shows that this router got past the
        // lock: another one running on this directory keeps its reserve.
        let (
            db,
            Positions {
                seqs,
                cursors,
                unserved,
            },
        ) = match open() {
            Err(e) if is_out_of_space(&e) && reserve.give_back_leftover() => {
                tracing::warn!(
                    "opening the queue store ran out of space ({e}); opening it again on \
                     the space of {}",
                    dir.join(RESERVE_FILE).display()
                );
                open()
            }
            opened => opened,
        }
        .map_err(err)?;
        // redb syncs its file, not the file's name: a store file created just now must
        // not vanish with the messages acknowledged from it in a power failure.
        crate::connector::sync_dir(dir).map_err(|error| StoreError::DataDir {
            path: dir.to_owned(),
            error,
        })?;
        for note in &unserved {
            tracing::warn!("{note}");
        }
        let disk_full = match reserve.take() {
            Ok(()) => false,
            Err(e) if is_full(&e) => {
                tracing::warn!(
                    "cannot set aside {} MiB of disk space in {}: {e}; new messages are \
                     refused until it can be, so that a full disk cannot stop deletes",
                    RESERVE_BYTES >> 20,
                    dir.display()
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    "cannot set aside {} MiB of disk space in {}: {e}; on a full disk \
                     the store may be unable to delete delivered messages",
                    RESERVE_BYTES >> 20,
                    dir.display()
                );
                false
            }
        };
        let metas = queues
            .iter()
            .zip(&seqs)
            .map(|((name, outputs), &(next, _))| QueueMeta {
                name: name.clone(),
                table: table_name(name),
                outputs: outputs.clone(),
                committed: watch::channel(next).0,
            })
            .collect();
        let opened_cursors = queues
            .iter()
            .zip(&cursors)
            .flat_map(|((name, outputs), at)| {
                outputs
                    .iter()
                    .zip(at)
                    .map(|(output, &cursor)| ((name.clone(), output.clone()), cursor))
            })
            .collect();
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            path,
            queues: metas,
        });
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || {
                Writer {
                    shared: writer_shared,
                    seqs,
                    cursors,
                    reserve,
                    disk_full,
                    reserve_tried: Instant::now(),
                    unsaved_moves: HashMap::new(),
                    failed_reopens: 0,
                }
                .run(rx);
            })
            .map_err(|error| StoreError::DataDir {
                path: dir.to_owned(),
                error,
            })?;
        Ok(Self {
            shared,
            tx,
            cursors: opened_cursors,
            writer: Some(writer),
        })
    }

    /// The store file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    fn queue_index(&self, queue: &str) -> Result<usize, StoreError> {
        self.shared
            .queues
            .iter()
            .position(|q| q.name == queue)
            .ok_or_else(|| StoreError::UnknownQueue(queue.to_owned()))
    }

    /// A handle that appends to `queue`.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownQueue`].
    pub fn appender(&self, queue: &str) -> Result<Appender, StoreError> {
        Ok(Appender {
            queue: self.queue_index(queue)?,
            tx: self.tx.clone(),
            source: None,
        })
    }

    /// Where `output` of `queue` stood when the store was opened.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownQueue`] for an unknown queue or output.
    pub fn cursor(&self, queue: &str, output: &str) -> Result<u64, StoreError> {
        self.cursors
            .get(&(queue.to_owned(), output.to_owned()))
            .copied()
            .ok_or_else(|| StoreError::UnknownQueue(format!("{queue}/{output}")))
    }

    /// Watches the queue's next sequence number (one past the last committed message).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownQueue`].
    pub fn watch(&self, queue: &str) -> Result<watch::Receiver<u64>, StoreError> {
        Ok(self.shared.queues[self.queue_index(queue)?]
            .committed
            .subscribe())
    }

    /// Up to `max` committed messages of `queue` from sequence `from` on.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when reading fails.
    pub fn read(
        &self,
        queue: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.read_bounded(queue, from, max, usize::MAX)
    }

    /// As [`QueueStore::read`], stopping before the messages' total size would exceed
    /// `max_bytes` (the first message is always read, whatever its size), so that a
    /// backlog of large messages is not copied into memory a batch at a time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when reading fails.
    pub fn read_bounded(
        &self,
        queue: &str,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let meta = &self.shared.queues[self.queue_index(queue)?];
        let err = |e: redb::Error| StoreError::Database {
            path: self.shared.path.clone(),
            error: Box::new(e),
        };
        let db = self.shared.database().ok_or(StoreError::Reopening)?;
        let txn = db.begin_read().map_err(|e| err(e.into()))?;
        let table = txn
            .open_table(TableDefinition::<u64, &[u8]>::new(&meta.table))
            .map_err(|e| err(e.into()))?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for entry in table.range(from..).map_err(|e| err(e.into()))?.take(max) {
            let (key, value) = entry.map_err(|e| err(e.into()))?;
            bytes = bytes.saturating_add(value.value().len());
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(StoredMessage {
                seq: key.value(),
                payload: value.value().to_vec(),
            });
        }
        Ok(out)
    }

    /// Records that `output` of `queue` has delivered everything before `next`; messages
    /// every output has delivered are deleted in the same transaction. The returned
    /// receiver resolves once that is committed (dropping it is fine: a lost cursor
    /// update only means a redelivery after a crash).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownQueue`] or [`StoreError::Closed`].
    pub async fn advance(
        &self,
        queue: &str,
        output: &str,
        next: u64,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let queue_index = self.queue_index(queue)?;
        let output_index = self.shared.queues[queue_index]
            .outputs
            .iter()
            .position(|o| o == output)
            .ok_or_else(|| StoreError::UnknownQueue(format!("{queue}/{output}")))?;
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Request::Advance {
                queue: queue_index,
                output: output_index,
                next,
                done,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Stops the writer after it has committed everything already submitted. Handles
    /// still held elsewhere ([`Appender`]s) keep it alive until they are dropped.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for QueueStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Appends to one queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Appender {
    queue: usize,
    tx: mpsc::Sender<Request>,
    source: Option<Arc<SourceState>>,
}

/// What the writer and a source's appender share (see [`Appender::source`]).
#[derive(Debug, Default)]
struct SourceState {
    /// Set for good by the writer when a commit of this source fails.
    halted: AtomicBool,
}

impl Appender {
    /// An appender for one source of ordered messages (one connection, say) that may
    /// submit a message before the previous one's commit is known. Once a commit of
    /// this source fails, every later submission of it fails too
    /// ([`StoreError::SourceHalted`]), including those already on their way: otherwise
    /// a later message could be stored and the failed one, sent again, land after it.
    /// The source then starts over with a new appender (a new connection): a sender
    /// that pipelines may have sent more before it read the refusal, and nothing here
    /// can tell those from a resend.
    #[must_use]
    pub fn source(&self) -> Self {
        Self {
            queue: self.queue,
            tx: self.tx.clone(),
            source: Some(Arc::default()),
        }
    }

    /// Hands `payload` to the writer; the receiver yields its sequence number once the
    /// transaction holding it is durably committed. Submissions through one appender
    /// are stored in submission order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Closed`] when the store is shutting down.
    pub async fn submit(
        &self,
        payload: Bytes,
    ) -> Result<oneshot::Receiver<Result<u64, StoreError>>, StoreError> {
        self.submit_all(vec![payload]).await
    }

    /// Hands `payloads` to the writer as one unit: they are committed in the same
    /// transaction (all or none) with consecutive sequence numbers in the given order,
    /// so no other submission lands between them and a failed commit never leaves the
    /// later ones stored without the earlier ones. The receiver yields the first
    /// sequence number (for an empty `payloads`, the next one to be used).
    ///
    /// # Errors
    ///
    /// [`StoreError::Closed`] when the store is shutting down.
    pub async fn submit_all(
        &self,
        payloads: Vec<Bytes>,
    ) -> Result<oneshot::Receiver<Result<u64, StoreError>>, StoreError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Request::Append {
                queue: self.queue,
                payloads,
                done,
                halted: self.source.clone(),
            })
            .await
            .map_err(|_| StoreError::Closed)?;

        Ok(rx)
    }

    /// Appends `payload` and waits for the durable commit.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store is closed or the commit failed.
    pub async fn append(&self, payload: Bytes) -> Result<u64, StoreError> {
        self.submit(payload)
            .await?
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

impl Request {
    fn is_halted(&self) -> bool {
        matches!(self, Self::Append { halted: Some(s), .. } if s.halted.load(Ordering::Acquire))
    }

    /// Answers the request with `error`; a failed append halts its source.
    fn fail(self, error: StoreError) {
        match self {
            Self::Append { done, halted, .. } => {
                if let Some(source) = halted {
                    source.halted.store(true, Ordering::Release);
                }
                let _ = done.send(Err(error));
            }
            Self::Advance { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// Fails every append of the batch with `error()`, keeping its cursor moves.
fn refuse_appends(batch: &mut Vec<Request>, error: impl Fn() -> StoreError) {
    let (appends, moves): (Vec<_>, Vec<_>) = batch
        .drain(..)
        .partition(|r| matches!(r, Request::Append { .. }));
    for append in appends {
        append.fail(error());
    }
    *batch = moves;
}

/// How the table of a queue is named: this, then the queue's name.
const QUEUE_TABLE_PREFIX: &str = "queue:";

fn table_name(queue: &str) -> String {
    format!("{QUEUE_TABLE_PREFIX}{queue}")
}

/// Sequence numbers (and cursors) a store may hold: below 2^63, so that the arithmetic on
/// them cannot overflow.
const SEQUENCE_LIMIT: u64 = 1 << 63;

/// Reads where every queue and output of `queues` stands, recording cursors for outputs
/// new to the store (they start at the oldest message still stored).
///
/// It also notes, for the log, stored messages that no output of `queues` will deliver:
/// those of a queue the configuration no longer has (renamed, or its connections left
/// out), which stay stored but unseen; those an output left out of the configuration had
/// not delivered, which go once the configured outputs have delivered them; and those an
/// output back in the configuration missed while it was left out, deleted meanwhile.
fn load(db: &Database, queues: &[(String, Vec<String>)]) -> Result<Positions, redb::Error> {
    let mut positions = Positions {
        seqs: Vec::with_capacity(queues.len()),
        cursors: Vec::with_capacity(queues.len()),
        unserved: Vec::new(),
    };
    let txn = db.begin_write()?;
    {
        let mut cursor_table = txn.open_table(CURSORS)?;
        for (name, outputs) in queues {
            let messages = txn.open_table(TableDefinition::<u64, &[u8]>::new(&table_name(name)))?;
            let first = messages.first()?.map(|(k, _)| k.value());
            let last = messages.last()?.map(|(k, _)| k.value());
            // Sequence numbers are never reused. Once every output has delivered
            // everything the table is empty, and the cursors (of every output the
            // queue ever had) remember where the sequence stood.
            let highest = highest_cursor(&cursor_table, name)?;
            // The router counts from 0, one number a message, and cannot get near 2^63 (a
            // million messages a second for 290,000 years). A store with such a number was
            // damaged or written by other means; counting on from it would overflow.
            if let Some(seq) = [last.unwrap_or(0), highest]
                .into_iter()
                .find(|&seq| seq >= SEQUENCE_LIMIT)
            {
                return Err(redb::Error::Corrupted(format!(
                    "queue `{name}` holds sequence number {seq}, beyond any the router writes \
                     (below 2^63); the file is damaged or was not written by the router"
                )));
            }
            let next = last.map_or(0, |l| l + 1).max(highest);
            let oldest = first.unwrap_or(next);
            let mut queue_cursors = Vec::with_capacity(outputs.len());
            for output in outputs {
                let key = cursor_key(name, output);
                let stored = cursor_table.get(key.as_str())?.map(|v| v.value());
                let cursor = stored.map_or(oldest, |c| c.clamp(oldest, next));
                if let Some(missed) = stored.map(|c| cursor - c).filter(|&n| n > 0) {
                    positions.unserved.push(format!(
                        "output `{output}` of queue `{name}` is back in the configuration, \
                         but {missed} message(s) it had not delivered were deleted while it \
                         was left out (the other outputs had delivered them); it goes on \
                         from message {cursor}"
                    ));
                }
                if stored != Some(cursor) {
                    cursor_table.insert(key.as_str(), cursor)?;
                }
                queue_cursors.push(cursor);
            }
            // Said while the output's backlog is still whole (nothing past its cursor
            // deleted yet): afterwards its cursor lies behind the oldest message, and
            // the messages since were never its to deliver.
            for (output, at) in stored_outputs(&cursor_table, name)? {
                if (oldest..next).contains(&at) && !outputs.contains(&output) {
                    positions.unserved.push(format!(
                        "output `{output}` of queue `{name}` is not in the configuration: \
                         the {} stored message(s) it has not delivered are no longer kept \
                         for it, and are deleted once the configured outputs have delivered \
                         them",
                        next - at
                    ));
                }
            }
            positions.seqs.push((next, oldest));
            positions.cursors.push(queue_cursors);
        }
        for table in txn.list_tables()? {
            let Some(queue) = table.name().strip_prefix(QUEUE_TABLE_PREFIX) else {
                continue;
            };
            if queues.iter().any(|(name, _)| name == queue) {
                continue;
            }
            let held = txn
                .open_table(TableDefinition::<u64, &[u8]>::new(table.name()))?
                .len()?;
            if held > 0 {
                positions.unserved.push(format!(
                    "the queue store holds {held} undelivered message(s) of queue `{queue}`, \
                     which no connection of the configuration uses (a renamed queue?): they \
                     stay stored, and are delivered once a configuration with that queue runs"
                ));
            }
        }
    }
    txn.commit()?;
    Ok(positions)
}

fn cursor_key(queue: &str, output: &str) -> String {
    format!("{queue}\u{1f}{output}")
}

/// Every output of `queue` with a stored cursor, configured or not, and its cursor.
fn stored_outputs(
    table: &redb::Table<'_, &'static str, u64>,
    queue: &str,
) -> Result<Vec<(String, u64)>, redb::StorageError> {
    let prefix = cursor_key(queue, "");
    let mut found = Vec::new();
    for entry in table.range(prefix.as_str()..)? {
        let (key, value) = entry?;
        let Some(output) = key.value().strip_prefix(&prefix) else {
            break;
        };
        found.push((output.to_owned(), value.value()));
    }
    Ok(found)
}

/// The highest cursor stored for any output of `queue` (0 without any).
fn highest_cursor(
    table: &redb::Table<'_, &'static str, u64>,
    queue: &str,
) -> Result<u64, redb::StorageError> {
    Ok(stored_outputs(table, queue)?
        .into_iter()
        .map(|(_, cursor)| cursor)
        .max()
        .unwrap_or(0))
}

/// Opens (or creates) the store file with a bounded page cache.
fn open_database(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

/// Moves requests already waiting into `batch`, up to [`MAX_BATCH`].
fn take_pending(rx: &mut mpsc::Receiver<Request>, batch: &mut Vec<Request>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
}

fn appends(batch: &[Request]) -> usize {
    batch
        .iter()
        .filter(|r| matches!(r, Request::Append { .. }))
        .count()
}

struct Writer {
    shared: Arc<Shared>,
    /// Per queue: next sequence number and oldest retained message.
    seqs: Vec<(u64, u64)>,
    /// Per queue, per output.
    cursors: Vec<Vec<u64>>,
    reserve: SpaceReserve,
    /// Set when a commit ran out of space: appends are refused, so that what the
    /// outputs' cursor moves free is not taken again, until the reserve is back.
    disk_full: bool,
    /// When the writer last tried to set the reserve aside.
    reserve_tried: Instant,
    /// Per queue and output, the furthest cursor move whose commit failed. The output
    /// does not send it again (one that delivered its queue to the end sends no later
    /// move), and on a full disk the deletes it brings are what frees space; so it goes
    /// with the next request's commit.
    unsaved_moves: HashMap<(usize, usize), u64>,
    /// Reopens that failed since the store was last open; only the first is logged as
    /// an error, so a disk that stays unwritable does not flood the log.
    failed_reopens: u32,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut last_appends = 0;
        while let Some(first) = self.next_request(&mut rx) {
            batch.push(first);
            take_pending(&mut rx, &mut batch);
            if last_appends >= GATHER_MIN_APPENDS {
                let deadline = Instant::now() + GATHER_WINDOW;
                while appends(&batch) < last_appends
                    && batch.len() < MAX_BATCH
                    && Instant::now() < deadline
                {
                    std::thread::sleep(GATHER_POLL);
                    take_pending(&mut rx, &mut batch);
                }
            }
            last_appends = appends(&batch);
            self.commit(&mut batch);
        }
    }

    /// Waits for the next request; None once every sender is gone. While the store is
    /// closed after a failed reopen it also tries to reopen every [`REOPEN_RETRY`]:
    /// outputs only read (and cannot until then), so with no input sending anything no
    /// request would come to prompt another try, and the queues would stall for good.
    fn next_request(&mut self, rx: &mut mpsc::Receiver<Request>) -> Option<Request> {
        loop {
            if self.shared.database().is_some() {
                return rx.blocking_recv();
            }
            let deadline = Instant::now() + REOPEN_RETRY;
            while Instant::now() < deadline {
                match rx.try_recv() {
                    Ok(request) => return Some(request),
                    Err(mpsc::error::TryRecvError::Disconnected) => return None,
                    Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(REOPEN_POLL),
                }
            }
            if self.reopen_logged() {
                // The cursor moves that failed with the store go in now: an output
                // that had delivered its queue to the end sends no later one.
                self.commit(&mut Vec::new());
            }
        }
    }

    /// Commits the batch and answers every request in it: all succeed or all fail.
    fn commit(&mut self, batch: &mut Vec<Request>) {
        if batch.iter().any(Request::is_halted) {
            let (halted, kept): (Vec<_>, Vec<_>) = batch.drain(..).partition(Request::is_halted);
            for request in halted {
                if let Request::Append { done, .. } = request {
                    let _ = done.send(Err(StoreError::SourceHalted));
                }
            }
            *batch = kept;
        }
        // Appends refused below never reach `try_write`, which reopens the store after a
        // failed reopen; until it is open the outputs cannot read, so nothing would free
        // space and the disk would stay full for good. So any request tries again.
        if self.disk_full && self.shared.database().is_none() {
            self.reopen_logged();
        }
        if self.disk_full && self.reserve_tried.elapsed() >= RESERVE_RETRY {
            self.reserve_tried = Instant::now();
            if self.retake_reserve() {
                self.disk_full = false;
                tracing::warn!("disk space is back: storing new messages again");
            }
        }
        if self.disk_full {
            refuse_appends(batch, || StoreError::DiskFull);
        }
        for ((queue, output), next) in self.unsaved_moves.drain() {
            // Nobody waits for the answer: a failure records the move again.
            let (done, _) = oneshot::channel();
            batch.push(Request::Advance {
                queue,
                output,
                next,
                done,
            });
        }
        if batch.is_empty() {
            return;
        }
        let saved = (self.seqs.clone(), self.cursors.clone());
        let error = match self.try_write(batch) {
            Ok(()) => return,
            Err(error) => error,
        };
        tracing::error!("queue store commit failed: {error}");
        (self.seqs, self.cursors) = saved;
        let why = error.to_string();
        if is_out_of_space(&error) && !self.disk_full {
            self.disk_full = true;
            self.reserve_tried = Instant::now();
            let released = self.reserve.release();
            tracing::warn!(
                "disk full: refusing new messages until outputs have delivered enough to \
                 free space{}",
                if released {
                    format!(" (gave back the {} MiB reserve)", RESERVE_BYTES >> 20)
                } else {
                    String::new()
                }
            );
            // The cursor moves delete delivered messages: committed alone, on the space
            // the reserve gave back, they are what lets the queue shrink.
            refuse_appends(batch, || StoreError::CommitFailed(why.clone()));
            if !batch.is_empty() && self.reopen_logged() {
                let saved = (self.seqs.clone(), self.cursors.clone());
                match self.try_write(batch) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!("queue store commit of cursor moves failed: {e}");
                        (self.seqs, self.cursors) = saved;
                    }
                }
            }
        }
        for request in batch.drain(..) {
            if let Request::Advance {
                queue,
                output,
                next,
                ..
            } = request
            {
                let unsaved = self.unsaved_moves.entry((queue, output)).or_default();
                *unsaved = (*unsaved).max(next);
            }
            request.fail(StoreError::CommitFailed(why.clone()));
        }
        self.reopen_logged();
    }

    /// Sets the reserve aside again if the disk has room for it. redb gives the space of
    /// deleted messages back to the file system (by shortening its file) only in a later
    /// commit, so with nothing else to commit an empty transaction does that first.
    fn retake_reserve(&mut self) -> bool {
        if self.reserve.take().is_ok() {
            return true;
        }
        let Some(db) = self.shared.database() else {
            return false;
        };
        for _ in 0..2 {
            let empty = db.begin_write().map(redb::WriteTransaction::commit);
            if !matches!(empty, Ok(Ok(()))) {
                drop(db);
                self.reopen_logged();
                return false;
            }
        }
        self.reserve.take().is_ok()
    }

    /// Writes the batch and, once committed, answers every request in it.
    fn try_write(&mut self, batch: &mut Vec<Request>) -> Result<(), redb::Error> {
        let db = match self.shared.database() {
            Some(db) => db,
            None => self.reopen()?,
        };
        let mut firsts = self.write(&db, batch)?.into_iter();
        for request in batch.drain(..) {
            match request {
                Request::Append { done, .. } => {
                    let _ = done.send(firsts.next().ok_or(StoreError::Closed));
                }
                Request::Advance { done, .. } => {
                    let _ = done.send(Ok(()));
                }
            }
        }
        self.publish();
        Ok(())
    }

    /// Opens the database again after a failed commit: redb refuses every call after an
    /// I/O error until then, so without this a disk that was full for a moment would stop
    /// the router for good. True if it is open.
    fn reopen_logged(&mut self) -> bool {
        match self.reopen() {
            Ok(_) => {
                match std::mem::take(&mut self.failed_reopens) {
                    0 => tracing::warn!("queue store reopened"),
                    n => tracing::warn!("queue store reopened after {} failed attempts", n),
                }
                true
            }
            Err(e) => {
                self.failed_reopens += 1;
                if self.failed_reopens == 1 {
                    tracing::error!(
                        "queue store cannot be reopened yet ({e}); trying again every {} ms \
                         and with the next request",
                        REOPEN_RETRY.as_millis()
                    );
                } else {
                    tracing::debug!("queue store cannot be reopened yet ({e})");
                }
                false
            }
        }
    }

    /// Tells the outputs how far each queue is committed.
    fn publish(&self) {
        for (meta, (next, _)) in self.shared.queues.iter().zip(&self.seqs) {
            meta.committed.send_if_modified(|current| {
                let changed = *current != *next;
                *current = *next;
                changed
            });
        }
    }

    /// Closes the database and opens it again, then reloads where every queue and
    /// output stands from the file (a failed commit may still have reached the disk).
    /// Until that succeeds readers get [`StoreError::Reopening`].
    fn reopen(&mut self) -> Result<Arc<Database>, redb::Error> {
        let old = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut old) = old {
            // Readers hold the handle for one read only; the file lock is released with
            // the last handle.
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => break drop(db),
                    Err(held) => {
                        old = held;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        let db = open_database(&self.shared.path)?;
        let Positions { seqs, cursors, .. } = load(&db, &self.shared.layout())?;
        self.seqs = seqs;
        self.cursors = cursors;
        self.publish();
        let db = Arc::new(db);
        *self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&db));
        Ok(db)
    }

    /// Writes the batch in one transaction; returns the first sequence number given to
    /// each append, in order.
    fn write(&mut self, db: &Database, batch: &[Request]) -> Result<Vec<u64>, redb::Error> {
        let txn = db.begin_write()?;
        let mut firsts = Vec::with_capacity(batch.len());
        let mut cursor_touched = vec![false; self.shared.queues.len()];
        {
            let mut tables = HashMap::new();
            for request in batch {
                match *request {
                    Request::Append {
                        queue,
                        ref payloads,
                        ..
                    } => {
                        let table = match tables.entry(queue) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                e.insert(txn.open_table(TableDefinition::<u64, &[u8]>::new(
                                    &self.shared.queues[queue].table,
                                ))?)
                            }
                        };
                        firsts.push(self.seqs[queue].0);
                        for payload in payloads {
                            let seq = self.seqs[queue].0;
                            table.insert(seq, payload.as_ref())?;
                            self.seqs[queue].0 = seq + 1;
                        }
                    }
                    Request::Advance {
                        queue,
                        output,
                        next,
                        ..
                    } => {
                        let cursor = &mut self.cursors[queue][output];
                        if next > *cursor {
                            *cursor = next.min(self.seqs[queue].0);
                            cursor_touched[queue] = true;
                        }
                    }
                }
            }

            let mut cursor_table = txn.open_table(CURSORS)?;
            for (queue, meta) in self.shared.queues.iter().enumerate() {
                if !cursor_touched[queue] {
                    continue;
                }
                for (output, name) in meta.outputs.iter().enumerate() {
                    cursor_table.insert(
                        cursor_key(&meta.name, name).as_str(),
                        self.cursors[queue][output],
                    )?;
                }
                // Delete what every output has delivered.
                let min = self.cursors[queue].iter().copied().min().unwrap_or(0);
                let oldest = self.seqs[queue].1;
                if min > oldest {
                    let table = match tables.entry(queue) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => e.insert(
                            txn.open_table(TableDefinition::<u64, &[u8]>::new(&meta.table))?,
                        ),
                    };
                    table.retain_in(oldest..min, |_, _| false)?;
                    self.seqs[queue].1 = min;
                }
            }
        }
        txn.commit()?;
        Ok(firsts)
    }
}
