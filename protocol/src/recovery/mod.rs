//! The wallet's recovery phrase: its 32-byte [`PartySecret`] written as 24 BIP-39 words.
//!
//! The phrase encodes the secret itself (BIP-39 *entropy*, 256 bits + an 8-bit checksum), not a
//! PBKDF2 seed derived from it: every wallet key (ML-DSA-65, ML-KEM-768, the per-device owner
//! keys and consent-log keys) is already derived from the party secret through HKDF-SHA3, so the
//! phrase restores the whole wallet. The BIP-39 checksum catches a mistyped word before a wrong
//! wallet is restored. The encoding is the `bip39` crate's (rust-bitcoin), English word list.

use core::fmt;

use bip39::{Language, Mnemonic};
use zeroize::Zeroizing;

use crate::crypto::{PartySecret, SECRET_LEN};

/// Number of words in a Meterkast recovery phrase (256 bits of entropy).
pub const RECOVERY_WORDS: usize = 24;

/// Why a typed recovery phrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The phrase does not have 24 words.
    #[error("a recovery phrase has {RECOVERY_WORDS} words, this one has {0}")]
    WordCount(usize),
    /// A word is not in the BIP-39 English list (1-based position, as shown to the user).
    #[error("word {0} is not a recovery word")]
    UnknownWord(usize),
    /// All words are known but the checksum does not match: a word is wrong or misplaced.
    #[error("the phrase's checksum does not match: a word is wrong or out of order")]
    Checksum,
}

/// A recovery phrase. Printed only through [`RecoveryPhrase::expose_words`]; `Debug` redacts.
pub struct RecoveryPhrase(Zeroizing<String>);

impl RecoveryPhrase {
    /// The phrase of a wallet secret.
    pub fn from_secret(secret: &PartySecret) -> Self {
        match Mnemonic::from_entropy_in(Language::English, secret.expose_secret()) {
            Ok(mnemonic) => Self(Zeroizing::new(mnemonic.words().collect::<Vec<_>>().join(" "))),
            // 256 bits is a valid BIP-39 entropy length, so this cannot happen.
            Err(_) => unreachable!("32 bytes is valid BIP-39 entropy"),
        }
    }

    /// Restores the wallet secret from typed words (any case, any whitespace between words).
    pub fn parse_secret(text: &str) -> Result<PartySecret, RecoveryError> {
        let normalized = Zeroizing::new(
            text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "),
        );
        let count = normalized.split(' ').filter(|w| !w.is_empty()).count();
        if count != RECOVERY_WORDS {
            return Err(RecoveryError::WordCount(count));
        }
        let mnemonic =
            Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|error| {
                match error {
                    bip39::Error::UnknownWord(index) => RecoveryError::UnknownWord(index + 1),
                    bip39::Error::BadWordCount(n) => RecoveryError::WordCount(n),
                    _ => RecoveryError::Checksum,
                }
            })?;
        let (entropy, len) = mnemonic.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        let bytes: [u8; SECRET_LEN] =
            entropy[..len].try_into().map_err(|_| RecoveryError::WordCount(count))?;
        Ok(PartySecret::from_bytes(bytes))
    }

    /// The words, space-separated, for showing to the user once.
    pub fn expose_words(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryPhrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn phrase_round_trips_and_matches_the_bip39_test_vector() {
        // BIP-39 reference vector (Trezor's vectors.json): entropy 0x7f × 32.
        let secret = PartySecret::from_bytes([0x7f; 32]);
        let phrase = RecoveryPhrase::from_secret(&secret);
        assert_eq!(
            phrase.expose_words(),
            "legal winner thank year wave sausage worth useful legal winner thank year wave \
             sausage worth useful legal winner thank year wave sausage worth title"
        );
        let restored = RecoveryPhrase::parse_secret(&phrase.expose_words().to_uppercase())
            .expect("own phrase parses");
        assert_eq!(restored.expose_secret(), secret.expose_secret());
    }

    #[test]
    fn typos_are_refused_with_a_reason() {
        let phrase = RecoveryPhrase::from_secret(&PartySecret::from_bytes([3; 32]));
        let words: Vec<&str> = phrase.expose_words().split(' ').collect();
        assert_eq!(
            RecoveryPhrase::parse_secret(&words[..23].join(" ")).map(|_| ()),
            Err(RecoveryError::WordCount(23))
        );
        let mut unknown = words.clone();
        unknown[4] = "meterkast";
        assert_eq!(
            RecoveryPhrase::parse_secret(&unknown.join(" ")).map(|_| ()),
            Err(RecoveryError::UnknownWord(5))
        );
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        if swapped != words {
            assert_eq!(
                RecoveryPhrase::parse_secret(&swapped.join(" ")).map(|_| ()),
                Err(RecoveryError::Checksum)
            );
        }
        assert!(format!("{phrase:?}").contains("redacted"));
    }
}
