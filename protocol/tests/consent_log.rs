//! The consent log's integrity: events not signed by the owner are ignored; reordered,
//! replayed and forked logs are detected and reported; a device ignores events for other
//! devices.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use channel_support::party;
use consent_support::{Device, Household, Lab, Provider, pair};
use protocol::channel::Tier;
use protocol::consent::{
    ConsentError, ConsentEvent, ConsentLogWriter, ConsentReport, EventKind, Grant, IgnoredEntry,
    LogAnomaly, LogOutcome, LogReader, WrittenEntry, verify_chain,
};
use protocol::crypto::Role;

/// A grant event for `provider` (not yet written).
fn grant_event(lab: &mut Lab, household: &Household, provider: &Provider) -> ConsentEvent {
    let request = provider.request(lab, "insight", Tier::Second, 30);
    let grant = Grant::answering(
        &request,
        &provider.card,
        &[Tier::Second],
        household.writer.keys(),
        &mut lab.rng,
    )
    .unwrap();
    ConsentEvent {
        device: household.paired.device.id(),
        time: lab.now,
        kind: EventKind::Granted(Box::new(grant)),
    }
}

fn write(lab: &mut Lab, household: &mut Household, event: &ConsentEvent) -> WrittenEntry {
    household.writer.append(&household.paired.owner, event, &mut lab.rng).unwrap()
}

#[test]
fn entries_not_signed_by_the_owner_are_ignored_and_do_not_block_the_real_ones() {
    let mut lab = Lab::new(10);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    device.sync(&mut lab);
    let provider = Provider::new(&mut lab, 1, "Wattt", &device);

    // Worst case: someone who learned the log key (so can compute addresses and encrypt) but
    // does not hold the owner's signing key writes a grant for its own provider.
    let intruder_owner = party(Role::Wallet, 66);
    let mut intruder =
        ConsentLogWriter::new(household.paired.device.id(), &household.paired.log_key);
    let event = grant_event(&mut lab, &household, &provider);
    let denial = EventKind::Denied {
        provider: provider.keys.id(),
        request_digest: [0; 32],
        reason: String::new(),
    };
    intruder
        .append(&intruder_owner, &ConsentEvent { kind: denial, ..event.clone() }, &mut lab.rng)
        .unwrap();
    let forged = intruder.append(&intruder_owner, &event, &mut lab.rng).unwrap();
    assert_eq!(forged.publish.address, household.writer.keys().entry_address(1));
    lab.tangle.publish([forged.publish]);
    // And plain garbage at the same address.
    lab.tangle.publish([protocol::consent::Publish {
        payload: vec![1, 2, 3],
        ..household.written[0].publish.clone()
    }]);
    lab.tangle.publish([protocol::consent::Publish {
        address: household.writer.keys().entry_address(1),
        payload: vec![0; 4000],
        kind: protocol::consent::PublishKind::LogEntry,
    }]);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Ignored(IgnoredEntry::NotSignedByOwner)));
    assert!(reports.contains(&ConsentReport::Ignored(IgnoredEntry::Malformed)));
    assert!(!reports.iter().any(|r| matches!(r, ConsentReport::GrantStarted { .. })));
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());

    // The owner's genuine grant at the same position is then accepted.
    let genuine = grant_event(&mut lab, &household, &provider);
    let written = write(&mut lab, &mut household, &genuine);
    lab.tangle.publish([written.publish]);
    let reports = device.sync(&mut lab);
    assert!(reports.iter().any(|r| matches!(r, ConsentReport::GrantStarted { .. })));
    assert_eq!(device.channel.members(Tier::Second).unwrap(), vec![provider.keys.id()]);
}

#[test]
fn reordered_replayed_and_forked_logs_are_detected() {
    let mut lab = Lab::new(11);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    let provider = Provider::new(&mut lab, 1, "Wattt", &device);
    let keys_owner = household.paired.owner.public().clone();
    let device_id = household.paired.device.id();
    let mut reader = LogReader::new(device_id, keys_owner.clone(), &household.paired.log_key);
    let [a0, a1, a2, a3] = [0, 1, 2, 3].map(|i| household.writer.keys().entry_address(i));

    let paired_entry = household.written[0].publish.payload.clone();
    assert!(matches!(reader.receive(&a0, &paired_entry), LogOutcome::Accepted(_)));
    assert!(matches!(
        reader.receive(&a0, &paired_entry),
        LogOutcome::Ignored(IgnoredEntry::Duplicate)
    ));

    lab.now += 5;
    let grant = grant_event(&mut lab, &household, &provider);
    let grant_id = match &grant.kind {
        EventKind::Granted(g) => g.id,
        _ => unreachable!(),
    };
    let e1 = write(&mut lab, &mut household, &grant);
    lab.now += 5;
    let revoke = ConsentEvent {
        device: device_id,
        time: lab.now,
        kind: EventKind::Revoked { grant: grant_id, reason: String::new() },
    };
    let e2 = write(&mut lab, &mut household, &revoke);

    // Reordered: entry 2 published where entry 1 belongs.
    assert!(matches!(
        reader.receive(&a1, &e2.publish.payload),
        LogOutcome::Anomaly(LogAnomaly::Misplaced { at: 1, claims: 2 })
    ));
    assert!(matches!(reader.receive(&a1, &e1.publish.payload), LogOutcome::Accepted(_)));
    // Replayed: the pairing entry re-published at the next position.
    assert!(matches!(
        reader.receive(&a2, &paired_entry),
        LogOutcome::Anomaly(LogAnomaly::Misplaced { at: 2, claims: 0 })
    ));
    assert!(matches!(reader.receive(&a2, &e2.publish.payload), LogOutcome::Accepted(_)));

    // Forked: a clone of the owner's wallet writes a different history from position 0.
    let mut fork = ConsentLogWriter::new(device_id, &household.paired.log_key);
    let f0 = fork
        .append(
            &household.paired.owner,
            &ConsentEvent {
                device: device_id,
                time: lab.now,
                kind: EventKind::DevicePaired {
                    owner: household.paired.owner.id(),
                    pairing_id: [9; 32],
                },
            },
            &mut lab.rng,
        )
        .unwrap();
    let f1 = fork
        .append(
            &household.paired.owner,
            &grant_event(&mut lab, &household, &provider),
            &mut lab.rng,
        )
        .unwrap();
    // Position 2 of the fork (not published): the fork's position 3 then chains to it.
    let _f2 = fork
        .append(
            &household.paired.owner,
            &grant_event(&mut lab, &household, &provider),
            &mut lab.rng,
        )
        .unwrap();
    assert!(matches!(
        reader.receive(&a0, &f0.publish.payload),
        LogOutcome::Anomaly(LogAnomaly::Forked { index: 0 })
    ));
    assert!(matches!(
        reader.receive(&a1, &f1.publish.payload),
        LogOutcome::Anomaly(LogAnomaly::Forked { index: 1 })
    ));
    // The fork's next entry chains to the fork, not to the accepted history.
    let f3 = fork
        .append(
            &household.paired.owner,
            &grant_event(&mut lab, &household, &provider),
            &mut lab.rng,
        )
        .unwrap();
    assert_eq!(f3.publish.address, a3);
    assert!(matches!(
        reader.receive(&a3, &f3.publish.payload),
        LogOutcome::Anomaly(LogAnomaly::ChainBroken { index: 3 })
    ));

    // Time going backwards in an otherwise well-chained entry.
    lab.now -= 100;
    let stale = grant_event(&mut lab, &household, &provider);
    let e3 = write(&mut lab, &mut household, &stale);
    assert!(matches!(
        reader.receive(&a3, &e3.publish.payload),
        LogOutcome::Anomaly(LogAnomaly::TimeWentBackwards { index: 3 })
    ));
    assert_eq!(reader.next_index(), 3, "nothing inconsistent was accepted");

    // The device's follower reports the same evidence through its driver.
    lab.tangle.publish([e2.publish.clone()]);
    let mut misplaced = e2.publish.clone();
    misplaced.address = a1;
    lab.tangle.publish([misplaced]);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Anomaly(LogAnomaly::Misplaced { at: 1, claims: 2 })));
}

#[test]
fn offline_chain_verification_catches_reordering_removal_and_wrong_keys() {
    let mut lab = Lab::new(12);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    let provider = Provider::new(&mut lab, 1, "Wattt", &device);
    for _ in 0..3 {
        lab.now += 1;
        let event = grant_event(&mut lab, &household, &provider);
        household.append(&mut lab, event.kind);
    }
    let device_id = household.paired.device.id();
    let owner = household.paired.owner.public().clone();
    let entries = household.entries();
    assert_eq!(verify_chain(device_id, &owner, &entries).unwrap().len(), 4);

    let mut swapped = entries.clone();
    swapped.swap(1, 2);
    assert!(matches!(
        verify_chain(device_id, &owner, &swapped),
        Err(ConsentError::Anomaly(LogAnomaly::Misplaced { at: 1, claims: 2 }))
    ));
    let mut dropped = entries.clone();
    dropped.remove(2);
    assert!(matches!(
        verify_chain(device_id, &owner, &dropped),
        Err(ConsentError::Anomaly(LogAnomaly::Misplaced { at: 2, claims: 3 }))
    ));
    let mut wrong_key = entries.clone();
    wrong_key[1].1 = entries[2].1.clone();
    assert_eq!(verify_chain(device_id, &owner, &wrong_key), Err(ConsentError::Undecryptable));
    let mut altered = entries.clone();
    let at = altered[1].0.len() / 2;
    altered[1].0[at] ^= 1;
    assert_eq!(verify_chain(device_id, &owner, &altered), Err(ConsentError::NotSignedByOwner));
    let other_owner = party(Role::Wallet, 5).public().clone();
    assert_eq!(
        verify_chain(device_id, &other_owner, &entries),
        Err(ConsentError::NotSignedByOwner)
    );
}

#[test]
fn a_device_ignores_events_for_other_devices() {
    let mut lab = Lab::new(13);
    let mut device_a = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut device_b = Device::new(&mut lab, 2, &[Tier::Second]);
    let mut home_a = pair(&mut lab, 1, &mut device_a);
    let mut home_b = pair(&mut lab, 1, &mut device_b);
    device_a.sync(&mut lab);
    device_b.sync(&mut lab);
    let provider = Provider::new(&mut lab, 1, "Wattt", &device_b);

    // The same wallet grants on device B; the entry is copied to device A's next log address.
    let grant = grant_event(&mut lab, &home_b, &provider);
    let entry_b = write(&mut lab, &mut home_b, &grant);
    let mut copied = entry_b.publish.clone();
    copied.address = home_a.writer.keys().entry_address(1);
    lab.tangle.publish([copied]);
    let reports = device_a.sync(&mut lab);
    assert_eq!(reports, vec![ConsentReport::Ignored(IgnoredEntry::NotSignedByOwner)]);
    assert!(device_a.channel.members(Tier::Second).unwrap().is_empty());

    // Even a reader that (wrongly) trusted B's owner keys and log key refuses the entry when it
    // reads on behalf of device A: the signature covers the device identity.
    let mut confused = LogReader::new(
        home_a.paired.device.id(),
        home_b.paired.owner.public().clone(),
        &home_b.paired.log_key,
    );
    assert!(matches!(
        confused
            .receive(&home_b.writer.keys().entry_address(0), &home_b.written[0].publish.payload),
        LogOutcome::Ignored(IgnoredEntry::NotSignedByOwner)
    ));
    // A wallet cannot write an event naming another device into this log.
    assert_eq!(
        home_a.writer.append(&home_a.paired.owner, &grant, &mut lab.rng).map(|_| ()),
        Err(ConsentError::OtherDevice)
    );

    // Device B, whose log it is, acts on it.
    lab.tangle.publish([entry_b.publish]);
    let reports = device_b.sync(&mut lab);
    assert!(reports.iter().any(|r| matches!(r, ConsentReport::GrantStarted { .. })));
}

#[test]
fn a_wallet_resumes_its_log_from_the_entries_and_can_still_revoke_an_earlier_grant() {
    let mut lab = Lab::new(12);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let mut household = pair(&mut lab, 1, &mut device);
    let provider = Provider::new(&mut lab, 1, "Wattt", &device);
    let request = provider.request(&mut lab, "insight", Tier::Second, 30);
    let grant = household.grant(&mut lab, &request, &provider.card, &[Tier::Second]);
    device.sync(&mut lab);
    assert_eq!(device.channel.members(Tier::Second).unwrap(), vec![provider.keys.id()]);

    // A reloaded wallet reads its own log back and continues it.
    let device_id = household.paired.device.id();
    let owner = household.paired.owner.public().clone();
    let mut reader = LogReader::new(device_id, owner, &household.paired.log_key);
    let accepted: Vec<_> = household
        .written
        .iter()
        .enumerate()
        .map(|(i, w)| {
            match reader.receive(&reader.keys().entry_address(i as u64), &w.publish.payload) {
                LogOutcome::Accepted(entry) => *entry,
                other => panic!("entry {i}: {other:?}"),
            }
        })
        .collect();
    let mut resumed =
        ConsentLogWriter::resume(device_id, &household.paired.log_key, &accepted).unwrap();
    assert_eq!(resumed.next_index(), 2);
    assert!(resumed.grant_key(grant).is_some(), "the grant key came back from the grant entry");
    lab.now += 5;
    let revoke = ConsentEvent {
        device: device_id,
        time: lab.now,
        kind: EventKind::Revoked { grant, reason: String::new() },
    };
    let written = resumed.append(&household.paired.owner, &revoke, &mut lab.rng).unwrap();
    lab.tangle.publish([written.publish]);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Revoked { grant }), "{reports:?}");
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());

    // Entries out of order, or of another device, are refused.
    let swapped = [accepted[1].clone(), accepted[0].clone()];
    assert!(matches!(
        ConsentLogWriter::resume(device_id, &household.paired.log_key, &swapped),
        Err(ConsentError::Anomaly(LogAnomaly::Misplaced { at: 0, claims: 1 }))
    ));
    let other = party(Role::Device, 99).id();
    assert!(matches!(
        ConsentLogWriter::resume(other, &household.paired.log_key, &accepted),
        Err(ConsentError::OtherDevice)
    ));
}
