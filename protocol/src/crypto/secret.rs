//! Secret values: a party's root secret and the symmetric keys derived from it.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a party's root secret.
pub const SECRET_LEN: usize = 32;

/// The one secret a party (device, wallet, provider) holds; every other key is derived from it.
///
/// It never prints (`Debug` shows `<redacted>`) and is wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PartySecret([u8; SECRET_LEN]);

impl PartySecret {
    /// Wraps secret bytes restored from a backup or a recovery phrase.
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh secret from the caller's cryptographic random number generator.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw bytes, for writing an (encrypted) backup. Named loudly on purpose.
    pub fn expose_secret(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl fmt::Debug for PartySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartySecret(<redacted>)")
    }
}

/// What a derived symmetric key is for; the purpose is part of its HKDF label, so keys for two
/// purposes are independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymmetricPurpose {
    /// Encrypting the party's own saved state at rest.
    StateAtRest,
    /// Keys for the consent log (used by the consent module).
    ConsentLog,
}

impl SymmetricPurpose {
    /// The label bytes fed to HKDF.
    pub(crate) fn label(self) -> &'static [u8] {
        match self {
            Self::StateAtRest => b"symmetric/state-at-rest",
            Self::ConsentLog => b"symmetric/consent-log",
        }
    }
}

/// A 256-bit symmetric key (XChaCha20-Poly1305 key, HKDF input, address key).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh key from the caller's random number generator.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw key bytes, for feeding a primitive or sealing the key for a recipient.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}
