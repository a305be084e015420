//! The provider (reader) side: turns keyloads and stream messages into verified readings.
//!
//! ```text
//!  inbox payload ──► open keyload (ML-KEM) ─► check device signature ─► new epoch reader
//!  stream payload at a watched address
//!        │ AEAD (AAD = stream ‖ epoch ‖ seq) fails ─────────────► Rejected   (at once)
//!        ▼
//!   data ──► Provisional (a key holder wrote it) ──┐
//!   checkpoint / rotation ─► ML-DSA verify ────────┴─► Verified | Forged | Gap (per position)
//!   rotation ─► trial-open keyloads ─► Rotated (next epoch, no gap) | Revoked (none for us)
//!   tick(now) ─► Unconfirmed (no checkpoint in time, or the device restarted past it)
//! ```
//!
//! Every member of a stream holds its epoch key, so AEAD alone proves only "some key holder
//! wrote this". Origin comes from the device's signed checkpoints, which list the digest of
//! every message they cover: a message a co-member forged at a position is contradicted by the
//! checkpoint and reported as [`FollowerEvent::Forged`]; it is never reported as `Verified`.
//!
//! Past epochs stay readable in a bounded window (like openmls's past-secrets store) so late
//! messages and late checkpoints of an epoch that has already rotated are still verified;
//! when an epoch leaves the window its keys are dropped and whatever it still held unverified
//! is reported as unconfirmed.

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRng;

use super::codec::{DecodeError, Reader, Writer};
use super::epoch::{Address, EpochId, EpochKeys, StreamId, Tier};
use super::error::ChannelError;
use super::reading::Reading;
use super::wire::{
    self, CheckpointBody, CheckpointKind, DataBody, EpochLink, InboxRejection, KeyloadBatch,
    KeyloadBody, MessageRejection, StreamBody,
};
use crate::crypto::{
    self, AEAD_NONCE_LEN, PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, SignatureContext,
    SymmetricPurpose,
};

/// Tuning of a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerConfig {
    /// How many ended epochs per stream stay readable for late messages.
    pub past_epochs: usize,
    /// How many positions past the highest one seen are watched (must exceed the number of
    /// messages between two checkpoints, or a lost stretch could not be skipped).
    pub lookahead: u64,
    /// A message still without a checkpoint this long after it arrived is reported unconfirmed.
    pub unconfirmed_after_secs: u64,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        Self { past_epochs: 4, lookahead: 128, unconfirmed_after_secs: 150 }
    }
}

/// A position in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The stream's tier.
    pub tier: Tier,
    /// The epoch.
    pub epoch: EpochId,
    /// The sequence number within the epoch.
    pub seq: u64,
}

/// What a follower observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerEvent {
    /// A signed keyload was accepted: the stream is readable from `start_seq` of `epoch`.
    Joined {
        /// The stream's tier.
        tier: Tier,
        /// The epoch now readable.
        epoch: EpochId,
        /// First readable position.
        start_seq: u64,
        /// The epoch the device says preceded it (a restart or a re-grant).
        previous: Option<EpochLink>,
    },
    /// Readings that decrypted correctly but are not yet covered by a checkpoint: any holder
    /// of the stream key could have written them. Use for live display, not as evidence.
    Provisional {
        /// Where.
        position: Position,
        /// Device time of the message.
        time: u64,
        /// The readings.
        readings: Vec<Reading>,
    },
    /// Readings covered by a valid device checkpoint: authentic.
    Verified {
        /// Where.
        position: Position,
        /// Device time of the message.
        time: u64,
        /// The readings.
        readings: Vec<Reading>,
    },
    /// The stream rotated and this follower holds the next epoch: reading continues there.
    Rotated {
        /// The stream's tier.
        tier: Tier,
        /// The ended epoch.
        from: EpochId,
        /// The new epoch.
        to: EpochId,
    },
    /// The stream rotated without a keyload for this follower: its access has ended.
    Revoked {
        /// The stream's tier.
        tier: Tier,
        /// The last epoch it could read.
        last_epoch: EpochId,
    },
    /// A payload at a watched position was refused at once (tampered, replayed, bad
    /// signature…).
    Rejected {
        /// Where.
        position: Position,
        /// Why.
        reason: MessageRejection,
    },
    /// An inbox payload was refused. `NotForUs` is normal when an inbox is shared.
    InboxRejected {
        /// Why.
        reason: InboxRejection,
    },
    /// Two different authentic-looking messages at one position (a key holder is forging).
    Fork {
        /// Where.
        position: Position,
    },
    /// A message's previous-digest does not match the message received before it.
    ChainMismatch {
        /// Where.
        position: Position,
    },
    /// A message arrived after one with a higher position.
    Reordered {
        /// Where.
        position: Position,
    },
    /// A message contradicted by the device's signed checkpoint, or written after its epoch
    /// ended: forged by a key holder.
    Forged {
        /// Where.
        position: Position,
    },
    /// A checkpoint covers positions this follower never received.
    Gap {
        /// The missing positions.
        missing: Vec<Position>,
    },
    /// A message whose checkpoint did not arrive in time, or never can (the device restarted
    /// into a new epoch without covering it, or the epoch left the window).
    Unconfirmed {
        /// Where.
        position: Position,
    },
}

/// An authentic-looking message not yet settled by a checkpoint.
#[derive(Debug, Clone)]
enum CandidateBody {
    Data(DataBody),
    Keyloads(KeyloadBatch),
}

impl CandidateBody {
    fn encode(&self) -> Result<Vec<u8>, ChannelError> {
        Ok(match self {
            Self::Data(data) => data.encode()?,
            Self::Keyloads(batch) => batch.encode(),
        })
    }
}

/// A rotation that held no keyload for this follower while some keyload batches it covers
/// were still missing: whether access continues is decided when they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AwaitingRotation {
    link: EpochLink,
    covered_from: u64,
}

#[derive(Debug, Clone)]
struct Candidate {
    digest: [u8; 32],
    body: CandidateBody,
    received_at: u64,
    reported_unconfirmed: bool,
}

/// How a settled position was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// A checkpoint listed this digest; `received` says whether the message has arrived.
    Data { digest: [u8; 32], received: bool },
    /// A verified checkpoint or rotation sits here.
    Checkpoint { digest: [u8; 32] },
}

impl Settled {
    fn digest(self) -> [u8; 32] {
        match self {
            Self::Data { digest, .. } | Self::Checkpoint { digest } => digest,
        }
    }
}

/// Positions below `settled_floor - SETTLED_RETAIN` are forgotten.
const SETTLED_RETAIN: u64 = 512;

#[derive(Debug)]
struct EpochReader {
    keys: EpochKeys,
    tier: Tier,
    start_seq: u64,
    /// Positions ≥ this are after the epoch's end (set by a rotation, or by the link of the
    /// keyload a restarted device sends).
    end_seq: Option<u64>,
    /// The device restarted into a new epoch; no further checkpoint will come here.
    abandoned: bool,
    awaiting_rotation: Option<AwaitingRotation>,
    highest_seen: Option<u64>,
    /// Lowest position not yet settled.
    settled_floor: u64,
    settled: BTreeMap<u64, Settled>,
    pending: BTreeMap<u64, Vec<Candidate>>,
    /// Digests of payloads already processed per unsettled position (duplicates are ignored).
    seen: BTreeMap<u64, Vec<[u8; 32]>>,
    index: BTreeMap<Address, u64>,
    indexed_from: u64,
    indexed_until: u64,
}

impl EpochReader {
    fn new(keys: EpochKeys, tier: Tier, start_seq: u64) -> Self {
        Self {
            keys,
            tier,
            start_seq,
            end_seq: None,
            abandoned: false,
            awaiting_rotation: None,
            highest_seen: None,
            settled_floor: start_seq,
            settled: BTreeMap::new(),
            pending: BTreeMap::new(),
            seen: BTreeMap::new(),
            index: BTreeMap::new(),
            indexed_from: start_seq,
            indexed_until: start_seq,
        }
    }

    fn position(&self, seq: u64) -> Position {
        Position { tier: self.tier, epoch: self.keys.id(), seq }
    }

    /// End (exclusive) of the watched window.
    fn window_end(&self, lookahead: u64) -> u64 {
        let front = self
            .highest_seen
            .map_or(self.settled_floor, |h| h.saturating_add(1))
            .max(self.settled_floor);
        let end = front.saturating_add(lookahead);
        self.end_seq.map_or(end, |e| end.min(e.saturating_add(lookahead)))
    }

    /// Keeps the address index covering `[settled_floor - retain, window_end)`.
    fn refresh_index(&mut self, lookahead: u64) {
        let want_from = self.settled_floor.saturating_sub(SETTLED_RETAIN).max(self.start_seq);
        let want_until = self.window_end(lookahead);
        if want_from > self.indexed_from {
            self.index.retain(|_, seq| *seq >= want_from);
            self.indexed_from = want_from;
        }
        let mut seq = self.indexed_until.max(self.indexed_from);
        while seq < want_until {
            self.index.insert(self.keys.address(seq), seq);
            seq += 1;
        }
        self.indexed_until = self.indexed_until.max(want_until);
    }

    fn known_digest(&self, seq: u64) -> Option<[u8; 32]> {
        if let Some(settled) = self.settled.get(&seq) {
            return Some(settled.digest());
        }
        match self.pending.get(&seq).map(Vec::as_slice) {
            Some([only]) => Some(only.digest),
            _ => None,
        }
    }

    fn advance_floor(&mut self) {
        while self.settled.contains_key(&self.settled_floor) {
            self.settled_floor += 1;
        }
        let forget_below = self.settled_floor.saturating_sub(SETTLED_RETAIN);
        self.settled = self.settled.split_off(&forget_below);
        self.seen = self.seen.split_off(&self.settled_floor);
    }

    /// Everything still unverified becomes unconfirmed (epoch abandoned or dropped).
    fn flush_unconfirmed(&mut self, events: &mut Vec<FollowerEvent>) {
        for (seq, candidates) in &mut self.pending {
            for candidate in candidates.iter_mut().filter(|c| !c.reported_unconfirmed) {
                candidate.reported_unconfirmed = true;
                events.push(FollowerEvent::Unconfirmed {
                    position: Position { tier: self.tier, epoch: self.keys.id(), seq: *seq },
                });
            }
        }
    }
}

#[derive(Debug)]
struct StreamFollower {
    tier: Tier,
    /// Newest epoch last.
    epochs: VecDeque<EpochReader>,
    revoked: bool,
}

/// Follows every stream of one device that this provider has been given keys for.
#[derive(Debug)]
pub struct ProviderFollower {
    me: PartyId,
    inbox: Address,
    device: PublicKeys,
    config: FollowerConfig,
    streams: BTreeMap<StreamId, StreamFollower>,
}

impl ProviderFollower {
    /// A follower of `device` for the provider `me` (nothing readable until a keyload arrives).
    pub fn new(me: &PartyKeys, device: PublicKeys, config: FollowerConfig) -> Self {
        Self {
            me: me.id(),
            inbox: me.public().inbox_address(),
            device,
            config,
            streams: BTreeMap::new(),
        }
    }

    /// The tiers this follower currently holds a readable (not revoked) epoch for.
    pub fn tiers(&self) -> Vec<Tier> {
        self.streams.values().filter(|s| !s.revoked).map(|s| s.tier).collect()
    }

    /// Addresses the driver should fetch or subscribe to: the provider's inbox, and for every
    /// readable epoch the positions not yet settled by a checkpoint (or settled but never
    /// received), up to `lookahead` past the highest one seen.
    pub fn watch_addresses(&mut self) -> Vec<Address> {
        let lookahead = self.config.lookahead;
        let mut out = vec![self.inbox];
        for stream in self.streams.values_mut() {
            for reader in &mut stream.epochs {
                reader.refresh_index(lookahead);
                let until = reader.window_end(lookahead);
                // An abandoned epoch gets no new messages; only its known gaps are worth a look.
                let open_epoch = reader.end_seq.is_none() && !stream.revoked && !reader.abandoned;
                // Gaps a checkpoint already settled: the message may still turn up late.
                let index_floor = reader.indexed_from;
                for (seq, settled) in reader.settled.range(index_floor..reader.settled_floor) {
                    if matches!(settled, Settled::Data { received: false, .. }) {
                        out.push(reader.keys.address(*seq));
                    }
                }
                for seq in reader.settled_floor..until {
                    let awaited = match reader.settled.get(&seq) {
                        Some(Settled::Data { received, .. }) => !received,
                        Some(Settled::Checkpoint { .. }) => false,
                        None => open_epoch || reader.end_seq.is_some_and(|end| seq < end),
                    };
                    // Positions holding an unverified message stay watched: the genuine
                    // message may still arrive after a forgery (a fork).
                    if awaited {
                        out.push(reader.keys.address(seq));
                    }
                }
            }
        }
        out
    }

    /// Processes one payload found at `address`. Payloads at addresses this follower does not
    /// watch produce no event.
    pub fn receive(
        &mut self,
        me: &PartyKeys,
        address: &Address,
        payload: &[u8],
        now: u64,
    ) -> Vec<FollowerEvent> {
        let mut events = Vec::new();
        if *address == self.inbox {
            self.receive_inbox(me, payload, &mut events);
            return events;
        }
        let lookahead = self.config.lookahead;
        let past_epochs = self.config.past_epochs;
        let found = self.streams.iter_mut().find_map(|(id, stream)| {
            stream.epochs.iter_mut().enumerate().find_map(|(i, reader)| {
                reader.refresh_index(lookahead);
                reader.index.get(address).map(|seq| (*id, i, *seq))
            })
        });
        let Some((stream_id, epoch_index, seq)) = found else {
            return events;
        };
        let device = self.device.clone();
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return events;
        };
        let next = process_stream_payload(
            stream,
            epoch_index,
            seq,
            address,
            payload,
            now,
            me,
            &device,
            &mut events,
        );
        if let Some(keyload) = next {
            adopt_epoch(stream, &keyload, past_epochs, &mut events);
        }
        events
    }

    fn receive_inbox(&mut self, me: &PartyKeys, payload: &[u8], events: &mut Vec<FollowerEvent>) {
        let keyload = match wire::open_inbox_keyload(me, &self.device, payload) {
            Ok(keyload) => keyload,
            Err(reason) => {
                events.push(FollowerEvent::InboxRejected { reason });
                return;
            }
        };
        if StreamId::new(self.device.id(), keyload.tier) != keyload.stream {
            events.push(FollowerEvent::InboxRejected { reason: InboxRejection::UnknownStream });
            return;
        }
        let past_epochs = self.config.past_epochs;
        let stream = self.streams.entry(keyload.stream).or_insert_with(|| StreamFollower {
            tier: keyload.tier,
            epochs: VecDeque::new(),
            revoked: false,
        });
        let new_id = EpochKeys::new(keyload.stream, keyload.epoch_key).id();
        if stream.epochs.iter().any(|r| r.keys.id() == new_id) {
            return; // Already following (duplicate delivery, or it came by rotation first).
        }
        // A device only ever writes to its newest epoch. An inbox keyload means it restarted
        // (or granted us afresh): every epoch it did not close is abandoned, and no checkpoint
        // will come for what it left uncovered there. (After a restore from an older state
        // copy, the keyload's `previous` link names an older epoch than the one it abandoned.)
        for old in stream.epochs.iter_mut().filter(|r| r.end_seq.is_none()) {
            // The signed link says where the device's saved state ended this epoch. Messages
            // before that position may not have been fetched yet (sent just before the restart,
            // or by the restarted device from its outbox ahead of this keyload): keep watching
            // them, or the last readings before a restart are silently lost.
            if let Some(link) = keyload.previous
                && link.epoch == old.keys.id()
            {
                let seen_end = old.highest_seen.map_or(old.start_seq, |h| h.saturating_add(1));
                old.end_seq = Some(link.end_seq.max(seen_end));
            }
            old.abandoned = true;
            old.flush_unconfirmed(events);
        }
        stream.revoked = false;
        events.push(FollowerEvent::Joined {
            tier: keyload.tier,
            epoch: new_id,
            start_seq: keyload.start_seq,
            previous: keyload.previous,
        });
        adopt_epoch(stream, &keyload, past_epochs, events);
    }

    /// Reports messages whose checkpoint is overdue at `now` (each once).
    pub fn tick(&mut self, now: u64) -> Vec<FollowerEvent> {
        let deadline = self.config.unconfirmed_after_secs;
        let mut events = Vec::new();
        for stream in self.streams.values_mut() {
            for reader in &mut stream.epochs {
                let (tier, epoch) = (reader.tier, reader.keys.id());
                for (seq, candidates) in &mut reader.pending {
                    for candidate in candidates.iter_mut() {
                        if !candidate.reported_unconfirmed
                            && now.saturating_sub(candidate.received_at) >= deadline
                        {
                            candidate.reported_unconfirmed = true;
                            events.push(FollowerEvent::Unconfirmed {
                                position: Position { tier, epoch, seq: *seq },
                            });
                        }
                    }
                }
            }
        }
        events
    }
}

/// Adds the epoch a keyload opens as the newest one, dropping the oldest beyond the window.
fn adopt_epoch(
    stream: &mut StreamFollower,
    keyload: &KeyloadBody,
    past_epochs: usize,
    events: &mut Vec<FollowerEvent>,
) {
    let keys = EpochKeys::new(keyload.stream, keyload.epoch_key);
    if stream.epochs.iter().any(|r| r.keys.id() == keys.id()) {
        return;
    }
    stream.epochs.push_back(EpochReader::new(keys, keyload.tier, keyload.start_seq));
    while stream.epochs.len() > past_epochs.saturating_add(1) {
        if let Some(mut dropped) = stream.epochs.pop_front() {
            dropped.flush_unconfirmed(events);
        }
    }
}

/// Handles one payload at position `seq` of epoch `epoch_index`; returns the next epoch's
/// keyload if it was a rotation that includes this follower.
#[allow(clippy::too_many_arguments)]
fn process_stream_payload(
    stream: &mut StreamFollower,
    epoch_index: usize,
    seq: u64,
    address: &Address,
    payload: &[u8],
    now: u64,
    me: &PartyKeys,
    device: &PublicKeys,
    events: &mut Vec<FollowerEvent>,
) -> Option<KeyloadBody> {
    let reader = stream.epochs.get_mut(epoch_index)?;
    let position = reader.position(seq);
    let digest = wire::message_digest(address, payload);

    // Exact duplicates (the same bytes delivered twice) are not news.
    if reader.settled.get(&seq).is_some_and(|s| {
        s.digest() == digest && !matches!(s, Settled::Data { received: false, .. })
    }) || reader.seen.get(&seq).is_some_and(|d| d.contains(&digest))
    {
        return None;
    }

    let plain = match wire::open_stream_payload(&reader.keys, seq, payload) {
        Ok(plain) => zeroize::Zeroizing::new(plain),
        Err(reason) => {
            events.push(FollowerEvent::Rejected { position, reason });
            return None;
        }
    };
    let body = match StreamBody::decode(&plain) {
        Ok(body) => body,
        Err(err) => {
            events.push(FollowerEvent::Rejected {
                position,
                reason: MessageRejection::Malformed(err),
            });
            return None;
        }
    };
    if reader.end_seq.is_some_and(|end| seq >= end) {
        // Only a key holder can produce a valid message, and the device stopped writing here.
        events.push(FollowerEvent::Forged { position });
        return None;
    }

    match body {
        StreamBody::Data(data) => {
            note_arrival(reader, seq, digest, &data.prev_digest, events);
            match reader.settled.get(&seq).copied() {
                Some(Settled::Data { digest: expected, received: false }) if expected == digest => {
                    reader.settled.insert(seq, Settled::Data { digest, received: true });
                    events.push(FollowerEvent::Verified {
                        position,
                        time: data.time,
                        readings: data.readings,
                    });
                }
                Some(_) => events.push(FollowerEvent::Forged { position }),
                None => {
                    events.push(FollowerEvent::Provisional {
                        position,
                        time: data.time,
                        readings: data.readings.clone(),
                    });
                    reader.pending.entry(seq).or_default().push(Candidate {
                        digest,
                        body: CandidateBody::Data(data),
                        received_at: now,
                        reported_unconfirmed: reader.abandoned,
                    });
                    if reader.abandoned {
                        events.push(FollowerEvent::Unconfirmed { position });
                    }
                }
            }
            None
        }
        StreamBody::Keyloads(batch) => {
            note_arrival(reader, seq, digest, &batch.prev_digest, events);
            match reader.settled.get(&seq).copied() {
                Some(Settled::Data { digest: expected, received: false }) if expected == digest => {
                    reader.settled.insert(seq, Settled::Data { digest, received: true });
                    return resolve_awaiting_rotation(
                        stream,
                        epoch_index,
                        &batch.keyloads,
                        me,
                        events,
                    );
                }
                Some(_) => events.push(FollowerEvent::Forged { position }),
                None => reader.pending.entry(seq).or_default().push(Candidate {
                    digest,
                    body: CandidateBody::Keyloads(batch),
                    received_at: now,
                    // Keyloads are not readings: nothing to report as unconfirmed.
                    reported_unconfirmed: true,
                }),
            }
            None
        }
        StreamBody::Checkpoint(checkpoint) => {
            let statement = checkpoint.statement(reader.keys.stream(), reader.keys.id(), seq);
            if device
                .verify(SignatureContext::Checkpoint, &statement, &checkpoint.signature)
                .is_err()
            {
                events.push(FollowerEvent::Rejected {
                    position,
                    reason: MessageRejection::BadSignature,
                });
                return None;
            }
            let consistent = checkpoint.covered_end() == Some(seq)
                && checkpoint.digests.last().is_none_or(|last| *last == checkpoint.prev_digest);
            if !consistent {
                events.push(FollowerEvent::Rejected {
                    position,
                    reason: MessageRejection::InconsistentCheckpoint,
                });
                return None;
            }
            note_arrival(reader, seq, digest, &checkpoint.prev_digest, events);
            let batch_keyloads = apply_checkpoint(reader, seq, digest, &checkpoint, events);
            if checkpoint.kind == CheckpointKind::Rotation {
                return follow_rotation(
                    stream,
                    epoch_index,
                    seq,
                    &checkpoint,
                    batch_keyloads,
                    me,
                    events,
                );
            }
            None
        }
    }
}

/// Reorder, fork and chain checks common to every authentic-looking arrival.
fn note_arrival(
    reader: &mut EpochReader,
    seq: u64,
    digest: [u8; 32],
    prev_digest: &[u8; 32],
    events: &mut Vec<FollowerEvent>,
) {
    let position = reader.position(seq);
    if reader.highest_seen.is_some_and(|h| h > seq) {
        events.push(FollowerEvent::Reordered { position });
    }
    reader.highest_seen = Some(reader.highest_seen.map_or(seq, |h| h.max(seq)));
    let seen = reader.seen.entry(seq).or_default();
    if !seen.is_empty() {
        events.push(FollowerEvent::Fork { position });
    }
    seen.push(digest);
    // The first message of an epoch links to nothing; a follower that joined mid-epoch cannot
    // check the link of its first position.
    let expected_prev = match seq {
        0 => Some([0; 32]),
        _ if seq > reader.start_seq => reader.known_digest(seq - 1),
        _ => None,
    };
    if expected_prev.is_some_and(|expected| expected != *prev_digest) {
        events.push(FollowerEvent::ChainMismatch { position });
    }
}

/// Settles every position a verified checkpoint covers; returns the keyloads of the keyload
/// batches it verified (they belong to the rotation that follows them).
fn apply_checkpoint(
    reader: &mut EpochReader,
    seq: u64,
    digest: [u8; 32],
    checkpoint: &CheckpointBody,
    events: &mut Vec<FollowerEvent>,
) -> Vec<Vec<u8>> {
    let mut missing = Vec::new();
    let mut keyloads = Vec::new();
    for (pos, expected) in (checkpoint.first_seq..).zip(&checkpoint.digests) {
        if pos < reader.start_seq || reader.settled.contains_key(&pos) {
            continue;
        }
        let position = reader.position(pos);
        let candidates = reader.pending.remove(&pos).unwrap_or_default();
        let mut received = false;
        for candidate in candidates {
            if candidate.digest == *expected && !received {
                received = true;
                match candidate.body {
                    CandidateBody::Data(data) => events.push(FollowerEvent::Verified {
                        position,
                        time: data.time,
                        readings: data.readings,
                    }),
                    CandidateBody::Keyloads(batch) => keyloads.extend(batch.keyloads),
                }
            } else {
                events.push(FollowerEvent::Forged { position });
            }
        }
        if !received {
            missing.push(position);
        }
        reader.settled.insert(pos, Settled::Data { digest: *expected, received });
    }
    // A data message a key holder placed at the checkpoint's own position is forged.
    for _ in reader.pending.remove(&seq).unwrap_or_default() {
        events.push(FollowerEvent::Forged { position: reader.position(seq) });
    }
    reader.settled.insert(seq, Settled::Checkpoint { digest });
    if !missing.is_empty() {
        events.push(FollowerEvent::Gap { missing });
    }
    reader.advance_floor();
    keyloads
}

/// Finds this follower's keyload among `keyloads` for the rotation that ends `link.epoch`.
fn find_keyload(
    reader: &EpochReader,
    keyloads: &[Vec<u8>],
    link: EpochLink,
    me: &PartyKeys,
) -> Option<KeyloadBody> {
    keyloads.iter().find_map(|keyload| {
        wire::open_rotation_keyload(me, keyload)
            .filter(|body| body.stream == reader.keys.stream() && body.previous == Some(link))
    })
}

/// Ends the epoch at a verified rotation and looks for this follower's keyload in it and in the
/// keyload batches it covers.
fn follow_rotation(
    stream: &mut StreamFollower,
    epoch_index: usize,
    seq: u64,
    rotation: &CheckpointBody,
    mut keyloads: Vec<Vec<u8>>,
    me: &PartyKeys,
    events: &mut Vec<FollowerEvent>,
) -> Option<KeyloadBody> {
    let reader = stream.epochs.get_mut(epoch_index)?;
    let end = seq.saturating_add(1);
    reader.end_seq = Some(end);
    // Anything pending after the end can only be a key holder's forgery.
    for (pos, _) in reader.pending.split_off(&end) {
        events.push(FollowerEvent::Forged { position: reader.position(pos) });
    }
    let link = EpochLink { epoch: reader.keys.id(), end_seq: end };
    keyloads.extend(rotation.keyloads.iter().cloned());
    if let Some(keyload) = find_keyload(reader, &keyloads, link, me) {
        return Some(rotated(stream, link.epoch, keyload, events));
    }
    reader.awaiting_rotation = Some(AwaitingRotation { link, covered_from: rotation.first_seq });
    decide_revocation(stream, epoch_index, events);
    None
}

fn rotated(
    stream: &StreamFollower,
    from: EpochId,
    keyload: KeyloadBody,
    events: &mut Vec<FollowerEvent>,
) -> KeyloadBody {
    let to = EpochKeys::new(keyload.stream, keyload.epoch_key).id();
    events.push(FollowerEvent::Rotated { tier: stream.tier, from, to });
    keyload
}

/// A late keyload batch of a rotation that had no keyload for us so far.
fn resolve_awaiting_rotation(
    stream: &mut StreamFollower,
    epoch_index: usize,
    keyloads: &[Vec<u8>],
    me: &PartyKeys,
    events: &mut Vec<FollowerEvent>,
) -> Option<KeyloadBody> {
    let reader = stream.epochs.get_mut(epoch_index)?;
    let awaiting = reader.awaiting_rotation?;
    if let Some(keyload) = find_keyload(reader, keyloads, awaiting.link, me) {
        reader.awaiting_rotation = None;
        return Some(rotated(stream, awaiting.link.epoch, keyload, events));
    }
    decide_revocation(stream, epoch_index, events);
    None
}

/// Declares revocation once every keyload batch the rotation covers has arrived without a
/// keyload for us (a missing batch might still hold it).
fn decide_revocation(
    stream: &mut StreamFollower,
    epoch_index: usize,
    events: &mut Vec<FollowerEvent>,
) {
    let newest = epoch_index + 1 == stream.epochs.len();
    let Some(reader) = stream.epochs.get_mut(epoch_index) else { return };
    let Some(awaiting) = reader.awaiting_rotation else { return };
    let still_missing = reader
        .settled
        .range(awaiting.covered_from..awaiting.link.end_seq)
        .any(|(_, settled)| matches!(settled, Settled::Data { received: false, .. }));
    if still_missing {
        return;
    }
    reader.awaiting_rotation = None;
    // Only the newest epoch decides whether access continues.
    if newest {
        stream.revoked = true;
        events.push(FollowerEvent::Revoked { tier: stream.tier, last_epoch: awaiting.link.epoch });
    }
}

// ───────────────────────────── saved state ─────────────────────────────

const STATE_MAGIC: &[u8; 4] = b"MKPS";
const STATE_VERSION: u8 = 1;
const STATE_AAD: &[u8] = b"meterkast/v1/follower-state";
const SETTLED_DATA_RECEIVED: u8 = 1;
const SETTLED_DATA_MISSING: u8 = 2;
const SETTLED_CHECKPOINT: u8 = 3;
/// Generous bounds so a corrupted count cannot make the decoder allocate without limit.
const MAX_SAVED_ENTRIES: u64 = 1 << 20;

impl ProviderFollower {
    /// Serializes the follower, encrypted under the provider's state-at-rest key (it contains
    /// epoch keys). Format: `"MKPS" ‖ u8 version(1) ‖ nonce(24) ‖ XChaCha20-Poly1305(plain)`,
    /// associated data `"meterkast/v1/follower-state" ‖ provider PartyId`; the plain layout
    /// is documented in `protocol/spec/channel.md`.
    pub fn save(&self, me: &PartyKeys, rng: &mut impl CryptoRng) -> Result<Vec<u8>, ChannelError> {
        let plain = zeroize::Zeroizing::new(self.encode_plain()?);
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let key = me.symmetric_key(SymmetricPurpose::StateAtRest);
        let sealed = crypto::seal(&key, &nonce, &state_aad(me.id()), &plain)?;
        let mut w = Writer::new();
        w.bytes(STATE_MAGIC).u8(STATE_VERSION).bytes(&nonce).bytes(&sealed);
        Ok(w.finish())
    }

    /// Restores [`ProviderFollower::save`] output.
    pub fn restore(me: &PartyKeys, saved: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(saved);
        if r.take(4, "magic")? != STATE_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != STATE_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "follower state", version }.into());
        }
        let nonce = r.array::<AEAD_NONCE_LEN>("nonce")?;
        let sealed = r.take(saved.len() - 5 - AEAD_NONCE_LEN, "sealed state")?;
        let key = me.symmetric_key(SymmetricPurpose::StateAtRest);
        let plain =
            zeroize::Zeroizing::new(crypto::open(&key, &nonce, &state_aad(me.id()), sealed)?);
        let follower = Self::decode_plain(&plain)?;
        if follower.me != me.id() {
            return Err(ChannelError::KeysMismatch);
        }
        Ok(follower)
    }

    fn encode_plain(&self) -> Result<Vec<u8>, ChannelError> {
        let mut w = Writer::new();
        w.bytes(&self.me.0).bytes(&self.inbox).bytes(&self.device.encode());
        w.varint(self.config.past_epochs as u64)
            .varint(self.config.lookahead)
            .varint(self.config.unconfirmed_after_secs);
        w.varint(self.streams.len() as u64);
        for stream in self.streams.values() {
            w.u8(stream.tier.code())
                .u8(u8::from(stream.revoked))
                .varint(stream.epochs.len() as u64);
            for reader in &stream.epochs {
                encode_reader(&mut w, reader)?;
            }
        }
        Ok(w.finish())
    }

    fn decode_plain(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(bytes);
        let me = PartyId(r.array("provider id")?);
        let inbox = r.array("inbox")?;
        let device = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "device keys")?)
            .map_err(|_| DecodeError::InvalidValue { field: "device keys" })?;
        let config = FollowerConfig {
            past_epochs: usize::try_from(r.varint_max(1024, "past epochs")?)
                .map_err(|_| DecodeError::InvalidValue { field: "past epochs" })?,
            lookahead: r.varint_max(1 << 16, "lookahead")?,
            unconfirmed_after_secs: r.varint("unconfirmed after")?,
        };
        let mut streams = BTreeMap::new();
        for _ in 0..r.varint_max(Tier::ALL.len() as u64, "stream count")? {
            let tier = Tier::from_code(r.u8("tier")?)
                .ok_or(DecodeError::InvalidValue { field: "tier" })?;
            let revoked = r.bool("revoked")?;
            let stream_id = StreamId::new(device.id(), tier);
            let mut epochs = VecDeque::new();
            for _ in 0..r.varint_max(1025, "epoch count")? {
                epochs.push_back(decode_reader(&mut r, stream_id, tier)?);
            }
            streams.insert(stream_id, StreamFollower { tier, epochs, revoked });
        }
        r.finish()?;
        Ok(Self { me, inbox, device, config, streams })
    }
}

fn state_aad(me: PartyId) -> Vec<u8> {
    let mut aad = STATE_AAD.to_vec();
    aad.extend_from_slice(&me.0);
    aad
}

fn encode_option(w: &mut Writer, value: Option<u64>) {
    match value {
        Some(v) => w.u8(1).varint(v),
        None => w.u8(0),
    };
}

fn decode_option(r: &mut Reader<'_>, field: &'static str) -> Result<Option<u64>, DecodeError> {
    Ok(if r.bool(field)? { Some(r.varint(field)?) } else { None })
}

fn encode_reader(w: &mut Writer, reader: &EpochReader) -> Result<(), ChannelError> {
    w.bytes(reader.keys.epoch_key()).varint(reader.start_seq);
    encode_option(w, reader.end_seq);
    w.u8(u8::from(reader.abandoned));
    match reader.awaiting_rotation {
        Some(awaiting) => w
            .u8(1)
            .bytes(&awaiting.link.epoch.0)
            .varint(awaiting.link.end_seq)
            .varint(awaiting.covered_from),
        None => w.u8(0),
    };
    encode_option(w, reader.highest_seen);
    w.varint(reader.settled_floor);
    w.varint(reader.settled.len() as u64);
    for (seq, settled) in &reader.settled {
        let kind = match settled {
            Settled::Data { received: true, .. } => SETTLED_DATA_RECEIVED,
            Settled::Data { received: false, .. } => SETTLED_DATA_MISSING,
            Settled::Checkpoint { .. } => SETTLED_CHECKPOINT,
        };
        w.varint(*seq).u8(kind).bytes(&settled.digest());
    }
    w.varint(reader.pending.len() as u64);
    for (seq, candidates) in &reader.pending {
        w.varint(*seq).varint(candidates.len() as u64);
        for candidate in candidates {
            w.bytes(&candidate.digest)
                .varint(candidate.received_at)
                .u8(u8::from(candidate.reported_unconfirmed))
                .length_prefixed(&candidate.body.encode()?);
        }
    }
    w.varint(reader.seen.len() as u64);
    for (seq, digests) in &reader.seen {
        w.varint(*seq).varint(digests.len() as u64);
        for digest in digests {
            w.bytes(digest);
        }
    }
    Ok(())
}

fn decode_reader(
    r: &mut Reader<'_>,
    stream: StreamId,
    tier: Tier,
) -> Result<EpochReader, ChannelError> {
    let keys = EpochKeys::new(stream, r.array("epoch key")?);
    let mut reader = EpochReader::new(keys, tier, r.varint("start seq")?);
    reader.end_seq = decode_option(r, "end seq")?;
    reader.abandoned = r.bool("abandoned")?;
    if r.bool("awaiting rotation")? {
        let link = EpochLink {
            epoch: EpochId(r.array("awaited epoch")?),
            end_seq: r.varint("awaited end")?,
        };
        reader.awaiting_rotation =
            Some(AwaitingRotation { link, covered_from: r.varint("awaited from")? });
    }
    reader.highest_seen = decode_option(r, "highest seen")?;
    reader.settled_floor = r.varint("settled floor")?;
    reader.indexed_from = reader.settled_floor.saturating_sub(SETTLED_RETAIN).max(reader.start_seq);
    reader.indexed_until = reader.indexed_from;
    for _ in 0..r.varint_max(MAX_SAVED_ENTRIES, "settled count")? {
        let seq = r.varint("settled seq")?;
        let kind = r.u8("settled kind")?;
        let digest = r.array("settled digest")?;
        let settled = match kind {
            SETTLED_DATA_RECEIVED => Settled::Data { digest, received: true },
            SETTLED_DATA_MISSING => Settled::Data { digest, received: false },
            SETTLED_CHECKPOINT => Settled::Checkpoint { digest },
            _ => return Err(DecodeError::InvalidValue { field: "settled kind" }.into()),
        };
        reader.settled.insert(seq, settled);
    }
    for _ in 0..r.varint_max(MAX_SAVED_ENTRIES, "pending count")? {
        let seq = r.varint("pending seq")?;
        let mut candidates = Vec::new();
        for _ in 0..r.varint_max(MAX_SAVED_ENTRIES, "candidate count")? {
            let digest = r.array("candidate digest")?;
            let received_at = r.varint("received at")?;
            let reported_unconfirmed = r.bool("reported")?;
            let body = match StreamBody::decode(r.length_prefixed(1 << 20, "candidate body")?)? {
                StreamBody::Data(body) => CandidateBody::Data(body),
                StreamBody::Keyloads(batch) => CandidateBody::Keyloads(batch),
                StreamBody::Checkpoint(_) => {
                    return Err(DecodeError::InvalidValue { field: "candidate body" }.into());
                }
            };
            candidates.push(Candidate { digest, body, received_at, reported_unconfirmed });
        }
        reader.pending.insert(seq, candidates);
    }
    for _ in 0..r.varint_max(MAX_SAVED_ENTRIES, "seen count")? {
        let seq = r.varint("seen seq")?;
        let mut digests = Vec::new();
        for _ in 0..r.varint_max(MAX_SAVED_ENTRIES, "seen digests")? {
            digests.push(r.array("seen digest")?);
        }
        reader.seen.insert(seq, digests);
    }
    Ok(reader)
}

#[cfg(test)]
impl ProviderFollower {
    /// Every epoch key this follower holds, for the attacker-model tests.
    pub(crate) fn held_epoch_keys(&self) -> Vec<EpochKeys> {
        self.streams.values().flat_map(|s| s.epochs.iter().map(|r| r.keys.clone())).collect()
    }
}
