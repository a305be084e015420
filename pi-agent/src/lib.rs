//! The Meterkast meter reader as a library: the `pi-agent` binary is a thin CLI over it, and
//! tests and the benchmark drive [`agent::run`] with their own [`source::Source`].
//!
//! ```text
//!  source (serial │ replay │ simulator) ─► reading (P1 → integers) ─► tiers (exact aggregates)
//!      ─► protocol::channel ─► queue (durable outbox) ─► tangle-client ─► nodes
//!  consent log ─► protocol::consent follower ─► keyloads, rotations, notices, receipts
//!  state: identity, pairing, channel membership, progress (crash-safe writes)
//! ```

pub mod agent;
pub mod commands;
pub mod config;
pub mod meter_time;
pub mod parse;
pub mod queue;
pub mod reading;
pub mod source;
pub mod state;
pub mod tiers;
