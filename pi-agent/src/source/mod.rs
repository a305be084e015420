//! Where telegram bytes come from: a serial port, a capture file, or a simulated household.
//!
//! Every source yields raw bytes exactly as a P1 port would deliver them; the agent frames and
//! parses them with `protocol::p1`, so a replayed capture and the simulator exercise the very
//! code path a real meter does. Tests inject their own [`Source`].

mod replay;
mod serial;
mod simulator;

use std::future::Future;

pub use replay::{ReplaySource, Speed};
pub use serial::{BaudRate, SerialConfig, SerialSource};
pub use simulator::{Household, SimulatorSource};

/// Why a source stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A stream of P1 bytes.
pub trait Source: Send {
    /// The next bytes, waiting as a meter would. `Ok(None)`: the source has ended (a capture
    /// was fully replayed); a serial port never ends, it reopens.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;

    /// Telegrams whose meter time is at or before `unix_secs` were already published before a
    /// restart. Sources that can (a capture) skip them without waiting; others ignore the hint
    /// (the agent drops them anyway).
    fn resume_after(&mut self, unix_secs: u64) {
        let _ = unix_secs;
    }

    /// For logs and `status`.
    fn describe(&self) -> String;
}

/// Appends `!CRC\r\n` to a telegram body ending in `!` (CRC-16/ARC over `/`..`!`).
pub fn seal_telegram(body: &str) -> Vec<u8> {
    let crc = protocol::p1::crc::crc16_arc(body.as_bytes());
    let mut out = body.as_bytes().to_vec();
    out.extend_from_slice(format!("{crc:04X}\r\n").as_bytes());
    out
}
