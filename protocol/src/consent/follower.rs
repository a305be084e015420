//! The device's consent follower: log entries and time in, channel operations and notices out.
//!
//! ```text
//!  payload at a log address ─► LogReader (owner signature, index, chain, device binding)
//!      DevicePaired ─► report
//!      Granted      ─► now < start: scheduled │ start ≤ now < end: channel.grant(tier) for exactly
//!                      the granted tiers + Granted notice (carrying the signed entry)
//!      Amended      ─► channel.revoke(removed tiers), channel.grant(added tiers), notice
//!      Revoked      ─► final delivery receipt, channel.revoke (rotation), Revoked notice
//!      DeviceRemoved─► every grant: receipt, rotation, DeviceRemoved notice; follower ends
//!  tick(now)        ─► scheduled grants start; grants at their end rotate (no wallet needed);
//!                      delivery receipts every `receipt_interval_secs`
//!  record_published ─► per-tier delivery ledger (numbers and digests of data messages)
//! ```
//!
//! A provider holding two live grants for the same tier stays a member until the last of
//! them ends, so one revocation never cuts off access another grant still allows.

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRng;

use super::event::{EventKind, Grant, GrantId, RemovalReason, read_tiers, write_tiers};
use super::log::{IgnoredEntry, LogAnomaly, LogOutcome, LogReader, SealedEntry};
use super::notice::{Notice, NoticeKind};
use super::receipt::DeliveryReceipt;
use super::{ConsentError, Publish};
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::channel::{Address, DeviceChannel, Outgoing, OutgoingKind, Tier};
use crate::crypto::{PartyId, PartyKeys, PublicKeys, SymmetricKey, digest};

const FOLLOWER_MAGIC: &[u8; 4] = b"MKCF";
const FOLLOWER_VERSION: u8 = 1;
/// Bounds on saved state, so a corrupted file cannot make the decoder allocate without limit.
const MAX_LEDGER_DIGESTS: u64 = 10_000_000;
const MAX_SAVED_GRANTS: u64 = 100_000;

fn read_tier(r: &mut Reader<'_>) -> Result<Tier, DecodeError> {
    Tier::from_code(r.u8("tier")?).ok_or(DecodeError::InvalidValue { field: "tier" })
}

/// Tuning of a consent follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentFollowerConfig {
    /// Seconds between delivery receipts.
    pub receipt_interval_secs: u64,
}

impl Default for ConsentFollowerConfig {
    fn default() -> Self {
        Self { receipt_interval_secs: 3_600 }
    }
}

/// Why the device did not carry out a grant the owner signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// The device does not publish this tier.
    UnservedTier(Tier),
    /// The grant's end had passed when the device read it.
    AlreadyEnded,
    /// A grant with this id already exists.
    Duplicate,
    /// An amendment or revocation for a grant the device does not know (or that ended).
    UnknownGrant,
}

/// What the follower did or noticed (for the device's own log and the driver's metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentReport {
    /// The log's first entry named this owner.
    Paired {
        /// The owner.
        owner: PartyId,
    },
    /// Keys for `tiers` were delivered to the grant's provider.
    GrantStarted {
        /// Which grant.
        grant: GrantId,
        /// The provider.
        provider: PartyId,
        /// Tiers delivered.
        tiers: Vec<Tier>,
    },
    /// A grant that starts later; `tick` will start it.
    GrantScheduled {
        /// Which grant.
        grant: GrantId,
        /// When.
        start: u64,
    },
    /// An owner-signed event the device could not carry out.
    GrantRefused {
        /// Which grant.
        grant: GrantId,
        /// Why.
        reason: GrantRefusal,
    },
    /// The owner denied a request (nothing to do on the device).
    Denied {
        /// The provider.
        provider: PartyId,
    },
    /// A grant's tiers or end changed.
    Amended {
        /// Which grant.
        grant: GrantId,
        /// Tiers from now on.
        tiers: Vec<Tier>,
    },
    /// A grant was revoked and its tiers rotated.
    Revoked {
        /// Which grant.
        grant: GrantId,
    },
    /// A grant reached its end and its tiers rotated.
    Expired {
        /// Which grant.
        grant: GrantId,
    },
    /// The device was removed (by the owner) or reset (`None`): every grant ended.
    DeviceRemoved {
        /// The owner's reason, if it was the owner.
        reason: Option<RemovalReason>,
    },
    /// A delivery receipt was issued.
    ReceiptIssued {
        /// Which grant.
        grant: GrantId,
        /// Which tier.
        tier: Tier,
        /// Messages covered.
        count: u64,
    },
    /// A payload that did not count.
    Ignored(IgnoredEntry),
    /// Evidence of a tampered, replayed, reordered or forked log.
    Anomaly(LogAnomaly),
}

/// What one call produced: items to publish (in order) and reports.
#[derive(Debug, Default)]
pub struct FollowerStep {
    /// Publish these, in order.
    pub publish: Vec<Publish>,
    /// What happened.
    pub reports: Vec<ConsentReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantStatus {
    Scheduled,
    Live,
}

#[derive(Debug)]
struct TrackedGrant {
    grant: Grant,
    entry: Vec<u8>,
    status: GrantStatus,
    /// Per tier: the first delivery number not yet covered by a receipt.
    receipted: BTreeMap<Tier, u64>,
}

/// Numbers and digests of one tier's data messages.
#[derive(Debug, Default)]
struct TierLedger {
    first: u64,
    digests: VecDeque<[u8; 32]>,
}

impl TierLedger {
    fn end(&self) -> u64 {
        self.first + self.digests.len() as u64
    }

    fn range_digest(&self, from: u64, to: u64) -> [u8; 32] {
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let take = usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX);
        let parts: Vec<&[u8]> =
            self.digests.iter().skip(skip).take(take).map(|d| d.as_slice()).collect();
        digest(b"meterkast/v1/delivery-range", &parts)
    }

    fn forget_below(&mut self, keep_from: u64) {
        while self.first < keep_from && self.digests.pop_front().is_some() {
            self.first += 1;
        }
    }
}

/// The device's consent follower for one pairing (one log).
#[derive(Debug)]
pub struct DeviceConsentFollower {
    reader: LogReader,
    config: ConsentFollowerConfig,
    grants: BTreeMap<GrantId, TrackedGrant>,
    ledgers: BTreeMap<Tier, TierLedger>,
    next_receipt: u64,
    last_receipt_at: Option<u64>,
    ended: bool,
}

impl DeviceConsentFollower {
    /// A follower of the log agreed at pairing.
    pub fn new(
        device: PartyId,
        owner: PublicKeys,
        log_key: &SymmetricKey,
        config: ConsentFollowerConfig,
    ) -> Self {
        Self {
            reader: LogReader::new(device, owner, log_key),
            config,
            grants: BTreeMap::new(),
            ledgers: BTreeMap::new(),
            next_receipt: 0,
            last_receipt_at: None,
            ended: false,
        }
    }

    /// Serializes what must survive a restart: the log position, the grants (as their
    /// owner-signed entries plus current tiers, end and receipt positions), the delivery ledgers
    /// and the receipt counter. Contains no key (grant keys stay encrypted inside the entries);
    /// the log key comes from the saved pairing state.
    ///
    /// `"MKCF" ‖ u8 1 ‖ reader (device PartyId ‖ u64be next ‖ last hash ‖ u64be last time ‖
    /// varint n ‖ n × (u64be index ‖ hash)) ‖ u8 ended ‖ u64be next receipt ‖ u8 has last ‖
    /// u64be last receipt time ‖ varint n ‖ n × (u8 tier ‖ u64be first ‖ varint m ‖ m × digest) ‖
    /// varint n ‖ n × (lp entry ‖ u8 live ‖ tiers ‖ u64be end ‖ varint m ‖ m × (u8 tier ‖ u64be))`
    pub fn save(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(FOLLOWER_MAGIC).u8(FOLLOWER_VERSION);
        self.reader.save(&mut w);
        w.u8(u8::from(self.ended)).u64be(self.next_receipt);
        w.u8(u8::from(self.last_receipt_at.is_some())).u64be(self.last_receipt_at.unwrap_or(0));
        w.varint(self.ledgers.len() as u64);
        for (tier, ledger) in &self.ledgers {
            w.u8(tier.code()).u64be(ledger.first).varint(ledger.digests.len() as u64);
            for digest in &ledger.digests {
                w.bytes(digest);
            }
        }
        w.varint(self.grants.len() as u64);
        for tracked in self.grants.values() {
            w.length_prefixed(&tracked.entry).u8(u8::from(tracked.status == GrantStatus::Live));
            write_tiers(&mut w, &tracked.grant.tiers);
            w.u64be(tracked.grant.end).varint(tracked.receipted.len() as u64);
            for (tier, from) in &tracked.receipted {
                w.u8(tier.code()).u64be(*from);
            }
        }
        w.finish()
    }

    /// Restores [`DeviceConsentFollower::save`] output with the pairing's owner keys and log key.
    /// Every saved grant entry is verified and decrypted again.
    pub fn restore(
        bytes: &[u8],
        device: PartyId,
        owner: PublicKeys,
        log_key: &SymmetricKey,
        config: ConsentFollowerConfig,
    ) -> Result<Self, ConsentError> {
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != FOLLOWER_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != FOLLOWER_VERSION {
            return Err(
                DecodeError::UnsupportedVersion { what: "consent follower", version }.into()
            );
        }
        let reader = LogReader::restore(&mut r, device, owner, log_key)?;
        let ended = r.bool("ended")?;
        let next_receipt = r.u64be("next receipt")?;
        let has_last = r.bool("has last receipt")?;
        let last = r.u64be("last receipt")?;
        let mut follower = Self::new(device, reader.owner().clone(), log_key, config);
        follower.reader = reader;
        follower.ended = ended;
        follower.next_receipt = next_receipt;
        follower.last_receipt_at = has_last.then_some(last);
        for _ in 0..r.varint_max(Tier::ALL.len() as u64, "ledger count")? {
            let tier = read_tier(&mut r)?;
            let first = r.u64be("ledger first")?;
            let mut digests = VecDeque::new();
            for _ in 0..r.varint_max(MAX_LEDGER_DIGESTS, "ledger length")? {
                digests.push_back(r.array("ledger digest")?);
            }
            follower.ledgers.insert(tier, TierLedger { first, digests });
        }
        for _ in 0..r.varint_max(MAX_SAVED_GRANTS, "grant count")? {
            let entry = r.length_prefixed(super::receipt::MAX_ENTRY_LEN, "grant entry")?.to_vec();
            let live = r.bool("grant live")?;
            let tiers = read_tiers(&mut r)?;
            let end = r.u64be("grant end")?;
            let mut receipted = BTreeMap::new();
            for _ in 0..r.varint_max(Tier::ALL.len() as u64, "receipt positions")? {
                let tier = read_tier(&mut r)?;
                receipted.insert(tier, r.u64be("receipt position")?);
            }
            let sealed = SealedEntry::decode(&entry)?;
            sealed.verify_signature(device, follower.reader.owner())?;
            let content_key = sealed.household_content_key(follower.reader.keys(), device)?;
            let EventKind::Granted(grant) = sealed.open(&content_key, device)?.kind else {
                return Err(ConsentError::NotAGrant);
            };
            let mut grant = *grant;
            grant.tiers = tiers;
            grant.end = end;
            let status = if live { GrantStatus::Live } else { GrantStatus::Scheduled };
            follower.grants.insert(grant.id, TrackedGrant { grant, entry, status, receipted });
        }
        r.finish()?;
        Ok(follower)
    }

    /// Addresses to fetch or subscribe to (the log's next entry and recent ones).
    pub fn watch_addresses(&self) -> Vec<Address> {
        if self.ended { Vec::new() } else { self.reader.watch_addresses() }
    }

    /// Whether the device was removed (the follower does nothing more).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Grants currently live, with their tiers.
    pub fn live_grants(&self) -> Vec<(GrantId, PartyId, Vec<Tier>)> {
        self.grants
            .values()
            .filter(|g| g.status == GrantStatus::Live)
            .map(|g| (g.grant.id, g.grant.provider.id(), g.grant.tiers.clone()))
            .collect()
    }

    /// Records data messages the device published (call with every `publish` result).
    pub fn record_published(&mut self, tier: Tier, items: &[Outgoing]) {
        let ledger = self.ledgers.entry(tier).or_default();
        for item in items.iter().filter(|i| i.kind == OutgoingKind::Data) {
            ledger
                .digests
                .push_back(digest(b"meterkast/v1/delivery", &[&item.address, &item.payload]));
        }
    }

    /// Processes one payload found at a watched address.
    pub fn receive(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        address: &Address,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<FollowerStep, ConsentError> {
        let mut step = FollowerStep::default();
        if self.ended {
            step.reports.push(ConsentReport::Ignored(IgnoredEntry::NotWatched));
            return Ok(step);
        }
        let verified = match self.reader.receive(address, payload) {
            LogOutcome::Accepted(entry) => entry,
            LogOutcome::Ignored(why) => {
                step.reports.push(ConsentReport::Ignored(why));
                return Ok(step);
            }
            LogOutcome::Anomaly(anomaly) => {
                step.reports.push(ConsentReport::Anomaly(anomaly));
                return Ok(step);
            }
        };
        let entry_bytes = verified.entry.bytes().to_vec();
        match verified.event.kind {
            EventKind::DevicePaired { owner, .. } => {
                step.reports.push(ConsentReport::Paired { owner });
            }
            EventKind::Granted(grant) => {
                self.on_grant(device, channel, *grant, entry_bytes, now, rng, &mut step)?;
            }
            EventKind::Denied { provider, .. } => {
                step.reports.push(ConsentReport::Denied { provider });
            }
            EventKind::Amended { grant, tiers, end } => {
                self.on_amend(
                    device,
                    channel,
                    grant,
                    tiers,
                    end,
                    &entry_bytes,
                    now,
                    rng,
                    &mut step,
                )?;
            }
            EventKind::Revoked { grant, .. } => {
                if self.grants.contains_key(&grant) {
                    self.end_grant(
                        device,
                        channel,
                        grant,
                        NoticeKind::Revoked,
                        &entry_bytes,
                        now,
                        rng,
                        &mut step,
                    )?;
                    step.reports.push(ConsentReport::Revoked { grant });
                } else {
                    step.reports.push(ConsentReport::GrantRefused {
                        grant,
                        reason: GrantRefusal::UnknownGrant,
                    });
                }
            }
            EventKind::DeviceRemoved { reason } => {
                let mut ended = self.end_all(device, channel, now, rng)?;
                ended.reports.retain(|r| !matches!(r, ConsentReport::DeviceRemoved { .. }));
                step.publish.append(&mut ended.publish);
                step.reports.append(&mut ended.reports);
                step.reports.push(ConsentReport::DeviceRemoved { reason: Some(reason) });
            }
        }
        Ok(step)
    }

    #[allow(clippy::too_many_arguments)] // The driver's inputs plus the event's fields.
    fn on_grant(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        grant: Grant,
        entry: Vec<u8>,
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        let id = grant.id;
        let refusal = if self.grants.contains_key(&id) {
            Some(GrantRefusal::Duplicate)
        } else if let Some(tier) = grant.tiers.iter().find(|t| channel.stream_id(**t).is_err()) {
            Some(GrantRefusal::UnservedTier(*tier))
        } else if now >= grant.end {
            Some(GrantRefusal::AlreadyEnded)
        } else {
            None
        };
        if let Some(reason) = refusal {
            step.reports.push(ConsentReport::GrantRefused { grant: id, reason });
            return Ok(());
        }
        let start = grant.start;
        self.grants.insert(
            id,
            TrackedGrant {
                grant,
                entry,
                status: GrantStatus::Scheduled,
                receipted: BTreeMap::new(),
            },
        );
        if now < start {
            step.reports.push(ConsentReport::GrantScheduled { grant: id, start });
            return Ok(());
        }
        self.start_grant(device, channel, id, now, rng, step)
    }

    fn start_grant(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        id: GrantId,
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        let Some(tracked) = self.grants.get(&id) else { return Ok(()) };
        let provider = tracked.grant.provider.clone();
        let tiers = tracked.grant.tiers.clone();
        for tier in &tiers {
            if !channel.members(*tier)?.contains(&provider.id()) {
                step.publish.extend(
                    channel
                        .grant(*tier, provider.clone(), now, rng)?
                        .into_iter()
                        .map(Publish::from),
                );
            }
        }
        let notice = Notice {
            kind: NoticeKind::Granted,
            owner: self.reader.owner(),
            grant: id,
            grant_key: &tracked.grant.grant_key,
            time: now,
            tiers: &tiers,
            entry: &tracked.entry,
        };
        step.publish.push(notice.seal(device, &provider, rng)?);
        let receipted =
            tiers.iter().map(|t| (*t, self.ledgers.get(t).map_or(0, TierLedger::end))).collect();
        if let Some(tracked) = self.grants.get_mut(&id) {
            tracked.status = GrantStatus::Live;
            tracked.receipted = receipted;
        }
        step.reports.push(ConsentReport::GrantStarted {
            grant: id,
            provider: provider.id(),
            tiers,
        });
        Ok(())
    }

    /// Whether another live grant of `provider` (other than `except`) covers `tier`.
    fn still_entitled(&self, provider: PartyId, tier: Tier, except: GrantId) -> bool {
        self.grants.values().any(|g| {
            g.grant.id != except
                && g.status == GrantStatus::Live
                && g.grant.provider.id() == provider
                && g.grant.tiers.contains(&tier)
        })
    }

    /// Rotates `provider` out of `tiers` (those no other live grant of it still covers).
    #[allow(clippy::too_many_arguments)] // The driver's inputs plus what to rotate.
    fn rotate_out(
        &self,
        channel: &mut DeviceChannel,
        provider: PartyId,
        tiers: &[Tier],
        except: GrantId,
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        for tier in tiers {
            if !self.still_entitled(provider, *tier, except)
                && channel.members(*tier)?.contains(&provider)
            {
                step.publish.extend(
                    channel.revoke(*tier, provider, now, rng)?.into_iter().map(Publish::from),
                );
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // The driver's inputs plus the event's fields.
    fn on_amend(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        id: GrantId,
        tiers: Vec<Tier>,
        end: u64,
        entry: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        let Some(tracked) = self.grants.get(&id) else {
            step.reports.push(ConsentReport::GrantRefused {
                grant: id,
                reason: GrantRefusal::UnknownGrant,
            });
            return Ok(());
        };
        if let Some(tier) = tiers.iter().find(|t| channel.stream_id(**t).is_err()) {
            step.reports.push(ConsentReport::GrantRefused {
                grant: id,
                reason: GrantRefusal::UnservedTier(*tier),
            });
            return Ok(());
        }
        let provider = tracked.grant.provider.clone();
        let live = tracked.status == GrantStatus::Live;
        let removed: Vec<Tier> =
            tracked.grant.tiers.iter().copied().filter(|t| !tiers.contains(t)).collect();
        let added: Vec<Tier> =
            tiers.iter().copied().filter(|t| !tracked.grant.tiers.contains(t)).collect();
        if live {
            self.issue_receipts_for(device, id, now, rng, step)?;
            self.rotate_out(channel, provider.id(), &removed, id, now, rng, step)?;
            for tier in &added {
                if !channel.members(*tier)?.contains(&provider.id()) {
                    step.publish.extend(
                        channel
                            .grant(*tier, provider.clone(), now, rng)?
                            .into_iter()
                            .map(Publish::from),
                    );
                }
            }
        }
        let ledger_ends: Vec<(Tier, u64)> =
            added.iter().map(|t| (*t, self.ledgers.get(t).map_or(0, TierLedger::end))).collect();
        if let Some(tracked) = self.grants.get_mut(&id) {
            tracked.grant.tiers = tiers.clone();
            tracked.grant.end = end;
            for tier in &removed {
                tracked.receipted.remove(tier);
            }
            tracked.receipted.extend(ledger_ends);
            if live {
                let notice = Notice {
                    kind: NoticeKind::Amended,
                    owner: self.reader.owner(),
                    grant: id,
                    grant_key: &tracked.grant.grant_key,
                    time: now,
                    tiers: &tiers,
                    entry,
                };
                step.publish.push(notice.seal(device, &provider, rng)?);
            }
        }
        step.reports.push(ConsentReport::Amended { grant: id, tiers });
        Ok(())
    }

    /// Ends one grant: final receipt, rotation, notice. Scheduled grants just disappear (their
    /// provider was never told of them).
    #[allow(clippy::too_many_arguments)] // The driver's inputs plus the ending's fields.
    fn end_grant(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        id: GrantId,
        kind: NoticeKind,
        entry: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        let live = self.grants.get(&id).is_some_and(|g| g.status == GrantStatus::Live);
        if live {
            self.issue_receipts_for(device, id, now, rng, step)?;
        }
        let Some(tracked) = self.grants.remove(&id) else { return Ok(()) };
        if !live {
            return Ok(());
        }
        let provider = tracked.grant.provider.id();
        self.rotate_out(channel, provider, &tracked.grant.tiers, id, now, rng, step)?;
        let notice = Notice {
            kind,
            owner: self.reader.owner(),
            grant: id,
            grant_key: &tracked.grant.grant_key,
            time: now,
            tiers: &[],
            entry,
        };
        step.publish.push(notice.seal(device, &tracked.grant.provider, rng)?);
        Ok(())
    }

    /// Ends every grant (device removed by its owner, or reset/handed over at the device) and
    /// stops following this log. Re-pairing starts a new log and a new follower.
    pub fn end_all(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<FollowerStep, ConsentError> {
        let mut step = FollowerStep::default();
        let ids: Vec<GrantId> = self.grants.keys().copied().collect();
        for id in ids {
            self.end_grant(
                device,
                channel,
                id,
                NoticeKind::DeviceRemoved,
                &[],
                now,
                rng,
                &mut step,
            )?;
        }
        self.ended = true;
        step.reports.push(ConsentReport::DeviceRemoved { reason: None });
        Ok(step)
    }

    /// Time passes: scheduled grants start, grants at their end expire (rotation without any
    /// wallet action), delivery receipts are issued when due.
    pub fn tick(
        &mut self,
        device: &PartyKeys,
        channel: &mut DeviceChannel,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<FollowerStep, ConsentError> {
        let mut step = FollowerStep::default();
        if self.ended {
            return Ok(step);
        }
        let expired: Vec<GrantId> =
            self.grants.values().filter(|g| now >= g.grant.end).map(|g| g.grant.id).collect();
        for id in expired {
            let was_live = self.grants.get(&id).is_some_and(|g| g.status == GrantStatus::Live);
            self.end_grant(device, channel, id, NoticeKind::Expired, &[], now, rng, &mut step)?;
            if was_live {
                step.reports.push(ConsentReport::Expired { grant: id });
            }
        }
        let due: Vec<GrantId> = self
            .grants
            .values()
            .filter(|g| g.status == GrantStatus::Scheduled && now >= g.grant.start)
            .map(|g| g.grant.id)
            .collect();
        for id in due {
            self.start_grant(device, channel, id, now, rng, &mut step)?;
        }
        let receipts_due = self
            .last_receipt_at
            .is_none_or(|last| now.saturating_sub(last) >= self.config.receipt_interval_secs);
        if receipts_due {
            let live: Vec<GrantId> = self
                .grants
                .values()
                .filter(|g| g.status == GrantStatus::Live)
                .map(|g| g.grant.id)
                .collect();
            for id in live {
                self.issue_receipts_for(device, id, now, rng, &mut step)?;
            }
            self.last_receipt_at = Some(now);
        }
        self.prune_ledgers();
        Ok(step)
    }

    /// Issues a receipt per tier of grant `id` for what was published since its last one.
    fn issue_receipts_for(
        &mut self,
        device: &PartyKeys,
        id: GrantId,
        now: u64,
        rng: &mut impl CryptoRng,
        step: &mut FollowerStep,
    ) -> Result<(), ConsentError> {
        let Some(tracked) = self.grants.get(&id) else { return Ok(()) };
        let mut issued = Vec::new();
        for (tier, from) in &tracked.receipted {
            let Some(ledger) = self.ledgers.get(tier) else { continue };
            let to = ledger.end();
            if to <= *from {
                continue;
            }
            let receipt = DeliveryReceipt {
                device: self.reader.device(),
                grant: id,
                tier: *tier,
                first: *from,
                end: to,
                count: to - from,
                digest: ledger.range_digest(*from, to),
                issued_at: now,
            };
            step.publish.push(receipt.seal(device, self.reader.keys(), self.next_receipt, rng)?);
            self.next_receipt += 1;
            step.reports.push(ConsentReport::ReceiptIssued {
                grant: id,
                tier: *tier,
                count: to - from,
            });
            issued.push((*tier, to));
        }
        if let Some(tracked) = self.grants.get_mut(&id) {
            tracked.receipted.extend(issued);
        }
        Ok(())
    }

    /// Drops ledger digests every live grant already has a receipt for.
    fn prune_ledgers(&mut self) {
        for (tier, ledger) in &mut self.ledgers {
            let keep_from = self
                .grants
                .values()
                .filter_map(|g| g.receipted.get(tier).copied())
                .min()
                .unwrap_or(ledger.end());
            ledger.forget_below(keep_from);
        }
    }
}
