//! The Meterkast meter reader as a library: the `pi-agent` binary is a thin CLI over it, and
//! tests and the benchmark drive [`agent::run`] with their own [`source::Source`].
//!
//! ```text
//!  source (serial │ replay │ simulator) ─► protocol::device (P1 → integers, exact tier
//!      aggregates, channel, consent follower) ─► queue (durable outbox) ─► tangle-client ─► nodes
//!  consent log ─► protocol::device ─► keyloads, rotations, notices, receipts
//!  state: identity, pairing, channel membership, progress (crash-safe writes)
//! ```

pub mod agent;
pub mod commands;
pub mod config;
pub mod parse;
pub mod queue;
pub mod source;
pub mod state;

/// The device logic shared with the web app lives in `protocol::device`; these paths stay for
/// the simulator, the tests and the benchmark.
pub use protocol::device::{meter_time, reading, tiers};
