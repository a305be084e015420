//! ML-DSA-65 (FIPS 204) signatures with one context string per use.

use ml_dsa::{ExpandedSigningKey, MlDsa65, Signature, VerifyingKey};
use rand_core::CryptoRng;

use super::CryptoError;

/// Length of an encoded ML-DSA-65 signature.
pub const SIGNATURE_LEN: usize = 3309;
/// Length of an encoded ML-DSA-65 verifying (public) key.
pub const VERIFYING_KEY_LEN: usize = 1952;

/// What a signature is for. FIPS 204's context string is set from this, so a signature made for
/// one use never verifies for another (a checkpoint can't be replayed as a keyload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureContext {
    /// A stream checkpoint or rotation message.
    Checkpoint,
    /// A keyload sent to a provider's inbox.
    InboxKeyload,
    /// An event in a device's consent log.
    ConsentEvent,
    /// A device's pairing announcement (its keys and current pairing challenge).
    PairingAnnouncement,
    /// A wallet's pairing claim (binds the wallet's owner keys to the pairing transcript).
    PairingClaim,
    /// A device's confirmation that a pairing claim was accepted.
    PairingConfirmation,
    /// A provider's published card.
    ProviderCard,
    /// A provider's access request.
    AccessRequest,
    /// A device's notice to a provider (grant delivery, revocation, expiry, device removal).
    ProviderNotice,
    /// A device's delivery receipt (what was published for a grant).
    DeliveryReceipt,
    /// A provider's acknowledgement of a consent receipt.
    ConsentAcknowledgement,
    /// A provider's statement that it deleted a grant's keys and data (crypto-shredding).
    DeletionStatement,
}

impl SignatureContext {
    /// The FIPS 204 context bytes (at most 255).
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Checkpoint => b"meterkast/v1/checkpoint",
            Self::InboxKeyload => b"meterkast/v1/inbox-keyload",
            Self::ConsentEvent => b"meterkast/v1/consent-event",
            Self::PairingAnnouncement => b"meterkast/v1/pairing-announcement",
            Self::PairingClaim => b"meterkast/v1/pairing-claim",
            Self::PairingConfirmation => b"meterkast/v1/pairing-confirmation",
            Self::ProviderCard => b"meterkast/v1/provider-card",
            Self::AccessRequest => b"meterkast/v1/access-request",
            Self::ProviderNotice => b"meterkast/v1/provider-notice",
            Self::DeliveryReceipt => b"meterkast/v1/delivery-receipt",
            Self::ConsentAcknowledgement => b"meterkast/v1/consent-acknowledgement",
            Self::DeletionStatement => b"meterkast/v1/deletion-statement",
        }
    }
}

/// Signs with the hedged variant of ML-DSA.Sign: 32 bytes from `rng` are mixed into the nonce, so
/// a fault or a bad RNG does not leak the key (an all-zero RNG gives the deterministic variant).
pub(crate) fn sign(
    key: &ExpandedSigningKey<MlDsa65>,
    context: SignatureContext,
    message: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    sign_with_context_bytes(key, context.as_bytes(), message, rng)
}

/// FIPS 204 ML-DSA.Sign (hedged) with arbitrary context bytes; fails if the context is longer
/// than 255 bytes.
pub(crate) fn sign_with_context_bytes(
    key: &ExpandedSigningKey<MlDsa65>,
    context: &[u8],
    message: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let signature = key.sign_randomized(message, context, rng).map_err(|_| CryptoError::Signing)?;
    Ok(signature.encode().to_vec())
}

/// Verifies an encoded signature; wrong length, bad encoding and a bad signature all fail.
pub(crate) fn verify(
    key: &VerifyingKey<MlDsa65>,
    context: SignatureContext,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    verify_with_context_bytes(key, context.as_bytes(), message, signature)
}

/// FIPS 204 ML-DSA.Verify with arbitrary context bytes.
pub(crate) fn verify_with_context_bytes(
    key: &VerifyingKey<MlDsa65>,
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let signature =
        Signature::<MlDsa65>::try_from(signature).map_err(|_| CryptoError::BadSignature)?;
    if key.verify_with_context(message, context, &signature) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}
