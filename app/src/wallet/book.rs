//! The wallet's book of paired devices, kept in the browser so a reload finds them again.
//!
//! ```text
//! localStorage["meterkast.wallet.<wallet id>"] = {
//!   "format": "meterkast-wallet-book-v1",
//!   "devices": [{ "device_id": hex, "device_keys": hex PublicKeys, "pairing_id": hex,
//!                 "paired_at": unix s,
//!                 "log_key": hex(nonce ‖ XChaCha20-Poly1305(state-at-rest key, aad, log key)),
//!                 "log_head": { "entries": n, "hash": hex } }] }
//! ```
//!
//! Only the log key is secret; it is sealed by [`crate::vault::seal_state`] under the wallet's
//! state-at-rest key (derived from the wallet secret, so it opens only while unlocked), with the
//! device id in the associated data. Owner keys are re-derived from the wallet secret, grant
//! keys are read back from the log itself. The log head is what this wallet last saw of each
//! log: a node that later shows fewer entries (or another entry at the head) is withholding or
//! forking the history, and the page says so.

use protocol::crypto::{PartyId, PublicKeys, SymmetricKey};
use serde::{Deserialize, Serialize};

use crate::storage;
use crate::vault::{self, VaultError};

/// The stored format's name.
pub const BOOK_FORMAT: &str = "meterkast-wallet-book-v1";
const LOG_KEY_LABEL: &[u8] = b"meterkast/v1/wallet-book/log-key";

/// What this wallet last saw of a device's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    /// Number of entries.
    pub entries: u64,
    /// Hash of the last entry (hex).
    pub hash: String,
}

/// One paired device as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDevice {
    /// The device's id (hex): the hash of its keys, checked when they are read back.
    device_id: String,
    device_keys: String,
    pairing_id: String,
    /// When this wallet paired it (UTC seconds).
    pub paired_at: u64,
    log_key: String,
    /// The last head seen (none before the first entry).
    pub log_head: Option<LogHead>,
}

fn malformed(what: &str) -> VaultError {
    VaultError::Malformed(format!("the wallet's device list: {what}"))
}

fn aad(device: PartyId) -> Vec<u8> {
    [LOG_KEY_LABEL, &device.0].concat()
}

impl StoredDevice {
    /// A book entry; `head` is `(entries, hash of the last)`.
    pub fn new(
        device: &PublicKeys,
        pairing_id: &[u8; 32],
        paired_at: u64,
        log_key: &SymmetricKey,
        state_key: &SymmetricKey,
        head: Option<(u64, [u8; 32])>,
    ) -> Result<Self, VaultError> {
        Ok(Self {
            device_id: hex::encode(device.id().0),
            device_keys: hex::encode(device.encode()),
            pairing_id: hex::encode(pairing_id),
            paired_at,
            log_key: vault::seal_state(state_key, &aad(device.id()), log_key.expose_secret())?,
            log_head: head.map(|(entries, hash)| LogHead { entries, hash: hex::encode(hash) }),
        })
    }

    /// The device's public keys (refused unless they hash to the stored id).
    pub fn device_keys(&self) -> Result<PublicKeys, VaultError> {
        let bytes = hex::decode(&self.device_keys).map_err(|_| malformed("device keys"))?;
        let keys = PublicKeys::decode(&bytes).map_err(|_| malformed("device keys"))?;
        if hex::encode(keys.id().0) != self.device_id {
            return Err(malformed("device keys do not match the device id"));
        }
        Ok(keys)
    }

    /// The pairing transcript hash.
    pub fn pairing_id(&self) -> Result<[u8; 32], VaultError> {
        hex::decode(&self.pairing_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("pairing id"))
    }

    /// The device id, as hex.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Opens the consent-log key (only with the wallet's state-at-rest key).
    pub fn log_key(&self, state_key: &SymmetricKey) -> Result<SymmetricKey, VaultError> {
        let device = self.device_keys()?.id();
        let plain = vault::open_state(state_key, &aad(device), &self.log_key)?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| malformed("log key"))?;
        Ok(SymmetricKey::from_bytes(bytes))
    }
}

/// The wallet's device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    format: String,
    /// Paired devices, in the order they were paired.
    pub devices: Vec<StoredDevice>,
}

impl Default for Book {
    fn default() -> Self {
        Self { format: BOOK_FORMAT.to_owned(), devices: Vec::new() }
    }
}

fn storage_key(wallet_id: &str) -> String {
    format!("meterkast.wallet.{wallet_id}")
}

impl Book {
    /// A book of these devices.
    pub fn with_devices(devices: Vec<StoredDevice>) -> Self {
        Self { devices, ..Self::default() }
    }

    /// The book of the wallet with public id `wallet_id` (hex); empty if none is stored.
    pub fn load(wallet_id: &str) -> Result<Self, VaultError> {
        let Some(json) = storage::load(&storage_key(wallet_id))? else {
            return Ok(Self::default());
        };
        let book: Self = serde_json::from_str(&json).map_err(|e| malformed(&e.to_string()))?;
        if book.format != BOOK_FORMAT {
            return Err(malformed("unknown format"));
        }
        Ok(book)
    }

    /// Stores the book.
    pub fn save(&self, wallet_id: &str) -> Result<(), VaultError> {
        let json = serde_json::to_string(self).map_err(|e| malformed(&e.to_string()))?;
        Ok(storage::save(&storage_key(wallet_id), &json)?)
    }

    /// Removes the book (when the wallet itself is forgotten).
    pub fn forget(wallet_id: &str) -> Result<(), VaultError> {
        Ok(storage::remove(&storage_key(wallet_id))?)
    }
}
