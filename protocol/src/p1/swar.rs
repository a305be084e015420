//! Word-at-a-time byte searches ("SIMD within a register") for the short scans of line parsing.
//!
//! A scalar loop costs six or seven instructions per byte; these look at eight bytes per step with
//! a handful of `u64` operations, in safe, portable code that runs the same natively and on
//! wasm32. Values in a telegram are 2–40 bytes, too short for a `memchr` call to pay off.

/// `0x01` in every byte.
const LO: u64 = 0x0101_0101_0101_0101;
/// `0x7F` in every byte.
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// `0x80` in exactly the bytes of `x` that are zero (no carries between bytes, so every bit is
/// exact, not only the lowest one).
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    !((((x & LOW7).wrapping_add(LOW7)) | x) | LOW7)
}

/// `0x80` in exactly the bytes of `word` equal to `byte`.
#[inline(always)]
const fn eq_bytes(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ (LO * byte as u64))
}

/// Index of the byte whose `0x80` bit is the lowest set bit of `mask` (mask ≠ 0).
#[inline(always)]
const fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Index of the byte whose `0x80` bit is the highest set bit of `mask` (mask ≠ 0).
#[inline(always)]
const fn last(mask: u64) -> usize {
    ((63 - mask.leading_zeros()) / 8) as usize
}

#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..).and_then(<[u8]>::first_chunk::<8>).map(|chunk| u64::from_le_bytes(*chunk))
}

/// First byte that ends a group's inside (`(`, `)`, CR or LF) or is a `*`.
#[inline]
pub(crate) fn find_group_stop_or_star(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = word_at(bytes, at) {
        // `(` is 0x28 and `)` 0x29: one comparison after setting bit 0 catches both.
        let mask = eq_bytes(word | LO, b')')
            | eq_bytes(word, b'*')
            | eq_bytes(word, b'\r')
            | eq_bytes(word, b'\n');
        if mask != 0 {
            return Some(at + first(mask));
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&byte| matches!(byte, b')' | b'(' | b'\r' | b'\n' | b'*'))
        .map(|index| at + index)
}

/// In a group's inside followed by its `)`: the index of that first `)` and of the last `*`
/// before it.
#[inline]
pub(crate) fn find_close_and_last_star(bytes: &[u8]) -> Option<(usize, Option<usize>)> {
    let mut at = 0;
    let mut star = None;
    while let Some(word) = word_at(bytes, at) {
        let close = eq_bytes(word, b')');
        let stars = eq_bytes(word, b'*');
        if close != 0 {
            let index = first(close);
            // Stars in the bytes before the `)` (index ≤ 7, so the shift is in range).
            let before = stars & ((1u64 << (index * 8)) - 1);
            if before != 0 {
                star = Some(at + last(before));
            }
            return Some((at + index, star));
        }
        if stars != 0 {
            star = Some(at + last(stars));
        }
        at += 8;
    }
    for (index, &byte) in bytes[at..].iter().enumerate() {
        match byte {
            b')' => return Some((at + index, star)),
            b'*' => star = Some(at + index),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{find_close_and_last_star, find_group_stop_or_star};

    fn stop_reference(bytes: &[u8]) -> Option<usize> {
        bytes.iter().position(|&byte| matches!(byte, b')' | b'(' | b'\r' | b'\n' | b'*'))
    }

    fn close_reference(bytes: &[u8]) -> Option<(usize, Option<usize>)> {
        let close = bytes.iter().position(|&byte| byte == b')')?;
        Some((close, bytes[..close].iter().rposition(|&byte| byte == b'*')))
    }

    #[test]
    fn agree_with_byte_loops_on_every_position() {
        // Every special byte (and near misses) at every position of inputs up to 24 bytes, over
        // backgrounds that include the specials themselves and bytes next to them.
        let specials = [b'(', b')', b'*', b'\r', b'\n', b'+', b'\'', b'\t', 0, 0x80, 0xA9, 0xFF];
        let backgrounds = [b'0', b'a', b'.', 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x2B, 0x0B, 0x0C, 0x0E];
        for background in specials.into_iter().chain(backgrounds) {
            for len in 0..24 {
                for at in 0..len {
                    for &special in &specials {
                        for second in [None, Some(b'*'), Some(b')')] {
                            let mut bytes = vec![background; len];
                            bytes[at] = special;
                            if let Some(second) = second {
                                bytes[(at + 3) % len] = second;
                            }
                            assert_eq!(find_group_stop_or_star(&bytes), stop_reference(&bytes));
                            assert_eq!(find_close_and_last_star(&bytes), close_reference(&bytes));
                        }
                    }
                }
            }
        }
    }
}
