//! The state a device keeps between runs, sealed under its own state-at-rest key — for drivers
//! with no private directory to keep it in (a browser's storage is readable by anyone with
//! the profile; the pairing holds the consent-log key).
//!
//! ```text
//!  "MKDS" ‖ u8 1 ‖ nonce(24) ‖ XChaCha20-Poly1305(key = device state-at-rest key,
//!                                                 AD = "MKDS" ‖ u8 1 ‖ device id, body)
//!  body = u8 paired? [lp Paired::encode] ‖ u8 channel? [lp SavedDevice bytes]
//!       ‖ u64be consent entries applied ‖ u8 last? [u64be last reading at]
//! ```
//!
//! The device id in the associated data means one device's state never opens as another's.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::channel::{ChannelError, SavedDevice};
use crate::crypto::{self, AEAD_NONCE_LEN, CryptoError, PartyKeys, SymmetricPurpose};
use crate::pairing::{Paired, PairingError};

use super::machine::{Ownership, Resume};

const MAGIC: &[u8; 4] = b"MKDS";
const VERSION: u8 = 1;
/// Bounds on the saved parts, so altered bytes cannot make the decoder allocate without limit.
const MAX_PAIRED_LEN: usize = 8 * 1024;
const MAX_CHANNEL_LEN: usize = 4 * 1024 * 1024;

/// Why saved device state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedStateError {
    /// Not this format, or truncated.
    #[error("saved device state is malformed: {0}")]
    Decode(#[from] DecodeError),
    /// It does not open with this device's key: another device's state, or altered bytes.
    #[error("saved device state does not belong to this device or was altered")]
    NotThisDevice,
    /// The pairing inside does not decode.
    #[error("saved pairing: {0}")]
    Pairing(#[from] PairingError),
    /// The channel inside does not decode.
    #[error("saved channel: {0}")]
    Channel(#[from] ChannelError),
    /// Encrypting failed (a local failure).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// What a device keeps between runs.
#[derive(Debug, Default)]
pub struct SavedDeviceState {
    /// The pairing, if the device has an owner.
    pub paired: Option<Paired>,
    /// [`super::Device::channel_state`].
    pub channel: Option<Vec<u8>>,
    /// Consent-log entries applied (from [`super::DeviceStep::consent_entries_applied`]).
    pub consent_entries_applied: u64,
    /// Meter time of the last reading published.
    pub last_reading_at: Option<u64>,
}

fn associated_data(keys: &PartyKeys) -> Vec<u8> {
    [&MAGIC[..], &[VERSION], &keys.id().0].concat()
}

impl SavedDeviceState {
    /// Seals the state under `keys`' state-at-rest key with a fresh nonce.
    pub fn seal(
        &self,
        keys: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, SavedStateError> {
        let mut body = Writer::new();
        match &self.paired {
            Some(paired) => body.u8(1).length_prefixed(&paired.encode()),
            None => body.u8(0),
        };
        match &self.channel {
            Some(channel) => body.u8(1).length_prefixed(channel),
            None => body.u8(0),
        };
        body.u64be(self.consent_entries_applied);
        body.u8(u8::from(self.last_reading_at.is_some())).u64be(self.last_reading_at.unwrap_or(0));
        let body = Zeroizing::new(body.finish());
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let key = keys.symmetric_key(SymmetricPurpose::StateAtRest);
        let sealed = crypto::seal(&key, &nonce, &associated_data(keys), &body)?;
        Ok([&MAGIC[..], &[VERSION], &nonce, &sealed].concat())
    }

    /// Opens what [`Self::seal`] produced for the same device.
    pub fn open(keys: &PartyKeys, bytes: &[u8]) -> Result<Self, SavedStateError> {
        let mut outer = Reader::new(bytes);
        if outer.take(4, "magic")? != MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = outer.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "device state", version }.into());
        }
        let nonce: [u8; AEAD_NONCE_LEN] = outer.array("nonce")?;
        let sealed = outer.take(bytes.len().saturating_sub(4 + 1 + AEAD_NONCE_LEN), "sealed")?;
        outer.finish()?;
        let key = keys.symmetric_key(SymmetricPurpose::StateAtRest);
        let body = Zeroizing::new(
            crypto::open(&key, &nonce, &associated_data(keys), sealed)
                .map_err(|_| SavedStateError::NotThisDevice)?,
        );
        let mut r = Reader::new(&body);
        let paired = if r.bool("paired present")? {
            Some(Paired::decode(r.length_prefixed(MAX_PAIRED_LEN, "paired")?)?)
        } else {
            None
        };
        let channel = if r.bool("channel present")? {
            Some(r.length_prefixed(MAX_CHANNEL_LEN, "channel")?.to_vec())
        } else {
            None
        };
        let consent_entries_applied = r.u64be("consent entries applied")?;
        let has_last = r.bool("last reading present")?;
        let last = r.u64be("last reading at")?;
        r.finish()?;
        Ok(Self {
            paired,
            channel,
            consent_entries_applied,
            last_reading_at: has_last.then_some(last),
        })
    }

    /// What [`super::Device::start`] needs from this state.
    pub fn resume(&self) -> Result<Resume, SavedStateError> {
        Ok(Resume {
            channel: self.channel.as_deref().map(SavedDevice::decode).transpose()?,
            ownership: self.paired.as_ref().map(Ownership::from),
            consent_entries_applied: self.consent_entries_applied,
            last_reading_at: self.last_reading_at,
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::consent::test_rng::TestRng;
    use crate::crypto::{PartySecret, Role};

    fn device(n: u8) -> PartyKeys {
        PartyKeys::derive(&PartySecret::from_bytes([n; 32]), Role::Device)
    }

    #[test]
    fn round_trips_and_opens_only_for_its_device_unaltered() {
        let keys = device(1);
        let mut rng = TestRng::new(1);
        let state = SavedDeviceState {
            paired: None,
            channel: Some(vec![1, 2, 3]),
            consent_entries_applied: 7,
            last_reading_at: Some(1_780_000_000),
        };
        let sealed = state.seal(&keys, &mut rng).unwrap();
        let opened = SavedDeviceState::open(&keys, &sealed).unwrap();
        assert_eq!(opened.channel, Some(vec![1, 2, 3]));
        assert_eq!(opened.consent_entries_applied, 7);
        assert_eq!(opened.last_reading_at, Some(1_780_000_000));
        assert!(opened.paired.is_none());
        // Nothing of the body shows in clear.
        assert!(!sealed.windows(8).any(|w| w == 7u64.to_be_bytes()));

        assert_eq!(
            SavedDeviceState::open(&device(2), &sealed).unwrap_err(),
            SavedStateError::NotThisDevice
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            SavedDeviceState::open(&keys, &altered).unwrap_err(),
            SavedStateError::NotThisDevice
        );
        assert!(matches!(
            SavedDeviceState::open(&keys, &sealed[..10]),
            Err(SavedStateError::Decode(_))
        ));
        assert!(matches!(
            SavedDeviceState::open(&keys, b"not a state at all, just text"),
            Err(SavedStateError::Decode(_))
        ));
    }
}
