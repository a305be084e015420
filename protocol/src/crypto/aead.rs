//! XChaCha20-Poly1305 with explicit associated data.
//!
//! Nonces are 192 bits: random nonces drawn by the caller never collide in practice (2⁻⁹⁶ after
//! 2⁴⁸ messages under one key), which is what lets a device restart from any saved state
//! without a nonce counter to get wrong.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::{CryptoError, SymmetricKey};

/// XChaCha20 nonce length.
pub const AEAD_NONCE_LEN: usize = 24;
/// Poly1305 tag length appended to every ciphertext.
pub const AEAD_TAG_LEN: usize = 16;

/// Encrypts and authenticates `plaintext`, binding `associated_data`; returns ciphertext ‖ tag.
pub fn seal(
    key: &SymmetricKey,
    nonce: &[u8; AEAD_NONCE_LEN],
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.expose_secret().into());
    cipher
        .encrypt(&XNonce::from(*nonce), Payload { msg: plaintext, aad: associated_data })
        .map_err(|_| CryptoError::Encrypt)
}

/// Verifies and decrypts ciphertext ‖ tag under `associated_data`.
pub fn open(
    key: &SymmetricKey,
    nonce: &[u8; AEAD_NONCE_LEN],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.expose_secret().into());
    cipher
        .decrypt(&XNonce::from(*nonce), Payload { msg: ciphertext, aad: associated_data })
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn round_trip_and_every_binding_matters() {
        let key = SymmetricKey::from_bytes([7; 32]);
        let nonce = [9; AEAD_NONCE_LEN];
        let sealed = seal(&key, &nonce, b"ad", b"reading").unwrap();
        assert_eq!(sealed.len(), b"reading".len() + AEAD_TAG_LEN);
        assert_eq!(open(&key, &nonce, b"ad", &sealed).unwrap(), b"reading");

        assert_eq!(open(&key, &nonce, b"other ad", &sealed), Err(CryptoError::Decrypt));
        assert_eq!(open(&key, &[8; AEAD_NONCE_LEN], b"ad", &sealed), Err(CryptoError::Decrypt));
        let other_key = SymmetricKey::from_bytes([6; 32]);
        assert_eq!(open(&other_key, &nonce, b"ad", &sealed), Err(CryptoError::Decrypt));
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(open(&key, &nonce, b"ad", &flipped), Err(CryptoError::Decrypt));
    }
}
