//! The dashboard's view of its grants, driven by the real device state machine
//! (`protocol::device::Device`, what `pi-agent` runs), the wallet's pairing and consent log, and
//! a request built by the dashboard's own builder, over an in-memory tangle: the grant notice
//! makes a pending grant, the keyload makes it active and is acknowledged, readings arrive
//! verified and exactly once, and after the revocation the grant is revoked and nothing new is
//! readable — the dashboard's watch is fed only the addresses it asks for.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use app::dashboard::received::ReceivedReadings;
use app::dashboard::request::RequestForm;
use app::dashboard::watch::{GrantState, GrantView, ProviderWatch, WatchEvent};
use getrandom::SysRng;
use protocol::channel::{Reading, Tier};
use protocol::consent::{ConsentEvent, ConsentLogWriter, EventKind, Grant, Publish, PublishKind};
use protocol::crypto::{PartyKeys, PartySecret, Role, digest};
use protocol::device::{Device, DeviceEvent, DeviceSettings, Resume};
use protocol::pairing::{Confirmation, ExpectAnnouncement, PairedDevice};
use protocol::provider::{DataItem, ProviderCard, PurposeCategory, SignedRequest};
use protocol::tangle::MessageId;
use rand_core::UnwrapErr;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// 2026-11-26 10:00 UTC.
const START: u64 = 1_795_687_200;

/// Payloads by address, in publication order.
#[derive(Default)]
struct Tangle(BTreeMap<[u8; 32], Vec<Vec<u8>>>);

impl Tangle {
    fn publish(&mut self, items: impl IntoIterator<Item = Publish>) {
        for item in items {
            self.0.entry(item.address).or_default().push(item.payload);
        }
    }
    fn at(&self, address: &[u8; 32]) -> Vec<Vec<u8>> {
        self.0.get(address).cloned().unwrap_or_default()
    }
}

/// The meter reader: the device state machine and its cursors.
struct Meter {
    device: Device,
    cursors: BTreeMap<[u8; 32], usize>,
    code: Option<protocol::pairing::PairingCode>,
}

impl Meter {
    fn sync(&mut self, tangle: &mut Tangle, now: u64) {
        let mut rng = UnwrapErr(SysRng);
        loop {
            let mut progressed = false;
            for address in self.device.poll_addresses() {
                let payloads = tangle.at(&address);
                let cursor = self.cursors.entry(address).or_insert(0);
                let fresh = payloads[*cursor..].to_vec();
                *cursor = payloads.len();
                for payload in fresh {
                    progressed = true;
                    let step = self.device.on_message(&address, &payload, now, &mut rng).unwrap();
                    tangle.publish(step.publish);
                }
            }
            if !progressed {
                break;
            }
        }
        let step = self.device.tick(now, &mut rng).unwrap();
        tangle.publish(step.publish);
    }

    fn read(&mut self, tangle: &mut Tangle, at: u64) {
        let reading = Reading {
            timestamp: at,
            energy_import_wh: vec![1_000_000 + at - START, 500_000],
            energy_export_wh: vec![0, 0],
            power_import_w: 1_200,
            power_export_w: 0,
            ..Reading::default()
        };
        let step = self.device.on_reading(&reading, at, &mut UnwrapErr(SysRng));
        tangle.publish(step.publish);
    }
}

/// The dashboard's side: fetches only what the watch asks for (the notice address, the inbox,
/// the stream positions), as the browser's follows do.
struct Dashboard {
    watch: ProviderWatch,
    cursors: BTreeMap<[u8; 32], usize>,
    readings: ReceivedReadings,
    grants: BTreeMap<String, GrantView>,
    /// Every state a grant was shown in, in order.
    states: Vec<GrantState>,
    published: Vec<Publish>,
}

impl Dashboard {
    fn sync(&mut self, tangle: &Tangle, now: u64) -> usize {
        let mut rng = UnwrapErr(SysRng);
        let mut new_readings = 0;
        loop {
            let mut addresses = vec![self.watch.notice_address(), self.watch.inbox_address()];
            addresses.extend(self.watch.stream_addresses(62));
            let mut progressed = false;
            for address in addresses {
                let payloads = tangle.at(&address);
                let cursor = self.cursors.entry(address).or_insert(0);
                let fresh = payloads[*cursor..].to_vec();
                *cursor = payloads.len();
                for payload in fresh {
                    progressed = true;
                    let id = MessageId(digest(b"test message id", &[&address, &payload]));
                    let events = self.watch.receive(id, address, &payload, now, &mut rng);
                    // The same message delivered again (another node, a new subscription).
                    assert!(self.watch.receive(id, address, &payload, now, &mut rng).is_empty());
                    new_readings += self.apply(events);
                }
            }
            if !progressed {
                break;
            }
        }
        let ticked = self.watch.tick(now);
        new_readings + self.apply(ticked)
    }

    fn apply(&mut self, events: Vec<WatchEvent>) -> usize {
        let mut new = 0;
        for event in events {
            match event {
                WatchEvent::Grant(view) => {
                    self.states.push(view.state);
                    self.grants.insert(view.id.clone(), view);
                }
                WatchEvent::Readings(found) => new += self.readings.add(&found),
                WatchEvent::Publish(item) => self.published.push(item),
                WatchEvent::Warning(text) => panic!("unexpected warning: {text}"),
            }
        }
        new
    }

    fn only_grant(&self) -> &GrantView {
        assert_eq!(self.grants.len(), 1);
        self.grants.values().next().unwrap()
    }
}

#[test]
fn a_grant_goes_pending_active_verified_then_revoked_and_silent() {
    let mut rng = UnwrapErr(SysRng);
    let mut tangle = Tangle::default();
    let mut now = START;

    // The meter reader starts and shows its pairing code; the wallet pairs.
    let settings = DeviceSettings {
        tiers: vec![Tier::Second],
        checkpoint_secs: Some(2),
        receipt_interval_secs: 60,
    };
    let (device, step) =
        Device::start(PartySecret::generate(&mut rng), settings, Resume::default(), now, &mut rng)
            .unwrap();
    let code = step.events.iter().find_map(|e| match e {
        DeviceEvent::PairingCode(code) => Some(code.clone()),
        _ => None,
    });
    tangle.publish(step.publish);
    let mut meter = Meter { device, cursors: BTreeMap::new(), code };
    let wallet = PartyKeys::derive(&PartySecret::generate(&mut rng), Role::Wallet);
    let start = ExpectAnnouncement::new(meter.code.take().unwrap());
    let announcements = tangle.at(&start.announcement_address());
    let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
    let (expect, claim) = start.claim(&wallet, &refs, &mut rng).unwrap();
    tangle.publish([claim]);
    meter.sync(&mut tangle, now);
    let confirmation = tangle.at(&expect.confirmation_address()).pop().unwrap();
    let Confirmation::Paired(paired) = expect.confirm(&confirmation) else { panic!("not paired") };
    let PairedDevice { device: device_keys, owner, log_key, pairing_id, .. } = *paired;
    let mut log = ConsentLogWriter::new(device_keys.id(), &log_key);
    let append = |log: &mut ConsentLogWriter, tangle: &mut Tangle, kind: EventKind, time: u64| {
        let event = ConsentEvent { device: device_keys.id(), time, kind };
        let written = log.append(&owner, &event, &mut UnwrapErr(SysRng)).unwrap();
        tangle.publish([written.publish]);
    };
    append(&mut log, &mut tangle, EventKind::DevicePaired { owner: owner.id(), pairing_id }, now);

    // The provider publishes its card and a request built by the dashboard's builder.
    let provider = Arc::new(PartyKeys::derive(&PartySecret::generate(&mut rng), Role::Provider));
    let card = ProviderCard::create(
        &provider,
        "Wattt",
        "https://wattt.example/",
        "privacy@wattt.example",
        now,
        &mut rng,
    )
    .unwrap();
    let form = RequestForm {
        purpose: "Live advice".into(),
        category: PurposeCategory::EnergyInsight,
        data_items: vec![DataItem::EnergyImport, DataItem::Power],
        resolution: Tier::Second,
        duration_days: 30,
        delete_after_days: 7,
    };
    let signed = form.sign(&provider, Some(&card), now, &mut rng).unwrap();
    let mut dashboard = Dashboard {
        watch: ProviderWatch::new(provider.clone()),
        cursors: BTreeMap::new(),
        readings: ReceivedReadings::default(),
        grants: BTreeMap::new(),
        states: Vec::new(),
        published: Vec::new(),
    };
    assert_eq!(dashboard.sync(&tangle, now), 0);
    assert!(dashboard.grants.is_empty(), "nothing granted yet");

    // The household verifies the request and grants the 1 s tier.
    let verified = SignedRequest::verify(&signed.link(), signed.encode(), &card, now).unwrap();
    let grant = Grant::answering(&verified, &card, &[Tier::Second], log.keys(), &mut rng).unwrap();
    let grant_id = hex::encode(grant.id.0);
    now += 1;
    append(&mut log, &mut tangle, EventKind::Granted(Box::new(grant)), now);
    meter.sync(&mut tangle, now);

    // Notice and keyload: the grant is active, and its receipt is acknowledged.
    dashboard.sync(&tangle, now);
    let view = dashboard.only_grant();
    assert_eq!((view.id.as_str(), view.state), (grant_id.as_str(), GrantState::Active));
    assert_eq!(view.device, device_keys.id());
    assert_eq!(view.purpose, "Live advice");
    assert_eq!(view.tiers, vec![Tier::Second]);
    assert_eq!(dashboard.states, [GrantState::Pending, GrantState::Active]);
    assert_eq!(dashboard.published.len(), 1);
    assert_eq!(dashboard.published[0].kind, PublishKind::Acknowledgement);

    // Ten readings, one a second, checkpointed every 2 s: all ten arrive, verified, once.
    for _ in 0..10 {
        now += 1;
        meter.read(&mut tangle, now);
        meter.sync(&mut tangle, now);
        dashboard.sync(&tangle, now);
    }
    now += 3;
    meter.sync(&mut tangle, now);
    dashboard.sync(&tangle, now);
    assert_eq!(dashboard.readings.len(), 10);
    assert_eq!(dashboard.readings.verified_count(), 10);
    assert_eq!(dashboard.readings.latest(device_keys.id()).unwrap().timestamp, now - 3);
    let energy = dashboard.readings.energy_import(device_keys.id(), 3_600);
    assert!((energy.iter().map(|b| b.amount).sum::<f64>() - 0.009).abs() < 1e-9, "{energy:?}");

    // The household revokes: the notice says so, with the reason.
    now += 1;
    let revoked = EventKind::Revoked { grant: log_grant(&grant_id), reason: "moving house".into() };
    append(&mut log, &mut tangle, revoked, now);
    meter.sync(&mut tangle, now);
    dashboard.sync(&tangle, now);
    let view = dashboard.only_grant();
    assert_eq!(view.state, GrantState::Revoked);
    assert_eq!(view.reason.as_deref(), Some("moving house"));
    assert_eq!(dashboard.states.last(), Some(&GrantState::Revoked));
    let settled = dashboard.readings.len();

    // The meter goes on publishing; the dashboard can read none of it.
    for _ in 0..10 {
        now += 1;
        meter.read(&mut tangle, now);
        meter.sync(&mut tangle, now);
        assert_eq!(dashboard.sync(&tangle, now), 0, "a reading after the revocation");
    }
    assert_eq!(dashboard.readings.len(), settled);
    assert!(dashboard.watch.stream_addresses(62).is_empty(), "nothing left to watch");
}

fn log_grant(hex_id: &str) -> protocol::consent::GrantId {
    protocol::consent::GrantId(hex::decode(hex_id).unwrap().try_into().unwrap())
}
