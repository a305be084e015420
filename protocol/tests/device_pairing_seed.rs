//! A device restarted before pairing, with the pairing seed its driver kept, shows the same
//! code, and the code copied before the restart pairs with the restarted device; without the
//! seed a restart draws a new code.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;

use channel_support::{TestRng, party};
use protocol::channel::Tier;
use protocol::consent::{Publish, PublishKind};
use protocol::crypto::{PartySecret, Role};
use protocol::device::{Device, DeviceEvent, DeviceSettings, DeviceStep, Resume};
use protocol::pairing::{Confirmation, ExpectAnnouncement, PairingCode};

const NOW: u64 = 1_780_000_000;

fn settings() -> DeviceSettings {
    DeviceSettings { tiers: vec![Tier::Second], checkpoint_secs: None, receipt_interval_secs: 60 }
}

fn start(seed: Option<[u8; 32]>, rng: &mut TestRng) -> (Device, DeviceStep) {
    let secret = PartySecret::from_bytes([42; 32]);
    Device::start_with_pairing_seed(secret, settings(), Resume::default(), seed, NOW, rng).unwrap()
}

fn shown_code(step: &DeviceStep) -> PairingCode {
    step.events
        .iter()
        .find_map(|event| match event {
            DeviceEvent::PairingCode(code) => Some(code.clone()),
            _ => None,
        })
        .unwrap()
}

fn of_kind(step: &DeviceStep, kind: PublishKind) -> Vec<&Publish> {
    step.publish.iter().filter(|p| p.kind == kind).collect()
}

#[test]
fn a_restart_with_the_kept_seed_shows_the_same_code_and_it_pairs() {
    let (first, first_step) = start(None, &mut TestRng::new(1));
    let before = shown_code(&first_step);
    assert_eq!(first.pairing_code(), Some(&before));
    let seed = *first.pairing_seed().unwrap();
    drop(first);

    // Restarted with other randomness but the kept seed: the same code.
    let mut rng = TestRng::new(2);
    let (mut restarted, restart_step) = start(Some(seed), &mut rng);
    assert_eq!(shown_code(&restart_step), before);
    assert_eq!(restarted.pairing_seed(), Some(&seed));
    // Without the seed, that randomness shows another code: the seed is what keeps it.
    assert_ne!(shown_code(&start(None, &mut TestRng::new(2)).1), before);

    // The wallet types the code from before the restart and claims the restarted device.
    let wallet = party(Role::Wallet, 1);
    let expect = ExpectAnnouncement::new(PairingCode::parse(&before.to_text()).unwrap());
    let announcements = of_kind(&restart_step, PublishKind::PairingAnnouncement);
    assert_eq!(announcements.len(), 1);
    assert_eq!(announcements[0].address, expect.announcement_address());
    let (expect, claim) =
        expect.claim(&wallet, &[announcements[0].payload.as_slice()], &mut rng).unwrap();
    let step = restarted.on_message(&claim.address, &claim.payload, NOW + 5, &mut rng).unwrap();
    assert!(step.events.iter().any(|e| matches!(e, DeviceEvent::Paired(_))), "{:?}", step.events);
    let confirmation = of_kind(&step, PublishKind::PairingConfirmation);
    assert_eq!(confirmation.len(), 1);
    assert_eq!(confirmation[0].address, expect.confirmation_address());
    let Confirmation::Paired(paired) = expect.confirm(&confirmation[0].payload) else {
        panic!("the restarted device did not confirm the code shown before the restart");
    };
    assert_eq!(paired.device.id(), restarted.keys().id());
    assert_eq!(restarted.owner(), Some(paired.owner.id()));
    assert_eq!(restarted.pairing_seed(), None, "nothing left to keep once paired");
}
