//! Errors of the cryptographic layer, grouped by who is at fault.

/// Why a cryptographic operation failed.
///
/// Failures caused by a peer's bytes ([`CryptoError::Decrypt`], [`CryptoError::BadSignature`],
/// [`CryptoError::Malformed`]) are expected in normal operation and carry no detail on purpose:
/// a detailed reason would be an oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authenticated decryption failed: wrong key, wrong associated data, or altered bytes.
    #[error("authenticated decryption failed")]
    Decrypt,
    /// A signature did not verify under the expected key and context.
    #[error("signature does not verify")]
    BadSignature,
    /// A key, signature or ciphertext has the wrong length or is not a valid encoding.
    #[error("malformed {what}")]
    Malformed {
        /// Which kind of value was malformed.
        what: &'static str,
    },
    /// The signer failed (ML-DSA's rejection loop gave up or the context was too long); this is
    /// not caused by any peer and should never happen with the fixed contexts used here.
    #[error("signing failed")]
    Signing,
    /// Encryption refused its input (longer than the AEAD allows).
    #[error("encryption failed: input too long")]
    Encrypt,
}
