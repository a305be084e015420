//! The provider tool as a library: a provider's state directory and the loop that turns
//! notices and stream messages into verified readings.
//!
//! ```text
//!  notice address ─► ProviderConsent (owner + device signatures) ─► receipt kept, acknowledged
//!                                                                  └─► ProviderFollower per device
//!  inbox + stream positions (subscribed, or polled) ─► ProviderFollower::receive
//!        ─► Verified readings ─► CSV / JSON lines      Revoked / Gap / Forged ─► log
//!  forget GRANT ─► receipt, follower keys and written data deleted; signed deletion statement
//! ```
//!
//! State directory: `identity.key` (0600), `card.bin`, `receipts/<grant>.bin`,
//! `followers/<device>.bin` (encrypted to the provider by `ProviderFollower::save`),
//! `deletions/<grant>.json`. Files are replaced atomically (write, fsync, rename).

pub mod follow;
pub mod store;
pub mod watch;

pub use follow::{FollowOptions, OutputFormat, ReadingRecord, follow};
pub use store::{ProviderStore, StoreError};
