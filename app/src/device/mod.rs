//! "Share as a device": this browser tab as a meter reader, running the same
//! [`protocol::device::Device`] state machine as `pi-agent`.
//!
//! ```text
//!  Meter page reader ─ telegram text ─► Sharing::on_telegram ─► Device::on_reading ─┐
//!  poll task (1 s): Poller::fetch(poll addresses) ─► Device::on_message, Device::tick ┤
//!                                                                                   ▼
//!   SavedDeviceState (sealed, localStorage) ◄─ state changes ── DeviceStep ──► Outbox (memory,
//!                                                                             bounded)
//!  send task: Outbox front ─► tangle-client publish (PoW, every node) ─► pop when acknowledged
//! ```
//!
//! The device identity is a 32-byte secret sealed by [`crate::vault`] under a passphrase (role
//! `device`); the rest of the device's state (pairing with the consent-log key, channel
//! membership, consent progress) is sealed under the device's own state-at-rest key by
//! [`protocol::device::SavedDeviceState`]. Nothing runs once the tab closes: the page says so.

pub mod outbox;
pub mod panel;
pub mod poller;

use std::cell::RefCell;
use std::rc::Rc;

use getrandom::SysRng;
use protocol::channel::{Address, Reading, Tier};
use protocol::crypto::{PartyId, PartySecret};
use protocol::device::{
    ConversionError, Device, DeviceError, DeviceEvent, DeviceSettings, DeviceStep,
    SavedDeviceState, SavedStateError, reading_from_telegram,
};
use protocol::p1::{Readings, Telegram, TelegramError};
use rand_core::UnwrapErr;

use crate::storage::{self, StorageError};

pub use outbox::Outbox;

/// The browser's CSPRNG (`crypto.getRandomValues`) in the shape `protocol` takes.
pub type Rng = UnwrapErr<SysRng>;

/// Where the sealed device state lives in `localStorage`.
pub const STATE_KEY: &str = "meterkast.device.state";

/// Seconds between delivery receipts (as a Pi does by default).
const RECEIPT_INTERVAL_SECS: u64 = 3_600;

/// UTC seconds now, from the browser's clock.
pub fn unix_now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// Why sharing could not start or a telegram was not shared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// The device could not start (local trouble).
    #[error("the device could not start: {0}")]
    Device(#[from] DeviceError),
    /// The stored device state is unusable (another identity's, or altered).
    #[error("{0}")]
    SavedState(#[from] SavedStateError),
    /// The stored device state is not hex.
    #[error("the stored device state is unreadable")]
    StateEncoding,
    /// Storing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The telegram text did not parse again.
    #[error("telegram: {0}")]
    Telegram(#[from] TelegramError),
    /// The telegram has no exact reading (damaged, no timestamp, inexact value).
    #[error("{0}")]
    Conversion(#[from] ConversionError),
}

/// The reading a telegram's text (as the Meter page's decoder shows it, `/` … `!` and its CRC
/// digits) becomes, raw telegram included so a provider can check it.
pub fn reading_from_text(text: &str) -> Result<Reading, ShareError> {
    let telegram = Telegram::parse_bytes(text.as_bytes())?;
    Ok(reading_from_telegram(&telegram, &Readings::from_telegram(&telegram), true)?)
}

/// What the share panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareStatus {
    /// The device's id.
    pub device: Option<PartyId>,
    /// The pairing code (text) and link while unpaired.
    pub pairing: Option<(String, String)>,
    /// The owner once paired.
    pub owner: Option<PartyId>,
    /// Grants served now: provider ids and their tiers.
    pub grants: Vec<(PartyId, Vec<Tier>)>,
    /// Telegrams turned into readings and published.
    pub readings: u64,
    /// Telegrams that gave no reading, with the last reason.
    pub skipped: u64,
    /// The last problem with a telegram, the consent log or pairing.
    pub last_problem: Option<String>,
    /// Messages waiting for a node.
    pub queued: usize,
    /// Readings dropped because the queue was full.
    pub dropped: u64,
    /// Messages acknowledged by a node.
    pub sent: u64,
    /// Why the node could not be reached, while it cannot.
    pub unreachable: Option<String>,
}

/// The running device: state machine, queue, stored state and what the page shows.
pub struct Sharing {
    device: Device,
    outbox: Outbox,
    saved: SavedDeviceState,
    rng: Rng,
    status: ShareStatus,
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing").field("status", &self.status).finish_non_exhaustive()
    }
}

/// The settings a browser device publishes with: every tier, default checkpoints.
pub fn browser_settings() -> DeviceSettings {
    DeviceSettings {
        tiers: Tier::ALL.to_vec(),
        checkpoint_secs: None,
        receipt_interval_secs: RECEIPT_INTERVAL_SECS,
    }
}

impl Sharing {
    /// Starts the device with `secret`, resuming the state stored in this browser (if it is
    /// this device's), with a queue of `data_capacity` readings.
    pub fn start(
        secret: PartySecret,
        settings: DeviceSettings,
        stored: Option<&str>,
        data_capacity: usize,
        now: u64,
    ) -> Result<Self, ShareError> {
        let mut rng = UnwrapErr(SysRng);
        let keys = protocol::crypto::PartyKeys::derive(&secret, protocol::crypto::Role::Device);
        let saved = match stored {
            Some(text) => {
                let bytes = hex::decode(text.trim()).map_err(|_| ShareError::StateEncoding)?;
                SavedDeviceState::open(&keys, &bytes)?
            }
            None => SavedDeviceState::default(),
        };
        let (device, step) = Device::start(secret, settings, saved.resume()?, now, &mut rng)?;
        let mut sharing = Self {
            status: ShareStatus { device: Some(device.keys().id()), ..ShareStatus::default() },
            device,
            outbox: Outbox::new(data_capacity),
            saved,
            rng,
        };
        sharing.apply(step);
        Ok(sharing)
    }

    /// Records a step: state to store (before its messages are queued), events, messages.
    fn apply(&mut self, step: DeviceStep) {
        let mut changed = step.channel_changed;
        if step.channel_changed {
            self.saved.channel = Some(self.device.channel_state());
        }
        if let Some(applied) = step.consent_entries_applied {
            self.saved.consent_entries_applied = applied;
            changed = true;
        }
        for event in step.events {
            match event {
                DeviceEvent::Paired(paired) => {
                    self.saved.paired = Some(*paired);
                    changed = true;
                }
                DeviceEvent::PairingCode(_) | DeviceEvent::Consent(_) => {}
                DeviceEvent::ReadingNotNewer { .. } => self.status.skipped += 1,
                other => self.status.last_problem = Some(describe(&other)),
            }
        }
        if changed && let Err(error) = self.store() {
            self.status.last_problem = Some(error.to_string());
        }
        self.status.dropped += self.outbox.push(step.publish);
        self.refresh();
    }

    /// Seals and stores the device state.
    fn store(&mut self) -> Result<(), ShareError> {
        self.saved.last_reading_at = self.device.last_reading_at();
        let sealed = self.saved.seal(self.device.keys(), &mut self.rng)?;
        Ok(storage::save(STATE_KEY, &hex::encode(sealed))?)
    }

    fn refresh(&mut self) {
        self.status.pairing = self
            .device
            .pairing_code()
            .map(|code| (code.to_text().to_string(), code.to_uri().to_string()));
        self.status.owner = self.device.owner();
        self.status.grants = self
            .device
            .live_grants()
            .into_iter()
            .map(|(_, provider, tiers)| (provider, tiers))
            .collect();
        self.status.queued = self.outbox.len();
    }

    /// Shares one telegram (its text as the decoder shows it).
    pub fn on_telegram(&mut self, text: &str, now: u64) {
        match reading_from_text(text) {
            Ok(reading) => {
                let step = self.device.on_reading(&reading, now, &mut self.rng);
                if !step.publish.is_empty() {
                    self.status.readings += 1;
                }
                self.apply(step);
            }
            Err(error) => {
                self.status.skipped += 1;
                self.status.last_problem = Some(error.to_string());
            }
        }
    }

    /// The addresses to fetch from.
    pub fn poll_addresses(&self) -> Vec<Address> {
        self.device.poll_addresses()
    }

    /// Hands one fetched payload to the device.
    pub fn on_message(&mut self, address: &Address, payload: &[u8], now: u64) {
        match self.device.on_message(address, payload, now, &mut self.rng) {
            Ok(step) => self.apply(step),
            Err(error) => self.status.last_problem = Some(error.to_string()),
        }
    }

    /// Lets time pass (checkpoints, grant starts and ends, receipts).
    pub fn tick(&mut self, now: u64) {
        match self.device.tick(now, &mut self.rng) {
            Ok(step) => self.apply(step),
            Err(error) => self.status.last_problem = Some(error.to_string()),
        }
    }

    /// Signs checkpoints for everything published (before stopping).
    pub fn checkpoint_all(&mut self, now: u64) {
        match self.device.checkpoint_all(now, &mut self.rng) {
            Ok(step) => self.apply(step),
            Err(error) => self.status.last_problem = Some(error.to_string()),
        }
    }

    /// The queue.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// A node acknowledged the front message.
    pub fn sent(&mut self) {
        if self.outbox.pop_front().is_some() {
            self.status.sent += 1;
        }
        self.status.unreachable = None;
        self.status.queued = self.outbox.len();
    }

    /// No node accepted the front message.
    pub fn unreachable(&mut self, why: String) {
        self.status.unreachable = Some(why);
    }

    /// What the page shows.
    pub fn status(&self) -> &ShareStatus {
        &self.status
    }
}

fn describe(event: &DeviceEvent) -> String {
    match event {
        DeviceEvent::ClaimRefused(reason) => format!("a pairing claim was refused: {reason}"),
        DeviceEvent::PairingRestarted(error) => format!("pairing restarted: {error}"),
        DeviceEvent::ConsentFailed(error) => format!("a consent-log entry failed: {error}"),
        DeviceEvent::ReadingNotPublishable { tier, error } => {
            format!("a reading could not be published in the {tier:?} tier: {error}")
        }
        DeviceEvent::TiersWithoutStream(tiers) => {
            format!("the stored channel has no stream for {tiers:?}; they are not shared")
        }
        other => format!("{other:?}"),
    }
}

/// A running share: the state behind a shared, single-threaded handle (the page's reader, the
/// poll task and the send task all use it; none holds the borrow across an `await`).
pub type SharedSharing = Rc<RefCell<Sharing>>;
