//! Channel cost benchmark: what one reading costs in CPU and bytes, what checkpoints, keyloads and
//! rotations cost, and how that compares with the 2018 MAM message it replaces.
//!
//! Run with `scripts/bench-channel.sh` (release build). Prints medians; nothing here is a test.
//!
//! The 2018 peer is measured in the same run where it can be: its proof of work is Curl-P-81
//! nonce trials, timed here with `iota-crypto`'s 64-lane bit-sliced Curl-P-81 (the technique of
//! IOTA's PearlDiver), and multiplied by the expected trial count at the 2018 mainnet minimum
//! weight magnitude (3^14 per transaction, at least three transactions per MAM message).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::run();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use protocol::channel::{
        DeviceChannel, FollowerConfig, FollowerEvent, GasReading, OutgoingKind, PhaseReading,
        ProviderFollower, Reading, StreamConfig, Tier,
    };
    use protocol::crypto::{PartyKeys, PartySecret, Role, SignatureContext};
    use sha3::{Digest, Sha3_256};

    /// Deterministic SHA3 counter-mode generator: benchmark inputs need no real entropy.
    struct BenchRng(u64);
    impl rand_core::TryRng for BenchRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 += 1;
            let block = Sha3_256::digest(self.0.to_le_bytes());
            let mut word = [0u8; 8];
            word.copy_from_slice(&block[..8]);
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

    fn keys(role: Role, n: u32) -> PartyKeys {
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(&n.to_le_bytes());
        secret[31] = role as u8;
        PartyKeys::derive(&PartySecret::from_bytes(secret), role)
    }

    /// A DSMR 5 style 1 s reading: two tariffs each way, three phases, gas.
    fn reading(t: u64, raw: bool) -> Reading {
        Reading {
            timestamp: 1_764_151_200 + t,
            energy_import_wh: vec![12_345_678 + t, 9_876_543],
            energy_export_wh: vec![1_234, 56_789],
            power_import_w: 1_520,
            power_export_w: 0,
            phases: (0..3)
                .map(|i| PhaseReading {
                    voltage_dv: Some(2_300 + i),
                    current_ma: Some(2_000 + i),
                    power_import_w: 500 + i,
                    power_export_w: 0,
                })
                .collect(),
            gas: Some(GasReading { volume_dm3: 4_567_890, captured_at: 1_764_150_900 }),
            // A DSMR 5.0 telegram is about 850 bytes.
            raw_telegram: raw.then(|| vec![b'x'; 850]),
        }
    }

    /// Median of `samples` timings of `f`, each averaged over `inner` calls.
    fn median(samples: usize, inner: u32, mut f: impl FnMut()) -> Duration {
        let mut times: Vec<Duration> = (0..samples)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..inner {
                    f();
                }
                start.elapsed() / inner
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    fn us(d: Duration) -> String {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }

    fn device_with(
        members: u32,
        interval: u64,
        rng: &mut BenchRng,
    ) -> (DeviceChannel, Vec<PartyKeys>) {
        let config = [StreamConfig { tier: Tier::Second, checkpoint_interval_secs: interval }];
        let mut device = DeviceChannel::new(keys(Role::Device, 1), &config, rng)
            .unwrap_or_else(|e| panic!("{e}"));
        let providers: Vec<PartyKeys> =
            (0..members).map(|i| keys(Role::Provider, 1000 + i)).collect();
        for p in &providers {
            device
                .grant(Tier::Second, p.public().clone(), 0, rng)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        (device, providers)
    }

    #[allow(clippy::print_stdout)]
    pub fn run() {
        let mut rng = BenchRng(1);
        println!("Meterkast channel benchmark (release build, one core, medians)\n");

        // ── per reading at 1 s ──────────────────────────────────────────────────────────
        let (mut device, _) = device_with(1, u64::MAX, &mut rng);
        let mut t = 0;
        let mut samples = Vec::new();
        for _ in 0..31 {
            let start = Instant::now();
            for _ in 0..200 {
                t += 1;
                black_box(
                    device
                        .publish(Tier::Second, &[reading(t, false)], t, &mut rng)
                        .unwrap_or_else(|e| panic!("{e}")),
                );
            }
            samples.push(start.elapsed() / 200);
            // Not timed: keep the uncovered window under the checkpoint coverage cap.
            device.checkpoint_now(Tier::Second, t, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        }
        samples.sort();
        let encrypt_chain = samples[samples.len() / 2];
        let data_bytes = device
            .publish(Tier::Second, &[reading(0, false)], 0, &mut rng)
            .unwrap_or_else(|e| panic!("{e}"))[0]
            .payload
            .len();
        let raw_bytes = device
            .publish(Tier::Second, &[reading(0, true)], 0, &mut rng)
            .unwrap_or_else(|e| panic!("{e}"))[0]
            .payload
            .len();

        // A realistic minute: 60 readings and the checkpoint the 60 s interval triggers.
        let (mut device, _) = device_with(1, 60, &mut rng);
        let mut t = 0;
        let mut wire_bytes = 0usize;
        let mut messages = 0usize;
        let started = Instant::now();
        for _ in 0..11 * 60 {
            t += 1;
            for item in device
                .publish(Tier::Second, &[reading(t, false)], t, &mut rng)
                .unwrap_or_else(|e| panic!("{e}"))
            {
                wire_bytes += item.payload.len();
                messages += 1;
            }
        }
        // A mean, not a median: the checkpoint cost is what is being spread over the minute.
        let minute = started.elapsed() / 11;
        let per_reading_with_checkpoint = minute / 60;
        let minutes = 11 * 60;
        let bytes_per_reading = wire_bytes as f64 / minutes as f64;
        let (_, checkpoint_bytes) = {
            let (mut d, _) = device_with(1, u64::MAX, &mut rng);
            for s in 0..60 {
                d.publish(Tier::Second, &[reading(s, false)], s, &mut rng)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let cp = d.checkpoint_now(Tier::Second, 60, &mut rng).ok().flatten();
            ((), cp.map_or(0, |c| c.payload.len()))
        };

        println!("per reading, 1 s tier (DSMR 5 reading: 2+2 registers, 3 phases, gas)");
        println!("  encrypt + address + chain (data message only)  {}", us(encrypt_chain));
        println!(
            "  including its share of the 60 s checkpoint      {} (mean over 11 minutes)",
            us(per_reading_with_checkpoint)
        );
        println!(
            "  data message on the wire                        {data_bytes} B ({raw_bytes} B with an 850 B raw telegram)"
        );
        println!("  checkpoint covering 60 messages                 {checkpoint_bytes} B");
        println!(
            "  bytes on the wire per reading, incl. checkpoint {bytes_per_reading:.0} B  ({messages} messages for {minutes} readings)"
        );

        // ── checkpoint signature ────────────────────────────────────────────────────────
        let device_keys = keys(Role::Device, 1);
        let statement = vec![0x42u8; 2_100]; // a 60-message checkpoint statement
        let sign = median(31, 5, || {
            black_box(
                device_keys
                    .sign(SignatureContext::Checkpoint, &statement, &mut rng)
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        });
        let signature = device_keys
            .sign(SignatureContext::Checkpoint, &statement, &mut rng)
            .unwrap_or_else(|e| panic!("{e}"));
        let public = device_keys.public().clone();
        let verify = median(31, 20, || {
            black_box(public.verify(SignatureContext::Checkpoint, &statement, &signature).is_ok());
        });
        println!("\ncheckpoint (ML-DSA-65, hedged)");
        println!("  sign    {}", us(sign));
        println!("  verify  {}", us(verify));

        // ── keyload ─────────────────────────────────────────────────────────────────────
        let provider = keys(Role::Provider, 7);
        let encapsulate = median(31, 50, || {
            black_box(provider.public().encapsulate(&mut rng));
        });
        let (ct, _) = provider.public().encapsulate(&mut rng);
        let decapsulate = median(31, 50, || {
            black_box(provider.decapsulate(&ct));
        });
        // The whole inbox keyload: a grant to a stream with no other member (its rotation
        // carries no keyload) is one signed rotation plus one signed, encapsulated keyload.
        let mut grant_device =
            DeviceChannel::new(keys(Role::Device, 2), &[StreamConfig::new(Tier::Second)], &mut rng)
                .unwrap_or_else(|e| panic!("{e}"));
        let mut n = 0;
        let mut inbox_item = None;
        let grant = median(15, 1, || {
            n += 1;
            let items = grant_device
                .grant(Tier::Second, keys(Role::Provider, 50_000 + n).public().clone(), 0, &mut rng)
                .unwrap_or_else(|e| panic!("{e}"));
            inbox_item = items.into_iter().find(|i| i.kind == OutgoingKind::InboxKeyload);
        });
        let inbox_item = inbox_item.unwrap_or_else(|| panic!("no keyload"));
        let receiver = keys(Role::Provider, 50_000 + n);
        let open = median(15, 1, || {
            let mut follower = ProviderFollower::new(
                &receiver,
                grant_device.public_keys().clone(),
                FollowerConfig::default(),
            );
            black_box(follower.receive(&receiver, &inbox_item.address, &inbox_item.payload, 0));
        });
        println!("\nkeyload (ML-KEM-768 + XChaCha20-Poly1305, inbox copy also ML-DSA-signed)");
        println!("  ML-KEM-768 encapsulate                {}", us(encapsulate));
        println!("  ML-KEM-768 decapsulate                {}", us(decapsulate));
        println!(
            "  grant (rotation + signed inbox keyload) {}  keyload {} B",
            us(grant),
            inbox_item.payload.len()
        );
        println!("  provider opens + verifies inbox keyload {}", us(open));

        // ── rotation ────────────────────────────────────────────────────────────────────
        println!(
            "\nrotation on revocation (device side; provider side = verify + trial-decapsulate)"
        );
        for remaining in [1u32, 10, 100] {
            let (mut device, _) = device_with(remaining, 60, &mut rng);
            let mut samples = Vec::new();
            let mut size = 0;
            let mut count = 0;
            for i in 0..7 {
                // Grant an extra provider (not timed), then time its revocation: the rotation
                // always carries exactly `remaining` keyloads.
                let leaving = keys(Role::Provider, 90_000 + remaining * 100 + i);
                device
                    .grant(Tier::Second, leaving.public().clone(), 1, &mut rng)
                    .unwrap_or_else(|e| panic!("{e}"));
                let start = Instant::now();
                let items = device
                    .revoke(Tier::Second, leaving.id(), 1, &mut rng)
                    .unwrap_or_else(|e| panic!("{e}"));
                samples.push(start.elapsed());
                size = items.iter().map(|i| i.payload.len()).sum::<usize>();
                count = items.len();
            }
            samples.sort();
            println!(
                "  {remaining:>3} remaining: {:>10}  {size:>7} B in {count} message(s)  ({:.0} B per remaining member)",
                us(samples[samples.len() / 2]),
                size as f64 / f64::from(remaining)
            );
        }
        let (follow, follow_messages) = {
            let (mut device, providers) = device_with(101, 60, &mut rng);
            // Follow from a fresh grant so the follower holds the epoch the rotation ends.
            let watcher = keys(Role::Provider, 9_999);
            let items = device
                .grant(Tier::Second, watcher.public().clone(), 0, &mut rng)
                .unwrap_or_else(|e| panic!("{e}"));
            let inbox = items.iter().find(|i| i.kind == OutgoingKind::InboxKeyload).cloned();
            let rotation = device
                .revoke(Tier::Second, providers[0].id(), 1, &mut rng)
                .unwrap_or_else(|e| panic!("{e}"));
            let inbox = inbox.unwrap_or_else(|| panic!("no keyload"));
            let device_keys = device.public_keys().clone();
            let time = median(5, 1, || {
                let mut follower =
                    ProviderFollower::new(&watcher, device_keys.clone(), FollowerConfig::default());
                follower.receive(&watcher, &inbox.address, &inbox.payload, 0);
                follower.watch_addresses();
                let events: Vec<FollowerEvent> = rotation
                    .iter()
                    .flat_map(|item| follower.receive(&watcher, &item.address, &item.payload, 1))
                    .collect();
                assert!(events.iter().any(|e| matches!(e, FollowerEvent::Rotated { .. })));
            });
            (time, rotation.len())
        };
        println!(
            "  provider joins, then follows a rotation with 101 keyloads ({} messages): {}",
            follow_messages,
            us(follow)
        );

        // ── the 2018 MAM message ────────────────────────────────────────────────────────
        let trial = curl_p_trial();
        const TRYTES_PER_TRANSACTION: usize = 2_673; // 2,187 signature/message + 486 header trytes
        const TRANSACTIONS: usize = 3; // level-2 signature: two fragments + the message
        let expected_trials = 3f64.powi(14); // mainnet minimum weight magnitude 14
        let mam_bytes = TRYTES_PER_TRANSACTION * TRANSACTIONS; // one byte per tryte on the wire
        let mam_cpu = trial.as_secs_f64() * expected_trials * TRANSACTIONS as f64;
        let ours = per_reading_with_checkpoint.as_secs_f64();
        println!(
            "\n2018 MAM message per reading (≥ 3 transactions of 2,673 trytes, PoW at MWM 14)"
        );
        println!(
            "  Curl-P-81 nonce trial, 64-lane bit-sliced (measured)   {:.3} µs",
            trial.as_secs_f64() * 1e6
        );
        println!("  expected PoW CPU: 3 × 3^14 trials                       {mam_cpu:.2} s");
        println!("  bytes on the wire                                       {mam_bytes} B");
        println!("\nMeterkast vs MAM per reading");
        println!("  CPU    {:.1} µs vs {mam_cpu:.2} s  → {:.0}× less", ours * 1e6, mam_cpu / ours);
        println!(
            "  bytes  {bytes_per_reading:.0} B vs {mam_bytes} B  → {:.1}× fewer",
            mam_bytes as f64 / bytes_per_reading
        );
        println!(
            "  energy at 5 W (a Pi 4 under load; this machine is faster): {:.6} J vs {:.1} J (target < 0.05 J)",
            ours * 5.0,
            mam_cpu * 5.0
        );
    }

    /// Median time of one Curl-P-81 nonce trial: one 243-trit block through the 81-round
    /// transform, 64 candidates at a time, as PearlDiver does after caching the mid-state.
    fn curl_p_trial() -> Duration {
        use crypto::encoding::ternary::{Btrit, T1B1Buf, TritBuf};
        use crypto::hashes::ternary::curl_p::{BATCH_SIZE, CurlPBatchHasher};
        let mut hasher = CurlPBatchHasher::<T1B1Buf>::new(243);
        let batch = median(31, 20, || {
            for lane in 0..BATCH_SIZE {
                let mut block = TritBuf::<T1B1Buf>::zeros(243);
                block.set(lane % 243, Btrit::PlusOne);
                hasher.add(block);
            }
            black_box(hasher.hash().count());
        });
        batch / BATCH_SIZE as u32
    }
}
