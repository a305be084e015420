//! Consent latency benchmark: the CPU time of pairing, and of "consent granted → provider holds
//! keys" (wallet signs the grant entry, the device verifies it, rotates and sends the keyload and
//! the notice, the provider verifies the notice and joins the stream), and of a revocation.
//!
//! Run with `cargo bench -p protocol --bench consent` (release build). Prints medians over the
//! runs and the ratio to the product target (< 1 s from grant to keys; the 2018 original took
//! minutes, dominated by proof of work and 10 s polling, which cannot be re-run here). Network and
//! tangle-node time are not included: this is the protocol's own cost on this machine.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::run();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::time::{Duration, Instant};

    use protocol::channel::{
        DeviceChannel, FollowerConfig, FollowerEvent, ProviderFollower, StreamConfig, Tier,
    };
    use protocol::consent::{
        ConsentEvent, ConsentFollowerConfig, ConsentLogWriter, DeviceConsentFollower, EventKind,
        Grant, NoticeOutcome, ProviderConsent, PublishKind,
    };
    use protocol::crypto::{PartyKeys, PartySecret, Role};
    use protocol::pairing::{ClaimOutcome, Confirmation, ExpectAnnouncement, ExpectClaim};
    use protocol::provider::{AccessRequest, DataItem, ProviderCard, PurposeCategory};
    use sha3::{Digest, Sha3_256};

    const RUNS: usize = 30;
    const T0: u64 = 1_780_000_000;

    /// Deterministic SHA3 counter-mode generator: benchmark inputs need no real entropy.
    struct BenchRng(u64);
    impl rand_core::TryRng for BenchRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut word = [0u8; 8];
            self.try_fill_bytes(&mut word)?;
            Ok(u64::from_le_bytes(word))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(32) {
                self.0 += 1;
                let block = Sha3_256::digest(self.0.to_le_bytes());
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for BenchRng {}

    fn keys(role: Role, n: u8) -> PartyKeys {
        PartyKeys::derive(&PartySecret::from_bytes([n; 32]), role)
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort_unstable();
        samples[samples.len() / 2]
    }

    struct Timings {
        pairing: Duration,
        grant_to_keys: Duration,
        revocation: Duration,
    }

    #[allow(clippy::unwrap_used)] // A benchmark of known-good inputs.
    fn one_run(rng: &mut BenchRng) -> Timings {
        let device_keys = keys(Role::Device, 1);
        let wallet = keys(Role::Wallet, 2);
        let provider = keys(Role::Provider, 3);
        let mut channel =
            DeviceChannel::new(keys(Role::Device, 1), &[StreamConfig::new(Tier::Second)], rng)
                .unwrap();

        // Pairing: announcement → claim → device check → confirmation check.
        let (waiting, code, announcement) = ExpectClaim::start(&device_keys, T0, rng).unwrap();
        let started = Instant::now();
        let (expect, claim) = ExpectAnnouncement::new(code)
            .claim(&wallet, &[announcement.payload.as_slice()], rng)
            .unwrap();
        let ClaimOutcome::Paired { state, confirmation } =
            waiting.receive_claim(&device_keys, &claim.payload, T0, rng).unwrap()
        else {
            panic!("pairing failed");
        };
        let Confirmation::Paired(paired) = expect.confirm(&confirmation.payload) else {
            panic!("confirmation failed");
        };
        let pairing = started.elapsed();

        let mut writer = ConsentLogWriter::new(device_keys.id(), &paired.log_key);
        let mut follower = DeviceConsentFollower::new(
            device_keys.id(),
            state.owner().clone(),
            state.log_key(),
            ConsentFollowerConfig::default(),
        );
        let first = writer
            .append(
                &paired.owner,
                &ConsentEvent {
                    device: device_keys.id(),
                    time: T0,
                    kind: EventKind::DevicePaired {
                        owner: paired.owner.id(),
                        pairing_id: paired.pairing_id,
                    },
                },
                rng,
            )
            .unwrap();
        follower
            .receive(
                &device_keys,
                &mut channel,
                &first.publish.address,
                &first.publish.payload,
                T0,
                rng,
            )
            .unwrap();
        let card = ProviderCard::create(&provider, "Wattt", "https://wattt.example/", "c", T0, rng)
            .unwrap();
        let request = AccessRequest {
            provider: provider.id(),
            nonce: [1; 16],
            purpose: "insight".into(),
            category: PurposeCategory::EnergyInsight,
            data_items: vec![DataItem::Power],
            max_resolution: Tier::Second,
            start: T0,
            end: T0 + 86_400,
            delete_by: T0 + 2 * 86_400,
            return_url: "https://wattt.example/done".into(),
            created_at: T0,
        }
        .sign(&provider, rng)
        .unwrap();
        let mut provider_consent = ProviderConsent::new();
        let mut provider_follower = ProviderFollower::new(
            &provider,
            device_keys.public().clone(),
            FollowerConfig::default(),
        );

        // Grant → provider holds keys.
        let started = Instant::now();
        let grant = Grant::answering(&request, &card, &[Tier::Second], writer.keys(), rng).unwrap();
        let grant_id = grant.id;
        let entry = writer
            .append(
                &paired.owner,
                &ConsentEvent {
                    device: device_keys.id(),
                    time: T0,
                    kind: EventKind::Granted(Box::new(grant)),
                },
                rng,
            )
            .unwrap();
        let step = follower
            .receive(
                &device_keys,
                &mut channel,
                &entry.publish.address,
                &entry.publish.payload,
                T0,
                rng,
            )
            .unwrap();
        let mut joined = false;
        for item in &step.publish {
            match item.kind {
                PublishKind::ProviderNotice => {
                    let outcome = provider_consent.receive(&provider, &item.payload).unwrap();
                    assert!(matches!(outcome, NoticeOutcome::Granted(_)));
                }
                PublishKind::Channel(_) if item.address == provider.public().inbox_address() => {
                    let events =
                        provider_follower.receive(&provider, &item.address, &item.payload, T0);
                    joined |= events.iter().any(|e| matches!(e, FollowerEvent::Joined { .. }));
                }
                _ => {}
            }
        }
        let grant_to_keys = started.elapsed();
        assert!(joined, "the provider did not get the keys");

        // Revocation: the wallet signs, the device verifies, rotates and notifies.
        let started = Instant::now();
        let revoke = writer
            .append(
                &paired.owner,
                &ConsentEvent {
                    device: device_keys.id(),
                    time: T0 + 10,
                    kind: EventKind::Revoked { grant: grant_id, reason: String::new() },
                },
                rng,
            )
            .unwrap();
        let step = follower
            .receive(
                &device_keys,
                &mut channel,
                &revoke.publish.address,
                &revoke.publish.payload,
                T0 + 10,
                rng,
            )
            .unwrap();
        for item in step.publish.iter().filter(|i| i.kind == PublishKind::ProviderNotice) {
            provider_consent.receive(&provider, &item.payload).unwrap();
        }
        let revocation = started.elapsed();
        assert!(channel.members(Tier::Second).unwrap().is_empty());
        Timings { pairing, grant_to_keys, revocation }
    }

    #[allow(clippy::print_stdout)] // The benchmark's report.
    pub fn run() {
        let mut rng = BenchRng(7);
        let runs: Vec<Timings> = (0..RUNS).map(|_| one_run(&mut rng)).collect();
        let pairing = median(runs.iter().map(|t| t.pairing).collect());
        let grant = median(runs.iter().map(|t| t.grant_to_keys).collect());
        let revoke = median(runs.iter().map(|t| t.revocation).collect());
        let target = Duration::from_secs(1);
        println!("consent latency, CPU only, median of {RUNS} runs");
        println!("  pairing (claim + device check + confirmation): {pairing:?}");
        println!(
            "  grant -> provider holds keys:                  {grant:?}  ({:.4} of the 1 s target)",
            grant.as_secs_f64() / target.as_secs_f64()
        );
        println!("  revocation -> rotated + notice verified:       {revoke:?}");
    }
}
