//! Opening a provider's request link: which bytes found on the node are believed, and what the
//! wallet shows about them.
//!
//! ```text
//!  link text ─► RequestLink::parse ─► card address, request address
//!  payloads at the card address    ─► ProviderCard::decode_for(link provider) ─► newest valid card
//!  payloads at the request address ─► SignedRequest::verify(link, bytes, card, now)
//!                                       ├─ one verifies ─► Verdict::Verified(RequestDetails)
//!                                       └─ none         ─► Verdict::Invalid(reason)
//! ```
//!
//! Nodes are untrusted: anyone can publish at any address, so every payload found is checked
//! and the genuine one wins whatever else lies beside it. When nothing verifies, the reason
//! shown is the most specific one: a payload that matches the link's digest but fails a later
//! check (signature, origin, expiry) says more than garbage that merely has another digest.

use protocol::channel::Tier;
use protocol::provider::{
    DataItem, ProviderCard, ProviderError, PurposeCategory, RequestLink, SignedRequest,
    card_address, request_address,
};

use super::time::format_utc;

/// Why a request is not shown as valid, in words the household can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// The text is not a `meterkast:request/` link.
    #[error("this is not a Meterkast request link (it starts with meterkast:request/)")]
    NotALink,
    /// No valid card of the link's provider is on the node.
    #[error("the provider's card was not found on the node, so the request cannot be checked")]
    CardMissing,
    /// Something is at the card address, but no valid card of this provider.
    #[error("the provider's card is not valid: {0}")]
    BadCard(ProviderError),
    /// Nothing at the request address.
    #[error("the request was not found on the node (it may not be published yet)")]
    RequestMissing,
    /// The request failed a check.
    #[error("{}", describe(.0))]
    Refused(ProviderError),
}

impl InvalidRequest {
    /// A short machine name of the reason (for tests and `data-reason` in the page).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotALink => "not-a-link",
            Self::CardMissing => "card-missing",
            Self::BadCard(_) => "bad-card",
            Self::RequestMissing => "request-missing",
            Self::Refused(error) => match error {
                ProviderError::TamperedRequest => "tampered",
                ProviderError::CardOfAnotherProvider => "card-of-another-provider",
                ProviderError::SpoofedProvider => "spoofed-provider",
                ProviderError::BadRequestSignature => "bad-signature",
                ProviderError::ReturnAddressOffOrigin => "return-off-origin",
                ProviderError::RequestExpired => "expired",
                _ => "ill-formed",
            },
        }
    }
}

/// The wording of a failed check: the protocol's reason plus what it means for the household.
fn describe(error: &ProviderError) -> String {
    let meaning = match error {
        ProviderError::TamperedRequest => {
            "Someone changed the request after the provider made it. Do not grant it."
        }
        ProviderError::CardOfAnotherProvider | ProviderError::SpoofedProvider => {
            "The request pretends to come from a provider that did not make it. Do not grant it."
        }
        ProviderError::BadRequestSignature => {
            "The provider did not sign this request. Do not grant it."
        }
        ProviderError::ReturnAddressOffOrigin => {
            "It would send you to a web site that is not the provider's. Do not grant it."
        }
        ProviderError::RequestExpired => "Ask the provider for a new request if you still want to.",
        _ => "The request breaks the rules every request must follow. Do not grant it.",
    };
    format!("{error}. {meaning}")
}

/// What a verified request asks, ready to show (every text comes from signed bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDetails {
    /// The request as verified (kept to build the grant).
    pub request: SignedRequest,
    /// The provider's card it was verified against.
    pub card: ProviderCard,
}

impl RequestDetails {
    /// The provider's name from its signed card.
    pub fn provider_name(&self) -> &str {
        self.card.name()
    }
    /// The provider's web site.
    pub fn provider_url(&self) -> &str {
        self.card.url()
    }
    /// Where to ask questions or withdraw.
    pub fn provider_contact(&self) -> &str {
        self.card.contact()
    }
    /// The purpose in the provider's words.
    pub fn purpose(&self) -> &str {
        &self.request.request().purpose
    }
    /// The purpose category in words.
    pub fn category(&self) -> &'static str {
        category_label(self.request.request().category)
    }
    /// The data asked for, in words.
    pub fn data(&self) -> Vec<&'static str> {
        self.request.request().data_items.iter().map(|item| data_label(*item)).collect()
    }
    /// The finest resolution asked for, in words.
    pub fn resolution(&self) -> String {
        tier_label(self.request.request().max_resolution)
    }
    /// The period of access, in UTC.
    pub fn period(&self) -> String {
        let asked = self.request.request();
        format!("from {} until {}", format_utc(asked.start), format_utc(asked.end))
    }
    /// The date by which the provider promises to delete the data.
    pub fn delete_by(&self) -> String {
        format_utc(self.request.request().delete_by)
    }
    /// The resolutions the household may grant: the one asked for and every coarser one.
    pub fn grantable_tiers(&self) -> Vec<Tier> {
        let finest = self.request.request().max_resolution.resolution_secs();
        Tier::ALL.into_iter().filter(|tier| tier.resolution_secs() >= finest).collect()
    }
}

/// The wallet's judgement of a request link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the provider whose card is shown, unaltered, within its limits, not expired.
    Verified(Box<RequestDetails>),
    /// Not to be granted, with the reason.
    Invalid(InvalidRequest),
}

/// Where to look for a link's card and request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddresses {
    /// The parsed link.
    pub link: RequestLink,
    /// Where the provider's card is published.
    pub card: [u8; 32],
    /// Where the signed request is published.
    pub request: [u8; 32],
}

/// Parses the text of a link (as pasted, or from the `link` query parameter).
pub fn parse_link(text: &str) -> Result<LinkAddresses, InvalidRequest> {
    let link = RequestLink::parse(text).map_err(|_| InvalidRequest::NotALink)?;
    Ok(LinkAddresses {
        link,
        card: card_address(link.provider),
        request: request_address(&link.digest),
    })
}

/// The newest valid card of the link's provider among the payloads at its card address.
pub fn pick_card(link: &RequestLink, payloads: &[Vec<u8>]) -> Result<ProviderCard, InvalidRequest> {
    let mut first_error = None;
    let mut newest: Option<ProviderCard> = None;
    for payload in payloads {
        match ProviderCard::decode_for(link.provider, payload) {
            Ok(card) => {
                if newest.as_ref().is_none_or(|n| card.issued_at() >= n.issued_at()) {
                    newest = Some(card);
                }
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match (newest, first_error) {
        (Some(card), _) => Ok(card),
        (None, Some(error)) => Err(InvalidRequest::BadCard(error)),
        (None, None) => Err(InvalidRequest::CardMissing),
    }
}

/// Judges a link given what the node holds at its card and request addresses, at `now`
/// (UTC seconds).
pub fn judge(
    link_text: &str,
    card_payloads: &[Vec<u8>],
    request_payloads: &[Vec<u8>],
    now: u64,
) -> Verdict {
    match judge_inner(link_text, card_payloads, request_payloads, now) {
        Ok(details) => Verdict::Verified(Box::new(details)),
        Err(reason) => Verdict::Invalid(reason),
    }
}

fn judge_inner(
    link_text: &str,
    card_payloads: &[Vec<u8>],
    request_payloads: &[Vec<u8>],
    now: u64,
) -> Result<RequestDetails, InvalidRequest> {
    let addresses = parse_link(link_text)?;
    let card = pick_card(&addresses.link, card_payloads)?;
    let mut most_specific: Option<ProviderError> = None;
    for payload in request_payloads {
        match SignedRequest::verify(&addresses.link, payload, &card, now) {
            Ok(request) => return Ok(RequestDetails { request, card }),
            // Another digest says least; any later check's failure replaces it.
            Err(ProviderError::TamperedRequest) => {
                most_specific.get_or_insert(ProviderError::TamperedRequest);
            }
            Err(error) => {
                if most_specific.as_ref().is_none_or(|e| *e == ProviderError::TamperedRequest) {
                    most_specific = Some(error);
                }
            }
        }
    }
    Err(most_specific.map_or(InvalidRequest::RequestMissing, InvalidRequest::Refused))
}

/// A purpose category in words.
pub fn category_label(category: PurposeCategory) -> &'static str {
    match category {
        PurposeCategory::ServiceProvision => "Providing a service you signed up for",
        PurposeCategory::EnergyInsight => "Energy insight and advice for your home",
        PurposeCategory::Research => "Research",
        PurposeCategory::GridBalancing => "Balancing the electricity grid",
    }
}

/// A data item in words.
pub fn data_label(item: DataItem) -> &'static str {
    match item {
        DataItem::EnergyImport => "Electricity used (meter totals per tariff)",
        DataItem::EnergyExport => "Electricity returned (meter totals per tariff)",
        DataItem::Power => "Power right now (import and export)",
        DataItem::PhaseValues => "Per-phase power, voltage and current",
        DataItem::Gas => "Gas meter reading",
    }
}

/// A tier (resolution) in words.
pub fn tier_label(tier: Tier) -> String {
    match tier.resolution_secs() {
        1 => "every second".to_owned(),
        secs if secs.is_multiple_of(86_400) => plural(secs / 86_400, "day"),
        secs if secs.is_multiple_of(3_600) => plural(secs / 3_600, "hour"),
        secs if secs.is_multiple_of(60) => plural(secs / 60, "minute"),
        secs => plural(secs, "second"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 { format!("every {unit}") } else { format!("every {n} {unit}s") }
}
