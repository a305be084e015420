//! Key material for every Meterkast party, derived from one 32-byte secret.
//!
//! ```text
//!                         PartySecret (32 bytes, the only thing a party backs up)
//!                              │  HKDF-Extract(salt = "meterkast/v1/party-secret", ikm = secret)
//!                              ▼
//!                             PRK ── HKDF-Expand(info = "meterkast/v1/<role>/<purpose>")
//!        ┌──────────────────────┼───────────────────────┬──────────────────────────┐
//!        ▼                      ▼                       ▼                          ▼
//!   ML-DSA-65 ξ (32 B)    ML-KEM-768 d‖z (64 B)   inbox address (32 B)   per-purpose symmetric keys
//!   SigningKey::from_seed DecapsulationKey::       where keyloads for     (state at rest, …)
//!                         from_seed               this party are posted
//!                              │
//!   PublicKeys = role ‖ ML-DSA verifying key ‖ ML-KEM encapsulation key ‖ inbox address
//!   PartyId    = SHA3-256("meterkast/v1/party-id" ‖ PublicKeys encoding)
//! ```
//!
//! The role is part of every HKDF label, so one secret used as a device and as a provider yields
//! unrelated keys. Secret-bearing types ([`PartySecret`], [`SymmetricKey`], [`PartyKeys`],
//! [`SharedSecret`]) print as `<redacted>` in `Debug` and are zeroized when dropped.
//!
//! Every primitive comes from the crates fixed in the project's decisions (RustCrypto `ml-kem`,
//! `ml-dsa`, `sha3`, `hkdf`, `chacha20poly1305`); this module only wires them together with
//! domain separation. Randomness is always passed in by the caller (`rand_core` 0.10
//! [`CryptoRng`](rand_core::CryptoRng), the version `ml-kem`/`ml-dsa` use).

mod aead;
mod error;
pub mod fips;
mod identity;
mod kdf;
mod kem;
mod secret;
mod sign;

pub use aead::{AEAD_NONCE_LEN, AEAD_TAG_LEN, open, seal};
pub use error::CryptoError;
pub use identity::{PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, Role};
pub use kdf::{digest, expand_key};
pub use kem::{KEM_CIPHERTEXT_LEN, KEM_ENCAPSULATION_KEY_LEN, KemCiphertext, SharedSecret};
pub use secret::{PartySecret, SECRET_LEN, SymmetricKey, SymmetricPurpose};
pub use sign::{SIGNATURE_LEN, SignatureContext, VERIFYING_KEY_LEN};
