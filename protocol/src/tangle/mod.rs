//! Tangle messages: format, deterministic encoding, id (SHA3-256) and proof of work.
//!
//! ```text
//!  MessageDraft ──solve(difficulty)──► Message ──encode()──► bytes ──► node
//!  (parents, address,                  (+ nonce)                         │
//!   timestamp, payload)                                                  ▼
//!                              Message::decode(bytes) ─► check_work(difficulty) ─► id()
//! ```
//!
//! A message approves 1–8 earlier messages (its parents, forming the DAG), is filed under a
//! 32-byte address, carries an opaque payload (already end-to-end encrypted by the caller), an
//! untrusted timestamp and a nonce. The byte layout is specified, with frozen test vectors, in
//! `protocol/spec/tangle-message.md`; there is exactly one valid encoding of every message, so the
//! id of a message is a property of the message, not of who encoded it.
//!
//! Proof of work is anti-spam, not consensus: each node announces a difficulty (0 allowed) and
//! refuses messages below it. See [`pow`] for why the work hashes a 40-byte digest instead of the
//! whole message.

mod message;
pub mod pow;

pub use message::{
    Address, DecodeError, DraftError, MAX_ENCODED_LEN, MAX_PARENTS, MAX_PAYLOAD_LEN,
    MIN_ENCODED_LEN, Message, MessageDraft, MessageId, VERSION,
};
pub use pow::{Difficulty, DifficultyError, InsufficientWork, MAX_DIFFICULTY};
