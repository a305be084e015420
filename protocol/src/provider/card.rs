//! Provider cards: a provider's name, web origin, contact and public keys, signed by itself and
//! published at an address anyone can compute from the provider's identity.
//!
//! ```text
//! card    = "MKPC" ‖ u8 version(1) ‖ lp name ‖ lp url ‖ lp contact ‖ u64be issued_at
//!           ‖ PublicKeys (3170) ‖ signature (3309, ML-DSA-65, context "meterkast/v1/provider-card")
//! signed  = every byte before the signature
//! address = SHA3-256("meterkast/v1/provider-card-address" ‖ provider PartyId)
//! ```
//!
//! `lp` is a minimal-varint length then UTF-8 bytes. The identity is the hash of the public keys,
//! so a card at a provider's address that carries other keys is refused (a spoofed card), and a
//! card with altered text fails its signature. A newer card (higher `issued_at`) replaces an
//! older one. The URL is what the wallet shows as the provider's home, and every access
//! request's return address must stay on its origin (no open redirect, 2018 hole §1.10 #11).

use rand_core::CryptoRng;

use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::crypto::{
    PUBLIC_KEYS_LEN, PartyId, PartyKeys, PublicKeys, Role, SIGNATURE_LEN, SignatureContext, digest,
};

use super::ProviderError;
use super::origin::WebOrigin;

const CARD_MAGIC: &[u8; 4] = b"MKPC";
const CARD_VERSION: u8 = 1;
/// Longest provider name, in bytes.
pub const MAX_NAME_LEN: usize = 100;
/// Longest URL or contact, in bytes.
pub const MAX_URL_LEN: usize = 200;

/// Where a provider's card is published.
pub fn card_address(provider: PartyId) -> [u8; 32] {
    digest(b"meterkast/v1/provider-card-address", &[&provider.0])
}

/// A verified provider card (every value of this type had a valid signature by its own keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCard {
    name: String,
    url: String,
    origin: WebOrigin,
    contact: String,
    issued_at: u64,
    keys: PublicKeys,
    encoded: Vec<u8>,
}

impl ProviderCard {
    /// Creates and signs a card. The URL must be `https://host[:port][/path]`.
    pub fn create(
        provider: &PartyKeys,
        name: &str,
        url: &str,
        contact: &str,
        issued_at: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ProviderError> {
        if provider.public().role() != Role::Provider {
            return Err(ProviderError::NotAProvider);
        }
        check_text("name", name, MAX_NAME_LEN)?;
        check_text("contact", contact, MAX_URL_LEN)?;
        check_text("url", url, MAX_URL_LEN)?;
        WebOrigin::of(url)?;
        let mut w = Writer::new();
        w.bytes(CARD_MAGIC).u8(CARD_VERSION);
        w.length_prefixed(name.as_bytes())
            .length_prefixed(url.as_bytes())
            .length_prefixed(contact.as_bytes())
            .u64be(issued_at)
            .bytes(&provider.public().encode());
        let mut encoded = w.finish();
        let signature = provider.sign(SignatureContext::ProviderCard, &encoded, rng)?;
        encoded.extend_from_slice(&signature);
        Self::decode(&encoded)
    }

    /// Parses and verifies a card: format, text limits, URL, role, self-signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProviderError> {
        let Some(signed_len) = bytes.len().checked_sub(SIGNATURE_LEN) else {
            return Err(DecodeError::Truncated { field: "signature" }.into());
        };
        let (signed, signature) = bytes.split_at(signed_len);
        let mut r = Reader::new(signed);
        if r.take(4, "magic")? != CARD_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("version")?;
        if version != CARD_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "provider card", version }.into());
        }
        let name = read_text(&mut r, "name", MAX_NAME_LEN)?;
        let url = read_text(&mut r, "url", MAX_URL_LEN)?;
        let contact = read_text(&mut r, "contact", MAX_URL_LEN)?;
        let issued_at = r.u64be("issued at")?;
        let keys = PublicKeys::decode(r.take(PUBLIC_KEYS_LEN, "public keys")?)
            .map_err(|_| DecodeError::InvalidValue { field: "public keys" })?;
        r.finish()?;
        if keys.role() != Role::Provider {
            return Err(ProviderError::NotAProvider);
        }
        let origin = WebOrigin::of(&url)?;
        keys.verify(SignatureContext::ProviderCard, signed, signature)
            .map_err(|_| ProviderError::BadCardSignature)?;
        Ok(Self { name, url, origin, contact, issued_at, keys, encoded: bytes.to_vec() })
    }

    /// Parses a card found at `card_address(expected)`, refusing a card of another provider.
    pub fn decode_for(expected: PartyId, bytes: &[u8]) -> Result<Self, ProviderError> {
        let card = Self::decode(bytes)?;
        if card.id() != expected {
            return Err(ProviderError::CardOfAnotherProvider);
        }
        Ok(card)
    }

    /// The provider's identity.
    pub fn id(&self) -> PartyId {
        self.keys.id()
    }
    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Home page (its origin bounds every return address).
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The web origin of [`ProviderCard::url`].
    pub fn origin(&self) -> &WebOrigin {
        &self.origin
    }
    /// Contact address (e-mail or URL) for questions and withdrawal.
    pub fn contact(&self) -> &str {
        &self.contact
    }
    /// When the provider issued this card (UTC seconds).
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }
    /// The provider's public keys.
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }
    /// The signed encoding, for publishing at [`card_address`].
    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }
    /// Publishing address of this card.
    pub fn address(&self) -> [u8; 32] {
        card_address(self.id())
    }
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ProviderError> {
    if text.trim().is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(ProviderError::InvalidText { field });
    }
    Ok(())
}

pub(super) fn read_text(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<String, ProviderError> {
    let bytes = r.length_prefixed(max, field)?;
    let text = core::str::from_utf8(bytes).map_err(|_| ProviderError::InvalidText { field })?;
    check_text(field, text, max)?;
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::consent::test_rng::TestRng;
    use crate::crypto::PartySecret;

    fn provider(n: u8) -> PartyKeys {
        PartyKeys::derive(&PartySecret::from_bytes([n; 32]), Role::Provider)
    }

    #[test]
    fn card_round_trips_and_tampering_is_refused() {
        let mut rng = TestRng::new(7);
        let keys = provider(1);
        let card = ProviderCard::create(
            &keys,
            "Wattt",
            "https://wattt.example/app",
            "privacy@wattt.example",
            1_700_000_000,
            &mut rng,
        )
        .unwrap();
        let decoded = ProviderCard::decode_for(keys.id(), card.encode()).unwrap();
        assert_eq!(decoded, card);
        assert_eq!(decoded.origin().as_str(), "https://wattt.example");

        // Change one letter of the name: the signature no longer verifies.
        let mut renamed = card.encode().to_vec();
        let at = renamed.windows(5).position(|w| w == b"Wattt").unwrap();
        renamed[at] = b'V';
        assert_eq!(ProviderCard::decode(&renamed), Err(ProviderError::BadCardSignature));

        // A valid card of provider 2 served at provider 1's address is a spoof.
        let other =
            ProviderCard::create(&provider(2), "Wattt", "https://wattt.example", "x", 1, &mut rng)
                .unwrap();
        assert_eq!(
            ProviderCard::decode_for(keys.id(), other.encode()),
            Err(ProviderError::CardOfAnotherProvider)
        );
        assert!(ProviderCard::decode(&card.encode()[..100]).is_err());
    }

    #[test]
    fn cards_need_an_https_origin_and_a_provider_key() {
        let mut rng = TestRng::new(8);
        for url in ["http://wattt.example", "https://user@wattt.example", "javascript:alert(1)"] {
            assert!(
                matches!(
                    ProviderCard::create(&provider(1), "W", url, "c", 1, &mut rng),
                    Err(ProviderError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
        let wallet = PartyKeys::derive(&PartySecret::from_bytes([1; 32]), Role::Wallet);
        assert_eq!(
            ProviderCard::create(&wallet, "W", "https://w.example", "c", 1, &mut rng),
            Err(ProviderError::NotAProvider)
        );
    }
}
