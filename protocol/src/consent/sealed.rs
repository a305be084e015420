//! Sealing a message to one party: ML-KEM-768 encapsulation + XChaCha20-Poly1305.
//!
//! ```text
//! sealed  = KEM ciphertext (1088) ‖ nonce (24) ‖ AEAD(key, nonce, aad, plaintext)
//! session = HKDF-SHA3(salt "meterkast/v1/sealed", ikm = shared secret, info = purpose ‖ SHA3(ct))
//! key     = HKDF-SHA3(salt "meterkast/v1/sealed", ikm = session, info = "aead")
//! aad     = purpose ‖ recipient PartyId ‖ caller's associated data
//! ```
//!
//! Used for pairing claims (wallet → device) and provider notices (device → provider). The
//! sender may keep the [`SessionKey`] to derive further keys for a reply (pairing confirmation).
//! ML-KEM's implicit rejection means a ciphertext for somebody else simply fails the AEAD.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::{
    self, AEAD_NONCE_LEN, CryptoError, KEM_CIPHERTEXT_LEN, KemCiphertext, PartyId, PartyKeys,
    PublicKeys, SymmetricKey, digest, expand_key,
};

const SEALED_SALT: &[u8] = b"meterkast/v1/sealed";

/// Smallest possible sealed message (empty plaintext).
pub(crate) const SEALED_OVERHEAD: usize =
    KEM_CIPHERTEXT_LEN + AEAD_NONCE_LEN + crypto::AEAD_TAG_LEN;

/// A secret both ends of one sealed message share, for deriving reply keys and addresses.
pub(crate) struct SessionKey(Zeroizing<[u8; 32]>);

impl SessionKey {
    fn new(shared: &[u8; 32], purpose: &[u8], ciphertext: &KemCiphertext) -> Self {
        let ct_hash = digest(b"meterkast/v1/sealed-ct", &[ciphertext.as_bytes()]);
        Self(expand_key(SEALED_SALT, shared, &[purpose, &ct_hash]))
    }

    /// A 32-byte value for `label`, independent of every other label.
    pub(crate) fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        expand_key(SEALED_SALT, self.0.as_slice(), &[label])
    }

    /// A symmetric key for `label`.
    pub(crate) fn key(&self, label: &[u8]) -> SymmetricKey {
        SymmetricKey::from_bytes(*self.derive(label))
    }
}

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

fn full_aad(purpose: &[u8], recipient: PartyId, aad: &[u8]) -> Vec<u8> {
    [purpose, &recipient.0, aad].concat()
}

/// Encapsulates to `recipient` and derives the session for `purpose`, before anything is
/// sealed (pairing needs the session to compute its transcript first).
pub(crate) fn open_session(
    recipient: &PublicKeys,
    purpose: &'static [u8],
    rng: &mut impl CryptoRng,
) -> (KemCiphertext, SessionKey) {
    let (ciphertext, shared) = recipient.encapsulate(rng);
    let session = SessionKey::new(shared.expose_secret(), purpose, &ciphertext);
    (ciphertext, session)
}

/// Seals `plaintext` within a session made by [`open_session`].
pub(crate) fn seal_in_session(
    recipient: PartyId,
    ciphertext: &KemCiphertext,
    session: &SessionKey,
    purpose: &'static [u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let sealed =
        crypto::seal(&session.key(b"aead"), &nonce, &full_aad(purpose, recipient, aad), plaintext)?;
    let mut out = Vec::with_capacity(KEM_CIPHERTEXT_LEN + AEAD_NONCE_LEN + sealed.len());
    out.extend_from_slice(ciphertext.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Seals `plaintext` to `recipient` for `purpose`.
pub(crate) fn seal_to(
    recipient: &PublicKeys,
    purpose: &'static [u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let (ciphertext, session) = open_session(recipient, purpose, rng);
    seal_in_session(recipient.id(), &ciphertext, &session, purpose, aad, plaintext, rng)
}

/// Opens a message sealed to `me`; any failure (too short, other recipient, altered) is
/// [`CryptoError::Decrypt`] or [`CryptoError::Malformed`], with no further detail.
pub(crate) fn open_sealed(
    me: &PartyKeys,
    purpose: &'static [u8],
    aad: &[u8],
    bytes: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, SessionKey), CryptoError> {
    if bytes.len() < SEALED_OVERHEAD {
        return Err(CryptoError::Malformed { what: "sealed message" });
    }
    let (ct, rest) = bytes.split_at(KEM_CIPHERTEXT_LEN);
    let (nonce, sealed) = rest.split_at(AEAD_NONCE_LEN);
    let ciphertext = KemCiphertext::from_slice(ct)?;
    let nonce: [u8; AEAD_NONCE_LEN] =
        nonce.try_into().map_err(|_| CryptoError::Malformed { what: "sealed message" })?;
    let shared = me.decapsulate(&ciphertext);
    let session = SessionKey::new(shared.expose_secret(), purpose, &ciphertext);
    let plaintext =
        crypto::open(&session.key(b"aead"), &nonce, &full_aad(purpose, me.id(), aad), sealed)?;
    Ok((Zeroizing::new(plaintext), session))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::consent::test_rng::TestRng;
    use crate::crypto::{PartySecret, Role};

    #[test]
    fn only_the_recipient_opens_and_every_binding_counts() {
        let mut rng = TestRng::new(1);
        let alice = PartyKeys::derive(&PartySecret::from_bytes([1; 32]), Role::Provider);
        let bob = PartyKeys::derive(&PartySecret::from_bytes([2; 32]), Role::Provider);
        let (ct, sender_session) = open_session(alice.public(), b"test", &mut rng);
        let sealed =
            seal_in_session(alice.id(), &ct, &sender_session, b"test", b"ad", b"hello", &mut rng)
                .unwrap();
        let (plain, session) = open_sealed(&alice, b"test", b"ad", &sealed).unwrap();
        assert_eq!(plain.as_slice(), b"hello");
        assert_eq!(*session.derive(b"reply"), *sender_session.derive(b"reply"));
        let other = seal_to(alice.public(), b"test", b"ad", b"again", &mut rng).unwrap();
        assert_eq!(open_sealed(&alice, b"test", b"ad", &other).unwrap().0.as_slice(), b"again");
        assert!(open_sealed(&bob, b"test", b"ad", &sealed).is_err());
        assert!(open_sealed(&alice, b"other", b"ad", &sealed).is_err());
        assert!(open_sealed(&alice, b"test", b"other", &sealed).is_err());
        assert!(open_sealed(&alice, b"test", b"ad", &sealed[..100]).is_err());
    }
}
