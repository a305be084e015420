//! The device's consent follower: exactly the granted tiers, amendments, expiry by the device's
//! own clock, and removal / re-pairing ending every grant.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use consent_support::{DAY, Device, Lab, Provider, pair};
use protocol::channel::{FollowerEvent, Tier};
use protocol::consent::{
    ConsentError, ConsentReport, EventKind, Grant, GrantRefusal, NoticeOutcome, PublishKind,
    RemovalReason,
};

fn log_entries(lab: &Lab) -> usize {
    lab.tangle.published.iter().filter(|p| p.kind == PublishKind::LogEntry).count()
}

#[test]
fn a_grant_delivers_exactly_the_granted_tiers_and_amendments_change_them() {
    let mut lab = Lab::new(30);
    let tiers = [Tier::Second, Tier::TenSeconds, Tier::FifteenMinutes];
    let mut device = Device::new(&mut lab, 1, &tiers);
    let mut household = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let request = a.request(&mut lab, "insight", Tier::TenSeconds, 30);

    // A finer tier than the request allows cannot even be written as a grant.
    assert_eq!(
        Grant::answering(&request, &a.card, &[Tier::Second], household.writer.keys(), &mut lab.rng)
            .map(|_| ()),
        Err(ConsentError::TiersNotAllowed)
    );
    let grant =
        household.grant(&mut lab, &request, &a.card, &[Tier::TenSeconds, Tier::FifteenMinutes]);
    device.sync(&mut lab);
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    assert_eq!(device.channel.members(Tier::TenSeconds).unwrap(), vec![a.keys.id()]);
    assert_eq!(device.channel.members(Tier::FifteenMinutes).unwrap(), vec![a.keys.id()]);
    a.sync(&mut lab);
    assert_eq!(a.data.follower.tiers(), vec![Tier::TenSeconds, Tier::FifteenMinutes]);

    // Narrowed to 15 minutes: the 10 s stream rotates A out; A is told.
    lab.now += 60;
    let end = lab.now + 10 * DAY;
    household
        .append(&mut lab, EventKind::Amended { grant, tiers: vec![Tier::FifteenMinutes], end });
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Amended { grant, tiers: vec![Tier::FifteenMinutes] }));
    assert!(device.channel.members(Tier::TenSeconds).unwrap().is_empty());
    assert_eq!(device.channel.members(Tier::FifteenMinutes).unwrap(), vec![a.keys.id()]);
    a.sync(&mut lab);
    assert!(a.outcomes.iter().any(|o| matches!(
        o,
        NoticeOutcome::Amended { tiers, .. } if tiers == &vec![Tier::FifteenMinutes]
    )));
    assert_eq!(a.data.follower.tiers(), vec![Tier::FifteenMinutes]);

    // A grant for a tier the device does not publish is refused, not half-applied.
    let mut b = Provider::new(&mut lab, 2, "Hourly", &device);
    let request_b = b.request(&mut lab, "daily report", Tier::Hour, 30);
    let grant_b = household.grant(&mut lab, &request_b, &b.card, &[Tier::Hour]);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::GrantRefused {
        grant: grant_b,
        reason: GrantRefusal::UnservedTier(Tier::Hour)
    }));
    b.sync(&mut lab);
    assert!(b.outcomes.is_empty());

    // The amended (earlier) end is the one the device enforces and the provider accepts.
    assert_eq!(a.consent.end_of(grant), Some(end));
    lab.now = end;
    assert!(device.sync(&mut lab).contains(&ConsentReport::Expired { grant }));
    a.sync(&mut lab);
    assert!(matches!(a.outcomes.last(), Some(NoticeOutcome::Expired { grant: g }) if *g == grant));
}

#[test]
fn expiry_rotates_keys_on_the_device_clock_without_any_wallet_action() {
    let mut lab = Lab::new(31);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let request = a.request(&mut lab, "insight", Tier::Second, 2);
    let grant = household.grant(&mut lab, &request, &a.card, &[Tier::Second]);
    device.sync(&mut lab);
    for _ in 0..3 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);
    assert_eq!(a.verified().len(), 3);

    // Just before the end nothing happens; at the end the device rotates on its own.
    let entries_before = log_entries(&lab);
    lab.now = request.request().end - 1;
    assert!(!device.sync(&mut lab).contains(&ConsentReport::Expired { grant }));
    assert_eq!(device.channel.members(Tier::Second).unwrap(), vec![a.keys.id()]);
    lab.now = request.request().end;
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Expired { grant }));
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    assert_eq!(log_entries(&lab), entries_before, "the wallet wrote nothing");

    a.sync(&mut lab);
    assert!(
        a.outcomes.iter().any(|o| matches!(o, NoticeOutcome::Expired { grant: g } if *g == grant))
    );
    assert_eq!(a.data.count(|e| matches!(e, FollowerEvent::Revoked { .. })), 1);
    for _ in 0..3 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);
    assert_eq!(a.verified().len(), 3, "nothing after expiry");
}

#[test]
fn removal_by_the_owner_ends_every_grant() {
    let mut lab = Lab::new(32);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second, Tier::FifteenMinutes]);
    let mut household = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let mut b = Provider::new(&mut lab, 2, "GridFlex", &device);
    let request_a = a.request(&mut lab, "insight", Tier::Second, 30);
    let request_b = b.request(&mut lab, "flex", Tier::FifteenMinutes, 30);
    household.grant(&mut lab, &request_a, &a.card, &[Tier::Second]);
    household.grant(&mut lab, &request_b, &b.card, &[Tier::FifteenMinutes]);
    device.sync(&mut lab);

    household.append(&mut lab, EventKind::DeviceRemoved { reason: RemovalReason::HandedOver });
    let reports = device.sync(&mut lab);
    assert!(
        reports.contains(&ConsentReport::DeviceRemoved { reason: Some(RemovalReason::HandedOver) })
    );
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    assert!(device.channel.members(Tier::FifteenMinutes).unwrap().is_empty());
    assert!(device.follower.as_ref().unwrap().is_ended());
    a.sync(&mut lab);
    b.sync(&mut lab);
    for provider in [&a, &b] {
        assert!(matches!(provider.outcomes.last(), Some(NoticeOutcome::DeviceRemoved { .. })));
    }

    // Whatever the old owner writes afterwards changes nothing.
    let again = a.request(&mut lab, "insight", Tier::Second, 30);
    household.grant(&mut lab, &again, &a.card, &[Tier::Second]);
    device.sync(&mut lab);
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
}

#[test]
fn a_reset_and_re_pairing_end_every_grant_of_the_previous_occupant() {
    let mut lab = Lab::new(33);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second, Tier::FifteenMinutes]);
    let mut old_home = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let mut b = Provider::new(&mut lab, 2, "GridFlex", &device);
    let request_a = a.request(&mut lab, "insight", Tier::Second, 30);
    let request_b = b.request(&mut lab, "flex", Tier::FifteenMinutes, 30);
    old_home.grant(&mut lab, &request_a, &a.card, &[Tier::Second]);
    old_home.grant(&mut lab, &request_b, &b.card, &[Tier::FifteenMinutes]);
    device.sync(&mut lab);
    a.sync(&mut lab);
    b.sync(&mut lab);

    // The old occupant moves out without touching the wallet; the new one resets the reader.
    lab.now += DAY;
    device.reset(&mut lab);
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    assert!(device.channel.members(Tier::FifteenMinutes).unwrap().is_empty());
    let new_home = pair(&mut lab, 2, &mut device);
    assert_ne!(new_home.paired.log_key, old_home.paired.log_key);
    device.sync(&mut lab);
    a.sync(&mut lab);
    b.sync(&mut lab);
    for provider in [&a, &b] {
        assert!(matches!(provider.outcomes.last(), Some(NoticeOutcome::DeviceRemoved { .. })));
    }

    // The previous occupant's wallet can still write to its old log: the device no longer
    // follows it, so no key reaches anyone.
    let again = a.request(&mut lab, "insight", Tier::Second, 30);
    old_home.grant(&mut lab, &again, &a.card, &[Tier::Second]);
    device.sync(&mut lab);
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    let seen_before = a.verified().len();
    for _ in 0..3 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);
    assert_eq!(a.verified().len(), seen_before);
}

#[test]
fn the_pairing_and_the_follower_survive_a_restart_without_redoing_or_reusing_anything() {
    let mut lab = Lab::new(34);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    let mut a = Provider::new(&mut lab, 1, "Wattt", &device);
    let request = a.request(&mut lab, "insight", Tier::Second, 30);
    let grant = household.grant(&mut lab, &request, &a.card, &[Tier::Second]);
    device.sync(&mut lab);
    for _ in 0..3 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);
    assert_eq!(a.verified().len(), 3);
    lab.now += 60;
    assert!(device.sync(&mut lab).contains(&ConsentReport::ReceiptIssued {
        grant,
        tier: Tier::Second,
        count: 3
    }));

    device.restart(&mut lab);
    // Re-reading the log after the restart changes nothing: no grant is started again.
    let reports = device.sync(&mut lab);
    assert!(reports.iter().all(|r| matches!(r, ConsentReport::Ignored(_))), "{reports:?}");
    assert_eq!(device.channel.members(Tier::Second).unwrap(), vec![a.keys.id()]);
    assert_eq!(device.follower.as_ref().unwrap().live_grants().len(), 1);

    // Data continues in a fresh epoch; the provider follows it.
    for _ in 0..2 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.checkpoint(&mut lab, Tier::Second);
    a.sync(&mut lab);
    assert_eq!(a.verified().len(), 5);

    // The next receipt covers only what came after the first one, at a new address.
    lab.now += 60;
    assert!(device.sync(&mut lab).contains(&ConsentReport::ReceiptIssued {
        grant,
        tier: Tier::Second,
        count: 2
    }));
    let receipt_addresses: Vec<_> = lab
        .tangle
        .published
        .iter()
        .filter(|p| p.kind == PublishKind::DeliveryReceipt)
        .map(|p| p.address)
        .collect();
    assert_eq!(receipt_addresses.len(), 2);
    assert_ne!(receipt_addresses[0], receipt_addresses[1]);

    // And the restored follower still enforces: a revocation rotates the provider out.
    household.append(&mut lab, EventKind::Revoked { grant, reason: String::new() });
    assert!(device.sync(&mut lab).contains(&ConsentReport::Revoked { grant }));
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    a.sync(&mut lab);
    assert!(matches!(a.outcomes.last(), Some(NoticeOutcome::Revoked { .. })));
}

#[test]
fn corrupted_saved_state_is_refused_with_an_error() {
    let mut lab = Lab::new(35);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let household = pair(&mut lab, 1, &mut device);
    device.sync(&mut lab);
    let saved = device.follower.as_ref().unwrap().save();
    let restore = |bytes: &[u8], device_id| {
        protocol::consent::DeviceConsentFollower::restore(
            bytes,
            device_id,
            household.paired.owner.public().clone(),
            &household.paired.log_key,
            protocol::consent::ConsentFollowerConfig::default(),
        )
        .map(|_| ())
    };
    assert_eq!(restore(&saved, device.keys.id()), Ok(()));
    assert!(restore(&saved[..saved.len() - 1], device.keys.id()).is_err());
    assert_eq!(
        restore(&saved, channel_support::party(protocol::crypto::Role::Device, 2).id()),
        Err(ConsentError::OtherDevice)
    );
    let mut bad_magic = saved.clone();
    bad_magic[0] ^= 1;
    assert!(restore(&bad_magic, device.keys.id()).is_err());
    let paired = device.paired.as_ref().unwrap().encode();
    assert!(protocol::pairing::Paired::decode(&paired[..10]).is_err());
}
