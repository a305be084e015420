//! The device (publisher) side of a channel.
//!
//! # Why every start begins a fresh epoch
//!
//! The 2018 Pi re-used its MAM addresses after every restart because its position lived only in
//! RAM. Persisting the position is not enough either: a device restored from an older backup
//! (an SD-card image, a copied state file) would go back to positions it already used, and
//! publish new readings at addresses, under nonces and sequence numbers that already carry
//! other messages.
//!
//! So a [`DeviceChannel`] cannot be resumed into an existing epoch at all. [`SavedDevice`]
//! holds no epoch key: [`SavedDevice::resume`] draws a fresh 32-byte epoch key per stream from
//! the caller's RNG and sends every member a signed keyload for it. Addresses, the encryption
//! key and the epoch id all derive from that key, and nonces are random 192-bit values, so
//! whatever copy of the state is restored, and however often, nothing is ever reused (short of
//! a 2⁻²⁵⁶ key collision). The keyload's [`EpochLink`] tells members where the device believes
//! the old epoch ended; messages of the old epoch that no checkpoint covers are reported by the
//! follower as unconfirmed instead of being silently trusted or dropped.
//!
//! The only state that must be durable is membership; sequence progress need not be saved.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::codec::{DecodeError, Reader, Writer};
use super::epoch::{Address, EpochId, EpochKeys, StreamId, Tier};
use super::error::ChannelError;
use super::reading::Reading;
use super::wire::{
    self, CheckpointBody, CheckpointKind, DataBody, EpochLink, KEYLOAD_LEN, KeyloadBatch,
    KeyloadBody, MAX_CHECKPOINT_COVERAGE, MAX_KEYLOADS_PER_BATCH, MAX_KEYLOADS_PER_ROTATION,
    MAX_READINGS_PER_MESSAGE, MAX_STREAM_PAYLOAD,
};
use crate::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, Role,
    SIGNATURE_LEN, SignatureContext,
};

/// What an [`Outgoing`] item is, for the driver's bookkeeping and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingKind {
    /// Encrypted readings.
    Data,
    /// A signed checkpoint.
    Checkpoint,
    /// A signed rotation (checkpoint + keyloads for the remaining members).
    Rotation,
    /// Keyloads of a large rotation that did not fit into it, published just before it.
    KeyloadBatch,
    /// A signed keyload posted to a provider's inbox.
    InboxKeyload,
}

/// A payload to publish at an address, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to publish.
    pub address: Address,
    /// The bytes to publish (opaque to the transport).
    pub payload: Vec<u8>,
    /// What it is.
    pub kind: OutgoingKind,
}

/// Configuration of one published stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// The resolution tier.
    pub tier: Tier,
    /// A checkpoint is published once the oldest uncovered message is this old (0: after every
    /// message).
    pub checkpoint_interval_secs: u64,
}

impl StreamConfig {
    /// The tier with its default checkpoint interval.
    pub fn new(tier: Tier) -> Self {
        Self { tier, checkpoint_interval_secs: tier.default_checkpoint_interval_secs() }
    }
}

#[derive(Debug, Clone)]
struct StreamPublisher {
    config: StreamConfig,
    stream: StreamId,
    members: BTreeMap<PartyId, PublicKeys>,
    epoch: EpochKeys,
    next_seq: u64,
    last_digest: [u8; 32],
    /// First position not yet covered by a checkpoint.
    uncovered_first: u64,
    /// Digests of positions `uncovered_first..next_seq`.
    uncovered: Vec<[u8; 32]>,
    oldest_uncovered_time: Option<u64>,
}

impl StreamPublisher {
    fn fresh(
        config: StreamConfig,
        stream: StreamId,
        members: BTreeMap<PartyId, PublicKeys>,
        rng: &mut impl CryptoRng,
    ) -> Self {
        Self {
            config,
            stream,
            members,
            epoch: fresh_epoch(stream, rng),
            next_seq: 0,
            last_digest: [0; 32],
            uncovered_first: 0,
            uncovered: Vec::new(),
            oldest_uncovered_time: None,
        }
    }

    /// Encrypts `body` at the next position; returns the item and its digest without
    /// advancing (the caller commits).
    fn seal_next(
        &self,
        body: &[u8],
        kind: OutgoingKind,
        rng: &mut impl CryptoRng,
    ) -> Result<(Outgoing, [u8; 32]), ChannelError> {
        let seq = self.next_seq;
        if seq == u64::MAX {
            return Err(ChannelError::SequenceExhausted);
        }
        let address = self.epoch.address(seq);
        let payload = wire::seal_stream_payload(&self.epoch, seq, body, rng)?;
        if payload.len() > MAX_STREAM_PAYLOAD {
            return Err(ChannelError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_STREAM_PAYLOAD,
            });
        }
        let digest = wire::message_digest(&address, &payload);
        Ok((Outgoing { address, payload, kind }, digest))
    }

    fn checkpoint_body(
        &self,
        kind: CheckpointKind,
        keyloads: Vec<Vec<u8>>,
        now: u64,
        device: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, ChannelError> {
        if self.uncovered.len() > MAX_CHECKPOINT_COVERAGE {
            return Err(ChannelError::CheckpointTooLarge);
        }
        let mut body = CheckpointBody {
            kind,
            prev_digest: self.last_digest,
            time: now,
            first_seq: self.uncovered_first,
            digests: self.uncovered.clone(),
            keyloads,
            signature: Vec::new(),
        };
        let statement = body.statement(self.stream, self.epoch.id(), self.next_seq);
        body.signature = device.sign(SignatureContext::Checkpoint, &statement, rng)?;
        Ok(body.encode())
    }

    fn checkpoint(
        &mut self,
        now: u64,
        device: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Outgoing, ChannelError> {
        let body = self.checkpoint_body(CheckpointKind::Periodic, Vec::new(), now, device, rng)?;
        let (item, digest) = self.seal_next(&body, OutgoingKind::Checkpoint, rng)?;
        self.next_seq += 1;
        self.last_digest = digest;
        self.uncovered_first = self.next_seq;
        self.uncovered.clear();
        self.oldest_uncovered_time = None;
        Ok(item)
    }

    fn checkpoint_due(&self, now: u64) -> bool {
        self.oldest_uncovered_time.is_some_and(|oldest| {
            now.saturating_sub(oldest) >= self.config.checkpoint_interval_secs
        })
    }

    /// Ends the epoch with a signed rotation carrying keyloads for `remaining`, and switches to
    /// a fresh epoch. Keyloads that do not fit the rotation message go into keyload-batch
    /// messages just before it, which the rotation's checkpoint covers (so they are as
    /// authentic as the rotation). Stage-then-commit: nothing changes unless every step
    /// succeeded.
    fn rotate(
        &mut self,
        remaining: &BTreeMap<PartyId, PublicKeys>,
        now: u64,
        device: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        let mut staged = self.clone();
        let mut out = Vec::new();
        let total = remaining.len();
        // The rotation must cover the uncovered messages and any keyload batches; if that could
        // exceed one checkpoint's coverage, checkpoint the backlog first.
        if staged.uncovered.len() + total.div_ceil(MAX_KEYLOADS_PER_BATCH)
            >= MAX_CHECKPOINT_COVERAGE
        {
            out.push(staged.checkpoint(now, device, rng)?);
        }
        let next_epoch = fresh_epoch(self.stream, rng);
        // Room for keyloads in the rotation itself, next to its digest list and signature.
        let fixed = 256 + SIGNATURE_LEN + 32 * staged.uncovered.len();
        let inline_room =
            (MAX_STREAM_PAYLOAD.saturating_sub(fixed) / KEYLOAD_LEN).min(MAX_KEYLOADS_PER_ROTATION);
        let batches = if total <= inline_room { 0 } else { total.div_ceil(MAX_KEYLOADS_PER_BATCH) };
        let rotation_seq = staged.next_seq.saturating_add(batches as u64);
        let link = EpochLink { epoch: staged.epoch.id(), end_seq: rotation_seq.saturating_add(1) };
        let body = KeyloadBody {
            stream: self.stream,
            tier: self.config.tier,
            epoch_key: *next_epoch.epoch_key(),
            start_seq: 0,
            issued_at: now,
            previous: Some(link),
        };
        let mut keyloads = remaining
            .values()
            .map(|member| wire::seal_rotation_keyload(member, &body, rng))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted by (pseudorandom) ciphertext: the order says nothing about who the members are.
        keyloads.sort_unstable();
        let inline = if batches == 0 {
            keyloads
        } else {
            for chunk in keyloads.chunks(MAX_KEYLOADS_PER_BATCH) {
                let batch = KeyloadBatch {
                    prev_digest: staged.last_digest,
                    time: now,
                    keyloads: chunk.to_vec(),
                };
                let (item, digest) =
                    staged.seal_next(&batch.encode(), OutgoingKind::KeyloadBatch, rng)?;
                staged.next_seq += 1;
                staged.last_digest = digest;
                staged.uncovered.push(digest);
                staged.oldest_uncovered_time.get_or_insert(now);
                out.push(item);
            }
            Vec::new()
        };
        let rotation =
            staged.checkpoint_body(CheckpointKind::Rotation, inline, now, device, rng)?;
        let (item, _) = staged.seal_next(&rotation, OutgoingKind::Rotation, rng)?;
        out.push(item);
        staged.epoch = next_epoch;
        staged.next_seq = 0;
        staged.last_digest = [0; 32];
        staged.uncovered_first = 0;
        staged.uncovered.clear();
        staged.oldest_uncovered_time = None;
        *self = staged;
        Ok(out)
    }

    fn inbox_keyload(
        &self,
        member: &PublicKeys,
        previous: Option<EpochLink>,
        now: u64,
        device: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Outgoing, ChannelError> {
        let body = KeyloadBody {
            stream: self.stream,
            tier: self.config.tier,
            epoch_key: *self.epoch.epoch_key(),
            start_seq: self.next_seq,
            issued_at: now,
            previous,
        };
        let payload = wire::seal_inbox_keyload(device, member, &body, rng)?;
        Ok(Outgoing { address: member.inbox_address(), payload, kind: OutgoingKind::InboxKeyload })
    }
}

fn fresh_epoch(stream: StreamId, rng: &mut impl CryptoRng) -> EpochKeys {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(key.as_mut_slice());
    EpochKeys::new(stream, *key)
}

/// A device publishing one stream per configured tier. Created fresh or resumed from a
/// [`SavedDevice`]; either way it starts new epochs (see the module docs).
#[derive(Debug)]
pub struct DeviceChannel {
    keys: PartyKeys,
    streams: BTreeMap<Tier, StreamPublisher>,
}

impl DeviceChannel {
    /// Starts a device with no members, one stream per entry of `streams`.
    pub fn new(
        keys: PartyKeys,
        streams: &[StreamConfig],
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ChannelError> {
        let mut publishers = BTreeMap::new();
        for config in streams {
            let stream = StreamId::new(keys.id(), config.tier);
            let publisher = StreamPublisher::fresh(*config, stream, BTreeMap::new(), rng);
            if publishers.insert(config.tier, publisher).is_some() {
                return Err(ChannelError::DuplicateTier(config.tier));
            }
        }
        Ok(Self { keys, streams: publishers })
    }

    /// The device's public keys.
    pub fn public_keys(&self) -> &PublicKeys {
        self.keys.public()
    }

    /// The stream id of `tier`.
    pub fn stream_id(&self, tier: Tier) -> Result<StreamId, ChannelError> {
        Ok(self.stream(tier)?.stream)
    }

    /// The members of `tier`'s stream.
    pub fn members(&self, tier: Tier) -> Result<Vec<PartyId>, ChannelError> {
        Ok(self.stream(tier)?.members.keys().copied().collect())
    }

    fn stream(&self, tier: Tier) -> Result<&StreamPublisher, ChannelError> {
        self.streams.get(&tier).ok_or(ChannelError::UnknownTier(tier))
    }

    fn split(&mut self, tier: Tier) -> Result<(&PartyKeys, &mut StreamPublisher), ChannelError> {
        let stream = self.streams.get_mut(&tier).ok_or(ChannelError::UnknownTier(tier))?;
        Ok((&self.keys, stream))
    }

    /// Publishes `readings` as one data message, followed by a checkpoint if one is due.
    pub fn publish(
        &mut self,
        tier: Tier,
        readings: &[Reading],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        if readings.is_empty() || readings.len() > MAX_READINGS_PER_MESSAGE {
            return Err(ChannelError::ReadingCount {
                got: readings.len(),
                max: MAX_READINGS_PER_MESSAGE,
            });
        }
        let (keys, stream) = self.split(tier)?;
        // Validate and size the data message before touching any state.
        let probe = DataBody { prev_digest: [0; 32], time: now, readings: readings.to_vec() };
        let sealed_len = 1 + AEAD_NONCE_LEN + probe.encode()?.len() + AEAD_TAG_LEN;
        if sealed_len > MAX_STREAM_PAYLOAD {
            return Err(ChannelError::PayloadTooLarge { len: sealed_len, max: MAX_STREAM_PAYLOAD });
        }
        // However long the configured interval, one checkpoint covers at most
        // MAX_CHECKPOINT_COVERAGE messages: checkpoint the backlog before it would overflow.
        let mut out = Vec::new();
        if stream.uncovered.len() + 1 >= MAX_CHECKPOINT_COVERAGE {
            out.push(stream.checkpoint(now, keys, rng)?);
        }
        let body = DataBody { prev_digest: stream.last_digest, ..probe }.encode()?;
        let (item, digest) = stream.seal_next(&body, OutgoingKind::Data, rng)?;
        let before = (stream.last_digest, stream.oldest_uncovered_time);
        stream.next_seq += 1;
        stream.last_digest = digest;
        stream.uncovered.push(digest);
        stream.oldest_uncovered_time.get_or_insert(now);
        out.push(item);
        if stream.checkpoint_due(now) {
            match stream.checkpoint(now, keys, rng) {
                Ok(checkpoint) => out.push(checkpoint),
                Err(err) => {
                    // Undo the data message so the call publishes nothing, as documented.
                    stream.next_seq -= 1;
                    (stream.last_digest, stream.oldest_uncovered_time) = before;
                    stream.uncovered.pop();
                    return Err(err);
                }
            }
        }
        Ok(out)
    }

    /// Publishes the checkpoints that are due at `now` (call this periodically so slow streams
    /// are covered within their interval even when no new reading arrives).
    pub fn tick(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        let keys = &self.keys;
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if stream.checkpoint_due(now) {
                out.push(stream.checkpoint(now, keys, rng)?);
            }
        }
        Ok(out)
    }

    /// Publishes a checkpoint for `tier` now if anything is uncovered.
    pub fn checkpoint_now(
        &mut self,
        tier: Tier,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<Outgoing>, ChannelError> {
        let (keys, stream) = self.split(tier)?;
        if stream.uncovered.is_empty() {
            return Ok(None);
        }
        stream.checkpoint(now, keys, rng).map(Some)
    }

    /// Grants `member` the stream of `tier` from now on: the current epoch ends with a rotation
    /// (keyloads for the existing members only), so the new member cannot read anything
    /// published before the grant; the new member gets a signed keyload in its inbox.
    pub fn grant(
        &mut self,
        tier: Tier,
        member: PublicKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        if member.role() != Role::Provider {
            return Err(ChannelError::NotAProvider);
        }
        let (keys, stream) = self.split(tier)?;
        if stream.members.contains_key(&member.id()) {
            return Err(ChannelError::AlreadyMember(member.id()));
        }
        let existing = stream.members.clone();
        let mut out = stream.rotate(&existing, now, keys, rng)?;
        out.push(stream.inbox_keyload(&member, None, now, keys, rng)?);
        stream.members.insert(member.id(), member);
        Ok(out)
    }

    /// Revokes `member`: the epoch ends with a rotation whose keyloads go to the remaining
    /// members only; the revoked member can neither decrypt the new key nor compute the new
    /// addresses.
    pub fn revoke(
        &mut self,
        tier: Tier,
        member: PartyId,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        let (keys, stream) = self.split(tier)?;
        if !stream.members.contains_key(&member) {
            return Err(ChannelError::NotMember(member));
        }
        let mut remaining = stream.members.clone();
        remaining.remove(&member);
        let out = stream.rotate(&remaining, now, keys, rng)?;
        stream.members = remaining;
        Ok(out)
    }

    /// Serializes what must survive a restart: streams, their members, and where each current
    /// epoch stands (for the link sent on resume). Contains no secret key.
    pub fn save(&self) -> Vec<u8> {
        let saved = SavedDevice {
            device: self.keys.id(),
            streams: self
                .streams
                .values()
                .map(|s| SavedStream {
                    config: s.config,
                    members: s.members.clone(),
                    last_epoch: Some(EpochLink { epoch: s.epoch.id(), end_seq: s.next_seq }),
                })
                .collect(),
        };
        saved.encode()
    }
}

#[derive(Debug, Clone)]
struct SavedStream {
    config: StreamConfig,
    members: BTreeMap<PartyId, PublicKeys>,
    last_epoch: Option<EpochLink>,
}

/// A decoded saved device state. It cannot publish: [`SavedDevice::resume`] turns it into a
/// [`DeviceChannel`] with fresh epochs. Membership can be adjusted first (for instance from the
/// consent log, which is the authority when an old copy of the state was restored).
#[derive(Debug, Clone)]
pub struct SavedDevice {
    device: PartyId,
    streams: Vec<SavedStream>,
}

const SAVED_DEVICE_MAGIC: &[u8; 4] = b"MKDV";
const SAVED_DEVICE_VERSION: u8 = 1;
const MAX_SAVED_MEMBERS: u64 = 100_000;

impl SavedDevice {
    /// The device the state belongs to.
    pub fn device(&self) -> PartyId {
        self.device
    }

    /// Members of `tier` in the saved state.
    pub fn members(&self, tier: Tier) -> Vec<PartyId> {
        self.streams
            .iter()
            .filter(|s| s.config.tier == tier)
            .flat_map(|s| s.members.keys().copied())
            .collect()
    }

    /// Drops a member before resuming (it will receive no keyload for the new epoch).
    pub fn remove_member(&mut self, tier: Tier, member: PartyId) -> Result<(), ChannelError> {
        let stream = self
            .streams
            .iter_mut()
            .find(|s| s.config.tier == tier)
            .ok_or(ChannelError::UnknownTier(tier))?;
        stream.members.remove(&member).map(|_| ()).ok_or(ChannelError::NotMember(member))
    }

    /// Versioned encoding:
    /// `"MKDV" ‖ u8 version(1) ‖ device PartyId(32) ‖ varint streams ‖ streams`, each stream
    /// `u8 tier ‖ varint checkpoint interval ‖ u8 has-epoch ‖ EpochId(16) ‖ varint end seq ‖
    /// varint members ‖ members × PublicKeys (3170 bytes each)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(SAVED_DEVICE_MAGIC).u8(SAVED_DEVICE_VERSION).bytes(&self.device.0);
        w.varint(self.streams.len() as u64);
        for stream in &self.streams {
            w.u8(stream.config.tier.code()).varint(stream.config.checkpoint_interval_secs);
            match stream.last_epoch {
                Some(link) => w.u8(1).bytes(&link.epoch.0).varint(link.end_seq),
                None => w.u8(0).bytes(&[0; 16]).varint(0),
            };
            w.varint(stream.members.len() as u64);
            for member in stream.members.values() {
                w.bytes(&member.encode());
            }
        }
        w.finish()
    }

    /// Decodes [`SavedDevice::encode`] output.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != SAVED_DEVICE_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != SAVED_DEVICE_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "saved device", version }.into());
        }
        let device = PartyId(r.array("device id")?);
        let count = r.varint_max(Tier::ALL.len() as u64, "stream count")?;
        let mut streams: Vec<SavedStream> = Vec::new();
        for _ in 0..count {
            let tier = Tier::from_code(r.u8("tier")?)
                .ok_or(DecodeError::InvalidValue { field: "tier" })?;
            if streams.iter().any(|s| s.config.tier == tier) {
                return Err(ChannelError::DuplicateTier(tier));
            }
            let checkpoint_interval_secs = r.varint("checkpoint interval")?;
            let has_epoch = r.bool("has epoch")?;
            let epoch = EpochId(r.array("epoch id")?);
            let end_seq = r.varint("end sequence")?;
            let member_count = r.varint_max(MAX_SAVED_MEMBERS, "member count")?;
            let mut members = BTreeMap::new();
            for _ in 0..member_count {
                let member = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "member")?)
                    .map_err(|_| DecodeError::InvalidValue { field: "member" })?;
                members.insert(member.id(), member);
            }
            streams.push(SavedStream {
                config: StreamConfig { tier, checkpoint_interval_secs },
                members,
                last_epoch: has_epoch.then_some(EpochLink { epoch, end_seq }),
            });
        }
        r.finish()?;
        Ok(Self { device, streams })
    }

    /// Restarts the device: a fresh epoch per stream, and a signed inbox keyload per member
    /// linking it to the epoch the saved state knew. Publish the returned items first.
    pub fn resume(
        self,
        keys: PartyKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(DeviceChannel, Vec<Outgoing>), ChannelError> {
        if keys.id() != self.device {
            return Err(ChannelError::KeysMismatch);
        }
        let mut streams = BTreeMap::new();
        let mut out = Vec::new();
        for saved in self.streams {
            let stream_id = StreamId::new(keys.id(), saved.config.tier);
            let publisher = StreamPublisher::fresh(saved.config, stream_id, saved.members, rng);
            for member in publisher.members.values() {
                out.push(publisher.inbox_keyload(member, saved.last_epoch, now, &keys, rng)?);
            }
            streams.insert(saved.config.tier, publisher);
        }
        Ok((DeviceChannel { keys, streams }, out))
    }
}
