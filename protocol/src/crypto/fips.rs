//! The FIPS 203/204 layer underneath [`super::PartyKeys`], with arbitrary context strings.
//!
//! Production code never calls this directly: it derives seeds from a [`super::PartySecret`]
//! and signs with a fixed [`super::SignatureContext`]. It is public so the known-answer tests
//! (Wycheproof ML-KEM-768 and ML-DSA-65 vectors) drive exactly the functions `PartyKeys` uses:
//! seed → key pair, encapsulate with caller randomness, decapsulate, sign, verify.

use ml_dsa::{ExpandedSigningKey, MlDsa65, VerifyingKey};
use ml_kem::{DecapsulationKey768, KeyExport};
use rand_core::CryptoRng;

use super::CryptoError;
use super::identity::keys_from_seeds;
use super::kem::{self, KemCiphertext, SharedSecret};
use super::sign::{self, VERIFYING_KEY_LEN};

/// An ML-DSA-65 / ML-KEM-768 key pair built from FIPS seeds, as inside [`super::PartyKeys`].
pub struct FipsKeyPair {
    signing_key: Box<ExpandedSigningKey<MlDsa65>>,
    decapsulation_key: Box<DecapsulationKey768>,
}

impl core::fmt::Debug for FipsKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FipsKeyPair(<redacted>)")
    }
}

impl FipsKeyPair {
    /// ML-DSA.KeyGen_internal(ξ) and ML-KEM.KeyGen_internal(d, z).
    pub fn from_seeds(xi: &[u8; 32], d_z: &[u8; 64]) -> Self {
        let (signing_key, decapsulation_key) = keys_from_seeds(xi, d_z);
        Self { signing_key, decapsulation_key }
    }

    /// The encoded ML-DSA-65 public key.
    pub fn verifying_key(&self) -> Vec<u8> {
        self.signing_key.verifying_key().encode().to_vec()
    }

    /// The encoded ML-KEM-768 encapsulation key.
    pub fn encapsulation_key(&self) -> Vec<u8> {
        self.decapsulation_key.encapsulation_key().to_bytes().to_vec()
    }

    /// Hedged ML-DSA.Sign with `context` (32 bytes of `rng`; all zeros = deterministic variant).
    pub fn sign(
        &self,
        context: &[u8],
        message: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, CryptoError> {
        sign::sign_with_context_bytes(&self.signing_key, context, message, rng)
    }

    /// ML-KEM.Decaps.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret, CryptoError> {
        Ok(kem::decapsulate(&self.decapsulation_key, &KemCiphertext::from_slice(ciphertext)?))
    }
}

/// ML-DSA.Verify of an encoded public key (1,952 bytes) with `context`.
pub fn verify(
    verifying_key: &[u8],
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let bytes: [u8; VERIFYING_KEY_LEN] = verifying_key
        .try_into()
        .map_err(|_| CryptoError::Malformed { what: "ML-DSA-65 verifying key" })?;
    let key = VerifyingKey::<MlDsa65>::decode(&bytes.into());
    sign::verify_with_context_bytes(&key, context, message, signature)
}

/// ML-KEM.Encaps to an encoded encapsulation key (input-checked), with `m` drawn from `rng`.
pub fn encapsulate(
    encapsulation_key: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(KemCiphertext, SharedSecret), CryptoError> {
    let key = kem::parse_encapsulation_key(encapsulation_key)?;
    Ok(kem::encapsulate(&key, rng))
}
