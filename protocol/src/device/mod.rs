//! The device side of Meterkast as one sans-I/O state machine, shared by `pi-agent` (a
//! Raspberry Pi on the P1 port) and the web app (a browser tab reading the P1 cable over Web
//! Serial): both run exactly this code and differ only in how they store, send and fetch.
//!
//! ```text
//!  telegram ─► reading::reading_from_telegram (exact integers, CRC must hold)
//!      └► Device::on_reading ─► tiers::TierAggregator ─► channel::DeviceChannel::publish
//!                                                        └► consent follower's delivery ledger
//!  Device::poll_addresses() ─► the driver fetches ─► Device::on_message(address, payload)
//!      unpaired: a pairing claim ─► Paired (persist it) + confirmation, or a new challenge
//!      paired:   a consent-log entry ─► grants → keyloads, revocations → rotation + notice
//!  Device::tick(now) ─► checkpoints due, scheduled grants, expiry rotations, delivery receipts
//!  every call ─► DeviceStep { publish (in order), events, channel_changed, entries applied }
//! ```
//!
//! The driver owns the clock, the randomness, the store and the network. Its one duty beyond
//! sending `publish` in order: when a step says `channel_changed`, save [`Device::channel_state`]
//! *before* queueing the step's messages, so a restarted device's epoch link may over-claim (a
//! gap a provider sees) but never under-claim (a message nobody could tell was missing).
//!
//! [`saved`] seals the state a driver keeps between runs (pairing, channel membership, consent
//! progress) under the device's own state-at-rest key, for drivers without a private
//! directory — the browser.

mod machine;
pub mod meter_time;
pub mod reading;
pub mod saved;
pub mod tiers;

pub use machine::{
    Device, DeviceError, DeviceEvent, DeviceSettings, DeviceStep, Ownership, Resume,
};
pub use reading::{ConversionError, reading_from_telegram};
pub use saved::{SavedDeviceState, SavedStateError};
pub use tiers::{TierAggregator, window_start};
