//! Pairing messages, their encodings and the transcript both sides compute.
//!
//! ```text
//! announcement = "MKPA" ‖ u8 1 ‖ device PublicKeys(3170) ‖ challenge(32) ‖ u64be attempt
//!                ‖ u64be issued_at ‖ signature(3309, device, "meterkast/v1/pairing-announcement")
//!     at SHA3-256("meterkast/v1/pairing-announce-address" ‖ device PartyId)
//! claim        = sealed to the device's ML-KEM key (purpose "meterkast/v1/pairing-claim",
//!                aad = challenge) of
//!                "MKCL" ‖ u8 1 ‖ challenge(32) ‖ owner PublicKeys(3170) ‖ log key(32) ‖ proof(32)
//!                ‖ signature(3309, owner, "meterkast/v1/pairing-claim", over transcript ‖ proof)
//!     at the device's inbox address
//! transcript   = SHA3-256("meterkast/v1/pairing-transcript" ‖ device PartyId ‖ challenge
//!                ‖ session binding(32) ‖ owner PartyId ‖ SHA3-256(log key))
//! proof        = SHA3-256("meterkast/v1/pairing-proof" ‖ code secret(16) ‖ transcript)
//! confirmation = nonce(24) ‖ XChaCha20-Poly1305(session "confirmation-key", aad = transcript,
//!                signature(3309, device, "meterkast/v1/pairing-confirmation",
//!                over transcript ‖ owner PartyId))
//!     at session.derive("confirmation-address")
//! ```
//!
//! The session binding and confirmation key/address come from the claim's KEM session, so only
//! the device (which decapsulates) and the wallet (which encapsulated) know them.

use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::consent::sealed::SessionKey;
use crate::crypto::{
    PUBLIC_KEYS_LEN, PartyId, PublicKeys, SIGNATURE_LEN, SignatureContext, SymmetricKey, digest,
};

use super::PairingError;

const ANNOUNCEMENT_MAGIC: &[u8; 4] = b"MKPA";
const CLAIM_MAGIC: &[u8; 4] = b"MKCL";
const VERSION: u8 = 1;
/// Purpose label of the sealed claim.
pub(crate) const CLAIM_PURPOSE: &[u8] = b"meterkast/v1/pairing-claim";

/// Where a device's pairing announcements are published.
pub fn announcement_address(device: PartyId) -> [u8; 32] {
    digest(b"meterkast/v1/pairing-announce-address", &[&device.0])
}

/// A device's signed statement "I am waiting for a claim against this challenge".
#[derive(Debug, Clone)]
pub(crate) struct Announcement {
    pub(crate) device: PublicKeys,
    pub(crate) challenge: [u8; 32],
    pub(crate) attempt: u64,
    pub(crate) issued_at: u64,
}

impl Announcement {
    pub(crate) fn signed_part(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(ANNOUNCEMENT_MAGIC)
            .u8(VERSION)
            .bytes(&self.device.encode())
            .bytes(&self.challenge)
            .u64be(self.attempt)
            .u64be(self.issued_at);
        w.finish()
    }

    /// Decodes and verifies the device's signature.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, PairingError> {
        let (signed, signature) = split_signature(bytes)?;
        let mut r = Reader::new(signed);
        expect_magic(&mut r, ANNOUNCEMENT_MAGIC, "pairing announcement")?;
        let device = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "device keys")?)
            .map_err(|_| DecodeError::InvalidValue { field: "device keys" })?;
        let challenge = r.array("challenge")?;
        let attempt = r.u64be("attempt")?;
        let issued_at = r.u64be("issued at")?;
        r.finish()?;
        device
            .verify(SignatureContext::PairingAnnouncement, signed, signature)
            .map_err(|_| PairingError::BadAnnouncement)?;
        Ok(Self { device, challenge, attempt, issued_at })
    }
}

/// The plaintext of a claim.
pub(crate) struct ClaimBody {
    pub(crate) challenge: [u8; 32],
    pub(crate) owner: PublicKeys,
    pub(crate) log_key: SymmetricKey,
    pub(crate) proof: [u8; 32],
    pub(crate) signature: Vec<u8>,
}

impl ClaimBody {
    pub(crate) fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.bytes(CLAIM_MAGIC)
            .u8(VERSION)
            .bytes(&self.challenge)
            .bytes(&self.owner.encode())
            .bytes(self.log_key.expose_secret())
            .bytes(&self.proof)
            .bytes(&self.signature);
        zeroize::Zeroizing::new(w.finish())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, PairingError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, CLAIM_MAGIC, "pairing claim")?;
        let challenge = r.array("challenge")?;
        let owner = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "owner keys")?)
            .map_err(|_| DecodeError::InvalidValue { field: "owner keys" })?;
        let log_key = SymmetricKey::from_bytes(r.array("log key")?);
        let proof = r.array("proof")?;
        let signature = r.take(SIGNATURE_LEN, "signature")?.to_vec();
        r.finish()?;
        Ok(Self { challenge, owner, log_key, proof, signature })
    }
}

/// The pairing transcript hash.
pub(crate) fn transcript(
    device: PartyId,
    challenge: &[u8; 32],
    session: &SessionKey,
    owner: PartyId,
    log_key: &SymmetricKey,
) -> [u8; 32] {
    let binding = session.derive(b"meterkast/v1/pairing-session-binding");
    let log_key_hash = digest(b"meterkast/v1/pairing-log-key", &[log_key.expose_secret()]);
    digest(
        b"meterkast/v1/pairing-transcript",
        &[&device.0, challenge, binding.as_slice(), &owner.0, &log_key_hash],
    )
}

/// The proof of knowledge of the code secret (a keyed SHA3 PRF over the transcript).
pub(crate) fn proof(secret: &[u8], transcript: &[u8; 32]) -> [u8; 32] {
    digest(b"meterkast/v1/pairing-proof", &[secret, transcript])
}

/// What the owner signs in a claim and the device signs in its confirmation.
pub(crate) fn claim_signed_message(transcript: &[u8; 32], proof: &[u8; 32]) -> Vec<u8> {
    [&transcript[..], proof].concat()
}

pub(crate) fn confirmation_signed_message(transcript: &[u8; 32], owner: PartyId) -> Vec<u8> {
    [&transcript[..], &owner.0].concat()
}

pub(crate) fn confirmation_address(session: &SessionKey) -> [u8; 32] {
    *session.derive(b"meterkast/v1/pairing-confirmation-address")
}

pub(crate) fn confirmation_key(session: &SessionKey) -> SymmetricKey {
    session.key(b"meterkast/v1/pairing-confirmation-key")
}

fn split_signature(bytes: &[u8]) -> Result<(&[u8], &[u8]), PairingError> {
    let at = bytes
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or(DecodeError::Truncated { field: "signature" })?;
    Ok(bytes.split_at(at))
}

fn expect_magic(
    r: &mut Reader<'_>,
    magic: &[u8; 4],
    what: &'static str,
) -> Result<(), PairingError> {
    if r.take(4, "magic")? != magic {
        return Err(DecodeError::InvalidValue { field: "magic" }.into());
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion { what, version }.into());
    }
    Ok(())
}
