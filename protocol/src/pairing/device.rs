//! The device side of pairing, as typestates: [`ExpectClaim`] → [`Paired`] → (reset) →
//! [`ExpectClaim`].
//!
//! A device in [`ExpectClaim`] holds its code secret and the current challenge. Every claim
//! either pairs it or counts as a failed attempt, and every failed attempt draws a new challenge
//! (so a captured claim can never be accepted later: it names a spent challenge) and, past
//! [`FREE_ATTEMPTS`], locks the device for a doubling time (the device's own clock is passed in).
//! A device in [`Paired`] refuses every claim without even decrypting it: one owner at a time.
//! Only a reset (removal or hand-over) returns it to [`ExpectClaim`], with a new code.

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::code::PairingCode;
use super::wire::{self, Announcement, ClaimBody};
use super::{ClaimRefusal, PairingError};
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::consent::sealed::{SessionKey, open_sealed};
use crate::consent::{Publish, PublishKind};
use crate::crypto::{
    self, AEAD_NONCE_LEN, PUBLIC_KEYS_LEN, PartyKeys, PublicKeys, Role, SignatureContext,
    SymmetricKey,
};

/// Failed claims allowed before the device starts locking itself.
pub const FREE_ATTEMPTS: u32 = 3;
/// The first lock-out; it doubles with every further failure.
pub const FIRST_LOCKOUT_SECS: u64 = 30;
/// The longest lock-out.
pub const MAX_LOCKOUT_SECS: u64 = 86_400;

/// A claim that passed every check.
struct AcceptedClaim {
    body: ClaimBody,
    transcript: [u8; 32],
    session: SessionKey,
}

/// A device waiting to be claimed.
#[derive(Debug)]
pub struct ExpectClaim {
    code: PairingCode,
    challenge: [u8; 32],
    attempt: u64,
    failures: u32,
    locked_until: u64,
}

/// A device with an owner.
#[derive(Debug)]
pub struct Paired {
    owner: PublicKeys,
    log_key: SymmetricKey,
    pairing_id: [u8; 32],
    paired_at: u64,
}

/// The result of offering a claim to a device waiting for one.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The claim was valid: the device is paired; publish the confirmation.
    Paired {
        /// The new state.
        state: Paired,
        /// The sealed, signed confirmation for the wallet.
        confirmation: Publish,
    },
    /// The claim was refused; the device is still waiting.
    Refused {
        /// The state (with a new challenge if the attempt counted).
        state: ExpectClaim,
        /// Why (for the device's log; nothing is sent to the claimant).
        reason: ClaimRefusal,
        /// A fresh announcement to publish when the challenge changed.
        announcement: Option<Publish>,
    },
}

impl ExpectClaim {
    /// Starts waiting for a claim with a fresh code. Show the code, publish the announcement.
    pub fn start(
        device: &PartyKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, PairingCode, Publish), PairingError> {
        if device.public().role() != Role::Device {
            return Err(PairingError::WrongRole);
        }
        let code = PairingCode::generate(device.id(), rng);
        let mut challenge = [0u8; 32];
        rng.fill_bytes(&mut challenge);
        let state =
            Self { code: code.clone(), challenge, attempt: 0, failures: 0, locked_until: 0 };
        let announcement = state.announcement(device, now, rng)?;
        Ok((state, code, announcement))
    }

    /// The signed announcement of the current challenge.
    pub fn announcement(
        &self,
        device: &PartyKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Publish, PairingError> {
        let announcement = Announcement {
            device: device.public().clone(),
            challenge: self.challenge,
            attempt: self.attempt,
            issued_at: now,
        };
        let mut payload = announcement.signed_part();
        let signature = device.sign(SignatureContext::PairingAnnouncement, &payload, rng)?;
        payload.extend_from_slice(&signature);
        Ok(Publish {
            address: wire::announcement_address(device.id()),
            payload,
            kind: PublishKind::PairingAnnouncement,
        })
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Until when (UTC seconds) claims are refused unread; 0 if not locked.
    pub fn locked_until(&self) -> u64 {
        self.locked_until
    }

    /// Where claims for this device arrive (its inbox).
    pub fn claim_address(device: &PartyKeys) -> [u8; 32] {
        device.public().inbox_address()
    }

    /// Processes one payload found at the device's inbox.
    pub fn receive_claim(
        mut self,
        device: &PartyKeys,
        payload: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<ClaimOutcome, PairingError> {
        if now < self.locked_until {
            let until = self.locked_until;
            return Ok(ClaimOutcome::Refused {
                state: self,
                reason: ClaimRefusal::RateLimited { until },
                announcement: None,
            });
        }
        match self.check_claim(device, payload) {
            Ok(AcceptedClaim { body, transcript, session }) => {
                let signature = device.sign(
                    SignatureContext::PairingConfirmation,
                    &wire::confirmation_signed_message(&transcript, body.owner.id()),
                    rng,
                )?;
                let mut nonce = [0u8; AEAD_NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                let sealed = crypto::seal(
                    &wire::confirmation_key(&session),
                    &nonce,
                    &transcript,
                    &signature,
                )?;
                let confirmation = Publish {
                    address: wire::confirmation_address(&session),
                    payload: [&nonce[..], &sealed].concat(),
                    kind: PublishKind::PairingConfirmation,
                };
                let state = Paired {
                    owner: body.owner,
                    log_key: body.log_key,
                    pairing_id: transcript,
                    paired_at: now,
                };
                Ok(ClaimOutcome::Paired { state, confirmation })
            }
            Err(reason) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= FREE_ATTEMPTS {
                    let doublings = (self.failures - FREE_ATTEMPTS).min(20);
                    let lockout = (FIRST_LOCKOUT_SECS << doublings).min(MAX_LOCKOUT_SECS);
                    self.locked_until = now.saturating_add(lockout);
                }
                rng.fill_bytes(&mut self.challenge);
                self.attempt += 1;
                let announcement = self.announcement(device, now, rng)?;
                Ok(ClaimOutcome::Refused { state: self, reason, announcement: Some(announcement) })
            }
        }
    }

    /// Every check of a claim; any failure is one failed attempt.
    fn check_claim(
        &self,
        device: &PartyKeys,
        payload: &[u8],
    ) -> Result<AcceptedClaim, ClaimRefusal> {
        let (plaintext, session) =
            open_sealed(device, wire::CLAIM_PURPOSE, &self.challenge, payload)
                .map_err(|_| ClaimRefusal::Unreadable)?;
        let body = ClaimBody::decode(&plaintext).map_err(|_| ClaimRefusal::Unreadable)?;
        // The AEAD's associated data already binds the challenge; checked again for clarity.
        if body.challenge != self.challenge {
            return Err(ClaimRefusal::StaleChallenge);
        }
        if body.owner.role() != Role::Wallet {
            return Err(ClaimRefusal::NotAWallet);
        }
        let transcript = wire::transcript(
            device.id(),
            &self.challenge,
            &session,
            body.owner.id(),
            &body.log_key,
        );
        let expected = wire::proof(self.code.secret(), &transcript);
        if !bool::from(expected.ct_eq(&body.proof)) {
            return Err(ClaimRefusal::WrongCode);
        }
        body.owner
            .verify(
                SignatureContext::PairingClaim,
                &wire::claim_signed_message(&transcript, &body.proof),
                &body.signature,
            )
            .map_err(|_| ClaimRefusal::BadOwnerSignature)?;
        Ok(AcceptedClaim { body, transcript, session })
    }
}

const PAIRED_MAGIC: &[u8; 4] = b"MKPD";
const PAIRED_VERSION: u8 = 1;

impl Paired {
    /// The state to keep across restarts:
    /// `"MKPD" ‖ u8 1 ‖ owner PublicKeys ‖ log key(32) ‖ pairing id(32) ‖ u64be paired_at`.
    /// It contains the log key: store it encrypted (the device's state-at-rest key).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.bytes(PAIRED_MAGIC)
            .u8(PAIRED_VERSION)
            .bytes(&self.owner.encode())
            .bytes(self.log_key.expose_secret())
            .bytes(&self.pairing_id)
            .u64be(self.paired_at);
        Zeroizing::new(w.finish())
    }

    /// Restores [`Paired::encode`] output.
    pub fn decode(bytes: &[u8]) -> Result<Self, PairingError> {
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != PAIRED_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != PAIRED_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "paired state", version }.into());
        }
        let owner = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "owner keys")?)
            .map_err(|_| DecodeError::InvalidValue { field: "owner keys" })?;
        if owner.role() != Role::Wallet {
            return Err(PairingError::WrongRole);
        }
        let log_key = SymmetricKey::from_bytes(r.array("log key")?);
        let pairing_id = r.array("pairing id")?;
        let paired_at = r.u64be("paired at")?;
        r.finish()?;
        Ok(Self { owner, log_key, pairing_id, paired_at })
    }

    /// A paired device refuses every claim, unread.
    pub fn refuse_claim(&self) -> ClaimRefusal {
        ClaimRefusal::AlreadyOwned
    }

    /// The owner's (per-device) public keys.
    pub fn owner(&self) -> &PublicKeys {
        &self.owner
    }

    /// The consent-log key agreed in the claim.
    pub fn log_key(&self) -> &SymmetricKey {
        &self.log_key
    }

    /// The pairing transcript hash (names this pairing).
    pub fn pairing_id(&self) -> [u8; 32] {
        self.pairing_id
    }

    /// When the device was paired.
    pub fn paired_at(&self) -> u64 {
        self.paired_at
    }

    /// Ends the ownership (device removed, handed over, or factory reset): back to waiting for
    /// a claim with a brand-new code. The caller must also end every grant (the consent
    /// follower's `end_all`), which is what makes a hand-over end all sharing.
    pub fn reset(
        self,
        device: &PartyKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(ExpectClaim, PairingCode, Publish), PairingError> {
        ExpectClaim::start(device, now, rng)
    }
}
