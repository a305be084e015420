//! A small world for the pairing and consent tests: an in-memory tangle, a device (channel,
//! pairing state, consent follower), a household wallet and providers, all driven by hand with
//! an injected clock and a deterministic RNG.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use protocol::channel::{
    Address, DeviceChannel, FollowerConfig, FollowerEvent, Outgoing, ProviderFollower, SavedDevice,
    StreamConfig, Tier,
};
use protocol::consent::{
    ConsentEvent, ConsentFollowerConfig, ConsentLogWriter, ConsentReport, DeviceConsentFollower,
    EventKind, Grant, GrantId, NoticeOutcome, ProviderConsent, Publish, WrittenEntry,
    notice_address,
};
use protocol::crypto::{PartyKeys, Role};
use protocol::pairing::{
    ClaimOutcome, ClaimRefusal, Confirmation, ExpectAnnouncement, ExpectClaim, Paired,
    PairedDevice, PairingCode,
};
use protocol::provider::{
    AccessRequest, DataItem, ProviderCard, PurposeCategory, RequestLink, SignedRequest,
};

use crate::channel_support::{TestRng, party, reading};

/// Start of every test's clock.
pub const T0: u64 = 1_780_000_000;
pub const DAY: u64 = 86_400;

/// The untrusted store: every payload ever published at an address, in order.
#[derive(Debug, Default)]
pub struct Tangle {
    pub messages: BTreeMap<Address, Vec<Vec<u8>>>,
    pub published: Vec<Publish>,
}

impl Tangle {
    pub fn publish(&mut self, items: impl IntoIterator<Item = Publish>) {
        for item in items {
            self.messages.entry(item.address).or_default().push(item.payload.clone());
            self.published.push(item);
        }
    }

    pub fn publish_channel(&mut self, items: Vec<Outgoing>) {
        self.publish(items.into_iter().map(Publish::from));
    }

    pub fn at(&self, address: &Address) -> &[Vec<u8>] {
        self.messages.get(address).map_or(&[], Vec::as_slice)
    }
}

/// Clock, randomness and tangle.
#[derive(Debug)]
pub struct Lab {
    pub tangle: Tangle,
    pub rng: TestRng,
    pub now: u64,
}

impl Lab {
    pub fn new(seed: u64) -> Self {
        Self { tangle: Tangle::default(), rng: TestRng::new(seed), now: T0 }
    }
}

/// A meter reader: keys, channel, pairing state and consent follower.
#[derive(Debug)]
pub struct Device {
    pub n: u8,
    pub keys: PartyKeys,
    pub channel: DeviceChannel,
    pub waiting: Option<ExpectClaim>,
    pub paired: Option<Paired>,
    pub follower: Option<DeviceConsentFollower>,
    pub code: PairingCode,
    pub inbox_cursor: usize,
    pub cursors: BTreeMap<Address, usize>,
    pub reports: Vec<ConsentReport>,
    pub refusals: Vec<ClaimRefusal>,
    pub confirmations: Vec<Publish>,
}

impl Device {
    /// A device publishing `tiers`, showing a fresh pairing code.
    pub fn new(lab: &mut Lab, n: u8, tiers: &[Tier]) -> Self {
        let keys = party(Role::Device, n);
        let configs: Vec<StreamConfig> = tiers.iter().map(|t| StreamConfig::new(*t)).collect();
        let channel = DeviceChannel::new(party(Role::Device, n), &configs, &mut lab.rng).unwrap();
        let (waiting, code, announcement) =
            ExpectClaim::start(&keys, lab.now, &mut lab.rng).unwrap();
        lab.tangle.publish([announcement]);
        Self {
            n,
            keys,
            channel,
            waiting: Some(waiting),
            paired: None,
            follower: None,
            code,
            inbox_cursor: 0,
            cursors: BTreeMap::new(),
            reports: Vec::new(),
            refusals: Vec::new(),
            confirmations: Vec::new(),
        }
    }

    /// Processes every new payload in the device's inbox (pairing claims).
    pub fn poll_claims(&mut self, lab: &mut Lab) {
        let inbox = self.keys.public().inbox_address();
        let payloads = lab.tangle.at(&inbox).to_vec();
        while self.inbox_cursor < payloads.len() {
            let payload = &payloads[self.inbox_cursor];
            self.inbox_cursor += 1;
            if let Some(paired) = &self.paired {
                self.refusals.push(paired.refuse_claim());
                continue;
            }
            let waiting = self.waiting.take().unwrap();
            match waiting.receive_claim(&self.keys, payload, lab.now, &mut lab.rng).unwrap() {
                ClaimOutcome::Paired { state, confirmation } => {
                    self.follower = Some(DeviceConsentFollower::new(
                        self.keys.id(),
                        state.owner().clone(),
                        state.log_key(),
                        ConsentFollowerConfig { receipt_interval_secs: 60 },
                    ));
                    self.paired = Some(state);
                    self.confirmations.push(confirmation.clone());
                    lab.tangle.publish([confirmation]);
                }
                ClaimOutcome::Refused { state, reason, announcement } => {
                    self.refusals.push(reason);
                    self.waiting = Some(state);
                    lab.tangle.publish(announcement);
                }
            }
        }
    }

    /// Follows the consent log until nothing new turns up, then ticks.
    pub fn sync(&mut self, lab: &mut Lab) -> Vec<ConsentReport> {
        let mut fresh = Vec::new();
        let Some(follower) = self.follower.as_mut() else { return fresh };
        loop {
            let mut progressed = false;
            for address in follower.watch_addresses() {
                let payloads = lab.tangle.at(&address).to_vec();
                let cursor = self.cursors.entry(address).or_insert(0);
                while *cursor < payloads.len() {
                    let payload = &payloads[*cursor];
                    *cursor += 1;
                    progressed = true;
                    let step = follower
                        .receive(
                            &self.keys,
                            &mut self.channel,
                            &address,
                            payload,
                            lab.now,
                            &mut lab.rng,
                        )
                        .unwrap();
                    lab.tangle.publish(step.publish);
                    fresh.extend(step.reports);
                }
            }
            if !progressed {
                break;
            }
        }
        let step = follower.tick(&self.keys, &mut self.channel, lab.now, &mut lab.rng).unwrap();
        lab.tangle.publish(step.publish);
        fresh.extend(step.reports);
        self.reports.extend(fresh.iter().cloned());
        fresh
    }

    /// Publishes one reading in `tier` at the current time.
    pub fn publish(&mut self, lab: &mut Lab, tier: Tier) {
        let items = self.channel.publish(tier, &[reading(lab.now)], lab.now, &mut lab.rng).unwrap();
        if let Some(follower) = self.follower.as_mut() {
            follower.record_published(tier, &items);
        }
        lab.tangle.publish_channel(items);
    }

    /// Publishes a checkpoint for `tier` now (so providers can verify what came before).
    pub fn checkpoint(&mut self, lab: &mut Lab, tier: Tier) {
        if let Some(item) = self.channel.checkpoint_now(tier, lab.now, &mut lab.rng).unwrap() {
            lab.tangle.publish_channel(vec![item]);
        }
    }

    /// A restart: only the saved states survive (pairing, consent follower, channel); the
    /// driver's fetch cursors are lost too.
    pub fn restart(&mut self, lab: &mut Lab) {
        let paired_bytes = self.paired.as_ref().unwrap().encode();
        let follower_bytes = self.follower.as_ref().unwrap().save();
        let channel_bytes = self.channel.save();
        let keys = party(Role::Device, self.n);
        let paired = Paired::decode(&paired_bytes).unwrap();
        let follower = DeviceConsentFollower::restore(
            &follower_bytes,
            keys.id(),
            paired.owner().clone(),
            paired.log_key(),
            ConsentFollowerConfig { receipt_interval_secs: 60 },
        )
        .unwrap();
        let (channel, resumed) = SavedDevice::decode(&channel_bytes)
            .unwrap()
            .resume(party(Role::Device, self.n), lab.now, &mut lab.rng)
            .unwrap();
        lab.tangle.publish_channel(resumed);
        self.keys = keys;
        self.channel = channel;
        self.paired = Some(paired);
        self.follower = Some(follower);
        self.cursors.clear();
    }

    /// A physical reset (hand-over without the wallet): ends every grant, shows a new code.
    pub fn reset(&mut self, lab: &mut Lab) {
        if let Some(mut follower) = self.follower.take() {
            let step =
                follower.end_all(&self.keys, &mut self.channel, lab.now, &mut lab.rng).unwrap();
            lab.tangle.publish(step.publish);
            self.reports.extend(step.reports);
        }
        let paired = self.paired.take().unwrap();
        let (waiting, code, announcement) =
            paired.reset(&self.keys, lab.now, &mut lab.rng).unwrap();
        lab.tangle.publish([announcement]);
        self.waiting = Some(waiting);
        self.code = code;
        self.cursors.clear();
    }
}

/// The household: its wallet keys and, per paired device, the log writer.
#[derive(Debug)]
pub struct Household {
    pub wallet: PartyKeys,
    pub paired: PairedDevice,
    pub writer: ConsentLogWriter,
    pub written: Vec<WrittenEntry>,
}

impl Household {
    /// Appends an event to the device's log and publishes it.
    pub fn append(&mut self, lab: &mut Lab, kind: EventKind) -> WrittenEntry {
        let event = ConsentEvent { device: self.paired.device.id(), time: lab.now, kind };
        let written = self.writer.append(&self.paired.owner, &event, &mut lab.rng).unwrap();
        lab.tangle.publish([written.publish.clone()]);
        self.written.push(written.clone());
        written
    }

    /// Grants a verified request for `tiers`.
    pub fn grant(
        &mut self,
        lab: &mut Lab,
        request: &SignedRequest,
        card: &ProviderCard,
        tiers: &[Tier],
    ) -> GrantId {
        let grant =
            Grant::answering(request, card, tiers, self.writer.keys(), &mut lab.rng).unwrap();
        let id = grant.id;
        self.append(lab, EventKind::Granted(Box::new(grant)));
        id
    }

    /// Every entry written, with its content key (what the export needs).
    pub fn entries(&self) -> Vec<(Vec<u8>, protocol::crypto::SymmetricKey)> {
        self.written.iter().map(|w| (w.publish.payload.clone(), w.content_key.clone())).collect()
    }
}

/// Runs the whole pairing over the tangle with `code`; panics if it does not pair.
pub fn pair(lab: &mut Lab, wallet_n: u8, device: &mut Device) -> Household {
    let wallet = party(Role::Wallet, wallet_n);
    // The wallet scans the QR code (the URI form of the code).
    let start = ExpectAnnouncement::new(PairingCode::parse(&device.code.to_uri()).unwrap());
    let announcements: Vec<Vec<u8>> = lab.tangle.at(&start.announcement_address()).to_vec();
    let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
    let (expect, claim) = start.claim(&wallet, &refs, &mut lab.rng).unwrap();
    lab.tangle.publish([claim]);
    device.poll_claims(lab);
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

/// A service provider: card, consent state and a data follower of one device.
#[derive(Debug)]
pub struct Provider {
    pub keys: PartyKeys,
    pub card: ProviderCard,
    pub consent: ProviderConsent,
    pub data: crate::channel_support::Reader,
    pub notice_cursor: usize,
    pub outcomes: Vec<NoticeOutcome>,
}

impl Provider {
    pub fn new(lab: &mut Lab, n: u8, name: &str, device: &Device) -> Self {
        let keys = party(Role::Provider, n);
        let url = format!("https://{}.example/", name.to_lowercase());
        let card =
            ProviderCard::create(&keys, name, &url, "privacy@example.org", lab.now, &mut lab.rng)
                .unwrap();
        lab.tangle.publish([Publish {
            address: card.address(),
            payload: card.encode().to_vec(),
            kind: protocol::consent::PublishKind::ProviderCard,
        }]);
        let follower = ProviderFollower::new(
            &party(Role::Provider, n),
            device.channel.public_keys().clone(),
            FollowerConfig::default(),
        );
        Self {
            keys,
            card,
            consent: ProviderConsent::new(),
            data: crate::channel_support::Reader::new(party(Role::Provider, n), follower),
            notice_cursor: 0,
            outcomes: Vec::new(),
        }
    }

    /// A signed request for `tier` as the finest resolution, lasting `days`.
    pub fn request(&self, lab: &mut Lab, purpose: &str, tier: Tier, days: u64) -> SignedRequest {
        AccessRequest {
            provider: self.keys.id(),
            nonce: [lab.now as u8; 16],
            purpose: purpose.to_owned(),
            category: PurposeCategory::EnergyInsight,
            data_items: vec![DataItem::EnergyImport, DataItem::Power],
            max_resolution: tier,
            start: lab.now,
            end: lab.now + days * DAY,
            delete_by: lab.now + (days + 30) * DAY,
            return_url: format!("{}done", self.card.url()),
            created_at: lab.now,
        }
        .sign(&self.keys, &mut lab.rng)
        .unwrap()
    }

    /// Publishes a request and returns its link text (what the QR code holds).
    pub fn publish_request(&self, lab: &mut Lab, request: &SignedRequest) -> String {
        lab.tangle.publish([Publish {
            address: request.address(),
            payload: request.encode().to_vec(),
            kind: protocol::consent::PublishKind::AccessRequest,
        }]);
        request.link().to_uri()
    }

    /// Reads new notices (verifying them), acknowledges grants, and follows the data.
    pub fn sync(&mut self, lab: &mut Lab) -> Vec<FollowerEvent> {
        let address = notice_address(self.keys.id());
        let payloads = lab.tangle.at(&address).to_vec();
        while self.notice_cursor < payloads.len() {
            let payload = &payloads[self.notice_cursor];
            self.notice_cursor += 1;
            let outcome = self.consent.receive(&self.keys, payload).unwrap();
            if let NoticeOutcome::Granted(receipt) = &outcome {
                let (_, ack) = receipt.acknowledge(&self.keys, lab.now, &mut lab.rng).unwrap();
                lab.tangle.publish([ack]);
            }
            self.outcomes.push(outcome);
        }
        let channel_tangle = crate::channel_support::InMemoryTangle {
            messages: lab.tangle.messages.clone(),
            log: Vec::new(),
        };
        self.data.sync(&channel_tangle, lab.now)
    }

    pub fn verified(&self) -> Vec<u64> {
        self.data.verified_timestamps()
    }
}

/// What a wallet does with a request link: fetch the request and the card, verify.
pub fn wallet_opens(
    lab: &Lab,
    link: &str,
) -> Result<(SignedRequest, ProviderCard), protocol::provider::ProviderError> {
    let link = RequestLink::parse(link)?;
    let card_bytes = lab
        .tangle
        .at(&protocol::provider::card_address(link.provider))
        .last()
        .cloned()
        .unwrap_or_default();
    let card = ProviderCard::decode_for(link.provider, &card_bytes)?;
    let request_bytes = lab
        .tangle
        .at(&protocol::provider::request_address(&link.digest))
        .last()
        .cloned()
        .unwrap_or_default();
    let request = SignedRequest::verify(&link, &request_bytes, &card, lab.now)?;
    Ok((request, card))
}
