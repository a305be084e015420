//! Streams, tiers, epochs and the keys and addresses derived from an epoch key.
//!
//! ```text
//! StreamId   = SHA3-256("meterkast/v1/stream-id" ‖ device PartyId ‖ tier code)
//! epoch key  = 32 random bytes from the device's RNG (never derived from state, see device.rs)
//!   EpochId        = HKDF(salt "meterkast/v1/epoch", epoch key, "epoch-id" ‖ StreamId)[..16]
//!   encryption key = HKDF(salt "meterkast/v1/epoch", epoch key, "encryption-key" ‖ StreamId)
//!   address key    = HKDF(salt "meterkast/v1/epoch", epoch key, "address-key" ‖ StreamId)
//! address(seq) = SHA3-256("meterkast/v1/address" ‖ address key ‖ StreamId ‖ EpochId ‖ u64be seq)
//! ```
//!
//! SHA3 with a secret key prefix is a PRF (no length extension; KMAC is built the same way), so
//! addresses look random to anyone without the epoch key: a node or a revoked provider cannot
//! tell which stream, epoch or device a message belongs to, nor compute the next address.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{PartyId, SymmetricKey, digest, expand_key};

/// A 32-byte tangle address.
pub type Address = [u8; 32];

/// A resolution a device may share; each tier is its own stream with its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Every telegram (DSMR 5: 1 s).
    Second,
    /// One reading per 10 s.
    TenSeconds,
    /// One reading per 15 min (the settlement interval).
    FifteenMinutes,
    /// One reading per hour.
    Hour,
    /// One reading per day.
    Day,
}

impl Tier {
    /// All tiers, finest first.
    pub const ALL: [Tier; 5] =
        [Tier::Second, Tier::TenSeconds, Tier::FifteenMinutes, Tier::Hour, Tier::Day];

    /// Seconds between readings in this tier.
    pub fn resolution_secs(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::TenSeconds => 10,
            Self::FifteenMinutes => 900,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The default checkpoint interval: every 60 s for fast tiers, right after every message
    /// for tiers slower than that (a signature per 15 min costs nothing and gives immediate
    /// origin).
    pub fn default_checkpoint_interval_secs(self) -> u64 {
        if self.resolution_secs() < 60 { 60 } else { 0 }
    }

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Second => 1,
            Self::TenSeconds => 2,
            Self::FifteenMinutes => 3,
            Self::Hour => 4,
            Self::Day => 5,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|tier| tier.code() == code)
    }
}

/// Identifies one (device, tier) stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub [u8; 32]);

impl StreamId {
    /// The stream of `device` at `tier`.
    pub fn new(device: PartyId, tier: Tier) -> Self {
        Self(digest(b"meterkast/v1/stream-id", &[&device.0, &[tier.code()]]))
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// Public name of an epoch (derived from its key, so it reveals nothing and cannot collide
/// across restarts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EpochId(pub [u8; 16]);

impl fmt::Debug for EpochId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EpochId({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// An epoch's key and everything derived from it. Secret: no `Debug` output, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct EpochKeys {
    epoch_key: [u8; 32],
    #[zeroize(skip)]
    stream: StreamId,
    #[zeroize(skip)]
    id: EpochId,
    encryption_key: SymmetricKey,
    address_key: [u8; 32],
}

const EPOCH_SALT: &[u8] = b"meterkast/v1/epoch";

impl EpochKeys {
    pub(crate) fn new(stream: StreamId, epoch_key: [u8; 32]) -> Self {
        let id = expand_key::<16>(EPOCH_SALT, &epoch_key, &[b"epoch-id", &stream.0]);
        let encryption_key =
            expand_key::<32>(EPOCH_SALT, &epoch_key, &[b"encryption-key", &stream.0]);
        let address_key = expand_key::<32>(EPOCH_SALT, &epoch_key, &[b"address-key", &stream.0]);
        Self {
            epoch_key,
            stream,
            id: EpochId(*id),
            encryption_key: SymmetricKey::from_bytes(*encryption_key),
            address_key: *address_key,
        }
    }

    pub(crate) fn epoch_key(&self) -> &[u8; 32] {
        &self.epoch_key
    }

    pub(crate) fn stream(&self) -> StreamId {
        self.stream
    }

    pub(crate) fn id(&self) -> EpochId {
        self.id
    }

    pub(crate) fn encryption_key(&self) -> &SymmetricKey {
        &self.encryption_key
    }

    /// The address of message `seq` in this epoch.
    pub(crate) fn address(&self, seq: u64) -> Address {
        digest(
            b"meterkast/v1/address",
            &[&self.address_key, &self.stream.0, &self.id.0, &seq.to_be_bytes()],
        )
    }
}

impl fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochKeys").field("id", &self.id).field("keys", &"<redacted>").finish()
    }
}
