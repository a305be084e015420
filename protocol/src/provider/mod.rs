//! Providers as the household sees them: signed cards and signed access requests.
//!
//! ```text
//! provider keys ─► ProviderCard (name, https origin, contact, PublicKeys, self-signed)
//!                      published at card_address(provider id): anyone can find and verify it
//! AccessRequest (purpose, category, data items, max resolution, start, end, delete-by,
//!                return URL) ─► sign ─► published at request_address(digest)
//!                            └─► RequestLink "meterkast:request/<provider id ‖ digest>" (QR)
//! wallet: link ─► fetch request + card ─► SignedRequest::verify ─► show, then grant or deny
//! ```

mod card;
mod origin;
mod request;

pub use card::{MAX_NAME_LEN, MAX_URL_LEN, ProviderCard, card_address};
pub use origin::WebOrigin;
pub use request::{
    AccessRequest, DataItem, MAX_GRANT_LIFETIME_SECS, MAX_PURPOSE_LEN, PurposeCategory,
    REQUEST_LINK_PREFIX, RequestLink, SignedRequest, request_address,
};

use crate::channel::DecodeError;
use crate::crypto::CryptoError;

/// Why a card or request was refused; each variant is a reason the wallet can show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The bytes are not a valid encoding.
    #[error("malformed: {0}")]
    Decode(#[from] DecodeError),
    /// Keys of another role were used as a provider.
    #[error("not a provider's keys")]
    NotAProvider,
    /// A text field is empty, too long, or contains control characters.
    #[error("invalid {field}")]
    InvalidText {
        /// Which field.
        field: &'static str,
    },
    /// A URL is not an acceptable `https` URL.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// Why.
        reason: &'static str,
    },
    /// The card's signature does not verify under the keys it carries.
    #[error("the provider card's signature does not verify")]
    BadCardSignature,
    /// The card found belongs to another provider than the one expected.
    #[error("the provider card belongs to another provider")]
    CardOfAnotherProvider,
    /// The request names another provider than the card / keys presented.
    #[error("the request claims to come from another provider")]
    SpoofedProvider,
    /// The request's bytes do not match the digest in its link.
    #[error("the request was altered: it does not match its link")]
    TamperedRequest,
    /// The request's signature does not verify under the provider's card.
    #[error("the request is not signed by the provider")]
    BadRequestSignature,
    /// The return address leaves the provider's own web origin.
    #[error("the return address is not on the provider's own web site")]
    ReturnAddressOffOrigin,
    /// No data items, or one listed twice.
    #[error("the request must list distinct data items")]
    InvalidDataItems,
    /// `end` is not after `start`.
    #[error("the request ends before it starts")]
    EndBeforeStart,
    /// Longer than the maximum lifetime.
    #[error("the request asks for longer than {} days", MAX_GRANT_LIFETIME_SECS / 86_400)]
    LifetimeTooLong,
    /// The delete-by date is before the end of access.
    #[error("the delete-by date is before the end of access")]
    DeleteByBeforeEnd,
    /// The requested period is already over.
    #[error("the requested period is already over")]
    RequestExpired,
    /// Not a `meterkast:request/` link.
    #[error("not a Meterkast request link")]
    InvalidLink,
    /// Signing failed (never caused by a peer).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
