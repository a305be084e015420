//! Attacks by parties that hold real keys: a revoked provider and a forging co-member. These
//! need the epoch keys an attacker would have extracted, so they live inside the crate.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::{BTreeMap, BTreeSet};

use super::epoch::EpochKeys;
use super::follower::FollowerEvent;
use super::wire::{self, DataBody, StreamBody};
use super::*;
use crate::crypto::{PartyKeys, PartySecret, Role};

/// SHA3 counter-mode test RNG (deterministic on every target).
struct TestRng(u64);
impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 += 1;
        let block = crate::crypto::digest(b"test-rng", &[&self.0.to_be_bytes()]);
        Ok(u64::from_le_bytes(block[..8].try_into().unwrap_or_default()))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for TestRng {}

fn keys(role: Role, n: u8) -> PartyKeys {
    PartyKeys::derive(&PartySecret::from_bytes([n; 32]), role)
}

fn reading(t: u64) -> Reading {
    Reading {
        timestamp: t,
        energy_import_wh: vec![t],
        energy_export_wh: vec![0],
        ..Reading::default()
    }
}

#[derive(Default)]
struct Tangle {
    messages: BTreeMap<Address, Vec<Vec<u8>>>,
    log: Vec<Outgoing>,
}

impl Tangle {
    fn publish(&mut self, items: impl IntoIterator<Item = Outgoing>) {
        for item in items {
            self.messages.entry(item.address).or_default().push(item.payload.clone());
            self.log.push(item);
        }
    }
}

struct Member {
    keys: PartyKeys,
    follower: ProviderFollower,
    cursors: BTreeMap<Address, usize>,
    events: Vec<FollowerEvent>,
}

impl Member {
    fn new(device: &DeviceChannel, n: u8) -> Self {
        let keys = keys(Role::Provider, n);
        let follower =
            ProviderFollower::new(&keys, device.public_keys().clone(), FollowerConfig::default());
        Self { keys, follower, cursors: BTreeMap::new(), events: Vec::new() }
    }

    fn sync(&mut self, tangle: &Tangle, now: u64) {
        loop {
            let mut progressed = false;
            for address in self.follower.watch_addresses() {
                let Some(payloads) = tangle.messages.get(&address) else { continue };
                let cursor = self.cursors.entry(address).or_insert(0);
                while *cursor < payloads.len() {
                    let events =
                        self.follower.receive(&self.keys, &address, &payloads[*cursor], now);
                    self.events.extend(events);
                    *cursor += 1;
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Every epoch key the member ever obtained (what a malicious member would extract).
    fn held_epochs(&self) -> Vec<EpochKeys> {
        self.follower.held_epoch_keys()
    }
}

fn verified(events: &[FollowerEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            FollowerEvent::Verified { readings, .. } => Some(readings.iter().map(|r| r.timestamp)),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn revoked_member_cannot_locate_or_decrypt_anything_after_rotation() {
    let mut rng = TestRng(1);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut tangle = Tangle::default();
    let mut members: Vec<Member> = (2..5).map(|n| Member::new(&device, n)).collect();
    for m in &members {
        tangle.publish(device.grant(Tier::Second, m.keys.public().clone(), 0, &mut rng).unwrap());
    }
    for t in 1..40 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    for m in &mut members {
        m.sync(&tangle, 40);
    }
    let cut = tangle.log.len();
    tangle.publish(device.revoke(Tier::Second, members[2].keys.id(), 40, &mut rng).unwrap());
    for t in 40..200 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
        tangle.publish(device.tick(t, &mut rng).unwrap());
    }
    tangle.publish(device.checkpoint_now(Tier::Second, 200, &mut rng).unwrap());
    for m in &mut members {
        m.sync(&tangle, 200);
    }
    assert_eq!(verified(&members[0].events), (1..200).collect::<Vec<_>>());
    assert_eq!(verified(&members[1].events), (1..200).collect::<Vec<_>>());

    let revoked = &members[2];
    let held = revoked.held_epochs();
    assert_eq!(held.len(), 1, "granted last, it only ever received the epoch of its grant");
    let rotation = &tangle.log[cut];
    let after = &tangle.log[cut + 1..];
    let max_seq = after.len() as u64 + 64;

    // Locate: no address it can compute, for any key it holds and any plausible position,
    // is one that was published after the rotation.
    let computable: BTreeSet<Address> =
        held.iter().flat_map(|k| (0..10 * max_seq).map(move |seq| k.address(seq))).collect();
    assert!(after.iter().all(|item| !computable.contains(&item.address)));

    // Decrypt: every post-rotation payload fails under every key it holds at every position.
    for item in after {
        for key in &held {
            for seq in 0..max_seq {
                assert!(wire::open_stream_payload(key, seq, &item.payload).is_err());
            }
        }
    }

    // The rotation itself sits in the old epoch, which it can read; none of its keyloads opens.
    let old_epoch = held.last().unwrap();
    let seq = (0..max_seq).find(|s| old_epoch.address(*s) == rotation.address).unwrap();
    let body = wire::open_stream_payload(old_epoch, seq, &rotation.payload).unwrap();
    let StreamBody::Checkpoint(rotation_body) = StreamBody::decode(&body).unwrap() else {
        panic!("not a rotation")
    };
    assert_eq!(rotation_body.keyloads.len(), 2);
    for keyload in &rotation_body.keyloads {
        assert!(wire::open_rotation_keyload(&revoked.keys, keyload).is_none());
    }
}

#[test]
fn a_member_forging_at_the_next_address_is_never_verified_and_is_flagged_at_the_checkpoint() {
    let mut rng = TestRng(2);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut tangle = Tangle::default();
    let mut forger = Member::new(&device, 2);
    let mut victim = Member::new(&device, 3);
    tangle.publish(device.grant(Tier::Second, forger.keys.public().clone(), 0, &mut rng).unwrap());
    tangle.publish(device.grant(Tier::Second, victim.keys.public().clone(), 0, &mut rng).unwrap());
    for t in 1..5 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    forger.sync(&tangle, 5);
    victim.sync(&tangle, 5);

    // The forger holds the stream key: it writes a well-formed message, chained to the real
    // predecessor, at the next position, before the device gets there; and one further ahead.
    let epoch = forger.held_epochs().pop().unwrap();
    let last = tangle.log.last().unwrap();
    let prev_digest = wire::message_digest(&last.address, &last.payload);
    for (seq, prev) in [(4u64, prev_digest), (6, [0; 32])] {
        let body = DataBody { prev_digest: prev, time: 5, readings: vec![reading(666_000 + seq)] }
            .encode()
            .unwrap();
        let payload = wire::seal_stream_payload(&epoch, seq, &body, &mut rng).unwrap();
        tangle.messages.entry(epoch.address(seq)).or_default().push(payload);
    }
    victim.sync(&tangle, 5);
    // Before any checkpoint it is only provisional — never verified.
    assert!(victim.events.iter().any(|e| matches!(e, FollowerEvent::Provisional { readings, .. } if readings[0].timestamp == 666_004)));

    for t in 5..70 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
        tangle.publish(device.tick(t, &mut rng).unwrap());
    }
    victim.sync(&tangle, 70);
    let forged_at: Vec<u64> = victim
        .events
        .iter()
        .filter_map(|e| match e {
            FollowerEvent::Forged { position } => Some(position.seq),
            _ => None,
        })
        .collect();
    assert_eq!(forged_at, vec![4, 6]);
    assert!(
        victim
            .events
            .iter()
            .any(|e| matches!(e, FollowerEvent::Fork { position } if position.seq == 4))
    );
    let verified = verified(&victim.events);
    assert!(verified.iter().all(|t| *t < 666_000), "forgery verified: {verified:?}");
    assert_eq!(verified, (1..62).collect::<Vec<_>>());
}

#[test]
fn a_forged_checkpoint_is_rejected_at_once() {
    let mut rng = TestRng(3);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let impostor = keys(Role::Device, 9);
    let mut tangle = Tangle::default();
    let mut forger = Member::new(&device, 2);
    tangle.publish(device.grant(Tier::Second, forger.keys.public().clone(), 0, &mut rng).unwrap());
    tangle.publish(device.publish(Tier::Second, &[reading(1)], 1, &mut rng).unwrap());
    forger.sync(&tangle, 1);
    let epoch = forger.held_epochs().pop().unwrap();
    let digest = wire::message_digest(&tangle.log[2].address, &tangle.log[2].payload);
    let mut body = wire::CheckpointBody {
        kind: wire::CheckpointKind::Periodic,
        prev_digest: digest,
        time: 2,
        first_seq: 0,
        digests: vec![digest],
        keyloads: vec![],
        signature: vec![],
    };
    body.signature = impostor
        .sign(
            crate::crypto::SignatureContext::Checkpoint,
            &body.statement(epoch.stream(), epoch.id(), 1),
            &mut rng,
        )
        .unwrap();
    let payload = wire::seal_stream_payload(&epoch, 1, &body.encode(), &mut rng).unwrap();
    let events = forger.follower.receive(&forger.keys, &epoch.address(1), &payload, 2);
    assert!(
        matches!(
            events.as_slice(),
            [FollowerEvent::Rejected { reason: MessageRejection::BadSignature, .. }]
        ),
        "{events:?}"
    );
}

#[test]
fn fifteen_minute_keys_open_nothing_of_the_one_second_tier() {
    let mut rng = TestRng(4);
    let mut device = DeviceChannel::new(
        keys(Role::Device, 1),
        &[StreamConfig::new(Tier::Second), StreamConfig::new(Tier::FifteenMinutes)],
        &mut rng,
    )
    .unwrap();
    let mut tangle = Tangle::default();
    let mut coarse = Member::new(&device, 2);
    tangle.publish(
        device.grant(Tier::FifteenMinutes, coarse.keys.public().clone(), 0, &mut rng).unwrap(),
    );
    let start = tangle.log.len();
    let mut second_items = Vec::new();
    for t in 1..100 {
        let items = device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap();
        second_items.extend(items.iter().cloned());
        tangle.publish(items);
    }
    tangle.publish(device.publish(Tier::FifteenMinutes, &[reading(900)], 900, &mut rng).unwrap());
    coarse.sync(&tangle, 900);
    assert_eq!(verified(&coarse.events), vec![900]);
    let held = coarse.held_epochs();
    assert!(!held.is_empty());
    assert!(
        held.iter()
            .all(|k| k.stream() == StreamId::new(device.public_keys().id(), Tier::FifteenMinutes))
    );
    assert!(tangle.log.len() > start);
    let computable: BTreeSet<Address> =
        held.iter().flat_map(|k| (0..2_000).map(move |s| k.address(s))).collect();
    for item in &second_items {
        assert!(!computable.contains(&item.address));
        for key in &held {
            for seq in 0..200 {
                assert!(wire::open_stream_payload(key, seq, &item.payload).is_err());
            }
        }
    }
}

#[test]
fn a_rotation_too_large_for_one_message_spills_into_covered_keyload_batches() {
    let mut rng = TestRng(5);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut tangle = Tangle::default();
    // 28 members nobody follows here (granting them first keeps the followed members' trial
    // decapsulations few), then the three followed ones.
    for n in 10..38 {
        tangle.publish(
            device
                .grant(Tier::Second, keys(Role::Provider, n).public().clone(), 0, &mut rng)
                .unwrap(),
        );
    }
    let mut members: Vec<Member> = (38..41).map(|n| Member::new(&device, n)).collect();
    for m in &members {
        tangle.publish(device.grant(Tier::Second, m.keys.public().clone(), 0, &mut rng).unwrap());
    }
    for t in 1..5 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    let leaving = members.pop().unwrap();
    let revocation = device.revoke(Tier::Second, leaving.keys.id(), 5, &mut rng).unwrap();
    // 30 keyloads: two batches (24 + 6) before the rotation, every item within the payload cap.
    let kinds: Vec<OutgoingKind> = revocation.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [OutgoingKind::KeyloadBatch, OutgoingKind::KeyloadBatch, OutgoingKind::Rotation]
    );
    assert!(revocation.iter().all(|i| i.payload.len() <= MAX_STREAM_PAYLOAD));

    // One member sees the rotation before the batches (a slow node): it must not conclude it
    // was revoked, and must follow once the batches turn up.
    let mut late = members.pop().unwrap();
    late.sync(&tangle, 5);
    let rotation = revocation.last().unwrap();
    late.follower.watch_addresses();
    let early = late.follower.receive(&late.keys, &rotation.address, &rotation.payload, 6);
    assert!(
        early.iter().any(|e| matches!(e, FollowerEvent::Gap { missing } if missing.len() == 2))
    );
    assert!(
        !early
            .iter()
            .any(|e| matches!(e, FollowerEvent::Revoked { .. } | FollowerEvent::Rotated { .. }))
    );
    let before = late.events.len();

    tangle.publish(revocation);
    for t in 6..10 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    tangle.publish(device.checkpoint_now(Tier::Second, 10, &mut rng).unwrap());
    late.sync(&tangle, 10);
    assert!(late.events[before..].iter().any(|e| matches!(e, FollowerEvent::Rotated { .. })));
    members.push(late);
    let mut leaving = leaving;
    leaving.sync(&tangle, 10);
    assert!(leaving.events.iter().any(|e| matches!(e, FollowerEvent::Revoked { .. })));
    for m in &mut members {
        m.sync(&tangle, 10);
        assert!(!m.events.iter().any(|e| matches!(e, FollowerEvent::Revoked { .. })));
        assert!(verified(&m.events).ends_with(&[6, 7, 8, 9]), "{:?}", verified(&m.events));
    }
}

#[test]
fn debug_output_of_device_and_follower_never_shows_key_material() {
    let mut rng = TestRng(6);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut tangle = Tangle::default();
    let mut member = Member::new(&device, 2);
    tangle.publish(device.grant(Tier::Second, member.keys.public().clone(), 0, &mut rng).unwrap());
    tangle.publish(device.publish(Tier::Second, &[reading(1)], 1, &mut rng).unwrap());
    member.sync(&tangle, 1);
    let held = member.held_epochs();
    assert_eq!(held.len(), 1);
    let key = held[0].epoch_key();
    let secret_forms = [hex::encode(key), format!("{key:?}"), format!("{:?}", &key[..8])];
    for text in [format!("{device:?}"), format!("{:?}", member.follower), format!("{:?}", held[0])]
    {
        assert!(text.contains("redacted"), "{text}");
        for secret in &secret_forms {
            assert!(!text.contains(secret.as_str()), "key material in Debug output: {text}");
        }
    }
}

#[test]
fn the_last_messages_before_a_restart_are_still_read_when_the_new_keyload_is_seen_first() {
    let mut rng = TestRng(7);
    let mut device =
        DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], &mut rng)
            .unwrap();
    let mut tangle = Tangle::default();
    let mut member = Member::new(&device, 2);
    tangle.publish(device.grant(Tier::Second, member.keys.public().clone(), 0, &mut rng).unwrap());
    for t in 1..10 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    member.sync(&tangle, 10);
    // Published just before the device stopped, not yet fetched by the member.
    tangle.publish(device.publish(Tier::Second, &[reading(10)], 10, &mut rng).unwrap());
    let saved = SavedDevice::decode(&device.save()).unwrap();
    let (mut device, keyloads) = saved.resume(keys(Role::Device, 1), 11, &mut rng).unwrap();
    tangle.publish(keyloads);
    for t in 11..15 {
        tangle.publish(device.publish(Tier::Second, &[reading(t)], t, &mut rng).unwrap());
    }
    // The member's driver reads its inbox before the stream positions (as the provider does).
    let inbox = member.keys.public().inbox_address();
    for payload in tangle.messages.get(&inbox).cloned().unwrap_or_default() {
        let events = member.follower.receive(&member.keys, &inbox, &payload, 15);
        member.events.extend(events);
    }
    member.cursors.insert(inbox, tangle.messages.get(&inbox).map_or(0, Vec::len));
    member.sync(&tangle, 15);
    let mut read: Vec<u64> = member
        .events
        .iter()
        .filter_map(|e| match e {
            FollowerEvent::Provisional { readings, .. } => Some(readings[0].timestamp),
            _ => None,
        })
        .collect();
    read.sort_unstable();
    assert_eq!(read, (1..15).collect::<Vec<_>>());
}
