//! The node's durable message store: SQLite in WAL mode, one writer thread with group commit,
//! a small pool of reader connections.
//!
//! ```text
//!  submit() ──mpsc──► writer thread: take 1 (blocking) + up to BATCH-1 more that are waiting
//!     ▲                     │ BEGIN; INSERT … ON CONFLICT DO NOTHING (each); COMMIT
//!     │                     │   (synchronous=FULL: the WAL is fsynced before COMMIT returns)
//!     └──── oneshot ◄───────┤ only now: answer every submitter in the batch,
//!                           └─► update tips, broadcast to live subscribers (in sequence order)
//! ```
//!
//! Why one writer: SQLite serialises writers anyway, and a single thread that commits whatever
//! queued up during the previous commit turns N concurrent submissions into one fsync, which is
//! how a durable store keeps up with a page-cache one (see `scripts/bench-node.sh`). Nobody is
//! answered before the transaction holding their message has committed; a failed commit answers
//! the whole batch with the error and leaves nothing visible.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use protocol::tangle::{Address, Message, MessageId};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use crate::metrics::Metrics;

/// Most submissions committed in one transaction.
const MAX_BATCH: usize = 4096;
/// Submissions waiting for the writer before `submit` itself waits (backpressure).
const QUEUE_DEPTH: usize = 16 * 1024;
/// Reader connections (lists, gets, subscription replays run concurrently with the writer).
const READERS: usize = 4;
/// How many of the newest messages tips are tracked among (see the spec, "Tips").
pub const TIP_WINDOW: u64 = 4096;
/// How many tips `GET /tips` offers: as many parents as a message may name.
pub const TIPS_OFFERED: usize = protocol::tangle::MAX_PARENTS;

/// How hard the store flushes before it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced at every commit, so an acknowledged message
    /// survives a power cut.
    Full,
    /// `synchronous=NORMAL`: committed to the WAL in the OS page cache; survives a killed
    /// process (what NATS JetStream's file store acknowledges), not a power cut.
    Normal,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub durability: Durability,
    /// Refuse to grow the database file beyond this many bytes (SQLite `max_page_count`);
    /// writes beyond it fail as [`StoreError::Full`], exactly like a full disk.
    pub max_bytes: Option<u64>,
    /// Capacity of the live broadcast: how far a subscriber may fall behind before it is
    /// dropped.
    pub subscriber_buffer: usize,
}

/// A message as stored: the sequence the node gave it and its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub id: MessageId,
    pub address: Address,
    pub bytes: Vec<u8>,
    /// Its JSON form, made once and shared by every live subscriber it is sent to.
    json: std::sync::OnceLock<String>,
}

impl StoredMessage {
    pub fn new(seq: u64, id: MessageId, address: Address, bytes: Vec<u8>) -> Self {
        Self { seq, id, address, bytes, json: std::sync::OnceLock::new() }
    }

    /// The JSON body `GET /api/v1/messages/{id}` answers, computed at most once.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            // A struct of strings and an integer always serialises.
            serde_json::to_string(&crate::api::MessageView::from(self)).unwrap_or_default()
        })
    }
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly stored with this sequence.
    Stored { seq: u64 },
    /// Already present with this sequence; nothing written.
    Duplicate { seq: u64 },
}

/// Why the store could not do something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store is full (disk or configured size cap reached)")]
    Full,
    #[error("the store is shutting down")]
    Closed,
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("store failure: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Full,
            _ => Self::Internal(err.to_string()),
        }
    }
}

/// A message validated by the API and ready to be written.
#[derive(Debug)]
struct WriteRequest {
    id: MessageId,
    address: Address,
    parents: Vec<MessageId>,
    bytes: Vec<u8>,
    reply: oneshot::Sender<Result<SubmitOutcome, StoreError>>,
}

/// Handle to the store, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writes: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: ReaderPool,
    tips: Arc<Mutex<TipSet>>,
    live: broadcast::Sender<Arc<StoredMessage>>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS messages (
        seq     INTEGER PRIMARY KEY,   -- the per-node sequence: rowid, assigned in commit order
        id      BLOB NOT NULL UNIQUE,  -- SHA3-256 of body
        address BLOB NOT NULL,
        body    BLOB NOT NULL          -- the canonical encoding, exactly as validated
    );
    CREATE INDEX IF NOT EXISTS messages_by_address ON messages(address, seq);
";

impl Store {
    /// Opens (creating if needed) the store, rebuilds the tips, and starts the writer thread.
    pub fn open(options: &StoreOptions, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: options.path.clone(), reason };
        if let Some(parent) = options.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let writer = Connection::open(&options.path).map_err(|e| open_err(e.to_string()))?;
        configure_writer(&writer, options).map_err(|e| open_err(e.to_string()))?;
        let readers = ReaderPool::open(&options.path).map_err(|e| open_err(e.to_string()))?;
        let tips =
            Arc::new(Mutex::new(rebuild_tips(&writer).map_err(|e| open_err(e.to_string()))?));
        let (live, _) = broadcast::channel(options.subscriber_buffer.max(1));
        let (writes, queue) = mpsc::channel(QUEUE_DEPTH);
        let thread = {
            let tips = Arc::clone(&tips);
            let live = live.clone();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || write_loop(writer, queue, &tips, &live, &metrics))
                .map_err(|e| open_err(e.to_string()))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writes: Mutex::new(Some(writes)),
                writer: Mutex::new(Some(thread)),
                readers,
                tips,
                live,
            }),
        })
    }

    /// Stores a decoded, validated message; returns once it is committed (or was already).
    pub async fn submit(
        &self,
        message: &Message,
        bytes: Vec<u8>,
        id: MessageId,
    ) -> Result<SubmitOutcome, StoreError> {
        let sender = lock(&self.inner.writes).clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest {
            id,
            address: message.address(),
            parents: message.parents().to_vec(),
            bytes,
            reply,
        };
        sender.send(request).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores several validated messages, queued in order so they commit together when the
    /// writer is free; each result arrives once the transaction holding it has committed.
    pub async fn submit_many(
        &self,
        messages: Vec<(Message, Vec<u8>, MessageId)>,
    ) -> Vec<Result<SubmitOutcome, StoreError>> {
        let Some(sender) = lock(&self.inner.writes).clone() else {
            return messages.iter().map(|_| Err(StoreError::Closed)).collect();
        };
        let mut answers = Vec::with_capacity(messages.len());
        for (message, bytes, id) in messages {
            let (reply, answer) = oneshot::channel();
            let request = WriteRequest {
                id,
                address: message.address(),
                parents: message.parents().to_vec(),
                bytes,
                reply,
            };
            answers.push(match sender.send(request).await {
                Ok(()) => Some(answer),
                Err(_) => None,
            });
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Some(answer) => answer.await.unwrap_or(Err(StoreError::Closed)),
                None => Err(StoreError::Closed),
            });
        }
        results
    }

    /// A message by id.
    pub async fn get(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.inner
            .readers
            .run(move |conn| {
                conn.prepare_cached("SELECT seq, id, address, body FROM messages WHERE id = ?1")?
                    .query_row(params![id.0.as_slice()], row_to_message)
                    .optional()
            })
            .await
    }

    /// Up to `limit` messages of `addresses` with sequence > `after`, in sequence order.
    pub async fn list(
        &self,
        addresses: Vec<Address>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner
            .readers
            .run(move |conn| {
                let mut out = Vec::new();
                let mut statement = conn.prepare_cached(
                    "SELECT seq, id, address, body FROM messages \
                     WHERE address = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                // One indexed range scan per address, merged by sequence: stays on the index
                // however many other addresses the node holds.
                for address in &addresses {
                    let rows = statement.query_map(
                        params![address.0.as_slice(), seq_to_sql(after), limit as i64],
                        row_to_message,
                    )?;
                    for row in rows {
                        out.push(row?);
                    }
                }
                out.sort_unstable_by_key(|m| m.seq);
                out.truncate(limit);
                Ok(out)
            })
            .await
    }

    /// The newest tips, newest first; the genesis when the node has none.
    pub fn tips(&self) -> Vec<MessageId> {
        let tips = lock(&self.inner.tips).newest(TIPS_OFFERED);
        if tips.is_empty() { vec![MessageId::GENESIS] } else { tips }
    }

    /// The highest sequence stored so far (0 on an empty node).
    pub fn last_seq(&self) -> u64 {
        lock(&self.inner.tips).last_seq
    }

    /// Receives every message committed from now on, in sequence order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredMessage>> {
        self.inner.live.subscribe()
    }

    /// Stops accepting submissions, lets the writer commit what is queued, and waits for it.
    pub fn close(&self) {
        lock(&self.inner.writes).take();
        if let Some(thread) = lock(&self.inner.writer).take()
            && thread.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// Locks a mutex, recovering from poisoning: every guarded value here stays consistent even if a
/// holder panicked mid-way (they are replaced whole or are append-only).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn configure_writer(conn: &Connection, options: &StoreOptions) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    if let Some(max_bytes) = options.max_bytes {
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let pages = (max_bytes / page_size.max(512) as u64).max(1);
        conn.pragma_update(None, "max_page_count", pages as i64)?;
    }
    Ok(())
}

/// SQLite integers are signed; sequences start at 1 and cursors above i64::MAX match nothing.
fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn row_to_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let seq: i64 = row.get(0)?;
    let id: [u8; 32] = row.get(1)?;
    let address: [u8; 32] = row.get(2)?;
    Ok(StoredMessage::new(
        u64::try_from(seq).unwrap_or(0),
        MessageId(id),
        Address(address),
        row.get(3)?,
    ))
}

fn rebuild_tips(conn: &Connection) -> rusqlite::Result<TipSet> {
    let mut tips = TipSet::default();
    let mut statement = conn.prepare(
        "SELECT seq, id, body FROM (SELECT seq, id, body FROM messages ORDER BY seq DESC LIMIT ?1) \
         ORDER BY seq",
    )?;
    let rows = statement.query_map(params![TIP_WINDOW as i64], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, [u8; 32]>(1)?, row.get::<_, Vec<u8>>(2)?))
    })?;
    for row in rows {
        let (seq, id, body) = row?;
        // Bodies were validated before they were stored; one that no longer decodes would be
        // disk corruption, and is skipped for tips rather than stopping the node.
        let parents = Message::decode(&body).map(|m| m.parents().to_vec()).unwrap_or_default();
        tips.add(u64::try_from(seq).unwrap_or(0), MessageId(id), &parents);
    }
    Ok(tips)
}

/// Messages among the newest [`TIP_WINDOW`] that nothing approves yet.
#[derive(Debug, Default)]
struct TipSet {
    by_seq: BTreeMap<u64, MessageId>,
    seq_of: HashMap<MessageId, u64>,
    last_seq: u64,
}

impl TipSet {
    fn add(&mut self, seq: u64, id: MessageId, parents: &[MessageId]) {
        for parent in parents {
            if let Some(parent_seq) = self.seq_of.remove(parent) {
                self.by_seq.remove(&parent_seq);
            }
        }
        self.by_seq.insert(seq, id);
        self.seq_of.insert(id, seq);
        self.last_seq = self.last_seq.max(seq);
        let oldest_kept = self.last_seq.saturating_sub(TIP_WINDOW - 1);
        while let Some(entry) = self.by_seq.first_entry() {
            if *entry.key() >= oldest_kept {
                break;
            }
            let id = entry.remove();
            self.seq_of.remove(&id);
        }
    }

    fn newest(&self, n: usize) -> Vec<MessageId> {
        self.by_seq.values().rev().take(n).copied().collect()
    }
}

fn write_loop(
    mut conn: Connection,
    mut queue: mpsc::Receiver<WriteRequest>,
    tips: &Mutex<TipSet>,
    live: &broadcast::Sender<Arc<StoredMessage>>,
    metrics: &Metrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = commit_batch(&mut conn, &batch);
        metrics.observe_commit(batch.len(), started.elapsed());
        match result {
            Ok(outcomes) => {
                let mut stored = Vec::new();
                {
                    let mut tips = lock(tips);
                    for (request, outcome) in batch.iter().zip(&outcomes) {
                        if let SubmitOutcome::Stored { seq } = outcome {
                            tips.add(*seq, request.id, &request.parents);
                            stored.push(*seq);
                        }
                    }
                }
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    if let SubmitOutcome::Stored { seq } = outcome {
                        // No receivers is fine: nobody is subscribed right now.
                        let _ = live.send(Arc::new(StoredMessage::new(
                            seq,
                            request.id,
                            request.address,
                            request.bytes,
                        )));
                    }
                    // The submitter may have given up (client gone); the message is stored anyway.
                    let _ = request.reply.send(Ok(outcome));
                }
                if let Some(last) = stored.last() {
                    metrics.last_seq.set(i64::try_from(*last).unwrap_or(i64::MAX));
                }
            }
            Err(err) => {
                match &err {
                    StoreError::Full => {
                        tracing::warn!(batch = batch.len(), "store full; batch refused")
                    }
                    other => tracing::error!(error = %other, batch = batch.len(), "commit failed"),
                }
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(err.clone()));
                }
            }
        }
    }
    // Queue closed and drained: every accepted submission has been answered.
    if let Err((_, err)) = conn.close() {
        tracing::error!(error = %err, "closing the store");
    }
}

/// Writes a batch in one transaction. On any error the transaction rolls back (dropping an
/// uncommitted `Transaction` rolls back), so a failed batch leaves no trace.
fn commit_batch(
    conn: &mut Connection,
    batch: &[WriteRequest],
) -> Result<Vec<SubmitOutcome>, StoreError> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (id, address, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT(id) DO NOTHING RETURNING seq",
        )?;
        let mut existing = tx.prepare_cached("SELECT seq FROM messages WHERE id = ?1")?;
        for request in batch {
            let inserted: Option<i64> = insert
                .query_row(
                    params![request.id.0.as_slice(), request.address.0.as_slice(), request.bytes],
                    |row| row.get(0),
                )
                .optional()?;
            let outcome = match inserted {
                Some(seq) => SubmitOutcome::Stored { seq: u64::try_from(seq).unwrap_or(0) },
                None => {
                    let seq: i64 =
                        existing.query_row(params![request.id.0.as_slice()], |row| row.get(0))?;
                    SubmitOutcome::Duplicate { seq: u64::try_from(seq).unwrap_or(0) }
                }
            };
            outcomes.push(outcome);
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Read-only connections shared by request handlers; blocking SQLite calls run on tokio's
/// blocking pool, never on the async workers.
#[derive(Debug)]
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    path: PathBuf,
}

impl ReaderPool {
    fn open(path: &Path) -> rusqlite::Result<Self> {
        let mut idle = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            idle.push(Self::connect(path)?);
        }
        Ok(Self {
            idle: Mutex::new(idle),
            permits: Semaphore::new(READERS),
            path: path.to_path_buf(),
        })
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| StoreError::Closed)?;
        let conn = match lock(&self.idle).pop() {
            Some(conn) => conn,
            None => Self::connect(&self.path)?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?;
        lock(&self.idle).push(conn);
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tips_drop_approved_messages_and_age_out_of_the_window() {
        let mut tips = TipSet::default();
        let id = |n: u8| MessageId([n; 32]);
        tips.add(1, id(1), &[MessageId::GENESIS]);
        tips.add(2, id(2), &[id(1)]);
        tips.add(3, id(3), &[id(1)]); // a parent that is no longer a tip changes nothing
        assert_eq!(tips.newest(8), vec![id(3), id(2)]);
        tips.add(4, id(4), &[id(2), id(3), id(99)]); // unknown parent 99 is ignored
        assert_eq!(tips.newest(8), vec![id(4)]);
        tips.add(4 + TIP_WINDOW, id(5), &[id(77)]);
        assert_eq!(tips.newest(8), vec![id(5)], "message 4 aged out of the window");
        assert_eq!(tips.seq_of.len(), 1);
    }
}
