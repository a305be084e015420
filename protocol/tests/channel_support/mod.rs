//! Shared helpers of the channel tests: a deterministic RNG, an in-memory tangle, and readings.
#![allow(dead_code)]

use std::collections::BTreeMap;

use protocol::channel::{Address, FollowerEvent, Outgoing, ProviderFollower, Reading};
use protocol::crypto::{PartyKeys, PartySecret, Role};
use sha3::{Digest, Sha3_256};

/// A deterministic "CSPRNG" for tests: SHA3-256 in counter mode over a seed. Real callers pass
/// an OS-backed generator; tests need reproducible runs on native and wasm alike.
#[derive(Debug, Clone)]
pub struct TestRng {
    seed: [u8; 32],
    counter: u64,
    buffer: Vec<u8>,
}

impl TestRng {
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        Self { seed: bytes, counter: 0, buffer: Vec::new() }
    }

    pub fn next_below(&mut self, bound: u64) -> u64 {
        use rand_core::Rng;
        self.next_u64() % bound
    }
}

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            if self.buffer.is_empty() {
                let block = Sha3_256::new()
                    .chain_update(self.seed)
                    .chain_update(self.counter.to_be_bytes())
                    .finalize();
                self.counter += 1;
                self.buffer = block.to_vec();
            }
            *byte = self.buffer.pop().unwrap_or_default();
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

/// Key sets derived the production way from fixed secrets (derivation is the costly part, so
/// tests reuse a handful).
pub fn party(role: Role, n: u8) -> PartyKeys {
    PartyKeys::derive(&PartySecret::from_bytes([n; 32]), role)
}

/// The untrusted store: every payload ever published at an address, in arrival order.
#[derive(Debug, Default)]
pub struct InMemoryTangle {
    pub messages: BTreeMap<Address, Vec<Vec<u8>>>,
    pub log: Vec<Outgoing>,
}

impl InMemoryTangle {
    pub fn publish(&mut self, items: impl IntoIterator<Item = Outgoing>) {
        for item in items {
            self.messages.entry(item.address).or_default().push(item.payload.clone());
            self.log.push(item);
        }
    }

    pub fn insert_raw(&mut self, address: Address, payload: Vec<u8>) {
        self.messages.entry(address).or_default().push(payload);
    }
}

/// A provider with its follower and its read cursor per address.
#[derive(Debug)]
pub struct Reader {
    pub keys: PartyKeys,
    pub follower: ProviderFollower,
    pub cursors: BTreeMap<Address, usize>,
    pub events: Vec<FollowerEvent>,
}

impl Reader {
    pub fn new(keys: PartyKeys, follower: ProviderFollower) -> Self {
        Self { keys, follower, cursors: BTreeMap::new(), events: Vec::new() }
    }

    /// Fetches every new payload at every watched address until nothing new turns up.
    pub fn sync(&mut self, tangle: &InMemoryTangle, now: u64) -> Vec<FollowerEvent> {
        let mut fresh = Vec::new();
        loop {
            let mut progressed = false;
            for address in self.follower.watch_addresses() {
                let Some(payloads) = tangle.messages.get(&address) else { continue };
                let cursor = self.cursors.entry(address).or_insert(0);
                while *cursor < payloads.len() {
                    let payload = &payloads[*cursor];
                    *cursor += 1;
                    progressed = true;
                    fresh.extend(self.follower.receive(&self.keys, &address, payload, now));
                }
            }
            if !progressed {
                break;
            }
        }
        fresh.extend(self.follower.tick(now));
        self.events.extend(fresh.iter().cloned());
        fresh
    }

    pub fn verified_timestamps(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                FollowerEvent::Verified { readings, .. } => {
                    Some(readings.iter().map(|r| r.timestamp))
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&FollowerEvent) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }
}

/// A plausible 1 s reading at `t`.
pub fn reading(t: u64) -> Reading {
    use protocol::channel::{GasReading, PhaseReading};
    Reading {
        timestamp: t,
        energy_import_wh: vec![1_000_000 + t, 2_000_000],
        energy_export_wh: vec![50_000, 60_000 + t / 10],
        power_import_w: 400 + (t % 1000) as u32,
        power_export_w: 0,
        phases: vec![
            PhaseReading {
                voltage_dv: Some(2300),
                current_ma: Some(1500),
                power_import_w: 200,
                power_export_w: 0,
            },
            PhaseReading {
                voltage_dv: Some(2310),
                current_ma: Some(800),
                power_import_w: 100,
                power_export_w: 0,
            },
            PhaseReading {
                voltage_dv: Some(2290),
                current_ma: Some(600),
                power_import_w: 100,
                power_export_w: 0,
            },
        ],
        gas: Some(GasReading { volume_dm3: 3_000_000, captured_at: t - t % 300 }),
        raw_telegram: None,
    }
}
