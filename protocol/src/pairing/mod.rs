//! Pairing a meter reader with a household wallet: one owner, proven physical access.
//!
//! ```text
//!  device (ExpectClaim)                    tangle                          wallet
//!  shows code = id ‖ secret(128 bit) ─ ─ ─ ─ ─ (screen / QR) ─ ─ ─ ─ ─ ─ ─► ExpectAnnouncement
//!  announcement (keys, challenge, attempt), signed ──► announce address ──► newest valid one
//!                                                                             │ owner keys for
//!                                                                             │ this device,
//!                                                                             │ log key, proof
//!  receive_claim ◄── device inbox ◄── claim: ML-KEM to device, AEAD ◄──────── ExpectConfirmation
//!   ├ locked?            → RateLimited (unread)
//!   ├ bad / stale / wrong code / bad signature → failure: new challenge, maybe lock-out
//!   └ valid → Paired ── confirmation (signed, sealed) ──► secret address ──► PairedDevice
//!  Paired: every claim refused (AlreadyOwned) until reset → ExpectClaim with a new code
//! ```
//!
//! The security argument, encodings and what an observer sees are in `protocol/spec/pairing.md`.

mod code;
mod device;
mod wallet;
mod wire;

pub use code::{PAIRING_SECRET_LEN, PAIRING_URI_PREFIX, PairingCode};
pub use device::{
    ClaimOutcome, ExpectClaim, FIRST_LOCKOUT_SECS, FREE_ATTEMPTS, MAX_LOCKOUT_SECS, Paired,
};
pub use wallet::{Confirmation, ExpectAnnouncement, ExpectConfirmation, PairedDevice, owner_keys};
pub use wire::announcement_address;

use crate::channel::DecodeError;
use crate::crypto::CryptoError;

/// Why a pairing step failed on the caller's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The text is not a pairing code.
    #[error("this is not a pairing code")]
    InvalidCode,
    /// The code's check characters do not match: a character was mistyped.
    #[error("the pairing code has a typo")]
    CodeTypo,
    /// Keys of the wrong role were passed (a device must pair with a wallet).
    #[error("keys of the wrong role")]
    WrongRole,
    /// No valid announcement of the device named in the code was found.
    #[error("the device's announcement was not found (is it showing this code?)")]
    NoAnnouncement,
    /// An announcement's signature does not verify.
    #[error("the announcement is not signed by the device")]
    BadAnnouncement,
    /// The confirmation did not decrypt or was not signed by the device.
    #[error("the device's confirmation is invalid")]
    BadConfirmation,
    /// Bytes could not be decoded.
    #[error("malformed pairing message: {0}")]
    Decode(#[from] DecodeError),
    /// A local cryptographic operation failed (never caused by a peer).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Why a device refused a claim. Kept by the device for its log; the claimant learns nothing
/// (it only sees that no confirmation appears).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    /// The device already has an owner.
    #[error("the device already has an owner")]
    AlreadyOwned,
    /// Too many failed attempts: claims are ignored until `until` (UTC seconds).
    #[error("too many failed attempts; locked until {until}")]
    RateLimited {
        /// End of the lock-out.
        until: u64,
    },
    /// The claim did not decrypt for the current challenge, or is malformed (garbage, a claim
    /// for another device, or a replay against a spent challenge).
    #[error("the claim is unreadable or for an old challenge")]
    Unreadable,
    /// The claim names an old challenge.
    #[error("the claim answers an old challenge")]
    StaleChallenge,
    /// The claimant's keys are not wallet keys.
    #[error("the claimant is not a wallet")]
    NotAWallet,
    /// The proof does not match the code secret.
    #[error("wrong pairing code")]
    WrongCode,
    /// The owner's signature over the transcript does not verify.
    #[error("the claim's owner signature does not verify")]
    BadOwnerSignature,
}
