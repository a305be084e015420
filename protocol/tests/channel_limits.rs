//! Size limits: every item fits one 32 KiB tangle payload, a checkpoint never has to cover more
//! than it can, and refusing an oversized message leaves no hole in the stream.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;

use channel_support::{InMemoryTangle, Reader, TestRng, party, reading};
use protocol::channel::{
    ChannelError, DeviceChannel, FollowerConfig, FollowerEvent, MAX_CHECKPOINT_COVERAGE,
    MAX_STREAM_PAYLOAD, OutgoingKind, ProviderFollower, Reading, StreamConfig, Tier,
};
use protocol::crypto::Role;

fn setup(interval: u64, rng: &mut TestRng) -> (DeviceChannel, Reader, InMemoryTangle) {
    let mut device = DeviceChannel::new(
        party(Role::Device, 1),
        &[StreamConfig { tier: Tier::Second, checkpoint_interval_secs: interval }],
        rng,
    )
    .unwrap();
    let keys = party(Role::Provider, 2);
    let follower =
        ProviderFollower::new(&keys, device.public_keys().clone(), FollowerConfig::default());
    let mut tangle = InMemoryTangle::default();
    tangle.publish(device.grant(Tier::Second, keys.public().clone(), 0, rng).unwrap());
    (device, Reader::new(keys, follower), tangle)
}

#[test]
fn a_checkpoint_interval_longer_than_the_coverage_cap_is_cut_short() {
    let mut rng = TestRng::new(1);
    let (mut device, mut reader, mut tangle) = setup(u64::MAX, &mut rng);
    let total = MAX_CHECKPOINT_COVERAGE as u64 + 100;
    for t in 1..=total {
        let items = device
            .publish(Tier::Second, &[Reading { timestamp: t, ..Reading::default() }], t, &mut rng)
            .unwrap();
        assert!(items.iter().all(|i| i.payload.len() <= MAX_STREAM_PAYLOAD));
        tangle.publish(items);
    }
    let checkpoints = tangle.log.iter().filter(|i| i.kind == OutgoingKind::Checkpoint).count();
    assert_eq!(checkpoints, 1, "the backlog was checkpointed once, before overflowing");
    tangle.publish(device.checkpoint_now(Tier::Second, total, &mut rng).unwrap());
    reader.sync(&tangle, total);
    assert_eq!(reader.verified_timestamps(), (1..=total).collect::<Vec<_>>());
}

#[test]
fn an_oversized_message_is_refused_without_leaving_a_hole() {
    let mut rng = TestRng::new(2);
    let (mut device, mut reader, mut tangle) = setup(60, &mut rng);
    tangle.publish(device.publish(Tier::Second, &[reading(1)], 1, &mut rng).unwrap());
    let huge = Reading { raw_telegram: Some(vec![b'x'; 8_000]), ..reading(2) };
    let refused = device.publish(
        Tier::Second,
        &[huge.clone(), huge.clone(), huge.clone(), huge.clone(), huge],
        2,
        &mut rng,
    );
    assert!(
        matches!(refused, Err(ChannelError::PayloadTooLarge { max: MAX_STREAM_PAYLOAD, .. })),
        "{refused:?}"
    );
    tangle.publish(device.publish(Tier::Second, &[reading(3)], 3, &mut rng).unwrap());
    tangle.publish(device.checkpoint_now(Tier::Second, 4, &mut rng).unwrap());
    reader.sync(&tangle, 4);
    assert_eq!(reader.verified_timestamps(), vec![1, 3]);
    assert!(
        !reader
            .events
            .iter()
            .any(|e| matches!(e, FollowerEvent::Gap { .. } | FollowerEvent::ChainMismatch { .. }))
    );
}
