//! Consent events: what the household decided, as the owner signs it.
//!
//! ```text
//! event   = u8 version(1) ‖ device PartyId(32) ‖ u64be time ‖ u8 kind ‖ fields
//! kind 1  DevicePaired  owner PartyId(32) ‖ pairing id(32)
//! kind 2  Granted       grant
//! kind 3  Denied        provider PartyId(32) ‖ request digest(32) ‖ lp reason
//! kind 4  Amended       grant id(16) ‖ tiers ‖ u64be end
//! kind 5  Revoked       grant id(16) ‖ lp reason
//! kind 6  DeviceRemoved u8 reason (1 removed, 2 handed over)
//! grant   = grant id(16) ‖ request digest(32) ‖ provider PublicKeys(3170) ‖ lp name ‖ lp url
//!           ‖ lp contact ‖ pseudonym(16) ‖ tiers ‖ u8 n ‖ n × data item ‖ lp purpose
//!           ‖ u8 category ‖ u64be start ‖ u64be end ‖ u64be delete_by ‖ grant key(32)
//! tiers   = u8 n ‖ n × tier code, strictly increasing
//! ```
//!
//! Every event names its device, so an entry copied into another device's log is refused even
//! before its signature is checked against that device's owner keys.

use rand_core::CryptoRng;

use super::ConsentError;
use super::log::LogKeys;
use crate::channel::Tier;
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::crypto::{PUBLIC_KEYS_LEN, PartyId, PublicKeys, Role, SymmetricKey};
use crate::provider::{
    DataItem, MAX_NAME_LEN, MAX_PURPOSE_LEN, MAX_URL_LEN, ProviderCard, PurposeCategory,
    SignedRequest,
};

const EVENT_VERSION: u8 = 1;
/// Longest reason text, in bytes.
pub const MAX_REASON_LEN: usize = 500;

/// Identifies a grant within a device's log (random, 128 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId(pub [u8; 16]);

/// Why the owner gave up a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// Removed from the wallet.
    Removed,
    /// Handed over to the next occupant.
    HandedOver,
}

/// Everything a grant says (see `consent.md`: identity, what, why, limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Grant id.
    pub id: GrantId,
    /// Digest of the provider-signed request this grant answers.
    pub request_digest: [u8; 32],
    /// The provider's keys (from its verified card).
    pub provider: PublicKeys,
    /// The provider's name, URL and contact, copied from its verified card.
    pub provider_name: String,
    /// See `provider_name`.
    pub provider_url: String,
    /// See `provider_name`.
    pub provider_contact: String,
    /// The household's pseudonym towards this provider.
    pub pseudonym: [u8; 16],
    /// The tiers (resolutions) granted, finest first.
    pub tiers: Vec<Tier>,
    /// The data items granted.
    pub data_items: Vec<DataItem>,
    /// The purpose, in the provider's words.
    pub purpose: String,
    /// The purpose category.
    pub category: PurposeCategory,
    /// Start of access (UTC seconds).
    pub start: u64,
    /// End of access, exclusive (UTC seconds); the device enforces it.
    pub end: u64,
    /// Deletion deadline promised by the provider.
    pub delete_by: u64,
    /// The key that lets the provider read (only) the entries about this grant.
    pub grant_key: SymmetricKey,
}

impl Grant {
    /// The wallet's grant answering a verified request: `tiers` must be non-empty and each at
    /// or coarser than the request's maximum resolution; everything else is copied from the
    /// request and the provider's card; the id and the grant key are fresh.
    pub fn answering(
        request: &SignedRequest,
        card: &ProviderCard,
        tiers: &[Tier],
        log: &LogKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ConsentError> {
        let asked = request.request();
        if card.id() != asked.provider {
            return Err(ConsentError::NotForThisProvider);
        }
        let mut tiers = tiers.to_vec();
        tiers.sort_unstable();
        tiers.dedup();
        let finest = asked.max_resolution.resolution_secs();
        if tiers.is_empty() || tiers.iter().any(|t| t.resolution_secs() < finest) {
            return Err(ConsentError::TiersNotAllowed);
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Ok(Self {
            id: GrantId(id),
            request_digest: request.digest(),
            provider: card.keys().clone(),
            provider_name: card.name().to_owned(),
            provider_url: card.url().to_owned(),
            provider_contact: card.contact().to_owned(),
            pseudonym: log.pseudonym(card.id()),
            tiers,
            data_items: asked.data_items.clone(),
            purpose: asked.purpose.clone(),
            category: asked.category,
            start: asked.start,
            end: asked.end,
            delete_by: asked.delete_by,
            grant_key: SymmetricKey::generate(rng),
        })
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The log's first entry: this owner paired the device.
    DevicePaired {
        /// The owner's (per-device) identity.
        owner: PartyId,
        /// The pairing transcript hash.
        pairing_id: [u8; 32],
    },
    /// Access granted.
    Granted(Box<Grant>),
    /// A request was denied.
    Denied {
        /// The requester.
        provider: PartyId,
        /// The request.
        request_digest: [u8; 32],
        /// Why (optional text).
        reason: String,
    },
    /// A grant's tiers or end changed (narrowing or widening within the request).
    Amended {
        /// Which grant.
        grant: GrantId,
        /// The tiers from now on.
        tiers: Vec<Tier>,
        /// The new end.
        end: u64,
    },
    /// A grant was revoked.
    Revoked {
        /// Which grant.
        grant: GrantId,
        /// Why (optional text).
        reason: String,
    },
    /// The device left this owner: every grant ends.
    DeviceRemoved {
        /// Removed or handed over.
        reason: RemovalReason,
    },
}

impl EventKind {
    /// The grant this event is about, if any (it decides who else may read the entry).
    pub fn grant_id(&self) -> Option<GrantId> {
        match self {
            Self::Granted(grant) => Some(grant.id),
            Self::Amended { grant, .. } | Self::Revoked { grant, .. } => Some(*grant),
            _ => None,
        }
    }

    /// Short machine name (used in exports).
    pub fn name(&self) -> &'static str {
        match self {
            Self::DevicePaired { .. } => "device_paired",
            Self::Granted(_) => "granted",
            Self::Denied { .. } => "denied",
            Self::Amended { .. } => "amended",
            Self::Revoked { .. } => "revoked",
            Self::DeviceRemoved { .. } => "device_removed",
        }
    }
}

/// One event of one device's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    /// The device whose log this is.
    pub device: PartyId,
    /// When the owner made it (wallet clock, UTC seconds).
    pub time: u64,
    /// What happened.
    pub kind: EventKind,
}

pub(crate) fn write_tiers(w: &mut Writer, tiers: &[Tier]) {
    w.u8(u8::try_from(tiers.len()).unwrap_or(u8::MAX));
    for tier in tiers {
        w.u8(tier.code());
    }
}

pub(crate) fn read_tiers(r: &mut Reader<'_>) -> Result<Vec<Tier>, DecodeError> {
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
    if tiers.is_empty() {
        return Err(DecodeError::InvalidValue { field: "tiers (empty)" });
    }
    Ok(tiers)
}

fn read_text(r: &mut Reader<'_>, max: usize, field: &'static str) -> Result<String, DecodeError> {
    let bytes = r.length_prefixed(max, field)?;
    core::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidValue { field })
}

impl ConsentEvent {
    /// The canonical encoding (what is encrypted and, through the ciphertext, signed).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(EVENT_VERSION).bytes(&self.device.0).u64be(self.time);
        match &self.kind {
            EventKind::DevicePaired { owner, pairing_id } => {
                w.u8(1).bytes(&owner.0).bytes(pairing_id);
            }
            EventKind::Granted(grant) => {
                w.u8(2)
                    .bytes(&grant.id.0)
                    .bytes(&grant.request_digest)
                    .bytes(&grant.provider.encode())
                    .length_prefixed(grant.provider_name.as_bytes())
                    .length_prefixed(grant.provider_url.as_bytes())
                    .length_prefixed(grant.provider_contact.as_bytes())
                    .bytes(&grant.pseudonym);
                write_tiers(&mut w, &grant.tiers);
                w.u8(u8::try_from(grant.data_items.len()).unwrap_or(u8::MAX));
                for item in &grant.data_items {
                    w.u8(item.code());
                }
                w.length_prefixed(grant.purpose.as_bytes())
                    .u8(grant.category.code())
                    .u64be(grant.start)
                    .u64be(grant.end)
                    .u64be(grant.delete_by)
                    .bytes(grant.grant_key.expose_secret());
            }
            EventKind::Denied { provider, request_digest, reason } => {
                w.u8(3).bytes(&provider.0).bytes(request_digest).length_prefixed(reason.as_bytes());
            }
            EventKind::Amended { grant, tiers, end } => {
                w.u8(4).bytes(&grant.0);
                write_tiers(&mut w, tiers);
                w.u64be(*end);
            }
            EventKind::Revoked { grant, reason } => {
                w.u8(5).bytes(&grant.0).length_prefixed(reason.as_bytes());
            }
            EventKind::DeviceRemoved { reason } => {
                w.u8(6).u8(match reason {
                    RemovalReason::Removed => 1,
                    RemovalReason::HandedOver => 2,
                });
            }
        }
        w.finish()
    }

    /// Decodes [`ConsentEvent::encode`] output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("event version")?;
        if version != EVENT_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "consent event", version });
        }
        let device = PartyId(r.array("device")?);
        let time = r.u64be("time")?;
        let kind = match r.u8("event kind")? {
            1 => EventKind::DevicePaired {
                owner: PartyId(r.array("owner")?),
                pairing_id: r.array("pairing id")?,
            },
            2 => EventKind::Granted(Box::new(read_grant(&mut r)?)),
            3 => EventKind::Denied {
                provider: PartyId(r.array("provider")?),
                request_digest: r.array("request digest")?,
                reason: read_text(&mut r, MAX_REASON_LEN, "reason")?,
            },
            4 => EventKind::Amended {
                grant: GrantId(r.array("grant id")?),
                tiers: read_tiers(&mut r)?,
                end: r.u64be("end")?,
            },
            5 => EventKind::Revoked {
                grant: GrantId(r.array("grant id")?),
                reason: read_text(&mut r, MAX_REASON_LEN, "reason")?,
            },
            6 => EventKind::DeviceRemoved {
                reason: match r.u8("removal reason")? {
                    1 => RemovalReason::Removed,
                    2 => RemovalReason::HandedOver,
                    _ => return Err(DecodeError::InvalidValue { field: "removal reason" }),
                },
            },
            _ => return Err(DecodeError::InvalidValue { field: "event kind" }),
        };
        r.finish()?;
        Ok(Self { device, time, kind })
    }
}

fn read_grant(r: &mut Reader<'_>) -> Result<Grant, DecodeError> {
    let id = GrantId(r.array("grant id")?);
    let request_digest = r.array("request digest")?;
    let provider = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "provider keys")?)
        .map_err(|_| DecodeError::InvalidValue { field: "provider keys" })?;
    if provider.role() != Role::Provider {
        return Err(DecodeError::InvalidValue { field: "provider keys (role)" });
    }
    let provider_name = read_text(r, MAX_NAME_LEN, "provider name")?;
    let provider_url = read_text(r, MAX_URL_LEN, "provider url")?;
    let provider_contact = read_text(r, MAX_URL_LEN, "provider contact")?;
    let pseudonym = r.array("pseudonym")?;
    let tiers = read_tiers(r)?;
    let count = r.u8("data item count")?;
    let mut data_items = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        data_items.push(
            DataItem::from_code(r.u8("data item")?)
                .ok_or(DecodeError::InvalidValue { field: "data item" })?,
        );
    }
    let purpose = read_text(r, MAX_PURPOSE_LEN, "purpose")?;
    let category = PurposeCategory::from_code(r.u8("category")?)
        .ok_or(DecodeError::InvalidValue { field: "category" })?;
    let start = r.u64be("start")?;
    let end = r.u64be("end")?;
    let delete_by = r.u64be("delete by")?;
    let grant_key = SymmetricKey::from_bytes(r.array("grant key")?);
    if end <= start {
        return Err(DecodeError::InvalidValue { field: "end" });
    }
    Ok(Grant {
        id,
        request_digest,
        provider,
        provider_name,
        provider_url,
        provider_contact,
        pseudonym,
        tiers,
        data_items,
        purpose,
        category,
        start,
        end,
        delete_by,
        grant_key,
    })
}
