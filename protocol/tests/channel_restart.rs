//! Restarts at random points, including from older copies of the saved state: no address,
//! nonce or (epoch, sequence) position is ever used twice, and a follower sees every reading
//! either verified or reported unconfirmed — never forged, forked or rejected.
//!
//! The scenario runs as a native proptest and, deterministically, on every target (wasm32 too).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;

use std::collections::BTreeSet;

use channel_support::{InMemoryTangle, Reader, TestRng, party, reading};
use protocol::channel::{
    DeviceChannel, FollowerConfig, FollowerEvent, OutgoingKind, ProviderFollower, SavedDevice,
    StreamConfig, Tier,
};
use protocol::crypto::{PartyKeys, Role};

/// One step of a device's life.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Publish this many 1 s readings (ticking after each).
    Publish(u8),
    /// Grant or revoke optional provider 0 or 1 (toggles membership).
    Toggle(u8),
    /// Save the state (a snapshot a later restart may restore).
    Save,
    /// Crash and restart from the newest snapshot.
    RestartLatest,
    /// Crash and restart from an older snapshot (index counted from the oldest, modulo).
    RestartOlder(u8),
}

const DEVICE_SECRET: u8 = 1;

fn device_keys() -> PartyKeys {
    party(Role::Device, DEVICE_SECRET)
}

/// Runs `ops` and checks every invariant; panics on a violation.
pub fn run_scenario(seed: u64, ops: &[Op]) {
    let mut rng = TestRng::new(seed);
    let config = [StreamConfig { tier: Tier::Second, checkpoint_interval_secs: 8 }];
    let mut device = DeviceChannel::new(device_keys(), &config, &mut rng).unwrap();
    let mut tangle = InMemoryTangle::default();
    let optional: Vec<PartyKeys> = (0..2).map(|i| party(Role::Provider, 100 + i)).collect();
    let steady_keys = party(Role::Provider, 99);
    let follower_config =
        FollowerConfig { past_epochs: 64, lookahead: 64, unconfirmed_after_secs: u64::MAX / 4 };
    let mut steady = Reader::new(
        steady_keys,
        ProviderFollower::new(
            &party(Role::Provider, 99),
            device.public_keys().clone(),
            follower_config,
        ),
    );
    tangle.publish(device.grant(Tier::Second, steady.keys.public().clone(), 0, &mut rng).unwrap());
    let mut snapshots = vec![device.save()];
    let mut now = 1;
    let mut published_readings = Vec::new();

    for op in ops {
        match *op {
            Op::Publish(n) => {
                for _ in 0..n {
                    tangle.publish(
                        device.publish(Tier::Second, &[reading(now)], now, &mut rng).unwrap(),
                    );
                    published_readings.push(now);
                    now += 1;
                    tangle.publish(device.tick(now, &mut rng).unwrap());
                }
            }
            Op::Toggle(which) => {
                let member = &optional[usize::from(which % 2)];
                let items = if device.members(Tier::Second).unwrap().contains(&member.id()) {
                    device.revoke(Tier::Second, member.id(), now, &mut rng).unwrap()
                } else {
                    device.grant(Tier::Second, member.public().clone(), now, &mut rng).unwrap()
                };
                tangle.publish(items);
            }
            Op::Save => snapshots.push(device.save()),
            Op::RestartLatest | Op::RestartOlder(_) => {
                let index = match *op {
                    Op::RestartOlder(i) => usize::from(i) % snapshots.len(),
                    _ => snapshots.len() - 1,
                };
                let saved = SavedDevice::decode(&snapshots[index]).unwrap();
                let (resumed, items) = saved.resume(device_keys(), now, &mut rng).unwrap();
                assert!(items.iter().all(|i| i.kind == OutgoingKind::InboxKeyload));
                device = resumed;
                tangle.publish(items);
            }
        }
        steady.sync(&tangle, now);
    }
    tangle.publish(device.checkpoint_now(Tier::Second, now, &mut rng).unwrap());
    steady.sync(&tangle, now);
    steady.events.extend(steady.follower.tick(u64::MAX));

    // 1. No stream address, nonce or position is ever reused.
    let stream_items: Vec<_> =
        tangle.log.iter().filter(|i| i.kind != OutgoingKind::InboxKeyload).collect();
    let addresses: BTreeSet<_> = stream_items.iter().map(|i| i.address).collect();
    assert_eq!(addresses.len(), stream_items.len(), "address reused");
    let nonces: BTreeSet<_> = stream_items.iter().map(|i| i.payload[1..25].to_vec()).collect();
    assert_eq!(nonces.len(), stream_items.len(), "nonce reused");

    // 2. The steady provider saw no forgery, fork, rejection or broken chain…
    for event in &steady.events {
        assert!(
            !matches!(
                event,
                FollowerEvent::Forged { .. }
                    | FollowerEvent::Fork { .. }
                    | FollowerEvent::Rejected { .. }
                    | FollowerEvent::ChainMismatch { .. }
                    | FollowerEvent::Gap { .. }
                    | FollowerEvent::Revoked { .. }
            ),
            "{event:?}"
        );
    }
    // …no position twice (positions are unique because (epoch, seq) is never reused)…
    let mut positions = BTreeSet::new();
    let mut verified = Vec::new();
    let mut unconfirmed = BTreeSet::new();
    for event in &steady.events {
        match event {
            FollowerEvent::Verified { position, readings, .. } => {
                assert!(positions.insert(*position), "position verified twice: {position:?}");
                verified.extend(readings.iter().map(|r| r.timestamp));
            }
            FollowerEvent::Unconfirmed { position } => {
                unconfirmed.insert(*position);
            }
            _ => {}
        }
    }
    // …and every published reading is accounted for: verified, or reported unconfirmed because
    // a restart abandoned it before its checkpoint.
    assert!(verified.windows(2).all(|w| w[0] < w[1]), "verified out of order or twice");
    assert!(positions.is_disjoint(&unconfirmed));
    assert_eq!(verified.len() + unconfirmed.len(), published_readings.len(), "{ops:?}");
}

#[test]
fn restarts_from_latest_and_older_state_never_reuse_anything() {
    use Op::*;
    let fixed: [&[Op]; 3] = [
        &[Publish(5), Save, Publish(3), RestartLatest, Publish(4)],
        &[
            Publish(3),
            Save,
            Publish(10),
            Toggle(0),
            Save,
            Publish(2),
            RestartOlder(0),
            Publish(9),
            RestartLatest,
            Publish(2),
        ],
        &[
            Toggle(1),
            Publish(2),
            Save,
            RestartOlder(0),
            RestartOlder(0),
            Publish(1),
            Toggle(1),
            Publish(12),
            Save,
            RestartOlder(1),
            Publish(3),
        ],
    ];
    for (seed, ops) in fixed.iter().enumerate() {
        run_scenario(seed as u64, ops);
    }
    // Pseudo-random schedules, reproducible on every target.
    for seed in 10..13u64 {
        let mut dice = TestRng::new(seed);
        let ops: Vec<Op> = (0..12)
            .map(|_| match dice.next_below(6) {
                0 | 1 => Op::Publish(dice.next_below(10) as u8 + 1),
                2 => Op::Toggle(dice.next_below(2) as u8),
                3 => Op::Save,
                4 => Op::RestartLatest,
                _ => Op::RestartOlder(dice.next_below(8) as u8),
            })
            .collect();
        run_scenario(seed, &ops);
    }
}

#[test]
fn resume_refuses_another_devices_state_and_garbage() {
    let mut rng = TestRng::new(7);
    let device =
        DeviceChannel::new(device_keys(), &[StreamConfig::new(Tier::Second)], &mut rng).unwrap();
    let saved = SavedDevice::decode(&device.save()).unwrap();
    assert!(matches!(
        saved.resume(party(Role::Device, 2), 0, &mut rng),
        Err(protocol::channel::ChannelError::KeysMismatch)
    ));
    let bytes = device.save();
    for cut in 0..bytes.len() {
        assert!(SavedDevice::decode(&bytes[..cut]).is_err());
    }
    let mut wrong_version = bytes.clone();
    wrong_version[4] = 9;
    assert!(SavedDevice::decode(&wrong_version).is_err());
}

#[test]
fn provider_state_round_trips_encrypted_and_resumes_following() {
    let mut rng = TestRng::new(8);
    let mut device =
        DeviceChannel::new(device_keys(), &[StreamConfig::new(Tier::Second)], &mut rng).unwrap();
    let provider = party(Role::Provider, 80);
    let mut reader = Reader::new(
        party(Role::Provider, 80),
        ProviderFollower::new(&provider, device.public_keys().clone(), FollowerConfig::default()),
    );
    let mut tangle = InMemoryTangle::default();
    tangle.publish(device.grant(Tier::Second, provider.public().clone(), 0, &mut rng).unwrap());
    for t in 1..20 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    reader.sync(&tangle, 20);
    let saved = reader.follower.save(&reader.keys, &mut rng).unwrap();
    // Encrypted at rest: the epoch key material is not visible, and another provider can't open it.
    assert!(ProviderFollower::restore(&party(Role::Provider, 81), &saved).is_err());
    let mut tampered = saved.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(ProviderFollower::restore(&reader.keys, &tampered).is_err());

    let restored = ProviderFollower::restore(&reader.keys, &saved).unwrap();
    let mut resumed = Reader::new(party(Role::Provider, 80), restored);
    resumed.cursors = reader.cursors.clone();
    for t in 20..70 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
        tangle.publish(device.tick(t, &mut rng).unwrap());
    }
    resumed.sync(&tangle, 70);
    // The restored follower verifies the messages it had received before saving too.
    // (The checkpoint due at t = 61 covers readings 1 to 61.)
    assert_eq!(resumed.verified_timestamps(), (1..62).collect::<Vec<_>>());
}

#[cfg(not(target_arch = "wasm32"))]
mod property {
    use proptest::prelude::*;

    use super::{Op, run_scenario};

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u8..12).prop_map(Op::Publish),
            1 => (0u8..2).prop_map(Op::Toggle),
            1 => Just(Op::Save),
            1 => Just(Op::RestartLatest),
            1 => any::<u8>().prop_map(Op::RestartOlder),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn saved_device_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..8192)) {
            let _ = protocol::channel::SavedDevice::decode(&bytes);
            let mut tagged = b"MKDV\x01".to_vec();
            tagged.extend_from_slice(&bytes);
            let _ = protocol::channel::SavedDevice::decode(&tagged);
        }

        #[test]
        fn no_reuse_across_random_restarts(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..20)) {
            run_scenario(seed, &ops);
        }
    }
}
