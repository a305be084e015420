//! Encrypted, authenticated meter streams: epochs, keyloads, rotation, checkpoints.
//!
//! ```text
//!  device                                  tangle (untrusted store)              provider
//!  ──────                                  ────────────────────────              ────────
//!  Reading ─► DeviceChannel::publish ─► (address, payload) ─────────────► ProviderFollower::receive
//!             │ one stream per (device, tier)                                  │
//!             │ epoch key (random per epoch) ─► address(seq), AEAD key          ├─► Provisional
//!             │ hash chain + signed checkpoint ≤ 60 s                           ├─► Verified / Forged / Gap
//!  grant ───► │ rotation: new epoch, keyloads for the remaining members         ├─► Rotated / Revoked
//!  revoke ──► │ (ML-KEM-768 to each provider)                                   └─► Unconfirmed
//!  restart ─► SavedDevice::resume: fresh epoch + signed inbox keyloads
//! ```
//!
//! The channel is sans-I/O: the device returns [`Outgoing`] items for the driver to publish,
//! and the follower consumes payloads the driver found at the addresses it asked to watch.
//! Randomness (`rand_core` 0.10 [`CryptoRng`](rand_core::CryptoRng)) and time (UTC seconds)
//! are arguments. The wire formats and the security argument are in `protocol/spec/channel.md`.

pub(crate) mod codec;
mod device;
mod epoch;
mod error;
mod follower;
mod reading;
mod wire;

#[cfg(test)]
mod tests;

pub use codec::DecodeError;
pub use device::{DeviceChannel, Outgoing, OutgoingKind, SavedDevice, StreamConfig};
pub use epoch::{Address, EpochId, StreamId, Tier};
pub use error::ChannelError;
pub use follower::{FollowerConfig, FollowerEvent, Position, ProviderFollower};
pub use reading::{
    GasReading, MAX_PHASES, MAX_RAW_TELEGRAM, MAX_TARIFFS, PhaseReading, Reading, ReadingError,
};
pub use wire::{
    EpochLink, INBOX_KEYLOAD_LEN, InboxRejection, KEYLOAD_LEN, MAX_CHECKPOINT_COVERAGE,
    MAX_KEYLOADS_PER_BATCH, MAX_KEYLOADS_PER_ROTATION, MAX_READINGS_PER_MESSAGE,
    MAX_STREAM_PAYLOAD, MessageRejection,
};
