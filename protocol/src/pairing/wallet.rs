//! The wallet side of pairing: [`ExpectAnnouncement`] → [`ExpectConfirmation`] →
//! [`PairedDevice`].
//!
//! The wallet never uses its main keys towards a device. For each device it derives *owner
//! keys* (an ML-DSA-65/ML-KEM-768 set) and a consent-log key from its secret and the device's
//! identity, so two devices (and the providers of each) cannot link one household's devices by
//! key, and a wallet restored from its recovery phrase re-derives everything.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::PairingError;
use super::code::PairingCode;
use super::wire::{self, Announcement, ClaimBody};
use crate::consent::sealed::{SessionKey, open_session, seal_in_session};
use crate::consent::{Publish, PublishKind};
use crate::crypto::{
    self, AEAD_NONCE_LEN, PartyId, PartyKeys, PartySecret, PublicKeys, Role, SignatureContext,
    SymmetricKey, SymmetricPurpose, expand_key,
};

const OWNER_SALT: &[u8] = b"meterkast/v1/owner";

/// The owner keys a wallet uses for one device (deterministic from the wallet secret).
pub fn owner_keys(wallet: &PartyKeys, device: PartyId) -> Result<PartyKeys, PairingError> {
    if wallet.public().role() != Role::Wallet {
        return Err(PairingError::WrongRole);
    }
    let base = wallet.symmetric_key(SymmetricPurpose::ConsentLog);
    let secret: Zeroizing<[u8; 32]> =
        expand_key(OWNER_SALT, base.expose_secret(), &[b"owner-secret", &device.0]);
    Ok(PartyKeys::derive(&PartySecret::from_bytes(*secret), Role::Wallet))
}

/// The consent-log key for one pairing of `device` (bound to the challenge the device issued,
/// so re-pairing the same device starts a new, unrelated log).
fn log_key(wallet: &PartyKeys, device: PartyId, challenge: &[u8; 32]) -> SymmetricKey {
    let base = wallet.symmetric_key(SymmetricPurpose::ConsentLog);
    let key: Zeroizing<[u8; 32]> =
        expand_key(OWNER_SALT, base.expose_secret(), &[b"log-key", &device.0, challenge]);
    SymmetricKey::from_bytes(*key)
}

/// The wallet has a code and looks for the device's announcement.
#[derive(Debug)]
pub struct ExpectAnnouncement {
    code: PairingCode,
}

/// The wallet has sent its claim and waits for the device's confirmation.
#[derive(Debug)]
pub struct ExpectConfirmation {
    device: PublicKeys,
    owner: PartyKeys,
    log_key: SymmetricKey,
    transcript: [u8; 32],
    session: SessionKey,
}

/// What a payload at the confirmation address did.
#[derive(Debug)]
pub enum Confirmation {
    /// The device confirmed: it is paired with this wallet.
    Paired(Box<PairedDevice>),
    /// Not a valid confirmation; still waiting.
    Rejected {
        /// The unchanged state.
        state: Box<ExpectConfirmation>,
        /// Why the payload was refused.
        error: PairingError,
    },
}

/// A device this wallet owns.
#[derive(Debug)]
pub struct PairedDevice {
    /// The device's public keys (their hash is the identity in the code).
    pub device: PublicKeys,
    /// The wallet's owner keys for this device.
    pub owner: PartyKeys,
    /// The consent-log key shared with the device.
    pub log_key: SymmetricKey,
    /// The pairing transcript hash.
    pub pairing_id: [u8; 32],
}

impl ExpectAnnouncement {
    /// Starts pairing with a code the user typed or scanned.
    pub fn new(code: PairingCode) -> Self {
        Self { code }
    }

    /// Where to look for the device's announcements.
    pub fn announcement_address(&self) -> [u8; 32] {
        wire::announcement_address(self.code.device())
    }

    /// Picks the newest valid announcement among the payloads found at the announcement
    /// address (payloads not signed by the device named in the code are skipped) and builds the
    /// claim. Returns the next state and the claim to publish.
    pub fn claim(
        &self,
        wallet: &PartyKeys,
        payloads: &[&[u8]],
        rng: &mut impl CryptoRng,
    ) -> Result<(ExpectConfirmation, Publish), PairingError> {
        let announcement = payloads
            .iter()
            .filter_map(|payload| Announcement::decode(payload).ok())
            .filter(|a| a.device.id() == self.code.device() && a.device.role() == Role::Device)
            .max_by_key(|a| a.attempt)
            .ok_or(PairingError::NoAnnouncement)?;
        let device = announcement.device;
        let challenge = announcement.challenge;
        let owner = owner_keys(wallet, device.id())?;
        let log_key = log_key(wallet, device.id(), &challenge);

        // The transcript depends on the KEM session, so encapsulate first, then seal the body
        // under that same session.
        let (kem_ct, session) = open_session(&device, wire::CLAIM_PURPOSE, rng);
        let transcript = wire::transcript(device.id(), &challenge, &session, owner.id(), &log_key);
        let proof = wire::proof(self.code.secret(), &transcript);
        let signature = owner.sign(
            SignatureContext::PairingClaim,
            &wire::claim_signed_message(&transcript, &proof),
            rng,
        )?;
        let body = ClaimBody {
            challenge,
            owner: owner.public().clone(),
            log_key: log_key.clone(),
            proof,
            signature,
        };
        let payload = seal_in_session(
            device.id(),
            &kem_ct,
            &session,
            wire::CLAIM_PURPOSE,
            &challenge,
            &body.encode(),
            rng,
        )?;
        let claim =
            Publish { address: device.inbox_address(), payload, kind: PublishKind::PairingClaim };
        Ok((ExpectConfirmation { device, owner, log_key, transcript, session }, claim))
    }
}

impl ExpectConfirmation {
    /// Where the device's confirmation will appear (known only to the device and this wallet).
    pub fn confirmation_address(&self) -> [u8; 32] {
        wire::confirmation_address(&self.session)
    }

    /// Checks a payload found at the confirmation address. Anything but the device's genuine
    /// confirmation leaves the wallet waiting (the state comes back with the reason).
    pub fn confirm(self, payload: &[u8]) -> Confirmation {
        match self.check(payload) {
            Ok(()) => Confirmation::Paired(Box::new(PairedDevice {
                device: self.device,
                owner: self.owner,
                log_key: self.log_key,
                pairing_id: self.transcript,
            })),
            Err(error) => Confirmation::Rejected { state: Box::new(self), error },
        }
    }

    fn check(&self, payload: &[u8]) -> Result<(), PairingError> {
        let (nonce, sealed) =
            payload.split_at_checked(AEAD_NONCE_LEN).ok_or(PairingError::BadConfirmation)?;
        let nonce: [u8; AEAD_NONCE_LEN] =
            nonce.try_into().map_err(|_| PairingError::BadConfirmation)?;
        let signature =
            crypto::open(&wire::confirmation_key(&self.session), &nonce, &self.transcript, sealed)
                .map_err(|_| PairingError::BadConfirmation)?;
        self.device
            .verify(
                SignatureContext::PairingConfirmation,
                &wire::confirmation_signed_message(&self.transcript, self.owner.id()),
                &signature,
            )
            .map_err(|_| PairingError::BadConfirmation)
    }
}
