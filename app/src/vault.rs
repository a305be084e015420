//! Identity secrets at rest in the browser: a passphrase-locked envelope around a 32-byte
//! [`PartySecret`] (the wallet's, a provider's, or the browser-as-device's).
//!
//! ```text
//!   passphrase ─► Argon2id(m = 64 MiB, t = 3, p = 1, salt: 16 random bytes) ─► 32-byte key
//!   key, nonce (24 random bytes), AD = header ─► XChaCha20-Poly1305 ─► sealed secret ‖ tag
//!   header = "meterkast/v1/vault" ‖ format ‖ role ‖ party id ‖ argon2id v19 ‖ m ‖ t ‖ p ‖ salt
//! ```
//!
//! The stored JSON ([`SealedIdentity`]) holds the header fields in clear, so the page can say
//! whose identity is stored before unlocking; every one of them is bound as associated data, so
//! changing any (a weaker cost, another role or id) makes opening fail like a wrong passphrase.
//! Parameters read back are bounded before the key derivation runs, so an altered blob cannot
//! make the page allocate gigabytes. Choice and cost: `../shared/brief/decisions.md`.

use argon2::{Algorithm, Argon2, Params, Version};
use protocol::crypto::{
    self, AEAD_NONCE_LEN, PartyId, PartySecret, Role, SECRET_LEN, SymmetricKey,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::storage::{self, StorageError};

/// The stored format's name; a new layout gets a new name.
pub const FORMAT: &str = "meterkast-vault-v1";
/// Domain separation for the associated data.
const AD_LABEL: &[u8] = b"meterkast/v1/vault";
const SALT_LEN: usize = 16;
/// Shortest passphrase accepted when locking.
pub const MIN_PASSPHRASE_CHARS: usize = 10;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The project's choice: 64 MiB, 3 passes, 1 lane (≈ 0.15 s in wasm on a laptop).
    pub const POLICY: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };
    /// The most a stored blob may ask for (a later, stronger policy still opens).
    const CEILING: KdfParams = KdfParams { m_kib: 1024 * 1024, t: 16, p: 4 };

    /// At least the policy and at most the ceiling, in every component.
    fn acceptable(self) -> bool {
        let within = |value: u32, low: u32, high: u32| (low..=high).contains(&value);
        within(self.m_kib, Self::POLICY.m_kib, Self::CEILING.m_kib)
            && within(self.t, Self::POLICY.t, Self::CEILING.t)
            && within(self.p, Self::POLICY.p, Self::CEILING.p)
    }
}

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VaultError {
    /// The passphrase is wrong — or the stored data was altered; the cipher cannot tell which.
    #[error("wrong passphrase (or the stored data was altered)")]
    WrongPassphrase,
    /// Too short a passphrase to lock with.
    #[error("choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters")]
    PassphraseTooShort,
    /// The stored data is not a vault of this format.
    #[error("the stored identity is unreadable: {0}")]
    Malformed(String),
    /// Stored cost parameters outside the accepted range.
    #[error("the stored identity asks for key-derivation costs outside the accepted range")]
    UnacceptableParams,
    /// Argon2 refused (out of memory in this tab, usually).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The browser gave no randomness.
    #[error("the browser's random number generator failed: {0}")]
    Random(String),
    /// Storing or loading failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The argon2id settings as stored: what `argon2` needs to derive the same key again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfRecord {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

/// A passphrase-sealed identity secret, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedIdentity {
    format: String,
    role: String,
    /// The identity's public id, so the page can show whose it is while locked.
    party_id: String,
    kdf: KdfRecord,
    nonce: String,
    /// XChaCha20-Poly1305 of the 32-byte secret, tag appended.
    sealed: String,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Device => "device",
        Role::Wallet => "wallet",
        Role::Provider => "provider",
    }
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A fresh secret from the browser's randomness.
pub fn generate_secret() -> Result<PartySecret, VaultError> {
    random::<SECRET_LEN>().map(PartySecret::from_bytes)
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<SymmetricKey, VaultError> {
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| VaultError::Kdf(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| VaultError::Kdf(e.to_string()))?;
    Ok(SymmetricKey::from_bytes(*key))
}

impl SealedIdentity {
    /// Locks `secret` (whose keys act as `role`) under `passphrase`.
    pub fn seal(
        secret: &PartySecret,
        role: Role,
        party_id: &PartyId,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self, VaultError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(VaultError::PassphraseTooShort);
        }
        let salt: [u8; SALT_LEN] = random()?;
        let nonce: [u8; AEAD_NONCE_LEN] = random()?;
        let mut vault = SealedIdentity {
            format: FORMAT.to_owned(),
            role: role_name(role).to_owned(),
            party_id: hex::encode(party_id.0),
            kdf: KdfRecord {
                algorithm: "argon2id".to_owned(),
                version: 0x13,
                params,
                salt: hex::encode(salt),
            },
            nonce: hex::encode(nonce),
            sealed: String::new(),
        };
        let key = derive_key(passphrase, &salt, params)?;
        let sealed = crypto::seal(&key, &nonce, &vault.associated_data()?, secret.expose_secret())
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        vault.sealed = hex::encode(sealed);
        Ok(vault)
    }

    /// Unlocks the secret with `passphrase`.
    pub fn open(&self, passphrase: &str) -> Result<PartySecret, VaultError> {
        if self.format != FORMAT || self.kdf.algorithm != "argon2id" || self.kdf.version != 0x13 {
            return Err(VaultError::Malformed(format!("unknown format {}", self.format)));
        }
        if !self.kdf.params.acceptable() {
            return Err(VaultError::UnacceptableParams);
        }
        let salt = decode_hex(&self.kdf.salt, "salt")?;
        let nonce: [u8; AEAD_NONCE_LEN] = decode_hex(&self.nonce, "nonce")?
            .try_into()
            .map_err(|_| VaultError::Malformed("nonce length".to_owned()))?;
        let sealed = decode_hex(&self.sealed, "sealed secret")?;
        let key = derive_key(passphrase, &salt, self.kdf.params)?;
        let plain = Zeroizing::new(
            crypto::open(&key, &nonce, &self.associated_data()?, &sealed)
                .map_err(|_| VaultError::WrongPassphrase)?,
        );
        let bytes: [u8; SECRET_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Malformed("secret length".to_owned()))?;
        Ok(PartySecret::from_bytes(bytes))
    }

    /// The public id stored beside the sealed secret (bound to it: see the module docs).
    pub fn party_id(&self) -> &str {
        &self.party_id
    }

    /// The cost parameters the secret was locked with.
    pub fn params(&self) -> KdfParams {
        self.kdf.params
    }

    /// The header fields, canonically encoded, as associated data.
    fn associated_data(&self) -> Result<Vec<u8>, VaultError> {
        let mut ad = Vec::with_capacity(128);
        let mut field = |bytes: &[u8]| {
            ad.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            ad.extend_from_slice(bytes);
        };
        field(AD_LABEL);
        field(self.format.as_bytes());
        field(self.role.as_bytes());
        field(&decode_hex(&self.party_id, "party id")?);
        field(self.kdf.algorithm.as_bytes());
        field(&self.kdf.version.to_be_bytes());
        field(&self.kdf.params.m_kib.to_be_bytes());
        field(&self.kdf.params.t.to_be_bytes());
        field(&self.kdf.params.p.to_be_bytes());
        field(&decode_hex(&self.kdf.salt, "salt")?);
        Ok(ad)
    }

    /// The stored text.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored text back.
    pub fn from_json(text: &str) -> Result<Self, VaultError> {
        serde_json::from_str(text).map_err(|e| VaultError::Malformed(e.to_string()))
    }
}

/// Seals state an unlocked identity keeps beside its sealed secret (the wallet's per-device log
/// keys): XChaCha20-Poly1305 under `key` (the identity's
/// [`SymmetricPurpose::StateAtRest`](protocol::crypto::SymmetricPurpose) key, so the passphrase
/// is not needed again), `label` as associated data so a blob cannot be moved to another slot.
/// Returns hex of nonce ‖ ciphertext ‖ tag.
pub fn seal_state(key: &SymmetricKey, label: &[u8], plain: &[u8]) -> Result<String, VaultError> {
    let nonce: [u8; AEAD_NONCE_LEN] = random()?;
    let sealed = crypto::seal(key, &nonce, label, plain)
        .map_err(|e| VaultError::Malformed(e.to_string()))?;
    Ok(hex::encode([&nonce[..], &sealed].concat()))
}

/// Opens what [`seal_state`] sealed under the same key and label.
pub fn open_state(
    key: &SymmetricKey,
    label: &[u8],
    text: &str,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let bytes = decode_hex(text, "sealed state")?;
    let (nonce, sealed) = bytes
        .split_at_checked(AEAD_NONCE_LEN)
        .ok_or_else(|| VaultError::Malformed("sealed state too short".to_owned()))?;
    let nonce: [u8; AEAD_NONCE_LEN] =
        nonce.try_into().map_err(|_| VaultError::Malformed("nonce length".to_owned()))?;
    crypto::open(key, &nonce, label, sealed).map(Zeroizing::new).map_err(|_| {
        VaultError::Malformed("sealed state does not open with this identity".to_owned())
    })
}

fn decode_hex(text: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    hex::decode(text).map_err(|_| VaultError::Malformed(format!("{what} is not hex")))
}

fn storage_key(role: Role) -> String {
    format!("meterkast.vault.{}", role_name(role))
}

/// The sealed identity stored for `role`, if any.
pub fn load(role: Role) -> Result<Option<SealedIdentity>, VaultError> {
    storage::load(&storage_key(role))?.map(|json| SealedIdentity::from_json(&json)).transpose()
}

/// Stores the sealed identity for `role`, replacing any other.
pub fn store(role: Role, vault: &SealedIdentity) -> Result<(), VaultError> {
    Ok(storage::save(&storage_key(role), &vault.to_json())?)
}

/// Removes the stored identity for `role` from this browser.
pub fn forget(role: Role) -> Result<(), VaultError> {
    Ok(storage::remove(&storage_key(role))?)
}
