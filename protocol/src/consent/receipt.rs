//! Receipts: the consent receipt both sides hold, the provider's acknowledgement of it, and the
//! device's delivery receipts.
//!
//! ```text
//! consent receipt = "MKRC" ‖ u8 1 ‖ device PublicKeys ‖ owner PublicKeys ‖ grant key(32)
//!                   ‖ lp grant entry            (verifiable offline: owner signature over the
//!                                                entry, grant key → content key → the grant)
//! acknowledgement = provider's ML-DSA-65 signature ("meterkast/v1/consent-acknowledgement") over
//!                   SHA3-256("meterkast/v1/consent-ack" ‖ entry hash ‖ provider PartyId ‖ u64be t)
//!     published as nonce ‖ XChaCha20-Poly1305(ack key, aad = entry hash, u64be t ‖ signature)
//!     at SHA3-256("meterkast/v1/consent-ack-address" ‖ ack address key); both keys are
//!     HKDF(grant key): only the household and that provider can find or read it
//! delivery receipt = "MKDR" ‖ u8 1 ‖ device PartyId ‖ grant id(16) ‖ u8 tier ‖ u64be first
//!                   ‖ u64be end ‖ u64be count ‖ digest(32) ‖ u64be issued_at
//!                   ‖ device signature ("meterkast/v1/delivery-receipt")
//!     published as nonce ‖ XChaCha20-Poly1305(receipt key, aad = device ‖ u64be n, receipt)
//!     at the log's receipt address n
//! ```

use rand_core::CryptoRng;

use super::event::{EventKind, Grant, GrantId};
use super::log::{LogKeys, SealedEntry};
use super::{ConsentError, Publish, PublishKind};
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::channel::{Address, Tier};
use crate::crypto::{
    self, AEAD_NONCE_LEN, PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, Role, SIGNATURE_LEN,
    SignatureContext, SymmetricKey, digest, expand_key,
};

const RECEIPT_MAGIC: &[u8; 4] = b"MKRC";
const DELIVERY_MAGIC: &[u8; 4] = b"MKDR";
const VERSION: u8 = 1;
const ACK_SALT: &[u8] = b"meterkast/v1/consent-ack";
/// Longest entry a receipt or notice carries.
pub const MAX_ENTRY_LEN: usize = 16 * 1024;

/// A grant as both the household and the provider hold it: the owner-signed entry plus the
/// grant key that opens it. Every value of this type has been verified.
#[derive(Debug, Clone)]
pub struct ConsentReceipt {
    device: PublicKeys,
    owner: PublicKeys,
    grant_key: SymmetricKey,
    entry: SealedEntry,
    grant: Grant,
    granted_at: u64,
}

impl ConsentReceipt {
    /// Verifies an owner-signed grant entry for `provider` and builds the receipt.
    pub fn from_entry(
        device: PublicKeys,
        owner: PublicKeys,
        grant_key: SymmetricKey,
        entry_bytes: &[u8],
        provider: PartyId,
    ) -> Result<Self, ConsentError> {
        if device.role() != Role::Device || owner.role() != Role::Wallet {
            return Err(ConsentError::WrongRole);
        }
        let entry = SealedEntry::decode(entry_bytes)?;
        entry.verify_signature(device.id(), &owner)?;
        let content_key = entry.grant_content_key(&grant_key, device.id())?;
        let event = entry.open(&content_key, device.id())?;
        let EventKind::Granted(grant) = event.kind else {
            return Err(ConsentError::NotAGrant);
        };
        if grant.provider.id() != provider {
            return Err(ConsentError::NotForThisProvider);
        }
        if grant.grant_key != grant_key {
            return Err(ConsentError::Undecryptable);
        }
        Ok(Self { device, owner, grant_key, entry, grant: *grant, granted_at: event.time })
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }
    /// When the owner granted it.
    pub fn granted_at(&self) -> u64 {
        self.granted_at
    }
    /// The device's keys.
    pub fn device(&self) -> &PublicKeys {
        &self.device
    }
    /// The owner's (per-device) keys.
    pub fn owner(&self) -> &PublicKeys {
        &self.owner
    }
    /// The grant key.
    pub fn grant_key(&self) -> &SymmetricKey {
        &self.grant_key
    }
    /// The signed grant entry.
    pub fn entry(&self) -> &SealedEntry {
        &self.entry
    }
    /// The entry's hash in the device's log.
    pub fn entry_hash(&self) -> [u8; 32] {
        self.entry.hash(self.device.id())
    }

    /// Portable encoding (verifiable offline with [`ConsentReceipt::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(RECEIPT_MAGIC)
            .u8(VERSION)
            .bytes(&self.device.encode())
            .bytes(&self.owner.encode())
            .bytes(self.grant_key.expose_secret())
            .length_prefixed(self.entry.bytes());
        w.finish()
    }

    /// Decodes and fully re-verifies a receipt.
    pub fn decode(bytes: &[u8]) -> Result<Self, ConsentError> {
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != RECEIPT_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "consent receipt", version }.into());
        }
        let device = read_keys(&mut r, "device keys")?;
        let owner = read_keys(&mut r, "owner keys")?;
        let grant_key = SymmetricKey::from_bytes(r.array("grant key")?);
        let entry = r.length_prefixed(MAX_ENTRY_LEN, "entry")?;
        r.finish()?;
        let entry_copy = SealedEntry::decode(entry)?;
        let content_key = entry_copy.grant_content_key(&grant_key, device.id())?;
        let provider = match entry_copy.open(&content_key, device.id())?.kind {
            EventKind::Granted(grant) => grant.provider.id(),
            _ => return Err(ConsentError::NotAGrant),
        };
        Self::from_entry(device, owner, grant_key, entry, provider)
    }

    fn ack_message(&self, provider: PartyId, time: u64) -> [u8; 32] {
        digest(b"meterkast/v1/consent-ack", &[&self.entry_hash(), &provider.0, &time.to_be_bytes()])
    }

    fn ack_keys(&self) -> (Address, SymmetricKey) {
        let address_key: zeroize::Zeroizing<[u8; 32]> =
            expand_key(ACK_SALT, self.grant_key.expose_secret(), &[b"ack-address"]);
        let key: zeroize::Zeroizing<[u8; 32]> =
            expand_key(ACK_SALT, self.grant_key.expose_secret(), &[b"ack-key"]);
        (
            digest(b"meterkast/v1/consent-ack-address", &[address_key.as_slice()]),
            SymmetricKey::from_bytes(*key),
        )
    }

    /// Where the provider's acknowledgement is published.
    pub fn acknowledgement_address(&self) -> Address {
        self.ack_keys().0
    }

    /// The provider acknowledges the receipt (signs it) and publishes the acknowledgement.
    pub fn acknowledge(
        &self,
        provider: &PartyKeys,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(Acknowledgement, Publish), ConsentError> {
        if provider.id() != self.grant.provider.id() {
            return Err(ConsentError::NotForThisProvider);
        }
        let signature = provider.sign(
            SignatureContext::ConsentAcknowledgement,
            &self.ack_message(provider.id(), now),
            rng,
        )?;
        let (address, key) = self.ack_keys();
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let plain = [&now.to_be_bytes()[..], &signature].concat();
        let sealed = crypto::seal(&key, &nonce, &self.entry_hash(), &plain)?;
        let ack = Acknowledgement { time: now, signature };
        Ok((
            ack,
            Publish {
                address,
                payload: [&nonce[..], &sealed].concat(),
                kind: PublishKind::Acknowledgement,
            },
        ))
    }

    /// The household reads an acknowledgement found at [`ConsentReceipt::acknowledgement_address`].
    pub fn read_acknowledgement(&self, payload: &[u8]) -> Result<Acknowledgement, ConsentError> {
        let (_, key) = self.ack_keys();
        let (nonce, sealed) =
            payload.split_at_checked(AEAD_NONCE_LEN).ok_or(ConsentError::Undecryptable)?;
        let nonce: [u8; AEAD_NONCE_LEN] =
            nonce.try_into().map_err(|_| ConsentError::Undecryptable)?;
        let plain = crypto::open(&key, &nonce, &self.entry_hash(), sealed)
            .map_err(|_| ConsentError::Undecryptable)?;
        let (time, signature) = plain.split_at_checked(8).ok_or(ConsentError::Undecryptable)?;
        let time = u64::from_be_bytes(time.try_into().map_err(|_| ConsentError::Undecryptable)?);
        let ack = Acknowledgement { time, signature: signature.to_vec() };
        self.verify_acknowledgement(&ack)?;
        Ok(ack)
    }

    /// Checks the provider's signature on an acknowledgement of this receipt.
    pub fn verify_acknowledgement(&self, ack: &Acknowledgement) -> Result<(), ConsentError> {
        self.grant
            .provider
            .verify(
                SignatureContext::ConsentAcknowledgement,
                &self.ack_message(self.grant.provider.id(), ack.time),
                &ack.signature,
            )
            .map_err(|_| ConsentError::BadAcknowledgement)
    }
}

fn read_keys(r: &mut Reader<'_>, field: &'static str) -> Result<PublicKeys, DecodeError> {
    PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, field)?)
        .map_err(|_| DecodeError::InvalidValue { field })
}

/// A provider's signed acknowledgement of a consent receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// When the provider acknowledged (provider clock).
    pub time: u64,
    /// The provider's signature.
    pub signature: Vec<u8>,
}

/// A device's signed statement of what it published for a grant in one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The device.
    pub device: PartyId,
    /// The grant.
    pub grant: GrantId,
    /// The tier.
    pub tier: Tier,
    /// First delivery number covered (the device numbers the data messages of each tier).
    pub first: u64,
    /// One past the last delivery number covered.
    pub end: u64,
    /// Messages delivered in the range.
    pub count: u64,
    /// SHA3-256 over the range's message digests, in order.
    pub digest: [u8; 32],
    /// When the device issued it.
    pub issued_at: u64,
}

impl DeliveryReceipt {
    fn body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(DELIVERY_MAGIC)
            .u8(VERSION)
            .bytes(&self.device.0)
            .bytes(&self.grant.0)
            .u8(self.tier.code())
            .u64be(self.first)
            .u64be(self.end)
            .u64be(self.count)
            .bytes(&self.digest)
            .u64be(self.issued_at);
        w.finish()
    }

    /// Signs, seals for the household and addresses the `n`-th receipt.
    pub(crate) fn seal(
        &self,
        device: &PartyKeys,
        keys: &LogKeys,
        n: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Publish, ConsentError> {
        let mut plain = self.body();
        plain.extend_from_slice(&device.sign(SignatureContext::DeliveryReceipt, &plain, rng)?);
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let aad = [&self.device.0[..], &n.to_be_bytes()].concat();
        let sealed = crypto::seal(keys.receipt_key(), &nonce, &aad, &plain)?;
        Ok(Publish {
            address: keys.receipt_address(n),
            payload: [&nonce[..], &sealed].concat(),
            kind: PublishKind::DeliveryReceipt,
        })
    }

    /// The wallet opens the `n`-th receipt and checks the device's signature.
    pub fn open(
        keys: &LogKeys,
        device: &PublicKeys,
        n: u64,
        payload: &[u8],
    ) -> Result<Self, ConsentError> {
        let (nonce, sealed) =
            payload.split_at_checked(AEAD_NONCE_LEN).ok_or(ConsentError::Undecryptable)?;
        let nonce: [u8; AEAD_NONCE_LEN] =
            nonce.try_into().map_err(|_| ConsentError::Undecryptable)?;
        let aad = [&device.id().0[..], &n.to_be_bytes()].concat();
        let plain = crypto::open(keys.receipt_key(), &nonce, &aad, sealed)
            .map_err(|_| ConsentError::Undecryptable)?;
        let at = plain
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated { field: "signature" })?;
        let (body, signature) = plain.split_at(at);
        device
            .verify(SignatureContext::DeliveryReceipt, body, signature)
            .map_err(|_| ConsentError::BadDeviceSignature)?;
        let mut r = Reader::new(body);
        if r.take(4, "magic")? != DELIVERY_MAGIC || r.u8("version")? != VERSION {
            return Err(DecodeError::InvalidValue { field: "delivery receipt header" }.into());
        }
        let receipt = Self {
            device: PartyId(r.array("device")?),
            grant: GrantId(r.array("grant")?),
            tier: Tier::from_code(r.u8("tier")?)
                .ok_or(DecodeError::InvalidValue { field: "tier" })?,
            first: r.u64be("first")?,
            end: r.u64be("end")?,
            count: r.u64be("count")?,
            digest: r.array("digest")?,
            issued_at: r.u64be("issued at")?,
        };
        r.finish()?;
        if receipt.device != device.id() {
            return Err(ConsentError::OtherDevice);
        }
        Ok(receipt)
    }
}
