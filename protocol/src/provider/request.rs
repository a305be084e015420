//! Access requests: what a provider asks for, signed by it, shared as a short link or QR code.
//!
//! ```text
//! request = "MKAR" ‖ u8 version(1) ‖ provider PartyId(32) ‖ nonce(16) ‖ lp purpose ‖ u8 category
//!           ‖ u8 n ‖ n × u8 data item ‖ u8 max resolution (tier code) ‖ u64be start ‖ u64be end
//!           ‖ u64be delete_by ‖ lp return URL ‖ u64be created_at
//!           ‖ signature (3309, ML-DSA-65, context "meterkast/v1/access-request")
//! digest  = SHA3-256("meterkast/v1/access-request" ‖ request)
//! address = SHA3-256("meterkast/v1/access-request-address" ‖ digest)   (where it is published)
//! link    = "meterkast:request/" ‖ base32(provider PartyId ‖ digest), lower case, no padding
//! ```
//!
//! A signed request is ≈ 3.6 KB (the ML-DSA-65 signature alone is 3,309 bytes), more than a QR
//! code holds, so the link (121 characters, fits a version-7 QR code) carries only the provider's
//! identity and the request's digest; the request itself is published at its address. The
//! wallet fetches the request and the provider's card and checks, in this order, that the bytes
//! hash to the link's digest (tampered in transit), that the card belongs to the link's provider
//! and the request names it (spoofed provider), the signature, the return address's origin and
//! the limits. Each failure is its own [`ProviderError`] variant, shown to the user as the reason.

use data_encoding::BASE32_NOPAD;
use rand_core::CryptoRng;

use crate::channel::Tier;
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::crypto::{PartyId, PartyKeys, SIGNATURE_LEN, SignatureContext, digest};

use super::ProviderError;
use super::card::{MAX_URL_LEN, ProviderCard, read_text};
use super::origin::WebOrigin;

const REQUEST_MAGIC: &[u8; 4] = b"MKAR";
const REQUEST_VERSION: u8 = 1;
/// Longest purpose text, in bytes.
pub const MAX_PURPOSE_LEN: usize = 1_000;
/// Longest lifetime of a grant: 365 days, Australia's CDR cap (`consent.md`).
pub const MAX_GRANT_LIFETIME_SECS: u64 = 365 * 86_400;
/// Prefix of a request link.
pub const REQUEST_LINK_PREFIX: &str = "meterkast:request/";

/// Why the data is wanted, as a category (W3C Data Privacy Vocabulary where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PurposeCategory {
    /// Providing a service the household signed up for.
    ServiceProvision,
    /// Energy insight and advice personalised to the household.
    EnergyInsight,
    /// Research.
    Research,
    /// Balancing the electricity grid (flexibility services).
    GridBalancing,
}

impl PurposeCategory {
    /// All categories.
    pub const ALL: [Self; 4] =
        [Self::ServiceProvision, Self::EnergyInsight, Self::Research, Self::GridBalancing];

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::ServiceProvision => 1,
            Self::EnergyInsight => 2,
            Self::Research => 3,
            Self::GridBalancing => 4,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A vocabulary term for consent records: DPV where DPV has the concept, else Meterkast's.
    pub fn vocabulary_term(self) -> &'static str {
        match self {
            Self::ServiceProvision => "dpv:ServiceProvision",
            Self::EnergyInsight => "dpv:ServicePersonalisation",
            Self::Research => "dpv:ResearchAndDevelopment",
            Self::GridBalancing => "meterkast:GridBalancing",
        }
    }
}

/// A kind of meter data (OBIS quantities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataItem {
    /// Imported electricity, per tariff (OBIS 1-0:1.8.x).
    EnergyImport,
    /// Exported electricity, per tariff (OBIS 1-0:2.8.x).
    EnergyExport,
    /// Instantaneous power, import and export (OBIS 1-0:1.7.0, 1-0:2.7.0).
    Power,
    /// Per-phase power, voltage and current (OBIS 1-0:21/41/61.7.0, 32/52/72.7.0, 31/51/71.7.0).
    PhaseValues,
    /// Gas meter reading (OBIS 0-n:24.2.1).
    Gas,
}

impl DataItem {
    /// All data items.
    pub const ALL: [Self; 5] =
        [Self::EnergyImport, Self::EnergyExport, Self::Power, Self::PhaseValues, Self::Gas];

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::EnergyImport => 1,
            Self::EnergyExport => 2,
            Self::Power => 3,
            Self::PhaseValues => 4,
            Self::Gas => 5,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The OBIS codes, for consent records.
    pub fn obis(self) -> &'static str {
        match self {
            Self::EnergyImport => "1-0:1.8.x",
            Self::EnergyExport => "1-0:2.8.x",
            Self::Power => "1-0:1.7.0,1-0:2.7.0",
            Self::PhaseValues => "1-0:21.7.0..1-0:72.7.0",
            Self::Gas => "0-n:24.2.1",
        }
    }
}

/// What a provider asks for. Build one, then [`AccessRequest::sign`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// The requesting provider.
    pub provider: PartyId,
    /// Makes two otherwise identical requests distinct (and their digests unlinkable).
    pub nonce: [u8; 16],
    /// Why, in the provider's words.
    pub purpose: String,
    /// Why, as a category.
    pub category: PurposeCategory,
    /// Which quantities.
    pub data_items: Vec<DataItem>,
    /// The finest resolution asked for; the wallet may grant this tier or coarser ones.
    pub max_resolution: Tier,
    /// First second of access (UTC).
    pub start: u64,
    /// Access ends here (UTC, exclusive); at most [`MAX_GRANT_LIFETIME_SECS`] after `start`.
    pub end: u64,
    /// The provider promises to delete the data by then (≥ `end`).
    pub delete_by: u64,
    /// Where the wallet sends the user back; must be on the card's origin.
    pub return_url: String,
    /// When the provider made the request.
    pub created_at: u64,
}

impl AccessRequest {
    fn encode_unsigned(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(REQUEST_MAGIC).u8(REQUEST_VERSION).bytes(&self.provider.0).bytes(&self.nonce);
        w.length_prefixed(self.purpose.as_bytes()).u8(self.category.code());
        w.u8(u8::try_from(self.data_items.len()).unwrap_or(u8::MAX));
        for item in &self.data_items {
            w.u8(item.code());
        }
        w.u8(self.max_resolution.code())
            .u64be(self.start)
            .u64be(self.end)
            .u64be(self.delete_by)
            .length_prefixed(self.return_url.as_bytes())
            .u64be(self.created_at);
        w.finish()
    }

    /// Checks the limits every request must respect (also checked again on decode).
    fn check_limits(&self) -> Result<(), ProviderError> {
        if self.purpose.trim().is_empty() || self.purpose.len() > MAX_PURPOSE_LEN {
            return Err(ProviderError::InvalidText { field: "purpose" });
        }
        let mut items = self.data_items.clone();
        items.sort_unstable();
        items.dedup();
        if items.is_empty() || items.len() != self.data_items.len() {
            return Err(ProviderError::InvalidDataItems);
        }
        if self.end <= self.start {
            return Err(ProviderError::EndBeforeStart);
        }
        if self.end - self.start > MAX_GRANT_LIFETIME_SECS {
            return Err(ProviderError::LifetimeTooLong);
        }
        if self.delete_by < self.end {
            return Err(ProviderError::DeleteByBeforeEnd);
        }
        WebOrigin::of(&self.return_url)?;
        Ok(())
    }

    /// Signs the request with the provider's keys (which must match `provider`).
    pub fn sign(
        &self,
        provider: &PartyKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<SignedRequest, ProviderError> {
        if provider.id() != self.provider {
            return Err(ProviderError::SpoofedProvider);
        }
        self.check_limits()?;
        let mut encoded = self.encode_unsigned();
        encoded.extend_from_slice(&provider.sign(
            SignatureContext::AccessRequest,
            &encoded,
            rng,
        )?);
        let digest = request_digest(&encoded);
        Ok(SignedRequest { request: self.clone(), encoded, digest })
    }

    /// Parses a request (no signature check: that needs the card, see [`SignedRequest::verify`]).
    fn decode(bytes: &[u8]) -> Result<(Self, &[u8], &[u8]), ProviderError> {
        let Some(signed_len) = bytes.len().checked_sub(SIGNATURE_LEN) else {
            return Err(DecodeError::Truncated { field: "signature" }.into());
        };
        let (signed, signature) = bytes.split_at(signed_len);
        let mut r = Reader::new(signed);
        if r.take(4, "magic")? != REQUEST_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != REQUEST_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "access request", version }.into());
        }
        let provider = PartyId(r.array("provider")?);
        let nonce = r.array("nonce")?;
        let purpose = read_text(&mut r, "purpose", MAX_PURPOSE_LEN)?;
        let category = PurposeCategory::from_code(r.u8("category")?)
            .ok_or(DecodeError::InvalidValue { field: "category" })?;
        let count = r.u8("data item count")?;
        let mut data_items = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            data_items.push(
                DataItem::from_code(r.u8("data item")?)
                    .ok_or(DecodeError::InvalidValue { field: "data item" })?,
            );
        }
        let max_resolution = Tier::from_code(r.u8("max resolution")?)
            .ok_or(DecodeError::InvalidValue { field: "max resolution" })?;
        let start = r.u64be("start")?;
        let end = r.u64be("end")?;
        let delete_by = r.u64be("delete by")?;
        let return_url = read_text(&mut r, "return url", MAX_URL_LEN)?;
        let created_at = r.u64be("created at")?;
        r.finish()?;
        let request = Self {
            provider,
            nonce,
            purpose,
            category,
            data_items,
            max_resolution,
            start,
            end,
            delete_by,
            return_url,
            created_at,
        };
        request.check_limits()?;
        Ok((request, signed, signature))
    }
}

fn request_digest(encoded: &[u8]) -> [u8; 32] {
    digest(b"meterkast/v1/access-request", &[encoded])
}

/// Where the request with `digest` is published.
pub fn request_address(digest: &[u8; 32]) -> [u8; 32] {
    crate::crypto::digest(b"meterkast/v1/access-request-address", &[digest])
}

/// A signed request as the provider publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    request: AccessRequest,
    encoded: Vec<u8>,
    digest: [u8; 32],
}

impl SignedRequest {
    /// The request.
    pub fn request(&self) -> &AccessRequest {
        &self.request
    }
    /// The signed bytes, to publish at [`SignedRequest::address`].
    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }
    /// The request digest (what the link and a grant refer to).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
    /// Where to publish it.
    pub fn address(&self) -> [u8; 32] {
        request_address(&self.digest)
    }
    /// The link (also the QR code's text).
    pub fn link(&self) -> RequestLink {
        RequestLink { provider: self.request.provider, digest: self.digest }
    }

    /// The wallet's check of fetched request bytes against the link it was given and the
    /// provider card found at the link provider's card address.
    pub fn verify(
        link: &RequestLink,
        bytes: &[u8],
        card: &ProviderCard,
        now: u64,
    ) -> Result<Self, ProviderError> {
        if request_digest(bytes) != link.digest {
            return Err(ProviderError::TamperedRequest);
        }
        if card.id() != link.provider {
            return Err(ProviderError::CardOfAnotherProvider);
        }
        let (request, signed, signature) = AccessRequest::decode(bytes)?;
        if request.provider != card.id() {
            return Err(ProviderError::SpoofedProvider);
        }
        card.keys()
            .verify(SignatureContext::AccessRequest, signed, signature)
            .map_err(|_| ProviderError::BadRequestSignature)?;
        if WebOrigin::of(&request.return_url)? != *card.origin() {
            return Err(ProviderError::ReturnAddressOffOrigin);
        }
        if request.end <= now {
            return Err(ProviderError::RequestExpired);
        }
        Ok(Self { request, encoded: bytes.to_vec(), digest: link.digest })
    }
}

/// The text of a request link / QR code: the provider and the request digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLink {
    /// The provider whose card verifies the request.
    pub provider: PartyId,
    /// SHA3 digest of the signed request.
    pub digest: [u8; 32],
}

impl RequestLink {
    /// `meterkast:request/<base32>`.
    pub fn to_uri(&self) -> String {
        let bytes = [self.provider.0, self.digest].concat();
        format!("{REQUEST_LINK_PREFIX}{}", BASE32_NOPAD.encode(&bytes).to_ascii_lowercase())
    }

    /// Parses a link (case-insensitive).
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let body = text
            .trim()
            .get(..REQUEST_LINK_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(REQUEST_LINK_PREFIX))
            .map(|_| &text.trim()[REQUEST_LINK_PREFIX.len()..])
            .ok_or(ProviderError::InvalidLink)?;
        let bytes = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| ProviderError::InvalidLink)?;
        let (provider, digest) = bytes.split_at_checked(32).ok_or(ProviderError::InvalidLink)?;
        Ok(Self {
            provider: PartyId(provider.try_into().map_err(|_| ProviderError::InvalidLink)?),
            digest: digest.try_into().map_err(|_| ProviderError::InvalidLink)?,
        })
    }
}
