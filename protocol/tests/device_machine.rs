//! The shared device state machine (`protocol::device::Device`, what `pi-agent` and the browser
//! both run) against the real wallet, provider and channel code over an in-memory tangle, with
//! an injected clock and deterministic randomness: pairing, a grant delivering readings (1 s and
//! aggregated 10 s), revocation with rotation and notice, and a restart that replays the log
//! without sending anything twice.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use std::collections::BTreeMap;

use channel_support::{party, reading};
use consent_support::{Household, Lab, Provider};
use protocol::channel::{
    Address, FollowerConfig, FollowerEvent, ProviderFollower, SavedDevice, Tier,
};
use protocol::consent::{
    ConsentLogWriter, ConsentReport, EventKind, NoticeOutcome, ProviderConsent, Publish,
    PublishKind,
};
use protocol::crypto::{PartySecret, PublicKeys, Role};
use protocol::device::{Device, DeviceEvent, DeviceSettings, DeviceStep, Ownership, Resume};
use protocol::pairing::{Confirmation, ExpectAnnouncement, Paired, PairingCode};
use protocol::provider::ProviderCard;

fn settings() -> DeviceSettings {
    DeviceSettings {
        tiers: vec![Tier::Second, Tier::TenSeconds],
        checkpoint_secs: Some(2),
        receipt_interval_secs: 60,
    }
}

fn secret() -> PartySecret {
    PartySecret::from_bytes([42; 32])
}

/// A driver as small as it gets: the tangle is the network, a field is the store.
struct Driver {
    device: Device,
    cursors: BTreeMap<Address, usize>,
    events: Vec<DeviceEvent>,
    published: Vec<Publish>,
    saved_channel: Vec<u8>,
    applied: u64,
    paired: Option<Paired>,
}

impl Driver {
    fn start(lab: &mut Lab, resume: Resume) -> Self {
        let (device, step) =
            Device::start(secret(), settings(), resume, lab.now, &mut lab.rng).unwrap();
        let mut driver = Self {
            device,
            cursors: BTreeMap::new(),
            events: Vec::new(),
            published: Vec::new(),
            saved_channel: Vec::new(),
            applied: 0,
            paired: None,
        };
        driver.apply(lab, step);
        driver
    }

    fn apply(&mut self, lab: &mut Lab, step: DeviceStep) {
        if step.channel_changed {
            self.saved_channel = self.device.channel_state();
        }
        if let Some(applied) = step.consent_entries_applied {
            self.applied = applied;
        }
        for event in step.events {
            match event {
                DeviceEvent::Paired(paired) => self.paired = Some(*paired),
                other => self.events.push(other),
            }
        }
        self.published.extend(step.publish.iter().cloned());
        lab.tangle.publish(step.publish);
    }

    /// Fetches every new payload at the addresses the device watches, then lets time pass.
    fn sync(&mut self, lab: &mut Lab) {
        loop {
            let mut progressed = false;
            for address in self.device.poll_addresses() {
                let payloads = lab.tangle.at(&address).to_vec();
                let cursor = self.cursors.entry(address).or_insert(0);
                let fresh: Vec<Vec<u8>> = payloads[*cursor..].to_vec();
                *cursor = payloads.len();
                for payload in fresh {
                    progressed = true;
                    let step =
                        self.device.on_message(&address, &payload, lab.now, &mut lab.rng).unwrap();
                    self.apply(lab, step);
                }
            }
            if !progressed {
                break;
            }
        }
        let step = self.device.tick(lab.now, &mut lab.rng).unwrap();
        self.apply(lab, step);
    }

    fn code(&self) -> PairingCode {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                DeviceEvent::PairingCode(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap()
    }

    fn reports(&self) -> Vec<&ConsentReport> {
        self.events
            .iter()
            .filter_map(|e| match e {
                DeviceEvent::Consent(report) => Some(report),
                _ => None,
            })
            .collect()
    }

    fn read(&mut self, lab: &mut Lab, at: u64) {
        let mut one = reading(at);
        one.raw_telegram = Some(format!("telegram {at}").into_bytes());
        let step = self.device.on_reading(&one, lab.now, &mut lab.rng);
        self.apply(lab, step);
    }
}

/// The wallet scans the device's code and pairs over the tangle; the device answers on sync.
fn pair(lab: &mut Lab, driver: &mut Driver) -> Household {
    let wallet = party(Role::Wallet, 1);
    let start = ExpectAnnouncement::new(PairingCode::parse(&driver.code().to_uri()).unwrap());
    let announcements: Vec<Vec<u8>> = lab.tangle.at(&start.announcement_address()).to_vec();
    let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
    let (expect, claim) = start.claim(&wallet, &refs, &mut lab.rng).unwrap();
    lab.tangle.publish([claim]);
    driver.sync(lab);
    let confirmation = lab.tangle.at(&expect.confirmation_address()).last().cloned().unwrap();
    let Confirmation::Paired(paired) = expect.confirm(&confirmation) else {
        panic!("the device did not confirm");
    };
    let writer = ConsentLogWriter::new(paired.device.id(), &paired.log_key);
    let mut household = Household { wallet, paired: *paired, writer, written: Vec::new() };
    let owner = household.paired.owner.id();
    let pairing_id = household.paired.pairing_id;
    household.append(lab, EventKind::DevicePaired { owner, pairing_id });
    household
}

fn provider(lab: &mut Lab, n: u8, name: &str, device: &PublicKeys) -> Provider {
    let keys = party(Role::Provider, n);
    let url = format!("https://{}.example/", name.to_lowercase());
    let card =
        ProviderCard::create(&keys, name, &url, "privacy@example.org", lab.now, &mut lab.rng)
            .unwrap();
    lab.tangle.publish([Publish {
        address: card.address(),
        payload: card.encode().to_vec(),
        kind: PublishKind::ProviderCard,
    }]);
    let follower =
        ProviderFollower::new(&party(Role::Provider, n), device.clone(), FollowerConfig::default());
    Provider {
        keys,
        card,
        consent: ProviderConsent::new(),
        data: channel_support::Reader::new(party(Role::Provider, n), follower),
        notice_cursor: 0,
        outcomes: Vec::new(),
    }
}

fn count(published: &[Publish], kind: PublishKind) -> usize {
    published.iter().filter(|p| p.kind == kind).count()
}

#[test]
fn pairs_serves_a_grant_revokes_and_restarts_without_repeating_itself() {
    let mut lab = Lab::new(90);
    let mut driver = Driver::start(&mut lab, Resume::default());
    assert_eq!(count(&driver.published, PublishKind::PairingAnnouncement), 1);
    assert!(driver.device.owner().is_none());

    let mut household = pair(&mut lab, &mut driver);
    assert_eq!(driver.device.owner(), Some(household.paired.owner.id()));
    assert!(driver.paired.is_some(), "the pairing is handed to the driver to store");
    assert!(driver.device.pairing_code().is_none());
    assert_eq!(count(&driver.published, PublishKind::PairingConfirmation), 1);

    // A provider asks for the 1 s tier; the owner grants 1 s and 10 s.
    let device_keys = driver.device.keys().public().clone();
    let mut alpha = provider(&mut lab, 1, "Alpha", &device_keys);
    let request = alpha.request(&mut lab, "insight", Tier::Second, 30);
    let grant = household.grant(&mut lab, &request, &alpha.card, &[Tier::Second, Tier::TenSeconds]);
    driver.sync(&mut lab);
    assert!(driver.reports().iter().any(|r| matches!(
        r,
        ConsentReport::GrantStarted { grant: g, tiers, .. }
            if *g == grant && tiers == &vec![Tier::Second, Tier::TenSeconds]
    )));
    assert_eq!(driver.device.live_grants().len(), 1);
    assert_eq!(driver.applied, 2, "DevicePaired and Granted were applied");
    alpha.sync(&mut lab);
    assert!(matches!(alpha.outcomes.first(), Some(NoticeOutcome::Granted(_))));

    // 25 readings, one per second: all 25 in the 1 s tier, two completed 10 s windows.
    let base = (lab.now / 10 + 1) * 10;
    for i in 0..25 {
        lab.now = base + i;
        driver.read(&mut lab, base + i);
        driver.sync(&mut lab);
    }
    // The same reading again (a replay after a reconnect) is dropped, not republished.
    let before = driver.published.len();
    driver.read(&mut lab, base + 24);
    assert_eq!(driver.published.len(), before);
    assert!(matches!(driver.events.last(), Some(DeviceEvent::ReadingNotNewer { .. })));
    lab.now += 5;
    driver.sync(&mut lab);
    alpha.sync(&mut lab);
    let verified = alpha.verified();
    let expected_seconds: Vec<u64> = (base..base + 25).collect();
    let mut seconds: Vec<u64> = alpha
        .data
        .events
        .iter()
        .filter_map(|e| match e {
            FollowerEvent::Verified { readings, .. } if readings[0].raw_telegram.is_some() => {
                Some(readings[0].timestamp)
            }
            _ => None,
        })
        .collect();
    seconds.sort_unstable();
    assert_eq!(seconds, expected_seconds, "every 1 s reading, verified, once");
    // The 10 s tier carries aggregates (no raw telegram): two complete windows so far, each
    // the exact floor mean of its ten powers and the registers of its last reading.
    let tens: Vec<&protocol::channel::Reading> = alpha
        .data
        .events
        .iter()
        .filter_map(|e| match e {
            FollowerEvent::Verified { readings, .. } if readings[0].raw_telegram.is_none() => {
                Some(&readings[0])
            }
            _ => None,
        })
        .collect();
    assert_eq!(tens.iter().map(|r| r.timestamp).collect::<Vec<_>>(), vec![base, base + 10]);
    for window in &tens {
        let samples: Vec<_> = (window.timestamp..window.timestamp + 10).map(reading).collect();
        let mean = samples.iter().map(|r| u64::from(r.power_import_w)).sum::<u64>() / 10;
        assert_eq!(u64::from(window.power_import_w), mean);
        assert_eq!(window.energy_import_wh, samples[9].energy_import_wh);
    }
    assert_eq!(verified.len(), 25 + 2);

    // Revocation: rotation, a signed notice, and the provider reads nothing after it.
    household.append(&mut lab, EventKind::Revoked { grant, reason: "moving house".into() });
    driver.sync(&mut lab);
    assert!(driver.reports().contains(&&ConsentReport::Revoked { grant }));
    assert!(driver.device.live_grants().is_empty());
    alpha.sync(&mut lab);
    assert!(alpha.outcomes.iter().any(|o| matches!(o, NoticeOutcome::Revoked { .. })));
    let seen_before = alpha.verified().len();
    for i in 25..30 {
        lab.now = base + i;
        driver.read(&mut lab, base + i);
        driver.sync(&mut lab);
    }
    lab.now += 5;
    driver.sync(&mut lab);
    alpha.sync(&mut lab);
    assert_eq!(alpha.verified().len(), seen_before, "nothing after the revocation");

    // Restart from what the driver stored: resume keyloads, the log replayed silently.
    let notices_before = count(&driver.published, PublishKind::ProviderNotice);
    let receipts_before = count(&driver.published, PublishKind::DeliveryReceipt);
    let resume = Resume {
        channel: Some(SavedDevice::decode(&driver.saved_channel).unwrap()),
        ownership: driver.paired.as_ref().map(Ownership::from),
        consent_entries_applied: driver.applied,
        last_reading_at: driver.device.last_reading_at(),
    };
    assert_eq!(resume.consent_entries_applied, 3);
    let paired = driver.paired.take();
    let mut restarted = Driver::start(&mut lab, resume);
    restarted.paired = paired;
    assert_eq!(
        count(&restarted.published, PublishKind::PairingAnnouncement),
        0,
        "a paired device shows no code"
    );
    restarted.sync(&mut lab);
    assert!(restarted.reports().is_empty(), "replayed entries are silent");
    let replay_publish: Vec<&Publish> = restarted
        .published
        .iter()
        .filter(|p| matches!(p.kind, PublishKind::ProviderNotice | PublishKind::DeliveryReceipt))
        .collect();
    assert!(replay_publish.is_empty(), "no notice or receipt sent twice");
    assert_eq!(count(&driver.published, PublishKind::ProviderNotice), notices_before);
    assert_eq!(count(&driver.published, PublishKind::DeliveryReceipt), receipts_before);
    // A reading the first run published already is not published again.
    restarted.read(&mut lab, base + 29);
    assert!(matches!(restarted.events.last(), Some(DeviceEvent::ReadingNotNewer { .. })));

    // A new grant after the restart is carried out live.
    let mut beta = provider(&mut lab, 2, "Beta", &device_keys);
    let request = beta.request(&mut lab, "insight", Tier::TenSeconds, 30);
    let beta_grant = household.grant(&mut lab, &request, &beta.card, &[Tier::TenSeconds]);
    lab.now += 1;
    restarted.sync(&mut lab);
    assert!(restarted.reports().iter().any(|r| matches!(
        r,
        ConsentReport::GrantStarted { grant, .. } if *grant == beta_grant
    )));
    assert_eq!(restarted.applied, 4);
    beta.sync(&mut lab);
    assert!(matches!(beta.outcomes.first(), Some(NoticeOutcome::Granted(_))));
}

#[test]
fn a_wrong_claim_is_refused_and_the_device_keeps_waiting_for_its_owner() {
    let mut lab = Lab::new(91);
    let mut driver = Driver::start(&mut lab, Resume::default());
    // An observer claims with a code of its own making for this device.
    let wrong = PairingCode::generate(driver.device.keys().id(), &mut lab.rng);
    let start = ExpectAnnouncement::new(wrong);
    let announcements: Vec<Vec<u8>> = lab.tangle.at(&start.announcement_address()).to_vec();
    let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
    let (_, claim) = start.claim(&party(Role::Wallet, 3), &refs, &mut lab.rng).unwrap();
    lab.tangle.publish([claim]);
    driver.sync(&mut lab);
    assert!(driver.events.iter().any(|e| matches!(e, DeviceEvent::ClaimRefused(_))));
    assert!(driver.device.owner().is_none());
    assert_eq!(
        count(&driver.published, PublishKind::PairingAnnouncement),
        2,
        "a refused claim spends the challenge: a new announcement"
    );
    // The real owner still pairs with the code on screen.
    let household = pair(&mut lab, &mut driver);
    assert_eq!(driver.device.owner(), Some(household.paired.owner.id()));
}

#[test]
fn a_saved_channel_of_another_device_is_refused() {
    let mut lab = Lab::new(92);
    let other = protocol::channel::DeviceChannel::new(
        party(Role::Device, 7),
        &settings().stream_configs(),
        &mut lab.rng,
    )
    .unwrap();
    let resume =
        Resume { channel: Some(SavedDevice::decode(&other.save()).unwrap()), ..Resume::default() };
    let result = Device::start(secret(), settings(), resume, lab.now, &mut lab.rng);
    assert!(matches!(result, Err(protocol::device::DeviceError::ForeignChannel)));
}

#[test]
fn tiers_the_saved_channel_has_no_stream_for_are_reported_and_left_out() {
    let mut lab = Lab::new(93);
    let only_seconds = DeviceSettings { tiers: vec![Tier::Second], ..settings() };
    let saved = protocol::channel::DeviceChannel::new(
        party(Role::Device, 42),
        &only_seconds.stream_configs(),
        &mut lab.rng,
    )
    .unwrap();
    let resume =
        Resume { channel: Some(SavedDevice::decode(&saved.save()).unwrap()), ..Resume::default() };
    let (mut device, step) =
        Device::start(secret(), settings(), resume, lab.now, &mut lab.rng).unwrap();
    assert!(step.events.iter().any(|e| matches!(
        e,
        DeviceEvent::TiersWithoutStream(tiers) if tiers == &vec![Tier::TenSeconds]
    )));
    assert_eq!(device.settings().tiers, vec![Tier::Second]);
    // Readings keep flowing in the tier that has a stream; none is refused for the other.
    for at in lab.now..lab.now + 12 {
        let step = device.on_reading(&reading(at), at, &mut lab.rng);
        let data = step
            .publish
            .iter()
            .filter(|p| p.kind == PublishKind::Channel(protocol::channel::OutgoingKind::Data))
            .count();
        assert_eq!(data, 1);
        assert!(step.events.is_empty());
    }
}
