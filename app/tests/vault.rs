//! The wallet's storage at rest, in the browser, with the production Argon2id cost
//! (m = 64 MiB, t = 3, p = 1): the right passphrase opens it, a wrong one is refused, altered
//! fields are refused, and neither the stored text nor localStorage holds the secret in any
//! form (raw, hex, or its recovery phrase).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::vault::{self, KdfParams, SealedIdentity, VaultError};
use protocol::crypto::{PartyKeys, Role};
use protocol::recovery::RecoveryPhrase;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const PASSPHRASE: &str = "correct horse battery staple";

/// Lets the page answer the test runner between key derivations, each of which blocks the
/// thread for a while (seconds in an unoptimised debug build).
async fn breathe() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

#[test]
async fn a_sealed_wallet_opens_with_its_passphrase_only_and_holds_no_plaintext() {
    let secret = vault::generate_secret().unwrap();
    let id = PartyKeys::derive(&secret, Role::Wallet).id();
    let sealed =
        SealedIdentity::seal(&secret, Role::Wallet, &id, PASSPHRASE, KdfParams::POLICY).unwrap();
    assert_eq!(sealed.params(), KdfParams::POLICY);
    breathe().await;

    vault::store(Role::Wallet, &sealed).unwrap();
    let stored = vault::load(Role::Wallet).unwrap().unwrap();
    assert_eq!(stored, sealed);
    assert_eq!(stored.party_id(), hex::encode(id.0));

    let opened = stored.open(PASSPHRASE).unwrap();
    assert_eq!(opened.expose_secret(), secret.expose_secret());
    breathe().await;
    assert_eq!(stored.open("correct horse battery stapl").err(), Some(VaultError::WrongPassphrase));
    breathe().await;

    // What localStorage holds: no secret bytes in hex (either case) or raw, no recovery words.
    let raw = web_sys::window()
        .unwrap()
        .local_storage()
        .unwrap()
        .unwrap()
        .get_item("meterkast.vault.wallet")
        .unwrap()
        .unwrap();
    let secret_hex = hex::encode(secret.expose_secret());
    assert!(!raw.to_lowercase().contains(&secret_hex));
    assert!(!raw.as_bytes().windows(32).any(|w| w == secret.expose_secret()));
    let phrase = RecoveryPhrase::from_secret(&secret);
    let words: Vec<&str> = phrase.expose_words().split(' ').collect();
    assert!(!raw.contains(&words[..4].join(" ")));
    assert!(!raw.contains(PASSPHRASE));

    vault::forget(Role::Wallet).unwrap();
    assert_eq!(vault::load(Role::Wallet).unwrap(), None);
}

#[test]
async fn altered_header_fields_and_weak_costs_are_refused() {
    let secret = vault::generate_secret().unwrap();
    let id = PartyKeys::derive(&secret, Role::Provider).id();
    let sealed =
        SealedIdentity::seal(&secret, Role::Provider, &id, PASSPHRASE, KdfParams::POLICY).unwrap();
    let json = sealed.to_json();
    breathe().await;

    // Another role or another id under the same ciphertext: refused as if the passphrase were
    // wrong (the header is associated data).
    let as_wallet = SealedIdentity::from_json(&json.replace("\"provider\"", "\"wallet\"")).unwrap();
    assert_eq!(as_wallet.open(PASSPHRASE).err(), Some(VaultError::WrongPassphrase));
    breathe().await;
    let other_id = hex::encode([0x11u8; 32]);
    let swapped = SealedIdentity::from_json(&json.replace(sealed.party_id(), &other_id)).unwrap();
    assert_eq!(swapped.open(PASSPHRASE).err(), Some(VaultError::WrongPassphrase));

    // A cheaper or absurd cost is refused before any key derivation runs.
    let weak = SealedIdentity::from_json(&json.replace("\"t\":3", "\"t\":1")).unwrap();
    assert_eq!(weak.open(PASSPHRASE).err(), Some(VaultError::UnacceptableParams));
    let huge = SealedIdentity::from_json(&json.replace("\"m_kib\":65536", "\"m_kib\":4000000000"))
        .unwrap();
    assert_eq!(huge.open(PASSPHRASE).err(), Some(VaultError::UnacceptableParams));

    assert!(matches!(SealedIdentity::from_json("{}"), Err(VaultError::Malformed(_))));
    assert_eq!(
        SealedIdentity::seal(&secret, Role::Provider, &id, "short", KdfParams::POLICY).err(),
        Some(VaultError::PassphraseTooShort)
    );
}
