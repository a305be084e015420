//! Encrypted P1 (Luxembourg Smarty, Austrian Sagemcom T210-D-r): a DLMS general-global-cipher
//! frame around an ordinary telegram.
//!
//! ```text
//! DB                      general-glo-cipher tag
//! 08 <system title: 8>    the meter's system title (manufacturer + serial)
//! <length>                BER: < 0x80 itself, or 0x81 nn, or 0x82 nn nn; covers the rest
//! 30                      security control: suite 0, authenticated and encrypted
//! <frame counter: 4>      big-endian invocation counter
//! <ciphertext>            the telegram, AES-128-GCM
//! <tag: 12>               GCM tag truncated to 96 bits
//! ```
//!
//! Nonce = system title ‖ frame counter. Additional data = the security control byte ‖ the
//! authentication key, which on Smarty is a fixed public value ([`SMARTY_AUTHENTICATION_KEY`]);
//! some test vectors use no additional data at all (`None`). The **encryption key is per meter**
//! and comes from the grid operator; it never leaves the client that holds it.
//!
//! [`CipherFrameIn::split`] separates "need more bytes" from "not a cipher frame", like the
//! plaintext [`Framer`](super::framer::Framer), so a serial reader can feed it chunks.

use core::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The general-glo-cipher APDU tag.
pub const GENERAL_GLO_CIPHER: u8 = 0xDB;
/// Security control byte for "authenticated and encrypted, suite 0".
pub const SECURITY_AUTHENTICATED_ENCRYPTED: u8 = 0x30;
/// The authentication key every Luxembourg Smarty meter uses (public, from the Smarty spec).
pub const SMARTY_AUTHENTICATION_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];

const TAG_LEN: usize = 12;
/// Security control byte + frame counter.
const SECURITY_HEADER_LEN: usize = 5;

/// A 128-bit AES key for a meter. Wiped on drop; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MeterKey([u8; 16]);

/// A key that is not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a P1 key is 32 hex digits (16 bytes)")]
pub struct KeyFormatError;

impl MeterKey {
    /// Wraps raw key bytes.
    #[must_use]
    pub const fn new(bytes: [u8; 16]) -> Self {
        MeterKey(bytes)
    }

    /// Parses 32 hex digits (either case; spaces are not allowed).
    pub fn from_hex(text: &str) -> Result<Self, KeyFormatError> {
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return Err(KeyFormatError);
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = (pair[0] as char).to_digit(16).ok_or(KeyFormatError)?;
            let low = (pair[1] as char).to_digit(16).ok_or(KeyFormatError)?;
            *byte = (high << 4 | low) as u8;
        }
        Ok(MeterKey(bytes))
    }

    /// The key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for MeterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeterKey(…)")
    }
}

/// A general-glo-cipher frame as received, split but not yet authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherFrameIn<'a> {
    /// The meter's system title.
    pub system_title: [u8; 8],
    /// Security control byte (0x30).
    pub security_control: u8,
    /// Invocation counter; must grow from frame to frame (a replay check belongs to the caller,
    /// which knows the last value it accepted).
    pub frame_counter: u32,
    /// Encrypted telegram.
    pub ciphertext: &'a [u8],
    /// 12-byte GCM tag.
    pub tag: &'a [u8],
}

/// Why bytes are not (yet) a cipher frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CipherFrameError {
    /// The frame is not complete: at least `needed` bytes in total are required.
    #[error("incomplete frame: {needed} bytes needed")]
    Incomplete {
        /// Total bytes needed from the start of the frame.
        needed: usize,
    },
    /// The first byte is not 0xDB.
    #[error("not a general-glo-cipher frame (first byte 0x{0:02X}, expected 0xDB)")]
    NotCipherFrame(u8),
    /// The system title is not 8 bytes long.
    #[error("system title length {0}, expected 8")]
    SystemTitleLength(u8),
    /// The length field is malformed or too short for header and tag.
    #[error("bad length field")]
    Length,
    /// A security suite or policy other than authenticated encryption with suite 0.
    #[error("unsupported security control byte 0x{0:02X} (expected 0x30)")]
    UnsupportedSecurity(u8),
}

/// Why decryption failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecryptError {
    /// The tag did not verify: wrong key, wrong authentication key, or a corrupted frame. GCM
    /// cannot tell these apart, and nothing is decrypted.
    #[error("authentication failed: wrong key or authentication key, or a corrupted frame")]
    Authentication,
}

impl<'a> CipherFrameIn<'a> {
    /// Splits the frame at the start of `bytes`; returns it and the number of bytes it used.
    pub fn split(bytes: &'a [u8]) -> Result<(Self, usize), CipherFrameError> {
        let need = |needed| CipherFrameError::Incomplete { needed };
        let first = *bytes.first().ok_or(need(1))?;
        if first != GENERAL_GLO_CIPHER {
            return Err(CipherFrameError::NotCipherFrame(first));
        }
        let title_len = *bytes.get(1).ok_or(need(2))?;
        if title_len != 8 {
            return Err(CipherFrameError::SystemTitleLength(title_len));
        }
        let mut system_title = [0u8; 8];
        system_title.copy_from_slice(bytes.get(2..10).ok_or(need(10))?);
        let (length, length_len) = match *bytes.get(10).ok_or(need(11))? {
            short @ 0..=0x7F => (usize::from(short), 1),
            0x81 => (usize::from(*bytes.get(11).ok_or(need(12))?), 2),
            0x82 => {
                let pair = bytes.get(11..13).ok_or(need(13))?;
                (usize::from(u16::from_be_bytes([pair[0], pair[1]])), 3)
            }
            _ => return Err(CipherFrameError::Length),
        };
        if length < SECURITY_HEADER_LEN + TAG_LEN {
            return Err(CipherFrameError::Length);
        }
        let body_start = 10 + length_len;
        let total = body_start + length;
        let body = bytes.get(body_start..total).ok_or(need(total))?;
        let security_control = body[0];
        if security_control != SECURITY_AUTHENTICATED_ENCRYPTED {
            return Err(CipherFrameError::UnsupportedSecurity(security_control));
        }
        let frame_counter = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
        let (ciphertext, tag) =
            body[SECURITY_HEADER_LEN..].split_at(length - SECURITY_HEADER_LEN - TAG_LEN);
        Ok((
            CipherFrameIn { system_title, security_control, frame_counter, ciphertext, tag },
            total,
        ))
    }

    /// Decrypts and authenticates the telegram. `authentication_key` is
    /// [`SMARTY_AUTHENTICATION_KEY`] for real Smarty meters, `None` for frames sealed without
    /// additional data.
    pub fn decrypt(
        &self,
        key: &MeterKey,
        authentication_key: Option<&[u8; 16]>,
    ) -> Result<Vec<u8>, DecryptError> {
        let cipher = AesGcm::<Aes128, U12, U12>::new(key.as_bytes().into());
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes[..8].copy_from_slice(&self.system_title);
        nonce_bytes[8..].copy_from_slice(&self.frame_counter.to_be_bytes());
        let nonce = Nonce::<U12>::from(nonce_bytes);
        let tag = Tag::<U12>::try_from(self.tag).map_err(|_| DecryptError::Authentication)?;
        let mut aad = [0u8; 17];
        let aad: &[u8] = match authentication_key {
            Some(auth) => {
                aad[0] = self.security_control;
                aad[1..].copy_from_slice(auth);
                &aad
            }
            None => &[],
        };
        let mut plaintext = self.ciphertext.to_vec();
        cipher
            .decrypt_inout_detached(&nonce, aad, plaintext.as_mut_slice().into(), &tag)
            .map_err(|_| DecryptError::Authentication)?;
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{CipherFrameError, CipherFrameIn, MeterKey};

    #[test]
    fn keys_parse_from_hex_and_do_not_print() {
        let key = MeterKey::from_hex("0123456789abcdef0123456789ABCDEF").unwrap();
        assert_eq!(key.as_bytes()[1], 0x23);
        assert_eq!(format!("{key:?}"), "MeterKey(…)");
        assert!(MeterKey::from_hex("0123").is_err());
        assert!(MeterKey::from_hex("0123456789abcdef0123456789abcdeg").is_err());
    }

    #[test]
    fn split_tells_incomplete_from_invalid() {
        assert_eq!(CipherFrameIn::split(b""), Err(CipherFrameError::Incomplete { needed: 1 }));
        assert_eq!(CipherFrameIn::split(b"/ISK5"), Err(CipherFrameError::NotCipherFrame(b'/')));
        assert_eq!(
            CipherFrameIn::split(&[0xDB, 0x07]),
            Err(CipherFrameError::SystemTitleLength(7))
        );
        let mut frame = vec![0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x82, 0x00, 0x20, 0x30];
        assert_eq!(CipherFrameIn::split(&frame), Err(CipherFrameError::Incomplete { needed: 45 }));
        frame.resize(45, 0);
        let (parsed, used) = CipherFrameIn::split(&frame).unwrap();
        assert_eq!(used, 45);
        assert_eq!((parsed.ciphertext.len(), parsed.tag.len()), (15, 12));
        frame[13] = 0x20;
        assert_eq!(CipherFrameIn::split(&frame), Err(CipherFrameError::UnsupportedSecurity(0x20)));
        let short = [0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x05];
        assert_eq!(CipherFrameIn::split(&short), Err(CipherFrameError::Length));
    }
}
