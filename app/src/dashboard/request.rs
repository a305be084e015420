//! Building an access request from the dashboard's form, and sharing it: the `meterkast:` link,
//! a link to this app's request view on the same origin, and a QR code of the link.
//!
//! The signed request itself (~3.6 KB with its ML-DSA signature) is published on the node; the
//! link carries only the provider id and the request digest, so it fits a QR code.

use protocol::channel::Tier;
use protocol::crypto::PartyKeys;
use protocol::provider::{
    AccessRequest, DataItem, MAX_GRANT_LIFETIME_SECS, ProviderCard, ProviderError, PurposeCategory,
    SignedRequest,
};
use rand_core::CryptoRng;
use thiserror::Error;

/// What the provider filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestForm {
    /// Why, in plain words.
    pub purpose: String,
    /// Why, as a category.
    pub category: PurposeCategory,
    /// Which quantities.
    pub data_items: Vec<DataItem>,
    /// The finest resolution asked for.
    pub resolution: Tier,
    /// Days of access from now.
    pub duration_days: u64,
    /// Days after the end of access by which the data is deleted.
    pub delete_after_days: u64,
}

/// Why the form cannot become a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestFormError {
    /// No card yet: the request's return address and the household's check need one.
    #[error("publish the provider card first: households verify the request against it")]
    NoCard,
    /// Empty purpose.
    #[error("say in a sentence why you need the data")]
    NoPurpose,
    /// No data item ticked.
    #[error("tick at least one kind of data")]
    NoData,
    /// Zero or too many days.
    #[error("access lasts from 1 to {} days", MAX_GRANT_LIFETIME_SECS / 86_400)]
    Duration,
    /// The protocol refused the request (a limit it checks).
    #[error("the request is not valid: {0}")]
    Protocol(#[from] ProviderError),
}

impl RequestForm {
    /// The request this form describes, made at `now` (UTC seconds), signed by `keys`.
    pub fn sign(
        &self,
        keys: &PartyKeys,
        card: Option<&ProviderCard>,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<SignedRequest, RequestFormError> {
        let card = card.ok_or(RequestFormError::NoCard)?;
        if self.purpose.trim().is_empty() {
            return Err(RequestFormError::NoPurpose);
        }
        if self.data_items.is_empty() {
            return Err(RequestFormError::NoData);
        }
        let lifetime = self.duration_days.saturating_mul(86_400);
        if lifetime == 0 || lifetime > MAX_GRANT_LIFETIME_SECS {
            return Err(RequestFormError::Duration);
        }
        let end = now + lifetime;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let request = AccessRequest {
            provider: keys.id(),
            nonce,
            purpose: self.purpose.trim().to_owned(),
            category: self.category,
            data_items: self.data_items.clone(),
            max_resolution: self.resolution,
            start: now,
            end,
            delete_by: end.saturating_add(self.delete_after_days.saturating_mul(86_400)),
            return_url: card.url().to_owned(),
            created_at: now,
        };
        Ok(request.sign(keys, rng)?)
    }
}

/// The path of this app's request view for `link` (the wallet's `/home/request?link=…`),
/// relative to the origin serving the app.
pub fn open_path(link: &str) -> String {
    format!("/home/request?link={}", percent_encode(link))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A category in words.
pub fn category_words(category: PurposeCategory) -> &'static str {
    match category {
        PurposeCategory::ServiceProvision => "Providing a service the household signed up for",
        PurposeCategory::EnergyInsight => "Energy insight and advice",
        PurposeCategory::Research => "Research",
        PurposeCategory::GridBalancing => "Grid balancing (flexibility)",
    }
}

/// A data item in words.
pub fn data_item_words(item: DataItem) -> &'static str {
    match item {
        DataItem::EnergyImport => "Energy taken from the grid",
        DataItem::EnergyExport => "Energy delivered to the grid",
        DataItem::Power => "Power (import and export)",
        DataItem::PhaseValues => "Per-phase power, voltage and current",
        DataItem::Gas => "Gas",
    }
}
