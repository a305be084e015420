//! The provider dashboard: publish the provider card, build access requests (link, same-origin
//! link, QR code), and watch grants and the granted data live.
//!
//! ```text
//!  view (panels) ──► request (form → signed AccessRequest, link, QR) ──► api::tangle publish
//!        ▲
//!  feed (node follows, 1 s tick) ──► watch (ProviderConsent + ProviderFollower per device)
//!        └──► received (readings by position: live figures, energy/gas per hour/day, CSV)
//! ```
//!
//! Everything cryptographic is `protocol`'s: the card and request signatures, notice
//! verification, keyload decapsulation, stream decryption and checkpoint verification. The
//! provider's keys stay in this tab; only signed public data and acknowledgements are sent.

mod charts;
pub mod feed;
pub mod received;
pub mod request;
pub mod view;
pub mod watch;

pub use view::Dashboard;
