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
///
/// Tiers order by wire code ([`Tier::code`]), the order in which tier lists appear on the wire
/// (a grant's tiers are strictly increasing codes, `spec/consent.md`). Codes are never
/// renumbered, so a tier added later sorts after the older ones whatever its resolution;
/// [`Tier::ALL`] lists them finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Every telegram (DSMR 5: 1 s).
    Second,
    /// One reading per 10 s.
    TenSeconds,
    /// One reading per minute (wire code 6: added after the first five).
    Minute,
    /// One reading per 15 min (the settlement interval).
    FifteenMinutes,
    /// One reading per hour.
    Hour,
    /// One reading per day.
    Day,
}

impl Tier {
    /// All tiers, finest first.
    pub const ALL: [Tier; 6] =
        [Tier::Second, Tier::TenSeconds, Tier::Minute, Tier::FifteenMinutes, Tier::Hour, Tier::Day];

    /// Seconds between readings in this tier.
    pub fn resolution_secs(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::TenSeconds => 10,
            Self::Minute => 60,
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
            Self::Minute => 6,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|tier| tier.code() == code)
    }
}

impl PartialOrd for Tier {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Tier {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.code().cmp(&other.code())
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

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn tier_codes_are_frozen_and_round_trip() {
        let codes: Vec<(Tier, u8)> = Tier::ALL.iter().map(|&t| (t, t.code())).collect();
        assert_eq!(
            codes,
            vec![
                (Tier::Second, 1),
                (Tier::TenSeconds, 2),
                (Tier::Minute, 6),
                (Tier::FifteenMinutes, 3),
                (Tier::Hour, 4),
                (Tier::Day, 5),
            ]
        );
        for tier in Tier::ALL {
            assert_eq!(Tier::from_code(tier.code()), Some(tier));
        }
        assert_eq!(Tier::from_code(0), None);
        assert_eq!(Tier::from_code(7), None);
    }

    #[test]
    fn all_lists_tiers_finest_first_but_they_sort_by_wire_code() {
        let resolutions: Vec<u64> = Tier::ALL.iter().map(|t| t.resolution_secs()).collect();
        assert_eq!(resolutions, vec![1, 10, 60, 900, 3_600, 86_400]);
        let mut sorted = Tier::ALL.to_vec();
        sorted.sort();
        let codes: Vec<u8> = sorted.iter().map(|t| t.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn the_minute_tier_checkpoints_after_every_message() {
        assert_eq!(Tier::TenSeconds.default_checkpoint_interval_secs(), 60);
        assert_eq!(Tier::Minute.default_checkpoint_interval_secs(), 0);
    }
}
