//! Proof of work: anti-spam with a difficulty each node announces.
//!
//! The work is a nonce such that `SHA3-256(content_hash ‖ nonce)` (nonce as 8 big-endian bytes)
//! starts with at least `difficulty` zero bits, where `content_hash` is the SHA3-256 of the
//! message's encoding without its trailing nonce. Hashing a 40-byte digest-plus-nonce (one Keccak
//! block) instead of the whole message makes every attempt cost the same whatever the payload
//! size, so a Raspberry Pi solves the default difficulty in milliseconds even for a 32 KiB
//! payload; verification costs the node two hashes.

use sha3::{Digest, Sha3_256};

/// The highest difficulty a node may announce. 2^40 hashes is hours of CPU: anything above is a
/// misconfiguration, not anti-spam.
pub const MAX_DIFFICULTY: u8 = 40;

/// Required number of leading zero bits of the work hash (0 accepts every nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Difficulty(u8);

impl Difficulty {
    /// No work required.
    pub const NONE: Self = Self(0);
    /// What a node asks for unless configured otherwise: about 4,096 hashes, a few milliseconds
    /// on a Raspberry Pi (measured by `scripts/bench-node.sh`), yet 4,096× the cost of a free
    /// write for a spammer.
    pub const DEFAULT: Self = Self(12);

    pub fn new(bits: u8) -> Result<Self, DifficultyError> {
        if bits > MAX_DIFFICULTY {
            return Err(DifficultyError(bits));
        }
        Ok(Self(bits))
    }

    pub fn bits(self) -> u8 {
        self.0
    }
}

/// A difficulty above [`MAX_DIFFICULTY`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("difficulty {0} is above the maximum of {MAX_DIFFICULTY} leading zero bits")]
pub struct DifficultyError(pub u8);

/// The nonce does not meet the difficulty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proof of work has {achieved} leading zero bits, the node requires {required}")]
pub struct InsufficientWork {
    pub achieved: u32,
    pub required: u8,
}

/// The work hash for one nonce.
pub fn work_hash(content_hash: &[u8; 32], nonce: u64) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    hasher.update(content_hash);
    hasher.update(nonce.to_be_bytes());
    hasher.finalize().into()
}

/// Number of leading zero bits of a hash.
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

pub(crate) fn check(
    content_hash: &[u8; 32],
    nonce: u64,
    difficulty: Difficulty,
) -> Result<(), InsufficientWork> {
    if difficulty.0 == 0 {
        return Ok(());
    }
    let achieved = leading_zero_bits(&work_hash(content_hash, nonce));
    if achieved >= u32::from(difficulty.0) {
        Ok(())
    } else {
        Err(InsufficientWork { achieved, required: difficulty.0 })
    }
}

pub(crate) fn search(
    content_hash: &[u8; 32],
    difficulty: Difficulty,
    first_nonce: u64,
    attempts: u64,
) -> Option<u64> {
    if difficulty.0 == 0 {
        return Some(first_nonce);
    }
    // Absorb the fixed 32 bytes once; each attempt clones that state and adds only the nonce.
    let mut prefix = Sha3_256::new();
    prefix.update(content_hash);
    let required = u32::from(difficulty.0);
    (0..attempts).map(|i| first_nonce.wrapping_add(i)).find(|nonce| {
        let mut hasher = prefix.clone();
        hasher.update(nonce.to_be_bytes());
        let hash: [u8; 32] = hasher.finalize().into();
        leading_zero_bits(&hash) >= required
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        let mut hash = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&hash), 0);
        hash[0] = 0;
        hash[1] = 0b0001_0000;
        assert_eq!(leading_zero_bits(&hash), 11);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
    }

    #[test]
    fn search_finds_a_nonce_that_check_accepts_and_the_one_before_fails() {
        let content = [5u8; 32];
        let difficulty = Difficulty::new(8).unwrap();
        let nonce = search(&content, difficulty, 0, 1 << 20).unwrap();
        assert_eq!(check(&content, nonce, difficulty), Ok(()));
        // `search` returns the first hit, so every earlier nonce must fail the check.
        for earlier in 0..nonce {
            assert!(check(&content, earlier, difficulty).is_err());
        }
    }

    #[test]
    fn difficulty_above_the_maximum_is_refused() {
        assert_eq!(Difficulty::new(MAX_DIFFICULTY + 1), Err(DifficultyError(MAX_DIFFICULTY + 1)));
        assert!(Difficulty::new(MAX_DIFFICULTY).is_ok());
    }
}
