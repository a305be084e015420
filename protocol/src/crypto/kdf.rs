//! HKDF-SHA3-256 and SHA3-256 with Meterkast's domain-separation labels.

use hkdf::SimpleHkdf;
use sha3::{Digest, Sha3_256};
use zeroize::Zeroizing;

/// HKDF-SHA3-256 (`SimpleHkdf`, since `Hkdf<Sha3_256>` needs a block-level HMAC that SHA3 lacks):
/// extract with `salt` from `ikm`, then expand `N` bytes with the concatenation of `info` parts.
///
/// Every caller passes a label starting with `meterkast/v1/` so no two uses share an output.
/// `N` is at most 64 everywhere in this crate, far under HKDF's 255·32-byte limit, which is
/// checked at compile time.
pub fn expand_key<const N: usize>(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA3-256 cannot expand this many bytes") };
    let hkdf = SimpleHkdf::<Sha3_256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; N]);
    // Cannot fail: the length is bounded by the assertion above.
    if hkdf.expand_multi_info(info, out.as_mut_slice()).is_err() {
        unreachable!("HKDF output length is checked at compile time");
    }
    out
}

/// SHA3-256 over the concatenation of `parts`, starting with a domain label.
pub fn digest(label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    hasher.update(label);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn different_labels_give_unrelated_keys() {
        let a: Zeroizing<[u8; 32]> = expand_key(b"salt", b"ikm", &[b"meterkast/v1/a"]);
        let b: Zeroizing<[u8; 32]> = expand_key(b"salt", b"ikm", &[b"meterkast/v1/b"]);
        assert_ne!(*a, *b);
    }

    #[test]
    fn info_parts_are_concatenated() {
        let split: Zeroizing<[u8; 32]> = expand_key(b"s", b"k", &[b"meterkast/", b"v1/x"]);
        let whole: Zeroizing<[u8; 32]> = expand_key(b"s", b"k", &[b"meterkast/v1/x"]);
        assert_eq!(*split, *whole);
    }

    #[test]
    fn digest_matches_plain_sha3_of_concatenation() {
        let ours = digest(b"label", &[b"ab", b"c"]);
        let plain: [u8; 32] = Sha3_256::digest(b"labelabc").into();
        assert_eq!(ours, plain);
    }
}
