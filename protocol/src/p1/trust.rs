//! Whether a telegram's content may be used, for the meters that send no CRC.
//!
//! DSMR 2.2/3 and D0 meters print nothing after `!`, so nothing guards their bytes. Serial noise
//! that happens to contain a `/`, some line ends and a `!` (a loose connector, a wrong baud rate)
//! then frames as a "telegram" just as well, and its CRC verdict is [`CrcCheck::Absent`] like a
//! real one's. Such a telegram is believed only when it looks exactly like a meter wrote it:
//! an identification line of the standard's form, at least one data object, and no line that
//! fails the grammar. A present CRC settles the question on its own.

use super::telegram::{CrcCheck, Telegram};

/// Why a telegram's values must not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// The printed CRC does not match the content.
    #[error("CRC mismatch: the telegram was corrupted on the line")]
    CrcMismatch,
    /// No CRC, and the identification line is not `/` + three-letter FLAG id + baud character.
    #[error("no CRC and no valid identification line: probably line noise")]
    NoCrcBadHeader,
    /// No CRC and not a single data object.
    #[error("no CRC and no data objects: probably line noise")]
    NoCrcNoObjects,
    /// No CRC and at least one line that is not a data object.
    #[error("no CRC and {count} line(s) outside the grammar: probably line noise")]
    NoCrcMalformedLines {
        /// How many lines failed.
        count: usize,
    },
}

impl Telegram<'_> {
    /// `Ok` when the values may be used: a matching CRC, or no CRC and a telegram that is
    /// well-formed throughout (see the module documentation).
    pub fn trusted(&self) -> Result<(), Untrusted> {
        match self.crc() {
            CrcCheck::Valid { .. } => Ok(()),
            CrcCheck::Mismatch { .. } => Err(Untrusted::CrcMismatch),
            CrcCheck::Absent { .. } => {
                if !is_identification(self.header()) {
                    Err(Untrusted::NoCrcBadHeader)
                } else if self.objects().is_empty() {
                    Err(Untrusted::NoCrcNoObjects)
                } else if !self.malformed_lines().is_empty() {
                    Err(Untrusted::NoCrcMalformedLines { count: self.malformed_lines().len() })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// IEC 62056-21's identification (the header without its `/`): three letters naming the
/// manufacturer (the FLAG id; a lower-case third letter marks a fast responder), then the
/// baud-rate character (a digit, or a letter on some meters), then the free-form model text.
fn is_identification(header: &str) -> bool {
    let bytes = header.as_bytes();
    bytes.len() >= 5
        && bytes[..3].iter().all(u8::is_ascii_alphabetic)
        && bytes[3].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const GOOD_BODY: &str = "\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n0-0:96.14.0(0002)\r\n!";

    fn check(text: &str) -> Result<(), Untrusted> {
        Telegram::parse_bytes(text.as_bytes()).expect("frames").trusted()
    }

    #[test]
    fn a_well_formed_telegram_without_crc_is_trusted() {
        assert_eq!(check(&format!("/ISk5\\2MT382-1000{GOOD_BODY}\r\n")), Ok(()));
    }

    #[test]
    fn noise_shaped_like_a_telegram_without_crc_is_not() {
        assert_eq!(check(&format!("/\x1b(Yo8:gQ{GOOD_BODY}\r\n")), Err(Untrusted::NoCrcBadHeader));
        assert_eq!(check("/ISk5\\2MT382-1000\r\n\r\n!\r\n"), Err(Untrusted::NoCrcNoObjects));
        assert_eq!(
            check("/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\nK}x~#(\r\n!\r\n"),
            Err(Untrusted::NoCrcMalformedLines { count: 1 })
        );
    }

    #[test]
    fn a_crc_settles_it_either_way() {
        let valid = "/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n!4AB4\r\n";
        assert_eq!(check(valid), Ok(()));
        let altered = valid.replace("4.426", "4.427");
        assert_eq!(check(&altered), Err(Untrusted::CrcMismatch));
    }
}
