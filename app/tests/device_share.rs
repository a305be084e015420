//! "Share as a device" without a node: the browser glue around `protocol::device::Device` —
//! telegram text to reading, the bounded in-memory queue, the sealed state in localStorage and
//! resuming from it — fed with the real 566-telegram capture (Iskra AM550,
//! `protocol/tests/fixtures/p1/streams/nielsbasjes/`, Apache-2.0) through the page's decoder.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::device::outbox::Outbox;
use app::device::{STATE_KEY, ShareError, Sharing, reading_from_text};
use app::reader::{Decoded, MeterDecoder};
use protocol::channel::OutgoingKind;
use protocol::channel::Tier;
use protocol::consent::{Publish, PublishKind};
use protocol::crypto::PartySecret;
use protocol::device::{ConversionError, DeviceSettings, SavedStateError};
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const CAPTURE_LF: &str =
    include_str!("../../protocol/tests/fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt");
const TELEGRAMS_IN_CAPTURE: usize = 566;
/// Meter time of the capture's first telegram is after this (2019), and the clock given to the
/// device is "now" in the test: the device must not care that they differ.
const NOW: u64 = 1_780_000_000;

/// The telegram texts the Meter page's decoder shows for the capture, in order.
fn telegram_texts() -> Vec<String> {
    let capture = CAPTURE_LF.replace('\n', "\r\n");
    let mut decoder = MeterDecoder::new(None);
    let mut out = Vec::new();
    decoder.feed(capture.as_bytes(), &mut out);
    decoder.end_of_input(&mut out);
    out.into_iter()
        .filter_map(|decoded| match decoded {
            Decoded::Telegram(snapshot) => Some(snapshot.raw),
            _ => None,
        })
        .collect()
}

/// Two tiers, so the counts below do not depend on which coarser tiers exist.
fn settings() -> DeviceSettings {
    DeviceSettings {
        tiers: vec![Tier::Second, Tier::TenSeconds],
        checkpoint_secs: None,
        receipt_interval_secs: 3_600,
    }
}

fn item(kind: PublishKind, n: u8) -> Publish {
    Publish { address: [n; 32], payload: vec![n], kind }
}

const DATA: PublishKind = PublishKind::Channel(OutgoingKind::Data);

#[test]
fn the_queue_keeps_every_control_message_and_at_most_its_capacity_of_readings() {
    let mut outbox = Outbox::new(3);
    let mut items = Vec::new();
    for n in 0..5 {
        items.push(item(DATA, n));
        if n % 2 == 0 {
            items.push(item(PublishKind::ProviderNotice, 100 + n));
        }
    }
    assert_eq!(outbox.push(items), 2, "readings 3 and 4 do not fit");
    assert_eq!(outbox.refused(), 2);
    assert_eq!(outbox.data_waiting(), 3);
    // Order is kept; the notice queued after the refused reading 4 is still there.
    let order: Vec<u8> = {
        let mut copy = Outbox::new(3);
        let mut seen = Vec::new();
        std::mem::swap(&mut copy, &mut outbox);
        while let Some(front) = copy.pop_front() {
            seen.push(front.address[0]);
        }
        seen
    };
    assert_eq!(order, vec![0, 100, 1, 2, 102, 104]);
    // Room again after sending: a reading fits once one has gone.
    let mut outbox = Outbox::new(1);
    assert_eq!(outbox.push([item(DATA, 1), item(DATA, 2)]), 1);
    assert_eq!(outbox.pop_front().unwrap().address[0], 1);
    assert_eq!(outbox.push([item(DATA, 3)]), 0);
    assert_eq!(outbox.len(), 1);
    assert!(!outbox.is_empty());
}

#[test]
fn every_telegram_the_page_decodes_becomes_a_reading_carrying_that_telegram() {
    let texts = telegram_texts();
    assert_eq!(texts.len(), TELEGRAMS_IN_CAPTURE);
    let capture = CAPTURE_LF.replace('\n', "\r\n");
    let mut last = 0;
    for text in &texts {
        let reading = reading_from_text(text).unwrap();
        let raw = String::from_utf8(reading.raw_telegram.clone().unwrap()).unwrap();
        assert!(text.starts_with(&raw), "the raw telegram is the text before its CRC digits");
        assert!(capture.contains(&raw), "found verbatim in the capture");
        assert!(reading.timestamp > last, "meter time advances");
        last = reading.timestamp;
        assert!(!reading.energy_import_wh.is_empty());
    }
    // One changed digit: the CRC no longer matches and nothing is shared from it.
    let damaged = texts[10].replacen("1-0:1.7.0(00.", "1-0:1.7.0(01.", 1);
    assert_ne!(damaged, texts[10]);
    assert_eq!(
        reading_from_text(&damaged).unwrap_err(),
        ShareError::Conversion(ConversionError::BadCrc)
    );
    assert!(matches!(reading_from_text("not a telegram"), Err(ShareError::Telegram(_))));
}

#[test]
fn sharing_shows_a_code_queues_readings_and_resumes_from_its_sealed_state() {
    app::storage::remove(STATE_KEY).unwrap();
    let texts = telegram_texts();
    let secret = || PartySecret::from_bytes([5; 32]);
    let mut sharing = Sharing::start(secret(), settings(), None, 1000, NOW).unwrap();
    let status = sharing.status().clone();
    let (code, link) = status.pairing.clone().unwrap();
    assert!(link.starts_with("meterkast:"), "{link}");
    assert!(!code.is_empty() && status.owner.is_none());
    assert_eq!(sharing.outbox().len(), 1, "the signed pairing announcement");
    assert_eq!(sharing.outbox().front().unwrap().kind, PublishKind::PairingAnnouncement);

    for text in &texts[..40] {
        sharing.on_telegram(text, NOW);
    }
    assert_eq!(sharing.status().readings, 40);
    // 15:05:19 to 15:05:58: the 10 s windows starting at :10, :20, :30 and :40 are complete.
    assert_eq!(sharing.outbox().data_waiting(), 40 + 4, "40 readings, four 10 s aggregates");
    // The stored state is sealed: hex of ciphertext, no pairing code or device id in it.
    let stored = app::storage::load(STATE_KEY).unwrap().unwrap();
    assert!(hex::decode(&stored).is_ok());
    let device = hex::encode(sharing.status().device.unwrap().0);
    assert!(!stored.contains(&device));

    // The tab is reopened: same identity, same streams; what was shared is not shared again.
    drop(sharing);
    let mut reopened = Sharing::start(secret(), settings(), Some(&stored), 1000, NOW + 60).unwrap();
    assert_eq!(reopened.status().device, status.device);
    reopened.on_telegram(&texts[39], NOW + 60);
    assert_eq!(reopened.status().readings, 0);
    assert_eq!(reopened.status().skipped, 1);
    reopened.on_telegram(&texts[40], NOW + 60);
    assert_eq!(reopened.status().readings, 1);

    // Another identity cannot open (or use) this device's state.
    let stored = app::storage::load(STATE_KEY).unwrap().unwrap();
    let other =
        Sharing::start(PartySecret::from_bytes([6; 32]), settings(), Some(&stored), 1000, NOW);
    assert_eq!(other.unwrap_err(), ShareError::SavedState(SavedStateError::NotThisDevice));
    app::storage::remove(STATE_KEY).unwrap();
}

#[test]
fn with_the_node_away_the_queue_fills_to_its_bound_and_says_how_much_was_dropped() {
    app::storage::remove(STATE_KEY).unwrap();
    let texts = telegram_texts();
    let mut sharing =
        Sharing::start(PartySecret::from_bytes([7; 32]), settings(), None, 25, NOW).unwrap();
    for text in &texts[..60] {
        sharing.on_telegram(text, NOW);
    }
    let status = sharing.status();
    assert_eq!(sharing.outbox().data_waiting(), 25);
    assert_eq!(status.readings, 60);
    assert_eq!(status.dropped, 60 + 6 - 25, "readings and aggregates beyond the bound");
    // Sending the front frees room for the next reading.
    sharing.unreachable("node down".to_owned());
    assert!(sharing.status().unreachable.is_some());
    sharing.sent();
    assert!(sharing.status().unreachable.is_none());
    assert_eq!(sharing.status().sent, 1);
    app::storage::remove(STATE_KEY).unwrap();
}
