//! ML-KEM-768 (FIPS 203) encapsulation, used to hand epoch keys to providers.

use core::fmt;

use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{DecapsulationKey768, EncapsulationKey768, MlKem768};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;

/// Length of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
/// Length of an encoded ML-KEM-768 encapsulation (public) key.
pub const KEM_ENCAPSULATION_KEY_LEN: usize = 1184;

/// An ML-KEM-768 ciphertext (the "encapsulated key").
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8; KEM_CIPHERTEXT_LEN]>);

impl KemCiphertext {
    /// Parses a ciphertext; any 1,088 bytes are a valid encoding.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEM_CIPHERTEXT_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::Malformed { what: "ML-KEM-768 ciphertext" })?;
        Ok(Self(Box::new(array)))
    }

    /// The encoded ciphertext.
    pub fn as_bytes(&self) -> &[u8; KEM_CIPHERTEXT_LEN] {
        &self.0
    }
}

impl fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KemCiphertext({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// The 32-byte secret both sides hold after encapsulation/decapsulation.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The raw secret, to be fed into HKDF only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// Encapsulates a fresh shared secret to `key` with the caller's randomness (the 32-byte `m`).
pub(crate) fn encapsulate(
    key: &EncapsulationKey768,
    rng: &mut impl CryptoRng,
) -> (KemCiphertext, SharedSecret) {
    let (ciphertext, mut shared) = key.encapsulate_with_rng(rng);
    let mut ct = [0u8; KEM_CIPHERTEXT_LEN];
    ct.copy_from_slice(ciphertext.as_slice());
    let mut secret = [0u8; 32];
    secret.copy_from_slice(shared.as_slice());
    shared.as_mut_slice().zeroize();
    (KemCiphertext(Box::new(ct)), SharedSecret(secret))
}

/// Decapsulates. ML-KEM uses implicit rejection: a ciphertext not made for this key yields an
/// unrelated pseudorandom secret instead of an error, so callers must authenticate what the
/// secret decrypts (every keyload is AEAD-sealed under a key derived from it).
pub(crate) fn decapsulate(key: &DecapsulationKey768, ciphertext: &KemCiphertext) -> SharedSecret {
    let ct = ml_kem::Ciphertext::<MlKem768>::from(*ciphertext.as_bytes());
    let mut shared = key.decapsulate(&ct);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(shared.as_slice());
    shared.as_mut_slice().zeroize();
    SharedSecret(secret)
}

/// Parses an encoded encapsulation key, checking FIPS 203's modulus check.
pub(crate) fn parse_encapsulation_key(bytes: &[u8]) -> Result<EncapsulationKey768, CryptoError> {
    let malformed = CryptoError::Malformed { what: "ML-KEM-768 encapsulation key" };
    let array: [u8; KEM_ENCAPSULATION_KEY_LEN] = bytes.try_into().map_err(|_| malformed.clone())?;
    EncapsulationKey768::new(&array.into()).map_err(|_| malformed)
}
