//! P1 (DSMR) telegrams: framing, CRC, line parsing, typed readings and Smarty decryption.
//!
//! ```text
//!  serial chunks ─► Framer ─► FrameIn ─► Telegram::parse ─► Telegram ─► Readings
//!  (any size,        (bit 7     (untrusted   (CRC verdict,    (objects,    (typed, per
//!   7E1 or 8N1)       masked)    bytes)       header, lines)   borrowed)    country)
//!
//!  Smarty/AT frame ─► CipherFrameIn::split ─► decrypt(key) ─► plaintext telegram ─► (same path)
//! ```
//!
//! Types ending in `In` are as received and untrusted (openmls's convention): a [`FrameIn`] has
//! not had its CRC checked, a [`CipherFrameIn`] has not been authenticated. Parsing turns them
//! into values that carry their verdict ([`CrcCheck`], [`DecryptError`]).
//!
//! # The telegram grammar
//!
//! Every DSMR version (2.2 to 5.0.2, e-MUCS, Smarty plaintext) shares this shape; this is the
//! P1 companion standard 5.0.2 §6.2–6.4 in ABNF, widened by what deployed meters do (the
//! comments say where):
//!
//! ```text
//! telegram     = "/" header CRLF [CRLF] *line "!" crc [CRLF]
//! header       = 3ALPHA DIGIT identification       ; "ISk5\2MT382-1000": FLAG id, baud digit
//!                                                  ; (spaces, backslashes, even 0x02 occur)
//! line         = object / continuation / other     ; "other" lines are kept as malformed
//! object       = obis 1*group CRLF
//! continuation = 1*group CRLF                      ; DSMR 2.2/3 gas profile value (24.3.0)
//! obis         = A "-" B ":" C "." D "." E ["*" F] ; 1-3 digits each, 0-255; F on D0 meters
//!                                                  ; (and as ".F" in the 4.2.2 spec example)
//! group        = "(" [value ["*" unit]] ")"
//! value        = decimal / tst / hex / obis / text ; meaning fixed by the OBIS code
//! decimal      = ["-"] 1*DIGIT ["." 1*DIGIT]       ; kept as the exact digits, never a float
//! tst          = 12DIGIT ["S" / "W"]               ; YYMMDDhhmmss local time; no flag before v4
//! crc          = 0*4HEXDIG                         ; CRC-16/ARC over "/" .. "!"; none on 2.2/3,
//!                                                  ; 3 digits on some Warmtelink units
//! ```
//!
//! Bytes: 8N1 at 115 200 Bd (v4+) or 7E1 at 9600 Bd (v2.2/3); the framer clears bit 7 so both
//! read through one 8N1 port. See [`framer`] for framing and resynchronisation, [`time`] for
//! turning `TST` into UTC, [`readings`] for country profiles, [`cipher`] for Smarty frames.
//!
//! # Quick start
//!
//! ```
//! use protocol::p1::{Framer, Readings, Telegram};
//!
//! let mut framer = Framer::default();
//! framer.feed(b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n!");
//! framer.feed(b"4AB4\r\n");
//! while let Some(step) = framer.next_frame() {
//!     let frame = step.expect("no garbage in this example");
//!     let telegram = Telegram::parse(frame).expect("ASCII telegram");
//!     assert!(telegram.crc().is_valid());
//!     let readings = Readings::from_telegram(&telegram);
//!     assert_eq!(readings.energy[0].energy.value.as_str(), "000004.426");
//! }
//! ```

pub mod cipher;
pub mod crc;
pub mod framer;
mod fuzzing;
pub mod readings;
pub mod registry;
mod swar;
pub mod telegram;
pub mod time;
mod trust;
pub mod value;

pub use cipher::{
    CipherFrameError, CipherFrameIn, DecryptError, MeterKey, SMARTY_AUTHENTICATION_KEY,
};
pub use framer::{FrameError, FrameIn, Framer, FramerConfig};
#[doc(hidden)]
pub use fuzzing::fuzz_stream;
pub use readings::{Country, Direction, Readings, TariffMeaning};
pub use telegram::{CrcCheck, DataObject, LineError, MalformedLine, Telegram, TelegramError};
pub use time::{DstFlag, Timestamp, UtcTime};
pub use trust::Untrusted;
pub use value::{Decimal, ObisCode, Quantity, RawValue, Unit, ValueKind};
