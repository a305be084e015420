//! Device → provider notices (grant delivered, amended, revoked, expired, device removed) and
//! the provider's side that verifies them.
//!
//! ```text
//! notice  = "MKPN" ‖ u8 1 ‖ u8 kind ‖ device PublicKeys ‖ owner PublicKeys ‖ grant id(16)
//!           ‖ grant key(32) ‖ u64be time ‖ tiers ‖ lp owner-signed entry (empty for expiry)
//!           ‖ device signature ("meterkast/v1/provider-notice")
//! sealed to the provider (ML-KEM-768 + XChaCha20-Poly1305, purpose "meterkast/v1/provider-notice")
//! address = SHA3-256("meterkast/v1/provider-notice-address" ‖ provider PartyId)
//! ```
//!
//! A provider believes a revocation, amendment or removal only if the entry inside is signed by
//! the same owner as its grant and is about that grant; an expiry only if it is signed by the
//! same device and the grant's end has passed. A notice is a courtesy: enforcement is the
//! rotation, which happens whether or not the provider reads it.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::event::{EventKind, GrantId, write_tiers};
use super::log::SealedEntry;
use super::receipt::{ConsentReceipt, MAX_ENTRY_LEN};
use super::sealed::{open_sealed, seal_to};
use super::{ConsentError, Publish, PublishKind};
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::channel::{Address, Tier};
use crate::crypto::{
    PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, SIGNATURE_LEN, SignatureContext, SymmetricKey,
    digest,
};

const NOTICE_MAGIC: &[u8; 4] = b"MKPN";
const VERSION: u8 = 1;
const NOTICE_PURPOSE: &[u8] = b"meterkast/v1/provider-notice";

/// Where notices for `provider` are published.
pub fn notice_address(provider: PartyId) -> Address {
    digest(b"meterkast/v1/provider-notice-address", &[&provider.0])
}

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The grant is live; keys for its tiers were sent.
    Granted,
    /// The grant's tiers or end changed.
    Amended,
    /// The owner revoked the grant; keys were rotated.
    Revoked,
    /// The grant reached its end; keys were rotated by the device.
    Expired,
    /// The device left its owner (or was reset); every grant ended.
    DeviceRemoved,
}

impl NoticeKind {
    fn code(self) -> u8 {
        match self {
            Self::Granted => 1,
            Self::Amended => 2,
            Self::Revoked => 3,
            Self::Expired => 4,
            Self::DeviceRemoved => 5,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        [Self::Granted, Self::Amended, Self::Revoked, Self::Expired, Self::DeviceRemoved]
            .into_iter()
            .find(|k| k.code() == code)
    }
}

/// The fields of a notice, before signing.
pub(crate) struct Notice<'a> {
    pub(crate) kind: NoticeKind,
    pub(crate) owner: &'a PublicKeys,
    pub(crate) grant: GrantId,
    pub(crate) grant_key: &'a SymmetricKey,
    pub(crate) time: u64,
    pub(crate) tiers: &'a [Tier],
    pub(crate) entry: &'a [u8],
}

impl Notice<'_> {
    /// Signs with the device key and seals to `provider`.
    pub(crate) fn seal(
        &self,
        device: &PartyKeys,
        provider: &PublicKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Publish, ConsentError> {
        let mut w = Writer::new();
        w.bytes(NOTICE_MAGIC)
            .u8(VERSION)
            .u8(self.kind.code())
            .bytes(&device.public().encode())
            .bytes(&self.owner.encode())
            .bytes(&self.grant.0)
            .bytes(self.grant_key.expose_secret())
            .u64be(self.time);
        write_tiers(&mut w, self.tiers);
        w.length_prefixed(self.entry);
        let mut plain = w.finish();
        plain.extend_from_slice(&device.sign(SignatureContext::ProviderNotice, &plain, rng)?);
        let payload = seal_to(provider, NOTICE_PURPOSE, &[], &plain, rng)?;
        Ok(Publish {
            address: notice_address(provider.id()),
            payload,
            kind: PublishKind::ProviderNotice,
        })
    }
}

/// Tiers in a notice: `u8 n ‖ n × tier code`, strictly increasing, possibly empty (nothing
/// remains after an ending).
fn read_tiers_or_none(r: &mut Reader<'_>) -> Result<Vec<Tier>, DecodeError> {
    let count = r.u8("tier count")?;
    let mut tiers: Vec<Tier> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let tier =
            Tier::from_code(r.u8("tier")?).ok_or(DecodeError::InvalidValue { field: "tier" })?;
        if tiers.last().is_some_and(|last| *last >= tier) {
            return Err(DecodeError::InvalidValue { field: "tiers (order)" });
        }
        tiers.push(tier);
    }
    Ok(tiers)
}

/// What a provider learned from a verified notice.
#[derive(Debug, Clone)]
pub enum NoticeOutcome {
    /// A new grant: the receipt to keep (and acknowledge).
    Granted(Box<ConsentReceipt>),
    /// The grant now covers these tiers until `end`.
    Amended {
        /// Which grant.
        grant: GrantId,
        /// Tiers from now on.
        tiers: Vec<Tier>,
        /// New end.
        end: u64,
    },
    /// Revoked by the owner.
    Revoked {
        /// Which grant.
        grant: GrantId,
        /// The owner's reason.
        reason: String,
    },
    /// Expired at its end; the device rotated.
    Expired {
        /// Which grant.
        grant: GrantId,
    },
    /// The device was removed, handed over or reset (the device's signed word: the owner's
    /// removal entry is household-only).
    DeviceRemoved {
        /// Which grant ended.
        grant: GrantId,
    },
}

/// A provider's grants and the verification of the notices about them.
#[derive(Debug, Default)]
pub struct ProviderConsent {
    receipts: BTreeMap<GrantId, ConsentReceipt>,
    /// Current end of each grant (amendments move it).
    ends: BTreeMap<GrantId, u64>,
    ended: BTreeMap<GrantId, NoticeKind>,
}

impl ProviderConsent {
    /// No grants yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Receipts of every grant received (live or ended).
    pub fn receipts(&self) -> impl Iterator<Item = &ConsentReceipt> {
        self.receipts.values()
    }

    /// The current end of a grant (after amendments).
    pub fn end_of(&self, grant: GrantId) -> Option<u64> {
        self.ends.get(&grant).copied()
    }

    /// Whether a grant has ended, and how.
    pub fn ended(&self, grant: GrantId) -> Option<NoticeKind> {
        self.ended.get(&grant).copied()
    }

    /// Opens and verifies a payload found at this provider's notice address.
    pub fn receive(
        &mut self,
        me: &PartyKeys,
        payload: &[u8],
    ) -> Result<NoticeOutcome, ConsentError> {
        let (plain, _) = open_sealed(me, NOTICE_PURPOSE, &[], payload)
            .map_err(|_| ConsentError::Undecryptable)?;
        let at = plain
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated { field: "signature" })?;
        let (body, signature) = plain.split_at(at);
        let mut r = Reader::new(body);
        if r.take(4, "magic")? != NOTICE_MAGIC || r.u8("version")? != VERSION {
            return Err(DecodeError::InvalidValue { field: "notice header" }.into());
        }
        let kind = NoticeKind::from_code(r.u8("notice kind")?)
            .ok_or(DecodeError::InvalidValue { field: "notice kind" })?;
        let device = read_keys(&mut r, "device keys")?;
        let owner = read_keys(&mut r, "owner keys")?;
        let grant = GrantId(r.array("grant id")?);
        let grant_key = SymmetricKey::from_bytes(r.array("grant key")?);
        let time = r.u64be("time")?;
        let tiers = read_tiers_or_none(&mut r)?;
        let entry = r.length_prefixed(MAX_ENTRY_LEN, "entry")?;
        r.finish()?;
        device
            .verify(SignatureContext::ProviderNotice, body, signature)
            .map_err(|_| ConsentError::BadDeviceSignature)?;

        if kind == NoticeKind::Granted {
            let receipt = ConsentReceipt::from_entry(device, owner, grant_key, entry, me.id())?;
            if receipt.grant().id != grant || receipt.grant().tiers != tiers {
                return Err(ConsentError::NoticeMismatch);
            }
            self.ends.insert(grant, receipt.grant().end);
            self.receipts.insert(grant, receipt.clone());
            return Ok(NoticeOutcome::Granted(Box::new(receipt)));
        }

        let receipt = self.receipts.get(&grant).ok_or(ConsentError::UnknownGrant)?;
        if receipt.device().id() != device.id()
            || receipt.owner().id() != owner.id()
            || *receipt.grant_key() != grant_key
        {
            return Err(ConsentError::NoticeMismatch);
        }
        let end = self.ends.get(&grant).copied().unwrap_or(receipt.grant().end);
        let event = if entry.is_empty() {
            None
        } else {
            let sealed = SealedEntry::decode(entry)?;
            sealed.verify_signature(device.id(), &owner)?;
            if sealed.index <= receipt.entry().index {
                return Err(ConsentError::NoticeMismatch);
            }
            let content_key = sealed.grant_content_key(&grant_key, device.id())?;
            Some(sealed.open(&content_key, device.id())?)
        };
        let outcome = match (kind, event.map(|e| e.kind)) {
            (NoticeKind::Amended, Some(EventKind::Amended { grant: g, tiers: t, end }))
                if g == grant && t == tiers =>
            {
                NoticeOutcome::Amended { grant, tiers, end }
            }
            (NoticeKind::Revoked, Some(EventKind::Revoked { grant: g, reason })) if g == grant => {
                NoticeOutcome::Revoked { grant, reason }
            }
            (NoticeKind::Expired, None) if time >= end => NoticeOutcome::Expired { grant },
            (NoticeKind::DeviceRemoved, None) => NoticeOutcome::DeviceRemoved { grant },
            _ => return Err(ConsentError::NoticeMismatch),
        };
        if let NoticeOutcome::Amended { end, .. } = &outcome {
            self.ends.insert(grant, *end);
        } else {
            self.ended.insert(grant, kind);
        }
        Ok(outcome)
    }
}

fn read_keys(r: &mut Reader<'_>, field: &'static str) -> Result<PublicKeys, DecodeError> {
    PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, field)?)
        .map_err(|_| DecodeError::InvalidValue { field })
}
