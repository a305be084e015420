//! Membership over an in-memory tangle: grants, revocation, tiers, tampering and replay, all
//! through the public API (the attacker-with-keys tests are in `src/channel/tests.rs`).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;

use channel_support::{InMemoryTangle, Reader, TestRng, party, reading};
use protocol::channel::{
    DeviceChannel, FollowerConfig, FollowerEvent, MessageRejection, OutgoingKind, ProviderFollower,
    StreamConfig, Tier,
};
use protocol::crypto::Role;

fn device(rng: &mut TestRng) -> DeviceChannel {
    DeviceChannel::new(
        party(Role::Device, 1),
        &[StreamConfig::new(Tier::Second), StreamConfig::new(Tier::FifteenMinutes)],
        rng,
    )
    .unwrap()
}

fn reader_for(device: &DeviceChannel, n: u8) -> Reader {
    let keys = party(Role::Provider, n);
    let follower =
        ProviderFollower::new(&keys, device.public_keys().clone(), FollowerConfig::default());
    Reader::new(keys, follower)
}

fn publish_seconds(
    device: &mut DeviceChannel,
    tangle: &mut InMemoryTangle,
    from: u64,
    to: u64,
    rng: &mut TestRng,
) {
    for t in from..to {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, rng).unwrap());
        tangle.publish(device.tick(t, rng).unwrap());
    }
}

fn no_alarms(reader: &Reader) {
    for event in &reader.events {
        assert!(
            !matches!(
                event,
                FollowerEvent::Forged { .. }
                    | FollowerEvent::Fork { .. }
                    | FollowerEvent::Gap { .. }
                    | FollowerEvent::Rejected { .. }
                    | FollowerEvent::ChainMismatch { .. }
                    | FollowerEvent::Unconfirmed { .. }
            ),
            "unexpected {event:?}"
        );
    }
}

#[test]
fn three_providers_follow_one_is_revoked_the_others_continue_without_gap() {
    let mut rng = TestRng::new(1);
    let mut device = device(&mut rng);
    let mut tangle = InMemoryTangle::default();
    let mut readers: Vec<Reader> = (11..14).map(|n| reader_for(&device, n)).collect();
    for r in &readers {
        tangle.publish(device.grant(Tier::Second, r.keys.public().clone(), 999, &mut rng).unwrap());
    }

    publish_seconds(&mut device, &mut tangle, 1_000, 1_130, &mut rng);
    for r in &mut readers {
        r.sync(&tangle, 1_130);
    }
    let revoked_id = readers[2].keys.id();
    let revocation = device.revoke(Tier::Second, revoked_id, 1_130, &mut rng).unwrap();
    assert_eq!(revocation.len(), 1);
    assert_eq!(revocation[0].kind, OutgoingKind::Rotation);
    let log_before_revocation = tangle.log.len() + 1;
    tangle.publish(revocation);
    publish_seconds(&mut device, &mut tangle, 1_130, 1_300, &mut rng);
    tangle.publish(device.checkpoint_now(Tier::Second, 1_300, &mut rng).unwrap());
    for r in &mut readers {
        r.sync(&tangle, 1_300);
    }

    let everything: Vec<u64> = (1_000..1_300).collect();
    let mut rotations_seen = [3, 2].into_iter();
    for remaining in &readers[..2] {
        // No gap: every reading published is delivered as Verified, in order, exactly once.
        assert_eq!(remaining.verified_timestamps(), everything);
        // The first provider saw the grants of the other two and the revocation; the second
        // saw one grant and the revocation: every rotation was followed.
        assert_eq!(
            remaining.count(|e| matches!(e, FollowerEvent::Rotated { .. })),
            rotations_seen.next().unwrap()
        );
        assert_eq!(remaining.count(|e| matches!(e, FollowerEvent::Revoked { .. })), 0);
        no_alarms(remaining);
    }
    let revoked = &mut readers[2];
    assert_eq!(revoked.verified_timestamps(), (1_000..1_130).collect::<Vec<_>>());
    assert_eq!(
        revoked.count(|e| matches!(e, FollowerEvent::Revoked { tier: Tier::Second, .. })),
        1
    );
    assert!(revoked.follower.tiers().is_empty());
    no_alarms(revoked);

    // Whatever it watches, it finds nothing published after the rotation…
    let after: Vec<_> = tangle.log[log_before_revocation..].to_vec();
    let watched = revoked.follower.watch_addresses();
    assert!(after.iter().all(|item| !watched.contains(&item.address)));
    // …and forcing every post-rotation payload through it at every address it can use yields
    // no reading at all.
    for address in &watched {
        for item in &after {
            let events = revoked.follower.receive(&revoked.keys, address, &item.payload, 1_301);
            assert!(
                events.iter().all(|e| !matches!(
                    e,
                    FollowerEvent::Provisional { .. }
                        | FollowerEvent::Verified { .. }
                        | FollowerEvent::Joined { .. }
                        | FollowerEvent::Rotated { .. }
                )),
                "{events:?}"
            );
        }
    }
}

#[test]
fn tampered_ciphertext_is_rejected_at_once() {
    let mut rng = TestRng::new(2);
    let mut device = device(&mut rng);
    let mut tangle = InMemoryTangle::default();
    let mut reader = reader_for(&device, 21);
    tangle.publish(device.grant(Tier::Second, reader.keys.public().clone(), 0, &mut rng).unwrap());
    reader.sync(&tangle, 0);

    let mut items = device.publish(Tier::Second, &[reading(10)], 10, &mut rng).unwrap();
    let last = items[0].payload.len() - 1;
    items[0].payload[last] ^= 0x01;
    tangle.publish(items);
    let events = reader.sync(&tangle, 10);
    assert!(
        matches!(
            events.as_slice(),
            [FollowerEvent::Rejected { reason: MessageRejection::Unauthentic, position }] if position.seq == 0
        ),
        "{events:?}"
    );
    assert!(reader.verified_timestamps().is_empty());
}

#[test]
fn an_old_message_replayed_at_a_new_position_is_rejected() {
    let mut rng = TestRng::new(3);
    let mut device = device(&mut rng);
    let mut tangle = InMemoryTangle::default();
    let mut reader = reader_for(&device, 31);
    tangle.publish(device.grant(Tier::Second, reader.keys.public().clone(), 0, &mut rng).unwrap());
    publish_seconds(&mut device, &mut tangle, 1, 4, &mut rng);
    reader.sync(&tangle, 4);
    assert_eq!(reader.count(|e| matches!(e, FollowerEvent::Provisional { .. })), 3);

    // An attacker copies the first data message to the next address the reader watches.
    let old = tangle.log.iter().find(|i| i.kind == OutgoingKind::Data).unwrap().payload.clone();
    let next = reader
        .follower
        .watch_addresses()
        .into_iter()
        .find(|address| !tangle.messages.contains_key(address))
        .unwrap();
    tangle.insert_raw(next, old);
    let events = reader.sync(&tangle, 5);
    assert!(
        matches!(
            events.as_slice(),
            [FollowerEvent::Rejected { reason: MessageRejection::Unauthentic, position }] if position.seq == 3
        ),
        "{events:?}"
    );

    // The genuine message at that position is still accepted afterwards.
    publish_seconds(&mut device, &mut tangle, 4, 5, &mut rng);
    tangle.publish(device.checkpoint_now(Tier::Second, 5, &mut rng).unwrap());
    reader.sync(&tangle, 6);
    assert_eq!(reader.verified_timestamps(), vec![1, 2, 3, 4]);
}

#[test]
fn a_fifteen_minute_provider_gets_nothing_of_the_one_second_tier() {
    let mut rng = TestRng::new(4);
    let mut device = device(&mut rng);
    let mut tangle = InMemoryTangle::default();
    let mut coarse = reader_for(&device, 41);
    let mut fine = reader_for(&device, 42);
    tangle.publish(
        device.grant(Tier::FifteenMinutes, coarse.keys.public().clone(), 0, &mut rng).unwrap(),
    );
    tangle.publish(device.grant(Tier::Second, fine.keys.public().clone(), 0, &mut rng).unwrap());
    let second_stream_start = tangle.log.len();
    publish_seconds(&mut device, &mut tangle, 1, 121, &mut rng);
    let coarse_items =
        device.publish(Tier::FifteenMinutes, &[reading(900)], 900, &mut rng).unwrap();
    let coarse_addresses: Vec<_> = coarse_items.iter().map(|i| i.address).collect();
    tangle.publish(coarse_items);
    tangle.publish(device.checkpoint_now(Tier::Second, 901, &mut rng).unwrap());
    coarse.sync(&tangle, 901);
    fine.sync(&tangle, 901);

    assert_eq!(coarse.follower.tiers(), vec![Tier::FifteenMinutes]);
    assert_eq!(coarse.verified_timestamps(), vec![900]);
    assert_eq!(fine.verified_timestamps(), (1..121).collect::<Vec<_>>());
    no_alarms(&coarse);

    // Every 1 s stream message (data, checkpoints), tried at every address the coarse provider
    // can use, opens nothing.
    let one_second: Vec<_> = tangle.log[second_stream_start..]
        .iter()
        .filter(|i| i.kind != OutgoingKind::InboxKeyload)
        .filter(|i| !coarse_addresses.contains(&i.address))
        .cloned()
        .collect();
    let watched = coarse.follower.watch_addresses();
    assert!(one_second.iter().all(|item| !watched.contains(&item.address)));
    for item in &one_second {
        for address in &watched {
            let events = coarse.follower.receive(&coarse.keys, address, &item.payload, 902);
            assert!(events.iter().all(|e| !matches!(
                e,
                FollowerEvent::Provisional { .. } | FollowerEvent::Verified { .. }
            )));
        }
    }
    // The device's per-tier membership is what decides: the coarse provider is not a member of
    // the 1 s stream.
    assert!(!device.members(Tier::Second).unwrap().contains(&coarse.keys.id()));
}

#[test]
fn late_joiner_reads_nothing_from_before_its_grant() {
    let mut rng = TestRng::new(5);
    let mut device = device(&mut rng);
    let mut tangle = InMemoryTangle::default();
    let mut early = reader_for(&device, 51);
    let mut late = reader_for(&device, 52);
    tangle.publish(device.grant(Tier::Second, early.keys.public().clone(), 0, &mut rng).unwrap());
    publish_seconds(&mut device, &mut tangle, 1, 50, &mut rng);
    tangle.publish(device.grant(Tier::Second, late.keys.public().clone(), 50, &mut rng).unwrap());
    publish_seconds(&mut device, &mut tangle, 50, 70, &mut rng);
    tangle.publish(device.checkpoint_now(Tier::Second, 70, &mut rng).unwrap());
    early.sync(&tangle, 70);
    late.sync(&tangle, 70);
    assert_eq!(early.verified_timestamps(), (1..70).collect::<Vec<_>>());
    assert_eq!(late.verified_timestamps(), (50..70).collect::<Vec<_>>());
    no_alarms(&early);
    no_alarms(&late);
}

#[test]
fn membership_errors_are_typed() {
    let mut rng = TestRng::new(6);
    let mut device = device(&mut rng);
    let provider = party(Role::Provider, 61);
    device.grant(Tier::Second, provider.public().clone(), 0, &mut rng).unwrap();
    assert!(matches!(
        device.grant(Tier::Second, provider.public().clone(), 0, &mut rng),
        Err(protocol::channel::ChannelError::AlreadyMember(_))
    ));
    assert!(matches!(
        device.revoke(Tier::FifteenMinutes, provider.id(), 0, &mut rng),
        Err(protocol::channel::ChannelError::NotMember(_))
    ));
    assert!(matches!(
        device.publish(Tier::Hour, &[reading(1)], 1, &mut rng),
        Err(protocol::channel::ChannelError::UnknownTier(Tier::Hour))
    ));
    assert!(matches!(
        device.grant(Tier::Second, party(Role::Wallet, 62).public().clone(), 0, &mut rng),
        Err(protocol::channel::ChannelError::NotAProvider)
    ));
    assert!(matches!(
        device.publish(Tier::Second, &[], 1, &mut rng),
        Err(protocol::channel::ChannelError::ReadingCount { got: 0, .. })
    ));
}

#[test]
fn inbox_keyloads_from_another_device_or_for_another_provider_are_refused() {
    use protocol::channel::InboxRejection;
    let mut rng = TestRng::new(7);
    let mut device_a = device(&mut rng);
    let mut device_b =
        DeviceChannel::new(party(Role::Device, 2), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut reader = reader_for(&device_a, 71);
    let other = party(Role::Provider, 72);
    let inbox = reader.keys.public().inbox_address();
    let keyload_of = |items: Vec<protocol::channel::Outgoing>| {
        items.into_iter().find(|i| i.kind == OutgoingKind::InboxKeyload).unwrap().payload
    };

    // Device B grants our provider: well formed and for us, but not signed by device A.
    let from_b = keyload_of(
        device_b.grant(Tier::Second, reader.keys.public().clone(), 0, &mut rng).unwrap(),
    );
    // Device A grants another provider: signed by A, but sealed to someone else.
    let for_other =
        keyload_of(device_a.grant(Tier::Second, other.public().clone(), 0, &mut rng).unwrap());
    let mut truncated = for_other.clone();
    truncated.pop();

    for (payload, expected) in [
        (from_b, InboxRejection::NotFromDevice),
        (for_other, InboxRejection::NotForUs),
        (truncated, InboxRejection::NotAKeyload),
    ] {
        let events = reader.follower.receive(&reader.keys, &inbox, &payload, 1);
        assert_eq!(events, vec![FollowerEvent::InboxRejected { reason: expected }]);
    }
    assert!(reader.follower.tiers().is_empty());
}
