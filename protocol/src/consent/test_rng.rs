//! A deterministic random generator for unit tests (SHA3-256 in counter mode), identical on
//! native and wasm32 targets. Real callers pass an OS-backed generator.

/// SHA3-256(seed ‖ counter) blocks, consumed in order.
#[derive(Debug, Clone)]
pub(crate) struct TestRng {
    seed: u64,
    counter: u64,
    buffer: Vec<u8>,
}

impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, counter: 0, buffer: Vec::new() }
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
                self.buffer = crate::crypto::digest(
                    b"meterkast/test-rng",
                    &[&self.seed.to_be_bytes(), &self.counter.to_be_bytes()],
                )
                .to_vec();
                self.counter += 1;
            }
            *byte = self.buffer.pop().unwrap_or_default();
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}
