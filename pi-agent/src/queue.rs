//! The outbox: a bounded, durable, strictly ordered queue of messages waiting for a node.
//!
//! Every message the agent produces goes through here before it is sent, so a crash, a power
//! cut or a week without internet loses nothing that was accepted, and messages leave in the
//! order they were made (a channel's keyload must reach the tangle before the data it unlocks).
//!
//! # On disk
//!
//! ```text
//!  queue/
//!    00000000000000000007.seg   append-only records: u32 len ‖ u32 crc32(body) ‖ body
//!    00000000000000000008.seg   body = u8 version(1) ‖ u8 kind ‖ u8 flags ‖ u64 seq ‖
//!    head                              u64 time_ms ‖ u64 reading_at ‖ address(32) ‖ payload
//!                                "HEAD" ‖ u64 segment ‖ u64 offset ‖ u64 next seq ‖ u64 reading_at
//! ```
//!
//! Everything one telegram produced (its messages on every tier, checkpoints) is one *batch*,
//! written with one `fsync` before [`Outbox::push`] returns; its last record carries the
//! batch-end flag and the meter time of the telegram. A crash mid-append leaves a torn tail,
//! recognised by its length, checksum or a missing batch end, and the whole incomplete batch is
//! cut off on the next open — so after a restart the outbox says exactly which telegram was the
//! last one accepted ([`Outbox::last_reading_at`]), and a replayed capture resumes right after
//! it: no reading lost, none published twice. The head is replaced atomically (write, fsync, rename, fsync the directory) after a
//! node acknowledged the message; a crash between the two resends one message, which the node
//! reports as a duplicate (same address, same payload). Segments roll over at
//! [`SEGMENT_BYTES`] and are deleted once fully sent.
//!
//! # Bound
//!
//! Up to `capacity` messages wait. When full, new *data* messages are refused and counted
//! (old readings are kept: they are the ones nothing else has); control messages (rotations,
//! keyloads, checkpoints, notices, receipts) are always accepted, because dropping one would
//! break a provider's access or a revocation.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::state::write_atomically;

/// A segment is closed once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const RECORD_VERSION: u8 = 1;
const HEAD_MAGIC: &[u8; 4] = b"HEAD";
const HEAD_LEN: usize = 36;
const BATCH_END: u8 = 1;
/// Largest record body accepted when reading back (a tangle payload is at most 32 KiB).
const MAX_BODY: u32 = 64 * 1024;

/// What a queued message is (to decide what may be dropped when full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Encrypted readings: may be refused when the queue is full.
    Data,
    /// Everything else: never dropped.
    Control,
}

/// A message waiting for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Position in the outbox (strictly increasing, never reused).
    pub seq: u64,
    /// What it is.
    pub kind: MessageKind,
    /// The agent's clock when it was made (the tangle message's timestamp).
    pub time_ms: u64,
    /// Tangle address.
    pub address: [u8; 32],
    /// Opaque payload.
    pub payload: Vec<u8>,
    /// Meter time of the telegram whose batch this record ends (0 if not a batch end).
    reading_at: u64,
    batch_end: bool,
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// What it is.
    pub kind: MessageKind,
    /// The agent's clock (ms).
    pub time_ms: u64,
    /// Tangle address.
    pub address: [u8; 32],
    /// Opaque payload.
    pub payload: Vec<u8>,
}

/// Outbox failures. All of them are local (disk) problems.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A file operation failed.
    #[error("outbox {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The head file is not one this program wrote.
    #[error("outbox head file {0} is corrupt")]
    CorruptHead(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io { path: path.to_owned(), source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    segment: u64,
    offset: u64,
    next_seq: u64,
    reading_at: u64,
}

/// Where a record lives, and the record.
#[derive(Debug)]
struct Slot {
    segment: u64,
    end: u64,
    message: Queued,
}

/// The durable outbox.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    capacity: usize,
    head: Head,
    pending: VecDeque<Slot>,
    tail_segment: u64,
    tail_len: u64,
    tail: File,
    next_seq: u64,
    refused: u64,
    /// Meter time of the last batch pushed by this process (also when all of it was refused).
    accepted_reading_at: u64,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.seg"))
}

fn encode_record(message: &Queued) -> Vec<u8> {
    let kind = match message.kind {
        MessageKind::Data => 0u8,
        MessageKind::Control => 1,
    };
    let mut body = Vec::with_capacity(50 + message.payload.len());
    body.push(RECORD_VERSION);
    body.push(kind);
    body.push(if message.batch_end { BATCH_END } else { 0 });
    body.extend_from_slice(&message.seq.to_le_bytes());
    body.extend_from_slice(&message.time_ms.to_le_bytes());
    body.extend_from_slice(&message.reading_at.to_le_bytes());
    body.extend_from_slice(&message.address);
    body.extend_from_slice(&message.payload);
    let mut record = Vec::with_capacity(8 + body.len());
    record.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    record.extend_from_slice(&body);
    record
}

fn decode_body(body: &[u8]) -> Option<Queued> {
    let (&version, rest) = body.split_first()?;
    if version != RECORD_VERSION {
        return None;
    }
    let (&kind, rest) = rest.split_first()?;
    let kind = match kind {
        0 => MessageKind::Data,
        1 => MessageKind::Control,
        _ => return None,
    };
    let (&flags, rest) = rest.split_first()?;
    let seq = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let time_ms = u64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
    let reading_at = u64::from_le_bytes(rest.get(16..24)?.try_into().ok()?);
    let address: [u8; 32] = rest.get(24..56)?.try_into().ok()?;
    let payload = rest.get(56..)?.to_vec();
    let batch_end = flags & BATCH_END != 0;
    Some(Queued { seq, kind, time_ms, address, payload, reading_at, batch_end })
}

/// Reads the complete records of a segment from `offset`; returns them and where the valid
/// data ends (a torn tail starts there).
fn read_segment(path: &Path, offset: u64) -> Result<(Vec<(u64, Queued)>, u64), QueueError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io(path))?;
    let mut records = Vec::new();
    let mut batch = Vec::new();
    let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
    let mut complete_end = at;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_BODY {
            break;
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len as usize) else { break };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Some(message) = decode_body(body) else { break };
        at += 8 + len as usize;
        let ends_batch = message.batch_end;
        batch.push((at as u64, message));
        if ends_batch {
            records.append(&mut batch);
            complete_end = at;
        }
    }
    Ok((records, complete_end as u64))
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, holding at most `capacity` data messages.
    pub fn open(dir: &Path, capacity: usize) -> Result<Self, QueueError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let head_path = dir.join("head");
        let head = match fs::read(&head_path) {
            Ok(bytes) => {
                if bytes.len() != HEAD_LEN || &bytes[..4] != HEAD_MAGIC {
                    return Err(QueueError::CorruptHead(head_path));
                }
                let field = |i: usize| {
                    u64::from_le_bytes(bytes[4 + 8 * i..12 + 8 * i].try_into().unwrap_or([0; 8]))
                };
                Head {
                    segment: field(0),
                    offset: field(1),
                    next_seq: field(2),
                    reading_at: field(3),
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Head { segment: 0, offset: 0, next_seq: 0, reading_at: 0 }
            }
            Err(source) => return Err(QueueError::Io { path: head_path, source }),
        };
        let mut segments: Vec<u64> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse::<u64>().ok()
            })
            .collect();
        segments.sort_unstable();
        let mut pending = VecDeque::new();
        let mut next_seq = head.next_seq;
        let mut tail_segment = head.segment;
        let mut tail_len = head.offset;
        for &segment in &segments {
            let path = segment_path(dir, segment);
            if segment < head.segment {
                fs::remove_file(&path).map_err(io(&path))?; // sent before the crash
                continue;
            }
            let from = if segment == head.segment { head.offset } else { 0 };
            let (records, valid_end) = read_segment(&path, from)?;
            for (end, message) in records {
                if message.seq < head.next_seq {
                    continue;
                }
                next_seq = message.seq + 1;
                pending.push_back(Slot { segment, end, message });
            }
            let len = fs::metadata(&path).map_err(io(&path))?.len();
            if len > valid_end {
                tracing::warn!(path = %path.display(), torn_bytes = len - valid_end,
                    "outbox: cutting off a record torn by a crash");
                let file = OpenOptions::new().write(true).open(&path).map_err(io(&path))?;
                file.set_len(valid_end).map_err(io(&path))?;
                file.sync_all().map_err(io(&path))?;
            }
            tail_segment = segment;
            tail_len = valid_end;
        }
        let tail_path = segment_path(dir, tail_segment);
        let tail = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&tail_path)
            .map_err(io(&tail_path))?;
        tail_len = tail_len.max(tail.metadata().map_err(io(&tail_path))?.len());
        Ok(Self {
            dir: dir.to_owned(),
            capacity,
            head,
            pending,
            tail_segment,
            tail_len,
            tail,
            next_seq,
            refused: 0,
            accepted_reading_at: 0,
        })
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Data messages refused because the outbox was full (since this process started).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Meter time of the last telegram whose batch was accepted, sent or not (`None`: none
    /// since the outbox was created).
    pub fn last_reading_at(&self) -> Option<u64> {
        let pending = self.pending.iter().map(|s| s.message.reading_at).max().unwrap_or(0);
        let last = pending.max(self.head.reading_at).max(self.accepted_reading_at);
        (last > 0).then_some(last)
    }

    /// The oldest waiting message.
    pub fn front(&self) -> Option<&Queued> {
        self.pending.front().map(|slot| &slot.message)
    }

    /// Appends one batch durably (one fsync): everything one telegram (or one consent step)
    /// produced. `reading_at` is the telegram's meter time, if the batch carries a reading.
    /// Returns how many messages were accepted.
    pub fn push(
        &mut self,
        items: Vec<NewMessage>,
        reading_at: Option<u64>,
    ) -> Result<usize, QueueError> {
        if let Some(at) = reading_at {
            self.accepted_reading_at = self.accepted_reading_at.max(at);
        }
        let mut accepted = Vec::new();
        for item in items {
            if item.kind == MessageKind::Data
                && self.pending.len() + accepted.len() >= self.capacity
            {
                self.refused += 1;
                if self.refused.is_power_of_two() {
                    tracing::warn!(
                        refused = self.refused,
                        capacity = self.capacity,
                        "outbox full: new readings are being dropped until a node is reachable"
                    );
                }
                continue;
            }
            accepted.push(item);
        }
        if accepted.is_empty() {
            return Ok(0);
        }
        if self.tail_len >= SEGMENT_BYTES {
            self.roll()?;
            sync_dir(&self.dir)?;
        }
        let count = accepted.len();
        let mut bytes = Vec::new();
        let mut slots = Vec::with_capacity(count);
        for (i, item) in accepted.into_iter().enumerate() {
            let batch_end = i + 1 == count;
            let message = Queued {
                seq: self.next_seq,
                kind: item.kind,
                time_ms: item.time_ms,
                address: item.address,
                payload: item.payload,
                reading_at: if batch_end { reading_at.unwrap_or(0) } else { 0 },
                batch_end,
            };
            self.next_seq += 1;
            bytes.extend_from_slice(&encode_record(&message));
            slots.push(Slot {
                segment: self.tail_segment,
                end: self.tail_len + bytes.len() as u64,
                message,
            });
        }
        self.flush(&bytes)?;
        self.pending.extend(slots);
        Ok(count)
    }

    fn flush(&mut self, bytes: &[u8]) -> Result<(), QueueError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.dir, self.tail_segment);
        self.tail.write_all(bytes).map_err(io(&path))?;
        self.tail.sync_data().map_err(io(&path))?;
        self.tail_len += bytes.len() as u64;
        Ok(())
    }

    fn roll(&mut self) -> Result<(), QueueError> {
        self.tail_segment += 1;
        let path = segment_path(&self.dir, self.tail_segment);
        self.tail = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        self.tail_len = 0;
        Ok(())
    }

    /// Marks the oldest message as delivered (durably) and forgets it.
    pub fn pop_front(&mut self) -> Result<Option<Queued>, QueueError> {
        let Some(slot) = self.pending.pop_front() else { return Ok(None) };
        let head = Head {
            segment: slot.segment,
            offset: slot.end,
            next_seq: slot.message.seq + 1,
            reading_at: self.head.reading_at.max(slot.message.reading_at),
        };
        let mut bytes = Vec::with_capacity(HEAD_LEN);
        bytes.extend_from_slice(HEAD_MAGIC);
        for field in [head.segment, head.offset, head.next_seq, head.reading_at] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        write_atomically(&self.dir.join("head"), &bytes)
            .map_err(|source| QueueError::Io { path: self.dir.join("head"), source })?;
        // Segments wholly before the new head are done.
        for segment in self.head.segment..head.segment {
            let path = segment_path(&self.dir, segment);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(QueueError::Io { path, source }),
            }
        }
        self.head = head;
        Ok(Some(slot.message))
    }
}

fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: MessageKind, n: u8) -> NewMessage {
        NewMessage {
            kind,
            time_ms: u64::from(n),
            address: [n; 32],
            payload: vec![n; 100 + usize::from(n)],
        }
    }

    fn push_each(outbox: &mut Outbox, items: impl IntoIterator<Item = NewMessage>) {
        for (i, it) in items.into_iter().enumerate() {
            outbox.push(vec![it], Some(1000 + i as u64)).unwrap();
        }
    }

    #[test]
    fn survives_reopen_in_order_and_resumes_after_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 100).unwrap();
        push_each(&mut outbox, (0..10).map(|n| item(MessageKind::Data, n)));
        assert_eq!(outbox.pop_front().unwrap().unwrap().seq, 0);
        assert_eq!(outbox.pop_front().unwrap().unwrap().seq, 1);
        drop(outbox);
        let mut outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.len(), 8);
        assert_eq!(outbox.last_reading_at(), Some(1009));
        let seqs: Vec<u64> = std::iter::from_fn(|| outbox.pop_front().unwrap())
            .map(|m| {
                assert_eq!(m.payload.len(), 100 + m.seq as usize);
                m.seq
            })
            .collect();
        assert_eq!(seqs, (2..10).collect::<Vec<_>>());
        drop(outbox);
        // Everything sent: the head still remembers the last reading.
        let mut outbox = Outbox::open(dir.path(), 100).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.last_reading_at(), Some(1009));
        // New messages continue the numbering, never reusing a sent one.
        outbox.push(vec![item(MessageKind::Control, 42)], None).unwrap();
        assert_eq!(outbox.front().unwrap().seq, 10);
    }

    #[test]
    fn a_torn_batch_is_cut_off_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 100).unwrap();
        outbox.push(vec![item(MessageKind::Data, 0)], Some(500)).unwrap();
        outbox
            .push(vec![item(MessageKind::Data, 1), item(MessageKind::Control, 2)], Some(501))
            .unwrap();
        drop(outbox);
        let seg = segment_path(dir.path(), 0);
        let len = fs::metadata(&seg).unwrap().len();
        // A crash in the middle of writing the second batch's last record.
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 20).unwrap();
        let mut outbox = Outbox::open(dir.path(), 100).unwrap();
        assert_eq!(outbox.len(), 1, "the first record of the torn batch goes too");
        assert_eq!(outbox.last_reading_at(), Some(500));
        outbox.push(vec![item(MessageKind::Data, 9)], Some(502)).unwrap();
        drop(outbox);
        let outbox = Outbox::open(dir.path(), 100).unwrap();
        let sizes: Vec<usize> = outbox.pending.iter().map(|s| s.message.payload.len()).collect();
        assert_eq!(sizes, vec![100, 109]);
    }

    #[test]
    fn when_full_data_is_refused_but_control_messages_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 3).unwrap();
        let accepted = outbox
            .push(
                vec![
                    item(MessageKind::Data, 0),
                    item(MessageKind::Data, 1),
                    item(MessageKind::Data, 2),
                    item(MessageKind::Data, 3),
                    item(MessageKind::Control, 4),
                ],
                Some(7),
            )
            .unwrap();
        assert_eq!(accepted, 4);
        assert_eq!(outbox.refused(), 1);
        let kinds: Vec<MessageKind> = outbox.pending.iter().map(|s| s.message.kind).collect();
        assert_eq!(kinds.last(), Some(&MessageKind::Control));
    }

    #[test]
    fn segments_roll_over_and_sent_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 1_000).unwrap();
        for n in 0..=200u8 {
            let big = NewMessage {
                kind: MessageKind::Data,
                time_ms: 0,
                address: [n; 32],
                payload: vec![n; 30_000],
            };
            outbox.push(vec![big], Some(u64::from(n) + 1)).unwrap();
        }
        let segments = || {
            fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
                .count()
        };
        assert!(segments() >= 2);
        drop(outbox);
        let mut outbox = Outbox::open(dir.path(), 1_000).unwrap();
        assert_eq!(outbox.len(), 201);
        let mut expected = 0u8;
        while let Some(m) = outbox.pop_front().unwrap() {
            assert_eq!(m.address, [expected; 32]);
            expected = expected.wrapping_add(1);
        }
        assert_eq!(segments(), 1);
        drop(outbox);
        assert!(Outbox::open(dir.path(), 1_000).unwrap().is_empty());
    }
}
