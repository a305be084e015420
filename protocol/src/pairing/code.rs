//! The pairing code a device shows: its identity and a 128-bit one-time secret.
//!
//! ```text
//! bytes = device PartyId (32) ‖ secret (16) ‖ check (2) = SHA3-256("meterkast/v1/pairing-code-check"
//!         ‖ id ‖ secret)[..2]
//! text  = RFC 4648 base32 of the 50 bytes: 80 characters, shown as 16 groups of 5 joined by '-'
//! URI   = "meterkast:pair/" ‖ the 80 characters in lower case (the QR code's content)
//! ```
//!
//! The identity lets the wallet find the device's announcement and authenticate it (the
//! identity is the hash of the device's public keys). The secret is what proves physical
//! access; it never appears on the wire, not even hashed. The check bytes catch typos (1 in
//! 65,536 typos slips through and then simply fails as a wrong code); they add no security.

use core::fmt;

use data_encoding::BASE32_NOPAD;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::PairingError;
use crate::crypto::{PartyId, digest};

/// Bytes of the one-time secret (128 bits).
pub const PAIRING_SECRET_LEN: usize = 16;
/// Prefix of the URI form.
pub const PAIRING_URI_PREFIX: &str = "meterkast:pair/";
const CODE_LEN: usize = 32 + PAIRING_SECRET_LEN + 2;

/// A device's pairing code. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    device: PartyId,
    secret: Zeroizing<[u8; PAIRING_SECRET_LEN]>,
}

impl PairingCode {
    /// A fresh code for `device`.
    pub fn generate(device: PartyId, rng: &mut impl CryptoRng) -> Self {
        let mut secret = Zeroizing::new([0u8; PAIRING_SECRET_LEN]);
        rng.fill_bytes(secret.as_mut_slice());
        Self { device, secret }
    }

    /// The device this code pairs.
    pub fn device(&self) -> PartyId {
        self.device
    }

    pub(crate) fn secret(&self) -> &[u8; PAIRING_SECRET_LEN] {
        &self.secret
    }

    fn check(device: &PartyId, secret: &[u8]) -> [u8; 2] {
        let d = digest(b"meterkast/v1/pairing-code-check", &[&device.0, secret]);
        [d[0], d[1]]
    }

    fn bytes(&self) -> Zeroizing<Vec<u8>> {
        let check = Self::check(&self.device, self.secret.as_slice());
        Zeroizing::new([&self.device.0[..], self.secret.as_slice(), &check].concat())
    }

    /// The text to show: 16 groups of 5 base32 characters.
    pub fn to_text(&self) -> Zeroizing<String> {
        let plain = Zeroizing::new(BASE32_NOPAD.encode(&self.bytes()));
        let groups: Vec<&str> =
            plain.as_bytes().chunks(5).filter_map(|c| core::str::from_utf8(c).ok()).collect();
        Zeroizing::new(groups.join("-"))
    }

    /// The URI for a QR code.
    pub fn to_uri(&self) -> Zeroizing<String> {
        let plain = Zeroizing::new(BASE32_NOPAD.encode(&self.bytes()).to_ascii_lowercase());
        Zeroizing::new(format!("{PAIRING_URI_PREFIX}{}", plain.as_str()))
    }

    /// Parses the text or the URI form; case, spaces and dashes do not matter.
    pub fn parse(input: &str) -> Result<Self, PairingError> {
        let trimmed = input.trim();
        let body = match trimmed.get(..PAIRING_URI_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(PAIRING_URI_PREFIX) => {
                &trimmed[PAIRING_URI_PREFIX.len()..]
            }
            _ => trimmed,
        };
        let cleaned = Zeroizing::new(
            body.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect::<String>(),
        );
        let bytes = Zeroizing::new(
            BASE32_NOPAD.decode(cleaned.as_bytes()).map_err(|_| PairingError::InvalidCode)?,
        );
        if bytes.len() != CODE_LEN {
            return Err(PairingError::InvalidCode);
        }
        let device = PartyId(bytes[..32].try_into().map_err(|_| PairingError::InvalidCode)?);
        let mut secret = Zeroizing::new([0u8; PAIRING_SECRET_LEN]);
        secret.copy_from_slice(&bytes[32..32 + PAIRING_SECRET_LEN]);
        if Self::check(&device, secret.as_slice()) != bytes[32 + PAIRING_SECRET_LEN..] {
            return Err(PairingError::CodeTypo);
        }
        Ok(Self { device, secret })
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingCode")
            .field("device", &self.device)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::consent::test_rng::TestRng;

    #[test]
    fn text_and_uri_round_trip_and_typos_are_caught() {
        let code = PairingCode::generate(PartyId([9; 32]), &mut TestRng::new(3));
        let text = code.to_text();
        assert_eq!(text.len(), 80 + 15);
        assert_eq!(text.split('-').count(), 16);
        assert_eq!(PairingCode::parse(&text).unwrap(), code);
        assert_eq!(PairingCode::parse(&text.to_lowercase().replace('-', " ")).unwrap(), code);
        assert_eq!(PairingCode::parse(&code.to_uri()).unwrap(), code);
        assert!(code.to_uri().starts_with("meterkast:pair/"));

        // One character changed inside the secret part: caught by the check bytes.
        let mut typo: Vec<char> = text.chars().collect();
        let at = 60;
        typo[at] = if typo[at] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(PairingCode::parse(&typo), Err(PairingError::CodeTypo));
        assert_eq!(PairingCode::parse("ABC"), Err(PairingError::InvalidCode));
        assert!(!format!("{code:?}").contains(&text[40..50]));
    }
}
