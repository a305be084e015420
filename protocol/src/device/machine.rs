//! [`Device`]: readings, fetched payloads and time in; messages to publish and events out.
//!
//! Pairing and consent following as one state:
//!
//! ```text
//!  Unpaired { waiting: ExpectClaim, code } ──claim at the inbox──► Paired { follower }
//!      ▲  a refused claim: new challenge (maybe a new announcement)       │
//!      └── a local pairing failure: a fresh code                          │ every log entry
//!                                                                         ▼
//!                  replay (entries applied before this start: on a scratch channel, silent)
//!                  then live (keyloads, rotations, notices, receipts)
//! ```
//!
//! A restarted driver passes the number of consent-log entries it had applied
//! ([`Resume::consent_entries_applied`]); those are read again to rebuild the follower's state
//! but carried out on a throw-away channel, so their keyloads and notices are not sent twice.
//!
//! A pairing round (its code and first challenge) is drawn from a ChaCha20 stream seeded by a
//! 32-byte pairing seed ([`Device::pairing_seed`]). A driver that keeps the seed until the
//! device is paired and passes it back ([`Device::start_with_pairing_seed`]) shows the same
//! code after a restart, so the code a household copied before the restart still pairs.

use chacha20::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use zeroize::Zeroizing;

use super::tiers::TierAggregator;
use crate::channel::{
    Address, ChannelError, DeviceChannel, Reading, SavedDevice, StreamConfig, Tier,
};
use crate::consent::{
    ConsentError, ConsentFollowerConfig, ConsentReport, DeviceConsentFollower, FollowerStep,
    GrantId, Publish,
};
use crate::crypto::{PartyId, PartyKeys, PartySecret, PublicKeys, Role, SymmetricKey};
use crate::pairing::{ClaimOutcome, ClaimRefusal, ExpectClaim, Paired, PairingCode, PairingError};

/// What the device publishes and how often it proves its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    /// Tiers published (one stream each).
    pub tiers: Vec<Tier>,
    /// Checkpoint interval (seconds) for every tier; `None`: each tier's default.
    pub checkpoint_secs: Option<u64>,
    /// Seconds between delivery receipts.
    pub receipt_interval_secs: u64,
}

impl DeviceSettings {
    /// One stream configuration per tier.
    pub fn stream_configs(&self) -> Vec<StreamConfig> {
        self.tiers
            .iter()
            .map(|&tier| {
                let mut config = StreamConfig::new(tier);
                if let Some(secs) = self.checkpoint_secs {
                    config.checkpoint_interval_secs = secs;
                }
                config
            })
            .collect()
    }
}

/// What the device learnt at pairing and needs to follow its consent log.
#[derive(Debug, Clone)]
pub struct Ownership {
    /// The owner's (per-device) public keys: they sign the log.
    pub owner: PublicKeys,
    /// The key the log is sealed under.
    pub log_key: SymmetricKey,
}

impl From<&Paired> for Ownership {
    fn from(paired: &Paired) -> Self {
        Self { owner: paired.owner().clone(), log_key: paired.log_key().clone() }
    }
}

/// What a driver kept from an earlier run (everything `None`/0 on a first start).
#[derive(Debug, Default)]
pub struct Resume {
    /// The channel membership saved from [`Device::channel_state`].
    pub channel: Option<SavedDevice>,
    /// The pairing, if the device has an owner.
    pub ownership: Option<Ownership>,
    /// Consent-log entries whose effects were already queued.
    pub consent_entries_applied: u64,
    /// Meter time of the last reading queued for publication.
    pub last_reading_at: Option<u64>,
}

/// Something the driver should know, show, log or store.
#[derive(Debug)]
pub enum DeviceEvent {
    /// A pairing code (new, or the kept one again after a restart): show it (text and QR of
    /// [`PairingCode::to_uri`]) and store it with [`Device::pairing_seed`].
    PairingCode(PairingCode),
    /// The device was claimed: store this (it holds the consent-log key) and show the owner.
    Paired(Box<Paired>),
    /// A claim was refused (for the device's log; the claimant learns nothing).
    ClaimRefused(ClaimRefusal),
    /// Pairing failed locally (not a peer's doing); a fresh code follows.
    PairingRestarted(PairingError),
    /// What the consent follower did or noticed.
    Consent(ConsentReport),
    /// A consent-log entry or tick the follower could not carry out.
    ConsentFailed(ConsentError),
    /// A reading was not published in `tier` (more tariffs than the format holds, say): the
    /// meter's data, not a reason to stop reading the meter.
    ReadingNotPublishable {
        /// Which tier.
        tier: Tier,
        /// Why.
        error: ChannelError,
    },
    /// The saved channel has no stream for these configured tiers; they are not published.
    TiersWithoutStream(Vec<Tier>),
    /// A reading not newer than the last one published (a repeat, or the clock went back).
    ReadingNotNewer {
        /// Its meter time.
        timestamp: u64,
    },
}

/// What one call produced.
#[derive(Debug, Default)]
#[must_use = "publish the messages (after saving the channel state when it changed)"]
pub struct DeviceStep {
    /// Publish these, in order.
    pub publish: Vec<Publish>,
    /// What happened.
    pub events: Vec<DeviceEvent>,
    /// The channel state changed: save [`Device::channel_state`] before queueing `publish`.
    pub channel_changed: bool,
    /// The count of consent-log entries applied changed to this: store it with the queue.
    pub consent_entries_applied: Option<u64>,
}

impl DeviceStep {
    fn append(&mut self, mut other: DeviceStep) {
        self.publish.append(&mut other.publish);
        self.events.append(&mut other.events);
        self.channel_changed |= other.channel_changed;
        if other.consent_entries_applied.is_some() {
            self.consent_entries_applied = other.consent_entries_applied;
        }
    }

    fn follower(&mut self, step: FollowerStep) {
        if !step.publish.is_empty() {
            self.channel_changed = true;
        }
        self.publish.extend(step.publish);
        self.events.extend(step.reports.into_iter().map(DeviceEvent::Consent));
    }
}

/// Why the device cannot go on (local trouble, never a peer's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A channel operation failed.
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
    /// Pairing could not start.
    #[error("pairing: {0}")]
    Pairing(#[from] PairingError),
    /// The saved channel belongs to another device identity.
    #[error("the saved channel belongs to another device identity")]
    ForeignChannel,
}

/// Where pairing and consent stand.
#[derive(Debug)]
enum Consent {
    /// Waiting for a claim (`None` only while a claim is being processed); `code` was drawn
    /// from `seed`.
    Unpaired { waiting: Option<ExpectClaim>, code: PairingCode, seed: Zeroizing<[u8; 32]> },
    /// Following the log.
    Paired {
        follower: Box<DeviceConsentFollower>,
        owner: PartyId,
        /// Entries acted upon before this start (replayed silently).
        replay_until: u64,
        /// Entries accepted since this start.
        accepted: u64,
        /// The throw-away channel replayed entries act on.
        scratch: Option<Box<DeviceChannel>>,
    },
}

/// One meter reader: its streams, its pairing and its consent follower.
#[derive(Debug)]
pub struct Device {
    secret: PartySecret,
    keys: PartyKeys,
    settings: DeviceSettings,
    channel: DeviceChannel,
    consent: Consent,
    aggregator: TierAggregator,
    last_reading_at: Option<u64>,
}

impl Device {
    /// Starts the device: resumes the saved channel (fresh epochs, keyloads to its members) or
    /// creates one, and either follows the owner's log or shows a new pairing code.
    pub fn start(
        secret: PartySecret,
        settings: DeviceSettings,
        resume: Resume,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, DeviceStep), DeviceError> {
        Self::start_with_pairing_seed(secret, settings, resume, None, now, rng)
    }

    /// [`Self::start`] for a driver that kept the [`Self::pairing_seed`] of an earlier run: an
    /// unpaired device shows the same code again (and accepts it). `None`, or a device with an
    /// owner, draws nothing from it.
    pub fn start_with_pairing_seed(
        secret: PartySecret,
        settings: DeviceSettings,
        resume: Resume,
        pairing_seed: Option<[u8; 32]>,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, DeviceStep), DeviceError> {
        let keys = PartyKeys::derive(&secret, Role::Device);
        let mut step = DeviceStep { channel_changed: true, ..DeviceStep::default() };
        let channel = match resume.channel {
            Some(saved) => {
                if saved.device() != keys.id() {
                    return Err(DeviceError::ForeignChannel);
                }
                let (channel, resumed) =
                    saved.resume(PartyKeys::derive(&secret, Role::Device), now, rng)?;
                step.publish.extend(resumed.into_iter().map(Publish::from));
                channel
            }
            None => DeviceChannel::new(
                PartyKeys::derive(&secret, Role::Device),
                &settings.stream_configs(),
                rng,
            )?,
        };
        // A channel saved with fewer tiers (an older version, or other settings) has no stream
        // for the others: they are not published, and the driver is told once.
        let mut settings = settings;
        let without_stream: Vec<Tier> =
            settings.tiers.iter().copied().filter(|&t| channel.stream_id(t).is_err()).collect();
        if !without_stream.is_empty() {
            settings.tiers.retain(|tier| !without_stream.contains(tier));
            step.events.push(DeviceEvent::TiersWithoutStream(without_stream));
        }
        let consent = match resume.ownership {
            Some(ownership) => {
                Self::follow(&keys, &settings, ownership, resume.consent_entries_applied)
            }
            None => {
                let (consent, pairing) = Self::start_pairing(&keys, pairing_seed, now, rng)?;
                step.append(pairing);
                consent
            }
        };
        let device = Self {
            secret,
            keys,
            settings,
            channel,
            consent,
            aggregator: TierAggregator::new(),
            last_reading_at: resume.last_reading_at,
        };
        Ok((device, step))
    }

    fn follow(
        keys: &PartyKeys,
        settings: &DeviceSettings,
        ownership: Ownership,
        replay_until: u64,
    ) -> Consent {
        let owner = ownership.owner.id();
        let follower = DeviceConsentFollower::new(
            keys.id(),
            ownership.owner,
            &ownership.log_key,
            ConsentFollowerConfig { receipt_interval_secs: settings.receipt_interval_secs },
        );
        Consent::Paired {
            follower: Box::new(follower),
            owner,
            replay_until,
            accepted: 0,
            scratch: None,
        }
    }

    /// A pairing round drawn from `seed` (a fresh one from `rng` when `None`): the same seed
    /// gives the same code and first challenge. Later challenges (after a refused claim) come
    /// from the caller's `rng` as before.
    fn start_pairing(
        keys: &PartyKeys,
        seed: Option<[u8; 32]>,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Consent, DeviceStep), DeviceError> {
        let seed = Zeroizing::new(seed.unwrap_or_else(|| {
            let mut fresh = [0u8; 32];
            rng.fill_bytes(&mut fresh);
            fresh
        }));
        let mut round = ChaCha20Rng::from_seed(*seed);
        let (waiting, code, announcement) = ExpectClaim::start(keys, now, &mut round)?;
        let step = DeviceStep {
            publish: vec![announcement],
            events: vec![DeviceEvent::PairingCode(code.clone())],
            ..DeviceStep::default()
        };
        Ok((Consent::Unpaired { waiting: Some(waiting), code, seed }, step))
    }

    /// The device's keys.
    pub fn keys(&self) -> &PartyKeys {
        &self.keys
    }

    /// What it publishes.
    pub fn settings(&self) -> &DeviceSettings {
        &self.settings
    }

    /// The channel membership to save (no secret keys in it).
    pub fn channel_state(&self) -> Vec<u8> {
        self.channel.save()
    }

    /// The code to show while unpaired.
    pub fn pairing_code(&self) -> Option<&PairingCode> {
        match &self.consent {
            Consent::Unpaired { code, .. } => Some(code),
            Consent::Paired { .. } => None,
        }
    }

    /// The seed the current pairing code was drawn from, while unpaired: keep it secret (it
    /// is as good as the code) and pass it to [`Self::start_with_pairing_seed`] on the next
    /// start; forget it once paired. It changes only with the code ([`DeviceEvent::PairingCode`]).
    pub fn pairing_seed(&self) -> Option<&[u8; 32]> {
        match &self.consent {
            Consent::Unpaired { seed, .. } => Some(seed),
            Consent::Paired { .. } => None,
        }
    }

    /// The owner, once paired.
    pub fn owner(&self) -> Option<PartyId> {
        match &self.consent {
            Consent::Unpaired { .. } => None,
            Consent::Paired { owner, .. } => Some(*owner),
        }
    }

    /// Grants being served now: (grant, provider, tiers).
    pub fn live_grants(&self) -> Vec<(GrantId, PartyId, Vec<Tier>)> {
        match &self.consent {
            Consent::Unpaired { .. } => Vec::new(),
            Consent::Paired { follower, .. } => follower.live_grants(),
        }
    }

    /// Meter time of the last reading published.
    pub fn last_reading_at(&self) -> Option<u64> {
        self.last_reading_at
    }

    /// The addresses to fetch new payloads from: the inbox while unpaired (pairing claims),
    /// the consent log's next entries once paired.
    pub fn poll_addresses(&self) -> Vec<Address> {
        match &self.consent {
            Consent::Unpaired { .. } => vec![self.keys.public().inbox_address()],
            Consent::Paired { follower, .. } => follower.watch_addresses(),
        }
    }

    /// Publishes one reading: itself in the 1 s tier, completed aggregates in the coarser
    /// ones (the raw telegram travels only in the 1 s tier). Readings not newer than the last
    /// one are dropped, so a replay after a restart cannot publish anything twice.
    pub fn on_reading(
        &mut self,
        reading: &Reading,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> DeviceStep {
        let mut step = DeviceStep::default();
        if self.last_reading_at.is_some_and(|last| reading.timestamp <= last) {
            step.events.push(DeviceEvent::ReadingNotNewer { timestamp: reading.timestamp });
            return step;
        }
        for (tier, mut tier_reading) in self.aggregator.push(reading, &self.settings.tiers) {
            if tier != Tier::Second {
                tier_reading.raw_telegram = None;
            }
            let out = match self.channel.publish(tier, &[tier_reading], now, rng) {
                Ok(out) => out,
                Err(error) => {
                    step.events.push(DeviceEvent::ReadingNotPublishable { tier, error });
                    continue;
                }
            };
            if let Consent::Paired { follower, .. } = &mut self.consent {
                follower.record_published(tier, &out);
            }
            step.publish.extend(out.into_iter().map(Publish::from));
        }
        step.channel_changed = true;
        self.last_reading_at = Some(reading.timestamp);
        step
    }

    /// Processes one payload fetched at one of [`Self::poll_addresses`].
    pub fn on_message(
        &mut self,
        address: &Address,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<DeviceStep, DeviceError> {
        match &mut self.consent {
            Consent::Unpaired { waiting, .. } => {
                if *address != self.keys.public().inbox_address() {
                    return Ok(DeviceStep::default());
                }
                let Some(state) = waiting.take() else { return Ok(DeviceStep::default()) };
                self.on_claim(state, payload, now, rng)
            }
            Consent::Paired { .. } => Ok(self.on_log_entry(address, payload, now, rng)),
        }
    }

    fn on_claim(
        &mut self,
        state: ExpectClaim,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<DeviceStep, DeviceError> {
        let mut step = DeviceStep::default();
        match state.receive_claim(&self.keys, payload, now, rng) {
            Ok(ClaimOutcome::Paired { state, confirmation }) => {
                self.consent = Self::follow(&self.keys, &self.settings, Ownership::from(&state), 0);
                step.publish.push(confirmation);
                step.events.push(DeviceEvent::Paired(Box::new(state)));
                step.consent_entries_applied = Some(0);
            }
            Ok(ClaimOutcome::Refused { state, reason, announcement }) => {
                if let Consent::Unpaired { waiting, .. } = &mut self.consent {
                    *waiting = Some(state);
                }
                step.events.push(DeviceEvent::ClaimRefused(reason));
                step.publish.extend(announcement);
            }
            Err(error) => {
                step.events.push(DeviceEvent::PairingRestarted(error));
                let (consent, pairing) = Self::start_pairing(&self.keys, None, now, rng)?;
                self.consent = consent;
                step.append(pairing);
            }
        }
        Ok(step)
    }

    fn on_log_entry(
        &mut self,
        address: &Address,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> DeviceStep {
        let mut step = DeviceStep::default();
        let Consent::Paired { follower, replay_until, accepted, scratch, .. } = &mut self.consent
        else {
            return step;
        };
        let silent = *accepted < *replay_until;
        let result = if silent {
            let channel = match scratch {
                Some(channel) => channel,
                None => match DeviceChannel::new(
                    PartyKeys::derive(&self.secret, Role::Device),
                    &self.settings.stream_configs(),
                    rng,
                ) {
                    Ok(channel) => scratch.insert(Box::new(channel)),
                    Err(error) => {
                        step.events.push(DeviceEvent::ConsentFailed(error.into()));
                        return step;
                    }
                },
            };
            follower.receive(&self.keys, channel, address, payload, now, rng)
        } else {
            follower.receive(&self.keys, &mut self.channel, address, payload, now, rng)
        };
        let follower_step = match result {
            Ok(follower_step) => follower_step,
            Err(error) => {
                step.events.push(DeviceEvent::ConsentFailed(error));
                return step;
            }
        };
        let counted = follower_step
            .reports
            .iter()
            .any(|r| !matches!(r, ConsentReport::Ignored(_) | ConsentReport::Anomaly(_)));
        if counted {
            *accepted += 1;
            if !silent {
                step.consent_entries_applied = Some(*accepted);
            }
        }
        if !silent {
            step.follower(follower_step);
        }
        step
    }

    /// Lets time pass: checkpoints that are due, and — once the replay after a start is done
    /// — scheduled grants, expiries and delivery receipts. Call it after fetching.
    pub fn tick(&mut self, now: u64, rng: &mut impl CryptoRng) -> Result<DeviceStep, DeviceError> {
        let mut step = DeviceStep::default();
        let checkpoints = self.channel.tick(now, rng)?;
        if !checkpoints.is_empty() {
            step.channel_changed = true;
            step.publish.extend(checkpoints.into_iter().map(Publish::from));
        }
        if let Consent::Paired { follower, replay_until, accepted, scratch, .. } = &mut self.consent
            && *accepted >= *replay_until
        {
            *scratch = None;
            match follower.tick(&self.keys, &mut self.channel, now, rng) {
                Ok(follower_step) => step.follower(follower_step),
                Err(error) => step.events.push(DeviceEvent::ConsentFailed(error)),
            }
        }
        Ok(step)
    }

    /// Signs a checkpoint now for every stream with uncovered messages, so providers can
    /// verify the last readings before a stop instead of waiting for the next start.
    pub fn checkpoint_all(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<DeviceStep, DeviceError> {
        let mut step = DeviceStep::default();
        for &tier in &self.settings.tiers {
            if let Some(item) = self.channel.checkpoint_now(tier, now, rng)? {
                step.publish.push(Publish::from(item));
            }
        }
        step.channel_changed = !step.publish.is_empty();
        Ok(step)
    }
}
