//! What the provider knows about its grants, fed by the messages its follows deliver.
//!
//! ```text
//!  notice address ─► ProviderConsent::receive (owner + device signatures) ─► GrantView state
//!                                     └─ Granted: acknowledgement to publish, follower per device
//!  inbox ─► every device's ProviderFollower (a keyload for another device is refused as not
//!           for it); kept, so a follower created by a later grant sees earlier keyloads
//!  stream positions ─► ProviderFollower::receive ─► Provisional / Verified readings
//! ```
//!
//! This is the browser's driver state around `protocol`'s provider side; it holds no I/O (the
//! follows in [`super::live`] feed it, the clock and randomness come in as arguments), so it
//! is tested without a node.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use protocol::channel::{FollowerConfig, FollowerEvent, Position, ProviderFollower, Reading, Tier};
use protocol::consent::{NoticeOutcome, ProviderConsent, Publish, notice_address};
use protocol::crypto::{PartyId, PartyKeys};
use protocol::tangle::MessageId;
use rand_core::CryptoRng;

/// Positions watched past the newest one seen, per stream. Smaller than the protocol's default
/// so the addresses of one or two streams fit one node subscription (64 addresses at most).
pub const LOOKAHEAD: u64 = 40;

/// Inbox payloads kept for followers created later (a grant whose keyload came first).
const MAX_KEPT_INBOX: usize = 1_000;

/// Where a grant stands, as the provider sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantState {
    /// Granted (the notice arrived), no stream key yet.
    Pending,
    /// Keys received: readings flow.
    Active,
    /// Revoked by the household (or the device was removed).
    Revoked,
    /// Reached its end.
    Expired,
}

impl GrantState {
    /// The word used in `data-state` and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// True once access has ended for good.
    pub fn ended(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired)
    }
}

/// One grant, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// Grant id (hex).
    pub id: String,
    /// The device whose data it covers.
    pub device: PartyId,
    /// The purpose the household agreed to.
    pub purpose: String,
    /// Tiers granted, finest first.
    pub tiers: Vec<Tier>,
    /// Access period (UTC seconds) and deletion deadline.
    pub start: u64,
    /// See `start`.
    pub end: u64,
    /// See `start`.
    pub delete_by: u64,
    /// Current state.
    pub state: GrantState,
    /// The household's reason, for a revocation.
    pub reason: Option<String>,
    /// When this browser learned of the last change (UTC seconds).
    pub changed_at: u64,
}

/// A reading received on a stream, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The device.
    pub device: PartyId,
    /// Stream position.
    pub position: Position,
    /// Covered by the device's signed checkpoint (authentic) or not yet.
    pub verified: bool,
    /// The reading.
    pub reading: Reading,
}

/// What the page must do or show after a message or a tick.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// A grant appeared or changed.
    Grant(GrantView),
    /// Readings arrived.
    Readings(Vec<Received>),
    /// Something to publish (the acknowledgement of a consent receipt).
    Publish(Publish),
    /// A peer's message was refused or a stream misbehaved (shown, never fatal).
    Warning(String),
}

struct DeviceStreams {
    follower: ProviderFollower,
    /// Stream addresses already delivered (their messages are in the follower).
    received: HashSet<[u8; 32]>,
}

/// The provider's grants and streams, fed one message at a time.
pub struct ProviderWatch {
    keys: Arc<PartyKeys>,
    consent: ProviderConsent,
    devices: BTreeMap<PartyId, DeviceStreams>,
    inbox_kept: Vec<Vec<u8>>,
    seen: HashSet<MessageId>,
    grants: BTreeMap<[u8; 16], GrantView>,
}

impl std::fmt::Debug for ProviderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderWatch")
            .field("provider", &self.keys.id())
            .field("grants", &self.grants.len())
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl ProviderWatch {
    /// Nothing known yet for the provider `keys`.
    pub fn new(keys: Arc<PartyKeys>) -> Self {
        Self {
            keys,
            consent: ProviderConsent::new(),
            devices: BTreeMap::new(),
            inbox_kept: Vec::new(),
            seen: HashSet::new(),
            grants: BTreeMap::new(),
        }
    }

    /// The provider's notice address.
    pub fn notice_address(&self) -> [u8; 32] {
        notice_address(self.keys.id())
    }

    /// The provider's inbox (keyloads from every device).
    pub fn inbox_address(&self) -> [u8; 32] {
        self.keys.public().inbox_address()
    }

    /// Every grant known, oldest first.
    pub fn grants(&self) -> impl Iterator<Item = &GrantView> {
        self.grants.values()
    }

    /// Stream positions still to fetch, at most `limit`, for every device with a grant.
    pub fn stream_addresses(&mut self, limit: usize) -> Vec<[u8; 32]> {
        let inbox = self.inbox_address();
        let mut out = Vec::new();
        for streams in self.devices.values_mut() {
            for address in streams.follower.watch_addresses() {
                if address != inbox && !streams.received.contains(&address) {
                    out.push(address);
                }
            }
        }
        out.truncate(limit);
        out
    }

    /// Processes the message `id` found at `address` (each id once; repeats are ignored).
    pub fn receive(
        &mut self,
        id: MessageId,
        address: [u8; 32],
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Vec<WatchEvent> {
        if !self.seen.insert(id) {
            return Vec::new();
        }
        let mut events = Vec::new();
        if address == self.notice_address() {
            self.on_notice(payload, now, rng, &mut events);
        } else if address == self.inbox_address() {
            let inbox = self.inbox_address();
            for (device, streams) in &mut self.devices {
                let found = streams.follower.receive(&self.keys, &inbox, payload, now);
                collect(*device, found, &mut self.grants, now, &mut events);
            }
            if self.inbox_kept.len() < MAX_KEPT_INBOX {
                self.inbox_kept.push(payload.to_vec());
            }
        } else {
            for (device, streams) in &mut self.devices {
                let found = streams.follower.receive(&self.keys, &address, payload, now);
                if !found.is_empty() {
                    streams.received.insert(address);
                    collect(*device, found, &mut self.grants, now, &mut events);
                }
            }
        }
        events
    }

    /// Time passes: overdue checkpoints are reported, and grants past their end without a
    /// notice yet are shown as expired (the device rotates at the end by itself).
    pub fn tick(&mut self, now: u64) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for (device, streams) in &mut self.devices {
            let found = streams.follower.tick(now);
            collect(*device, found, &mut self.grants, now, &mut events);
        }
        for grant in self.grants.values_mut() {
            if !grant.state.ended() && now >= grant.end {
                grant.state = GrantState::Expired;
                grant.changed_at = now;
                events.push(WatchEvent::Grant(grant.clone()));
            }
        }
        events
    }

    fn on_notice(
        &mut self,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
        events: &mut Vec<WatchEvent>,
    ) {
        let outcome = match self.consent.receive(&self.keys, payload) {
            Ok(outcome) => outcome,
            Err(error) => {
                events.push(WatchEvent::Warning(format!("a notice was refused: {error}")));
                return;
            }
        };
        let (grant, state, reason) = match outcome {
            NoticeOutcome::Granted(receipt) => {
                let grant = receipt.grant();
                let device = receipt.device().id();
                let view = GrantView {
                    id: hex::encode(grant.id.0),
                    device,
                    purpose: grant.purpose.clone(),
                    tiers: grant.tiers.clone(),
                    start: grant.start,
                    end: grant.end,
                    delete_by: grant.delete_by,
                    state: GrantState::Pending,
                    reason: None,
                    changed_at: now,
                };
                self.grants.insert(grant.id.0, view);
                match receipt.acknowledge(&self.keys, now, rng) {
                    Ok((_, publish)) => events.push(WatchEvent::Publish(publish)),
                    Err(error) => events.push(WatchEvent::Warning(format!(
                        "the consent receipt could not be acknowledged: {error}"
                    ))),
                }
                if !self.devices.contains_key(&device) {
                    let config =
                        FollowerConfig { lookahead: LOOKAHEAD, ..FollowerConfig::default() };
                    let follower =
                        ProviderFollower::new(&self.keys, receipt.device().clone(), config);
                    let mut streams = DeviceStreams { follower, received: HashSet::new() };
                    // Keyloads that arrived before this grant's notice.
                    let inbox = self.inbox_address();
                    for kept in &self.inbox_kept {
                        let found = streams.follower.receive(&self.keys, &inbox, kept, now);
                        collect(device, found, &mut self.grants, now, events);
                    }
                    self.devices.insert(device, streams);
                }
                if let Some(view) = self.grants.get_mut(&grant.id.0) {
                    // A follower that already holds keys for this device: readings flow now.
                    let holds_keys =
                        self.devices.get(&device).is_some_and(|s| !s.follower.tiers().is_empty());
                    if holds_keys && view.state == GrantState::Pending {
                        view.state = GrantState::Active;
                    }
                    events.push(WatchEvent::Grant(view.clone()));
                }
                return;
            }
            NoticeOutcome::Amended { grant, tiers, end } => {
                if let Some(view) = self.grants.get_mut(&grant.0) {
                    view.tiers = tiers;
                    view.end = end;
                    view.changed_at = now;
                    events.push(WatchEvent::Grant(view.clone()));
                }
                return;
            }
            NoticeOutcome::Revoked { grant, reason } => (grant, GrantState::Revoked, Some(reason)),
            NoticeOutcome::Expired { grant } => (grant, GrantState::Expired, None),
            NoticeOutcome::DeviceRemoved { grant } => (
                grant,
                GrantState::Revoked,
                Some("the device was removed from its household".into()),
            ),
        };
        if let Some(view) = self.grants.get_mut(&grant.0) {
            view.state = state;
            view.reason = reason;
            view.changed_at = now;
            events.push(WatchEvent::Grant(view.clone()));
        }
    }
}

/// Turns follower events into watch events, and marks a device's pending grants active when
/// its first stream key arrives.
fn collect(
    device: PartyId,
    found: Vec<FollowerEvent>,
    grants: &mut BTreeMap<[u8; 16], GrantView>,
    now: u64,
    events: &mut Vec<WatchEvent>,
) {
    let mut readings = Vec::new();
    for event in found {
        match event {
            FollowerEvent::Provisional { position, readings: found, .. } => {
                readings.extend(found.into_iter().map(|reading| Received {
                    device,
                    position,
                    verified: false,
                    reading,
                }));
            }
            FollowerEvent::Verified { position, readings: found, .. } => {
                readings.extend(found.into_iter().map(|reading| Received {
                    device,
                    position,
                    verified: true,
                    reading,
                }));
            }
            FollowerEvent::Joined { .. } => {
                for grant in grants.values_mut() {
                    if grant.device == device && grant.state == GrantState::Pending {
                        grant.state = GrantState::Active;
                        grant.changed_at = now;
                        events.push(WatchEvent::Grant(grant.clone()));
                    }
                }
            }
            FollowerEvent::Forged { position } | FollowerEvent::Fork { position } => {
                events.push(WatchEvent::Warning(format!(
                    "a message at position {} was not written by the device: ignored",
                    position.seq
                )));
            }
            FollowerEvent::Gap { missing } => events.push(WatchEvent::Warning(format!(
                "{} reading(s) covered by the device's checkpoint never arrived",
                missing.len()
            ))),
            // Normal traffic (rotations, keyloads for other devices, reordering) and
            // refusals of single messages need no word on screen.
            _ => {}
        }
    }
    if !readings.is_empty() {
        events.push(WatchEvent::Readings(readings));
    }
}
