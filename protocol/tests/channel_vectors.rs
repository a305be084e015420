//! Frozen vectors for every encoding the channel defines: readings, public keys and party ids,
//! stream ids, stream payloads (data, checkpoint, rotation), keyloads, saved device state and
//! saved follower state. A change of any encoding, label or derivation changes a line of
//! `vectors/channel-v1.txt` and fails here; such a change needs a new format version.
//!
//! Randomness comes from the tests' SHA3 counter-mode `TestRng`, so a scripted session is fully
//! deterministic (including hedged ML-DSA signatures and ML-KEM encapsulations).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests they serve.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;

use std::collections::BTreeMap;

use channel_support::{TestRng, party};
use protocol::channel::{
    DeviceChannel, FollowerConfig, FollowerEvent, GasReading, INBOX_KEYLOAD_LEN, KEYLOAD_LEN,
    PhaseReading, ProviderFollower, Reading, StreamConfig, StreamId, Tier,
};
use protocol::crypto::{PUBLIC_KEYS_LEN, Role};
use sha3::{Digest, Sha3_256};

const FROZEN: &str = include_str!("vectors/channel-v1.txt");

fn sha3(bytes: &[u8]) -> String {
    hex::encode(Sha3_256::digest(bytes))
}

fn full_reading() -> Reading {
    Reading {
        timestamp: 1_764_151_200,
        energy_import_wh: vec![12_345_678, 9_876_543],
        energy_export_wh: vec![1_234, 56_789],
        power_import_w: 1_520,
        power_export_w: 3,
        phases: vec![
            PhaseReading {
                voltage_dv: Some(2_301),
                current_ma: Some(3_000),
                power_import_w: 700,
                power_export_w: 1,
            },
            PhaseReading {
                voltage_dv: Some(2_298),
                current_ma: None,
                power_import_w: 520,
                power_export_w: 2,
            },
            PhaseReading {
                voltage_dv: None,
                current_ma: Some(1_000),
                power_import_w: 300,
                power_export_w: 0,
            },
        ],
        gas: Some(GasReading { volume_dm3: 4_567_890, captured_at: 1_764_150_900 }),
        raw_telegram: Some(
            b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(012345.678*kWh)\r\n!ABCD\r\n".to_vec(),
        ),
    }
}

/// `(name, value)` lines of the vector file.
type Lines = Vec<(String, String)>;
/// The scripted session's `(hex address, payload)` items.
type Session = Vec<(String, Vec<u8>)>;

fn computed() -> (Lines, Session) {
    let mut lines = Vec::new();
    let mut put = |k: &str, v: String| lines.push((k.to_string(), v));

    put("len.public_keys", PUBLIC_KEYS_LEN.to_string());
    put("len.keyload", KEYLOAD_LEN.to_string());
    put("len.inbox_keyload", INBOX_KEYLOAD_LEN.to_string());
    put("reading.full", hex::encode(full_reading().encode().unwrap()));
    put("reading.minimal", hex::encode(Reading::default().encode().unwrap()));

    let device_keys = party(Role::Device, 1);
    let provider_keys = party(Role::Provider, 2);
    put("party.device.id", hex::encode(device_keys.id().0));
    put("party.device.public_keys.sha3", sha3(&device_keys.public().encode()));
    put("party.provider.id", hex::encode(provider_keys.id().0));
    put("party.provider.public_keys.sha3", sha3(&provider_keys.public().encode()));
    put("party.provider.inbox", hex::encode(provider_keys.public().inbox_address()));
    for tier in Tier::ALL {
        put(&format!("stream_id.{tier:?}"), hex::encode(StreamId::new(device_keys.id(), tier).0));
    }

    // A scripted session: grant, two readings, checkpoint, revoke, save.
    let mut rng = TestRng::new(2024);
    let mut device = DeviceChannel::new(
        party(Role::Device, 1),
        &[StreamConfig { tier: Tier::Second, checkpoint_interval_secs: 60 }],
        &mut rng,
    )
    .unwrap();
    let mut items =
        device.grant(Tier::Second, provider_keys.public().clone(), 100, &mut rng).unwrap();
    items.extend(device.publish(Tier::Second, &[full_reading()], 101, &mut rng).unwrap());
    items.extend(
        device
            .publish(
                Tier::Second,
                &[Reading { timestamp: 102, ..Reading::default() }],
                102,
                &mut rng,
            )
            .unwrap(),
    );
    items.extend(device.checkpoint_now(Tier::Second, 103, &mut rng).unwrap());
    items.extend(device.revoke(Tier::Second, provider_keys.id(), 104, &mut rng).unwrap());
    for (i, item) in items.iter().enumerate() {
        put(&format!("session.{i}.kind"), format!("{:?}", item.kind));
        put(&format!("session.{i}.address"), hex::encode(item.address));
        put(&format!("session.{i}.len"), item.payload.len().to_string());
        put(&format!("session.{i}.sha3"), sha3(&item.payload));
        if item.payload.len() < 400 {
            put(&format!("session.{i}.payload"), hex::encode(&item.payload));
        }
    }
    let saved = device.save();
    put("saved_device.len", saved.len().to_string());
    put("saved_device.sha3", sha3(&saved));

    // A rotation that spills into a keyload batch: 700 uncovered messages leave room for only
    // five keyloads in the rotation itself, and six members remain.
    let mut batched_rng = TestRng::new(2025);
    let mut batched = DeviceChannel::new(
        party(Role::Device, 1),
        &[StreamConfig { tier: Tier::Second, checkpoint_interval_secs: u64::MAX }],
        &mut batched_rng,
    )
    .unwrap();
    for n in 0..7 {
        batched
            .grant(
                Tier::Second,
                party(Role::Provider, 30 + n).public().clone(),
                0,
                &mut batched_rng,
            )
            .unwrap();
    }
    for t in 1..=700 {
        batched
            .publish(
                Tier::Second,
                &[Reading { timestamp: t, ..Reading::default() }],
                t,
                &mut batched_rng,
            )
            .unwrap();
    }
    let rotation = batched
        .revoke(Tier::Second, party(Role::Provider, 36).id(), 701, &mut batched_rng)
        .unwrap();
    for (i, item) in rotation.iter().enumerate() {
        put(&format!("batched.{i}.kind"), format!("{:?}", item.kind));
        put(&format!("batched.{i}.len"), item.payload.len().to_string());
        put(&format!("batched.{i}.sha3"), sha3(&item.payload));
    }

    let mut follower = ProviderFollower::new(
        &provider_keys,
        device.public_keys().clone(),
        FollowerConfig::default(),
    );
    for item in &items {
        follower.receive(&provider_keys, &item.address, &item.payload, 105);
    }
    let state = follower.save(&provider_keys, &mut rng).unwrap();
    put("saved_follower.len", state.len().to_string());
    put("saved_follower.sha3", sha3(&state));
    let payloads = items.iter().map(|i| (hex::encode(i.address), i.payload.clone())).collect();
    (lines, payloads)
}

fn frozen() -> BTreeMap<&'static str, &'static str> {
    FROZEN
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .collect()
}

#[test]
fn every_encoding_matches_its_frozen_vector() {
    let (lines, _) = computed();
    let frozen = frozen();
    let mismatched: Vec<&str> = lines
        .iter()
        .filter(|(k, v)| frozen.get(k.as_str()) != Some(&v.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    let regenerated: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    assert!(mismatched.is_empty(), "changed: {mismatched:?}\n--- computed ---\n{regenerated}");
    assert_eq!(frozen.len(), lines.len(), "stale entries in the vector file");
}

#[test]
fn frozen_readings_decode_to_the_same_values() {
    let frozen = frozen();
    let full = hex::decode(frozen["reading.full"]).unwrap();
    assert_eq!(Reading::decode(&full).unwrap(), full_reading());
    let minimal = hex::decode(frozen["reading.minimal"]).unwrap();
    assert_eq!(Reading::decode(&minimal).unwrap(), Reading::default());
}

#[test]
fn frozen_session_payloads_are_readable_by_the_provider() {
    let frozen = frozen();
    let provider = party(Role::Provider, 2);
    let device = party(Role::Device, 1);
    let mut follower =
        ProviderFollower::new(&provider, device.public().clone(), FollowerConfig::default());
    let (_, payloads) = computed();
    let mut verified = Vec::new();
    for (i, (address, payload)) in payloads.iter().enumerate() {
        assert_eq!(frozen[format!("session.{i}.address").as_str()], address);
        if let Some(hex_payload) = frozen.get(format!("session.{i}.payload").as_str()) {
            assert_eq!(&hex::decode(hex_payload).unwrap(), payload);
        }
        let address: [u8; 32] = hex::decode(address).unwrap().try_into().unwrap();
        for event in follower.receive(&provider, &address, payload, 105) {
            if let FollowerEvent::Verified { readings, .. } = event {
                verified.extend(readings.into_iter().map(|r| r.timestamp));
            }
        }
    }
    assert_eq!(verified, vec![1_764_151_200, 102]);
}
