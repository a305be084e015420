//! Meterkast's sans-I/O core, shared unchanged by the Pi agent, the gateway and the browser app.
//!
//! ```text
//!   serial bytes ──► p1 (framer → telegram → readings)
//!                          │
//!                          ▼
//!                 channel (streams, epochs, keyloads) ──► tangle (message, id, PoW) ──► bytes out
//!                          ▲
//!   consent log events ──► consent / pairing (state machines: events and time in, actions out)
//!
//!   device: all of the above for one meter reader (Pi or browser tab) as one state machine
//! ```
//!
//! Nothing in this crate opens a port, reads a clock, draws randomness or spawns a task: bytes,
//! timestamps and randomness come in as arguments; parsed values, bytes to send and typed errors
//! go out. That is what lets every test here run natively and on `wasm32-unknown-unknown`.

pub mod channel;
pub mod consent;
pub mod crypto;
pub mod device;
pub mod p1;
pub mod pairing;
pub mod provider;
pub mod recovery;
pub mod tangle;

/// Version of the Meterkast protocol crate, as reported by every program's `info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
