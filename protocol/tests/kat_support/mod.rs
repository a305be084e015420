//! Shared helpers of the known-answer tests.
#![allow(dead_code)]

/// Hands out exactly the bytes a vector prescribes (ML-KEM's `m`, ML-DSA's `rnd`), then zeros;
/// `consumed` lets a test check the primitive drew exactly what the vector expects.
pub struct ScriptedRng {
    bytes: Vec<u8>,
    pub consumed: usize,
}

impl ScriptedRng {
    pub fn new(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec(), consumed: 0 }
    }
}

impl rand_core::TryRng for ScriptedRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            *byte = self.bytes.get(self.consumed).copied().unwrap_or(0);
            self.consumed += 1;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for ScriptedRng {}
