//! Who learns what: provider A learns nothing of provider B's grants; a provider sees nothing
//! from before its grant.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use consent_support::{Device, Lab, Provider, pair};
use protocol::channel::Tier;
use protocol::consent::{
    ConsentError, EventKind, NoticeOutcome, PublishKind, SealedEntry, notice_address,
};

#[test]
fn provider_a_learns_nothing_of_provider_bs_grants() {
    let mut lab = Lab::new(20);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second, Tier::FifteenMinutes]);
    let mut household = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let mut b = Provider::new(&mut lab, 2, "GridFlex", &device);
    let request_a = a.request(&mut lab, "insight", Tier::Second, 30);
    let request_b = b.request(&mut lab, "flexibility", Tier::FifteenMinutes, 30);
    let grant_a = household.grant(&mut lab, &request_a, &a.card, &[Tier::Second]);
    let grant_b = household.grant(&mut lab, &request_b, &b.card, &[Tier::FifteenMinutes]);
    lab.now += 10;
    household.append(&mut lab, EventKind::Revoked { grant: grant_b, reason: "no".into() });
    device.sync(&mut lab);
    a.sync(&mut lab);
    b.sync(&mut lab);

    // A holds exactly one grant, its own; B's grant and revocation never reached it.
    let a_grants: Vec<_> = a.consent.receipts().map(|r| r.grant().id).collect();
    assert_eq!(a_grants, vec![grant_a]);
    assert_eq!(a.outcomes.len(), 1);
    assert!(matches!(b.outcomes.last(), Some(NoticeOutcome::Revoked { .. })));

    // Every log entry on the tangle: A's grant key opens exactly the entries about A's grant;
    // B's key exactly B's (its grant and its revocation). Nothing else opens for either.
    let key_a = a.consent.receipts().next().unwrap().grant_key().clone();
    let key_b = b.consent.receipts().next().unwrap().grant_key().clone();
    let device_id = device.keys.id();
    let entries: Vec<SealedEntry> = lab
        .tangle
        .published
        .iter()
        .filter(|p| p.kind == PublishKind::LogEntry)
        .map(|p| SealedEntry::decode(&p.payload).unwrap())
        .collect();
    assert_eq!(entries.len(), 4);
    let opens = |key| -> Vec<u64> {
        entries
            .iter()
            .filter(|e| e.grant_content_key(key, device_id).is_ok())
            .map(|e| e.index)
            .collect()
    };
    assert_eq!(opens(&key_a), vec![1]);
    assert_eq!(opens(&key_b), vec![2, 3]);

    // B's notices are sealed to B: A cannot open any of them.
    let for_b = lab.tangle.at(&notice_address(b.keys.id())).to_vec();
    assert!(!for_b.is_empty());
    for payload in &for_b {
        assert_eq!(
            protocol::consent::ProviderConsent::new().receive(&a.keys, payload).map(|_| ()),
            Err(ConsentError::Undecryptable)
        );
    }

    // Nothing on the tangle names a provider in clear, except what providers publish
    // themselves (cards, requests) and the notice addresses, which reveal that a provider
    // receives notices but not from which device or household.
    for item in &lab.tangle.published {
        if matches!(item.kind, PublishKind::ProviderCard | PublishKind::AccessRequest) {
            continue;
        }
        for provider in [&a, &b] {
            let id = provider.keys.id().0;
            assert!(!item.payload.windows(32).any(|w| w == id), "{:?} names a provider", item.kind);
        }
    }

    // A's data follower reads only A's tier.
    assert_eq!(a.data.follower.tiers(), vec![Tier::Second]);
}

#[test]
fn a_provider_sees_nothing_from_before_its_grant() {
    let mut lab = Lab::new(21);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    device.sync(&mut lab);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);

    for _ in 0..5 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    let granted_at = lab.now + 1;
    lab.now = granted_at;
    let request = a.request(&mut lab, "insight", Tier::Second, 30);
    household.grant(&mut lab, &request, &a.card, &[Tier::Second]);
    device.sync(&mut lab);
    for _ in 0..3 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);

    let seen = a.verified();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|t| *t > granted_at), "{seen:?}");
    // Everything published before the grant stays out of reach: no earlier address is watched.
    let watched = a.data.follower.watch_addresses();
    let early: Vec<_> = lab
        .tangle
        .published
        .iter()
        .filter(|p| p.kind == PublishKind::Channel(protocol::channel::OutgoingKind::Data))
        .take(5)
        .collect();
    assert!(early.iter().all(|p| !watched.contains(&p.address)));
}
