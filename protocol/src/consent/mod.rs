//! The consent log and everything that enforces it.
//!
//! ```text
//!  wallet (owner keys) ── ConsentLogWriter::append(event) ──► log entry at address(index)
//!        signed (ML-DSA-65), hash-chained, body under a per-entry key wrapped for the household
//!        and, for events about a grant, for that grant's provider
//!  device ── DeviceConsentFollower (LogReader: verify signature, chain, index, device binding)
//!        ├─ grant      ─► channel.grant for exactly the granted tiers + notice to the provider
//!        ├─ amendment  ─► grant / revoke the tiers that changed
//!        ├─ revocation ─► channel.revoke (rotation) + signed revocation notice
//!        ├─ removal    ─► rotate everything, notices to every provider
//!        └─ tick(now)  ─► expiry rotation without the wallet; signed delivery receipts
//!  provider ── ProviderConsent: opens notices, verifies owner + device signatures, acknowledges
//!  export ── ISO/IEC TS 27560 consent records as JSON with the signed entries, verifiable offline
//! ```
//!
//! Encodings and the security argument are in `protocol/spec/consent.md`.

mod event;
mod export;
mod follower;
mod log;
mod notice;
mod receipt;
pub(crate) mod sealed;
#[cfg(test)]
pub(crate) mod test_rng;

pub use event::{ConsentEvent, EventKind, Grant, GrantId, MAX_REASON_LEN, RemovalReason};
pub use export::{EXPORT_FORMAT, ExportError, VerifiedHistory, export_history, verify_export};
pub use follower::{
    ConsentFollowerConfig, ConsentReport, DeviceConsentFollower, FollowerStep, GrantRefusal,
};
pub use log::{
    ConsentLogWriter, FORK_WATCH, IgnoredEntry, LogAnomaly, LogKeys, LogOutcome, LogReader,
    MAX_EVENT_BODY, SealedEntry, VerifiedEntry, WrittenEntry, verify_chain,
};
pub use notice::{NoticeKind, NoticeOutcome, ProviderConsent, notice_address};
pub use receipt::{Acknowledgement, ConsentReceipt, DeliveryReceipt, MAX_ENTRY_LEN};

use crate::channel::{Address, ChannelError, DecodeError, OutgoingKind};
use crate::crypto::CryptoError;

/// Why a consent operation failed or a peer's consent message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// Bytes could not be decoded.
    #[error("malformed consent message: {0}")]
    Decode(#[from] DecodeError),
    /// A local cryptographic operation failed (never caused by a peer).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The channel refused an operation.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// An entry is not signed by the device's owner (for this device).
    #[error("not signed by the device's owner")]
    NotSignedByOwner,
    /// Content could not be decrypted with the keys held (or a key does not match its
    /// commitment).
    #[error("cannot decrypt with the keys held")]
    Undecryptable,
    /// The event names another device.
    #[error("the event is about another device")]
    OtherDevice,
    /// The event is larger than an entry may carry.
    #[error("the event is too large for one entry")]
    EventTooLarge,
    /// A grant with this id exists already.
    #[error("a grant with this id exists already")]
    DuplicateGrant,
    /// No grant with this id is known.
    #[error("unknown grant")]
    UnknownGrant,
    /// Keys of the wrong role.
    #[error("keys of the wrong role")]
    WrongRole,
    /// The entry is not a grant.
    #[error("the entry is not a grant")]
    NotAGrant,
    /// The grant is for another provider.
    #[error("the grant is for another provider")]
    NotForThisProvider,
    /// A provider's acknowledgement does not verify.
    #[error("the provider's acknowledgement does not verify")]
    BadAcknowledgement,
    /// A device signature does not verify.
    #[error("not signed by the device")]
    BadDeviceSignature,
    /// A notice's parts do not agree with each other or with the grant it is about.
    #[error("the notice does not match its grant")]
    NoticeMismatch,
    /// A tier finer than the request allows, or none at all.
    #[error("the tiers are not allowed by the request")]
    TiersNotAllowed,
    /// The log is inconsistent.
    #[error("the consent log is inconsistent: {0:?}")]
    Anomaly(LogAnomaly),
}

/// What a [`Publish`] item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishKind {
    /// A channel message (data, checkpoint, rotation, keyload) produced on the follower's behalf.
    Channel(OutgoingKind),
    /// A device's pairing announcement.
    PairingAnnouncement,
    /// A wallet's pairing claim.
    PairingClaim,
    /// A device's pairing confirmation.
    PairingConfirmation,
    /// An entry of a consent log.
    LogEntry,
    /// A device's signed notice to a provider.
    ProviderNotice,
    /// A provider's acknowledgement of a consent receipt.
    Acknowledgement,
    /// A device's delivery receipt for the wallet.
    DeliveryReceipt,
    /// A provider's card.
    ProviderCard,
    /// A provider's signed access request.
    AccessRequest,
}

/// A payload to publish at an address, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where.
    pub address: Address,
    /// The opaque bytes.
    pub payload: Vec<u8>,
    /// What it is.
    pub kind: PublishKind,
}

impl From<crate::channel::Outgoing> for Publish {
    fn from(item: crate::channel::Outgoing) -> Self {
        Self { address: item.address, payload: item.payload, kind: PublishKind::Channel(item.kind) }
    }
}
