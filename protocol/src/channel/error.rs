//! Errors the device side reports to its caller (the follower reports peer misbehaviour as
//! events instead, since a bad message from the network is not a failure of the follower).

use super::codec::DecodeError;
use super::epoch::Tier;
use super::reading::ReadingError;
use crate::crypto::{CryptoError, PartyId};

/// Why a device-side channel operation failed. Nothing was published when this is returned:
/// every operation computes all its output before changing state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The device does not publish this tier.
    #[error("no stream configured for tier {0:?}")]
    UnknownTier(Tier),
    /// The same tier was configured twice.
    #[error("tier {0:?} configured twice")]
    DuplicateTier(Tier),
    /// The provider already holds this stream's key.
    #[error("{0:?} is already a member")]
    AlreadyMember(PartyId),
    /// The provider is not a member of this stream.
    #[error("{0:?} is not a member")]
    NotMember(PartyId),
    /// Only provider keys can be granted a stream.
    #[error("only providers can be members of a stream")]
    NotAProvider,
    /// A data message needs 1 to 64 readings.
    #[error("a data message carries 1 to {max} readings, got {got}")]
    ReadingCount {
        /// Readings passed.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A reading violates the encoding's limits.
    #[error(transparent)]
    Reading(#[from] ReadingError),
    /// A cryptographic operation failed (never caused by a peer on the device side).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Saved state could not be decoded.
    #[error("saved state is invalid: {0}")]
    State(#[from] DecodeError),
    /// Saved state belongs to another device than the keys passed in.
    #[error("saved state belongs to another device")]
    KeysMismatch,
    /// The epoch has used every sequence number (2⁶⁴); rotate.
    #[error("sequence numbers exhausted")]
    SequenceExhausted,
    /// The encoded message would not fit one tangle payload (fewer readings per message).
    #[error("message of {len} bytes exceeds the {max}-byte payload cap")]
    PayloadTooLarge {
        /// Encoded size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A checkpoint would cover more messages than the format allows; checkpoint more often.
    #[error("too many uncovered messages for one checkpoint")]
    CheckpointTooLarge,
}
