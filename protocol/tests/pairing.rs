//! Pairing attacks with a full transcript: an observer cannot pair, replay or take over; a
//! second owner is refused; wrong codes are refused and rate-limited by the device's clock.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use channel_support::{TestRng, party};
use consent_support::{Device, Lab, pair};
use protocol::channel::Tier;
use protocol::consent::Publish;
use protocol::crypto::Role;
use protocol::pairing::{
    ClaimOutcome, ClaimRefusal, Confirmation, ExpectAnnouncement, ExpectClaim, FIRST_LOCKOUT_SECS,
    FREE_ATTEMPTS, PairingCode, PairingError, owner_keys,
};

/// A claim for `code` built by wallet `wallet_n` from what is currently announced.
fn claim(
    lab: &mut Lab,
    wallet_n: u8,
    code: &PairingCode,
) -> (protocol::pairing::ExpectConfirmation, Publish) {
    let start = ExpectAnnouncement::new(code.clone());
    let found: Vec<Vec<u8>> = lab.tangle.at(&start.announcement_address()).to_vec();
    let refs: Vec<&[u8]> = found.iter().map(Vec::as_slice).collect();
    start.claim(&party(Role::Wallet, wallet_n), &refs, &mut lab.rng).unwrap()
}

/// A guess of `device`'s code: right identity, random secret.
fn guess(device: &Device, seed: u64) -> PairingCode {
    PairingCode::generate(device.keys.id(), &mut TestRng::new(seed))
}

#[test]
fn both_sides_agree_on_owner_and_log_key_and_owner_keys_are_per_device() {
    let mut lab = Lab::new(1);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let household = pair(&mut lab, 1, &mut device);
    let paired = device.paired.as_ref().unwrap();
    assert_eq!(paired.owner().id(), household.paired.owner.id());
    assert_eq!(paired.log_key(), &household.paired.log_key);
    assert_eq!(paired.pairing_id(), household.paired.pairing_id);

    // The owner keys are not the wallet's own keys, and differ per device.
    let wallet = party(Role::Wallet, 1);
    let other_device = party(Role::Device, 2);
    assert_ne!(household.paired.owner.id(), wallet.id());
    assert_ne!(owner_keys(&wallet, other_device.id()).unwrap().id(), household.paired.owner.id());
    // And they are what a restored wallet derives again.
    assert_eq!(owner_keys(&wallet, device.keys.id()).unwrap().id(), household.paired.owner.id());
}

#[test]
fn an_observer_with_the_full_transcript_cannot_pair_replay_or_take_over() {
    let mut lab = Lab::new(2);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let code_bytes = data_encoding::BASE32_NOPAD
        .decode(device.code.to_text().replace('-', "").as_bytes())
        .unwrap();
    let secret = code_bytes[32..48].to_vec();
    let household = pair(&mut lab, 1, &mut device);
    // Everything on the wire during the pairing (announcement, claim, confirmation, first
    // log entry) is the observer's transcript.
    let transcript: Vec<Publish> = lab.tangle.published.clone();
    let captured_claim = transcript
        .iter()
        .find(|p| p.address == device.keys.public().inbox_address())
        .unwrap()
        .clone();

    // The code's secret bytes appear nowhere on the wire.
    for item in &transcript {
        assert!(!item.payload.windows(16).any(|w| w == secret.as_slice()), "secret on the wire");
    }

    // Replay of the captured claim, and a fresh claim by someone who later saw the code: the
    // paired device refuses both without reading them.
    lab.tangle.publish([captured_claim.clone()]);
    let (_, late_claim) = claim(&mut lab, 66, &device.code.clone());
    lab.tangle.publish([late_claim]);
    device.poll_claims(&mut lab);
    assert_eq!(device.refusals, vec![ClaimRefusal::AlreadyOwned, ClaimRefusal::AlreadyOwned]);
    assert_eq!(device.paired.as_ref().unwrap().owner().id(), household.paired.owner.id());

    // After a hand-over the device shows a new code: replaying the old claim, or claiming with
    // a guessed code, pairs nobody.
    device.reset(&mut lab);
    lab.tangle.publish([captured_claim]);
    device.poll_claims(&mut lab);
    let (_, guessed) = claim(&mut lab, 66, &guess(&device, 99));
    lab.tangle.publish([guessed]);
    device.poll_claims(&mut lab);
    assert_eq!(
        &device.refusals[2..],
        &[ClaimRefusal::Unreadable, ClaimRefusal::WrongCode],
        "replay and guess refused"
    );
    assert!(device.paired.is_none());

    // The new owner, with the new code, pairs.
    let next = pair(&mut lab, 2, &mut device);
    assert_eq!(device.paired.as_ref().unwrap().owner().id(), next.paired.owner.id());
}

#[test]
fn a_claim_reveals_nothing_testable_about_the_code() {
    // Two claims from the same wallet state, one with the right code and one with a guess: the
    // KEM ciphertext is the same (drawn first from the same randomness), the lengths are equal,
    // and the bytes that depend on the code are inside an AEAD under a key only the device can
    // derive. Nothing in them lets anyone but the device check a guess.
    let mut lab = Lab::new(3);
    let device = Device::new(&mut lab, 1, &[Tier::Second]);
    let right = device.code.clone();
    let wrong = guess(&device, 5);
    let snapshot = lab.rng.clone();
    let (_, with_right) = claim(&mut lab, 1, &right);
    lab.rng = snapshot;
    let (_, with_wrong) = claim(&mut lab, 1, &wrong);
    assert_eq!(with_right.payload.len(), with_wrong.payload.len());
    assert_eq!(with_right.payload[..1088], with_wrong.payload[..1088]);
    assert_ne!(with_right.payload[1088..], with_wrong.payload[1088..]);
}

#[test]
fn wrong_codes_are_refused_and_rate_limited_by_the_device_clock() {
    let mut lab = Lab::new(4);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    for attempt in 0..FREE_ATTEMPTS {
        let (_, bad) = claim(&mut lab, 66, &guess(&device, 100 + u64::from(attempt)));
        lab.tangle.publish([bad]);
        device.poll_claims(&mut lab);
    }
    assert_eq!(device.refusals, vec![ClaimRefusal::WrongCode; FREE_ATTEMPTS as usize]);
    let waiting = device.waiting.as_ref().unwrap();
    assert_eq!(waiting.failures(), FREE_ATTEMPTS);
    assert_eq!(waiting.locked_until(), lab.now + FIRST_LOCKOUT_SECS);

    // Locked: even the right code is not read.
    let (_, good) = claim(&mut lab, 1, &device.code.clone());
    lab.tangle.publish([good]);
    device.poll_claims(&mut lab);
    assert_eq!(
        device.refusals.last(),
        Some(&ClaimRefusal::RateLimited { until: lab.now + FIRST_LOCKOUT_SECS })
    );
    assert!(device.paired.is_none());

    // One more failure after the lock-out doubles it.
    lab.now += FIRST_LOCKOUT_SECS;
    let (_, bad) = claim(&mut lab, 66, &guess(&device, 200));
    lab.tangle.publish([bad]);
    device.poll_claims(&mut lab);
    assert_eq!(device.waiting.as_ref().unwrap().locked_until(), lab.now + 2 * FIRST_LOCKOUT_SECS);

    // When the lock-out has passed, the household pairs with the right code.
    lab.now += 2 * FIRST_LOCKOUT_SECS;
    let household = pair(&mut lab, 1, &mut device);
    assert_eq!(device.paired.as_ref().unwrap().owner().id(), household.paired.owner.id());
}

#[test]
fn tampered_claims_stale_claims_and_forged_confirmations_are_refused() {
    let mut lab = Lab::new(5);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second]);
    let (expect, good) = claim(&mut lab, 1, &device.code.clone());

    // A bit flipped anywhere in the claim: unreadable, counted as a failed attempt.
    let mut flipped = good.clone();
    let last = flipped.payload.len() - 1;
    flipped.payload[last] ^= 1;
    lab.tangle.publish([flipped]);
    device.poll_claims(&mut lab);
    assert_eq!(device.refusals, vec![ClaimRefusal::Unreadable]);

    // The untouched claim now answers a spent challenge: refused too.
    lab.tangle.publish([good]);
    device.poll_claims(&mut lab);
    assert_eq!(device.refusals[1], ClaimRefusal::Unreadable);
    assert!(device.paired.is_none());

    // Garbage at the confirmation address leaves the wallet waiting.
    let Confirmation::Rejected { state, error } = expect.confirm(&[7u8; 3_400]) else {
        panic!("garbage accepted as a confirmation");
    };
    assert_eq!(error, PairingError::BadConfirmation);

    // A genuine confirmation of another pairing (another session) is refused as well.
    let mut other_lab = Lab::new(6);
    let mut other_device = Device::new(&mut other_lab, 1, &[Tier::Second]);
    let _ = pair(&mut other_lab, 1, &mut other_device);
    let foreign = other_device.confirmations[0].payload.clone();
    assert!(matches!(state.confirm(&foreign), Confirmation::Rejected { .. }));
}

#[test]
fn spoofed_announcements_are_skipped() {
    let mut lab = Lab::new(7);
    let device = Device::new(&mut lab, 1, &[Tier::Second]);
    let start = ExpectAnnouncement::new(device.code.clone());
    // An impostor device publishes its own (validly signed) announcement, with a higher attempt
    // counter, at the victim's announcement address.
    let impostor = party(Role::Device, 9);
    let (mut waiting, _, _) = ExpectClaim::start(&impostor, lab.now, &mut lab.rng).unwrap();
    for _ in 0..3 {
        waiting = match waiting.receive_claim(&impostor, &[0; 10], lab.now, &mut lab.rng).unwrap() {
            ClaimOutcome::Refused { state, .. } => state,
            ClaimOutcome::Paired { .. } => panic!("garbage paired"),
        };
    }
    let mut spoof = waiting.announcement(&impostor, lab.now, &mut lab.rng).unwrap();
    spoof.address = start.announcement_address();
    lab.tangle.publish([spoof.clone()]);

    let found: Vec<Vec<u8>> = lab.tangle.at(&start.announcement_address()).to_vec();
    let refs: Vec<&[u8]> = found.iter().map(Vec::as_slice).collect();
    let (_, claim) = start.claim(&party(Role::Wallet, 1), &refs, &mut lab.rng).unwrap();
    assert_eq!(
        claim.address,
        device.keys.public().inbox_address(),
        "claim went to the real device"
    );

    let only_spoof = [spoof.payload.as_slice()];
    assert_eq!(
        start.claim(&party(Role::Wallet, 1), &only_spoof, &mut lab.rng).map(|_| ()),
        Err(PairingError::NoAnnouncement)
    );
}
