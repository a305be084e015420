//! The wallet's device state without a node: the book kept in localStorage holds the log key
//! only sealed (and only this wallet opens it); a device's log written, read back, resumed
//! after a "reload", and shown as grants and history; the device's final delivery receipt
//! confirms a revocation's key rotation; an entry no node stored is forgotten; the export
//! verifies offline.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::wallet::book::{Book, StoredDevice};
use app::wallet::household::{HouseholdDevice, WalletError};
use app::wallet::overview::{GrantState, overview};
use app::wallet::rng;
use app::wallet::time::unix_now;
use protocol::channel::Tier;
use protocol::consent::{DeliveryReceipt, EventKind, verify_export};
use protocol::crypto::{PartyKeys, PartySecret, Role, SymmetricKey, SymmetricPurpose};
use protocol::pairing::{PairedDevice, owner_keys};
use protocol::provider::{AccessRequest, DataItem, ProviderCard, PurposeCategory};
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const LOG_KEY: [u8; 32] = [0x5a; 32];

fn keys(role: Role, n: u8) -> PartyKeys {
    PartyKeys::derive(&PartySecret::from_bytes([n; 32]), role)
}

/// A device as pairing would leave it (the log key is what the pairing agreed).
fn paired(wallet: &PartyKeys) -> HouseholdDevice {
    let device = keys(Role::Device, 3).public().clone();
    let owner = owner_keys(wallet, device.id()).unwrap();
    let paired = PairedDevice {
        device,
        owner,
        log_key: SymmetricKey::from_bytes(LOG_KEY),
        pairing_id: [1; 32],
    };
    HouseholdDevice::from_pairing(paired, unix_now())
}

fn write(device: &mut HouseholdDevice, kind: EventKind) {
    let written = device.write(kind, &mut rng()).unwrap();
    device.confirm_written(&written);
}

#[test]
fn the_stored_book_holds_the_log_key_sealed_for_this_wallet_only() {
    let wallet = keys(Role::Wallet, 1);
    let state_key = wallet.symmetric_key(SymmetricPurpose::StateAtRest);
    let device = paired(&wallet);
    let stored = device.to_stored(&state_key).unwrap();
    Book::with_devices(vec![stored]).save("test-wallet").unwrap();

    let text = app::storage::load("meterkast.wallet.test-wallet").unwrap().unwrap();
    assert!(!text.contains(&hex::encode(LOG_KEY)), "the log key is not stored in clear");
    assert!(text.contains(&device.id_hex()), "the device is named (public)");

    let book = Book::load("test-wallet").unwrap();
    assert_eq!(book.devices.len(), 1);
    let back = HouseholdDevice::from_stored(&book.devices[0], &wallet, &state_key).unwrap();
    assert_eq!(back.id_hex(), device.id_hex());
    assert_eq!(book.devices[0].log_key(&state_key).unwrap().expose_secret(), &LOG_KEY);

    // Another wallet (another state key) cannot open it; an altered blob neither.
    let other = keys(Role::Wallet, 2).symmetric_key(SymmetricPurpose::StateAtRest);
    assert!(book.devices[0].log_key(&other).is_err());
    let altered: StoredDevice =
        serde_json::from_str(&serde_json::to_string(&book.devices[0]).unwrap().replacen(
            "\"log_key\":\"",
            "\"log_key\":\"00",
            1,
        ))
        .unwrap();
    assert!(altered.log_key(&state_key).is_err());

    Book::forget("test-wallet").unwrap();
    assert_eq!(Book::load("test-wallet").unwrap().devices.len(), 0);
}

#[test]
fn grants_are_written_read_back_after_a_reload_revoked_and_exported() {
    let wallet = keys(Role::Wallet, 1);
    let state_key = wallet.symmetric_key(SymmetricPurpose::StateAtRest);
    let mut device = paired(&wallet);
    let owner = device.owner.id();
    let pairing_id = device.pairing_id;
    write(&mut device, EventKind::DevicePaired { owner, pairing_id });

    let provider = keys(Role::Provider, 9);
    let now = unix_now();
    let card = ProviderCard::create(
        &provider,
        "Wattt",
        "https://wattt.example/",
        "hi@wattt.example",
        now,
        &mut rng(),
    )
    .unwrap();
    let request = AccessRequest {
        provider: provider.id(),
        nonce: [2; 16],
        purpose: "Heat pump advice".to_owned(),
        category: PurposeCategory::EnergyInsight,
        data_items: vec![DataItem::Power],
        max_resolution: Tier::Second,
        start: now - 10,
        end: now + 86_400,
        delete_by: now + 2 * 86_400,
        return_url: "https://wattt.example/".to_owned(),
        created_at: now - 10,
    }
    .sign(&provider, &mut rng())
    .unwrap();
    let grant = device.answer(&request, &card, &[Tier::Second], &mut rng()).unwrap();
    let grant_id = grant.id;
    write(&mut device, EventKind::Granted(Box::new(grant)));

    let shown = overview(std::slice::from_ref(&device), unix_now());
    assert_eq!(shown.devices[0].state, "paired");
    assert_eq!(shown.devices[0].active_grants, 1);
    assert_eq!(shown.grants[0].state, GrantState::Active);
    assert_eq!(shown.grants[0].provider, "Wattt");
    assert_eq!(shown.grants[0].id, hex::encode(grant_id.0));

    // An entry no node acknowledged is forgotten: the next one takes its place.
    let lost = device
        .write(EventKind::Revoked { grant: grant_id, reason: String::new() }, &mut rng())
        .unwrap();
    device.abandon_written();
    assert_eq!(device.entries.len(), 2);

    // "Reload": a new device state from the book, fed the entries as the node would give them.
    let stored = device.to_stored(&state_key).unwrap();
    assert_eq!(stored.log_head.as_ref().map(|h| h.entries), Some(2));
    let mut reloaded = HouseholdDevice::from_stored(&stored, &wallet, &state_key).unwrap();
    for entry in &device.entries {
        let address = reloaded.next_entry_address();
        assert!(reloaded.accept_entries(address, &[entry.entry.bytes().to_vec()]));
    }
    reloaded.check_head(stored.log_head.as_ref().unwrap());
    assert!(reloaded.warnings.is_empty(), "{:?}", reloaded.warnings);
    // The lost entry's address now holds nothing the reader takes; the resumed writer can
    // still revoke the grant written before the reload (its key came back from the log).
    assert_eq!(lost.publish.address, reloaded.next_entry_address());
    write(&mut reloaded, EventKind::Revoked { grant: grant_id, reason: String::new() });
    let shown = overview(std::slice::from_ref(&reloaded), unix_now());
    assert_eq!(shown.grants[0].state, GrantState::Revoked);
    assert!(!shown.grants[0].rotation_confirmed, "no receipt from the device yet");

    // The device's receipts: one from before the revocation confirms nothing; the final one it
    // issues when it rotates the grant out (at or after the revocation) confirms the rotation.
    let revoked_at = reloaded.entries.last().unwrap().event.time;
    let receipt = |issued_at: u64, first: u64, end: u64| DeliveryReceipt {
        device: reloaded.device.id(),
        grant: grant_id,
        tier: Tier::Second,
        first,
        end,
        count: end - first,
        digest: [0; 32],
        issued_at,
    };
    reloaded.receipts.push(receipt(revoked_at - 1, 0, 3_600));
    let shown = overview(std::slice::from_ref(&reloaded), unix_now());
    assert!(!shown.grants[0].rotation_confirmed);
    reloaded.receipts.push(receipt(revoked_at, 3_600, 3_605));
    let shown = overview(std::slice::from_ref(&reloaded), unix_now());
    assert!(shown.grants[0].rotation_confirmed);
    assert_eq!(shown.devices[0].last_readings, Some(revoked_at));
    let deliveries: Vec<&str> =
        shown.history.iter().filter(|h| h.kind == "delivery").map(|h| h.text.as_str()).collect();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries[1].starts_with("Wattt received 3,600 readings at 1 s between "),
        "{deliveries:?}"
    );
    assert!(
        deliveries[0].starts_with("Wattt received 5 readings at 1 s between "),
        "{deliveries:?}"
    );

    let texts: Vec<&str> = shown.history.iter().map(|h| h.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("Granted Wattt access (every second)")),
        "{texts:?}"
    );
    assert!(texts.contains(&"Revoked Wattt's access"), "{texts:?}");
    assert!(texts.contains(&"Paired with this wallet"), "{texts:?}");

    // A node that later shows fewer entries than this wallet saw is called out.
    let mut withheld = HouseholdDevice::from_stored(&stored, &wallet, &state_key).unwrap();
    let address = withheld.next_entry_address();
    withheld.accept_entries(address, &[device.entries[0].entry.bytes().to_vec()]);
    withheld.check_head(stored.log_head.as_ref().unwrap());
    assert!(withheld.warnings[0].0.contains("withholding"), "{:?}", withheld.warnings);

    // The export verifies offline and says the grant was revoked.
    let exported = reloaded.export(unix_now()).unwrap();
    let verified = verify_export(&exported).unwrap();
    assert_eq!(verified.events.len(), 3);
    assert_eq!(verified.records[0]["state"], "revoked");

    // Once removed, nothing more can be written.
    write(
        &mut reloaded,
        EventKind::DeviceRemoved { reason: protocol::consent::RemovalReason::HandedOver },
    );
    assert_eq!(
        overview(std::slice::from_ref(&reloaded), unix_now()).devices[0].state,
        "handed over"
    );
    assert_eq!(
        reloaded
            .write(EventKind::DevicePaired { owner, pairing_id: [0; 32] }, &mut rng())
            .unwrap_err(),
        WalletError::DeviceRemoved
    );
}
