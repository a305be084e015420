//! Word-at-a-time byte searches ("SIMD within a register") for the short scans of line parsing.
//!
//! A scalar loop costs six or seven instructions per byte; these look at eight bytes per step with
//! a handful of `u64` operations, in safe, portable code that runs the same natively and on
//! wasm32. Values in a telegram are 2–40 bytes, too short for a `memchr` call to pay off.

use super::value::ObisCode;

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

/// `0x80` in exactly the bytes of `word` below 0x20 (control bytes: CR, LF, tab, NUL, …).
#[inline(always)]
const fn control_bytes(word: u64) -> u64 {
    // Adding 0x60 to the low seven bits sets bit 7 for 0x20 and up; bytes with bit 7 already set
    // are not control bytes either. No sum exceeds 0xDF, so nothing carries into the next byte.
    !(((word & LOW7).wrapping_add(LO * 0x60)) | word) & !LOW7
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

/// `0x80` in exactly the bytes of `word` that are not ASCII digits.
#[inline(always)]
const fn non_digits(word: u64) -> u64 {
    // A digit XOR 0x30 is 0-9; adding 0x76 sets bit 7 from 10 up (at most 0xF5: no carries), and
    // bytes with bit 7 set stay marked through the OR.
    let value = word ^ (LO * 0x30);
    (((value & LOW7).wrapping_add(LO * 0x76)) | value) & !LOW7
}

/// Where the only byte of `bytes` that is not an ASCII digit is: `Some(None)` for digits only,
/// `Some(Some(index))` for exactly one other byte, `None` for two or more. Decimal values
/// (`000004.426`) are checked with this, eight bytes per step.
#[inline]
pub(crate) fn lone_non_digit(bytes: &[u8]) -> Option<Option<usize>> {
    let len = bytes.len();
    // Most values are 4-16 bytes: two overlapping windows cover them without a byte loop. The
    // second window's marks for bytes the first already covered are shifted out.
    let (front, back, front_len) = if let (Some(front), Some(back), true) =
        (bytes.first_chunk::<8>(), bytes.last_chunk::<8>(), len <= 16)
    {
        let front = non_digits(u64::from_le_bytes(*front));
        let back = non_digits(u64::from_le_bytes(*back)).checked_shr((16 - len) as u32 * 8);
        (front, back.unwrap_or(0), 8)
    } else if let (Some(front), Some(back), true) =
        (bytes.first_chunk::<4>(), bytes.last_chunk::<4>(), len < 8)
    {
        // Four bytes each, padded with digits to a word.
        let pad = (LO * u64::from(b'0')) << 32;
        let front = non_digits(u64::from(u32::from_le_bytes(*front)) | pad);
        let back = non_digits(u64::from(u32::from_le_bytes(*back)) | pad) >> ((8 - len) * 8);
        (front, back, 4)
    } else {
        return lone_non_digit_long(bytes);
    };
    // (No `count_ones`: without the POPCNT target feature it is a long bit-twiddling sequence.)
    match (front, back) {
        (0, 0) => Some(None),
        (0, back) if back & (back - 1) == 0 => Some(Some(front_len + first(back))),
        (front, 0) if front & (front - 1) == 0 => Some(Some(first(front))),
        _ => None,
    }
}

/// [`lone_non_digit`] for fewer than 4 or more than 16 bytes.
fn lone_non_digit_long(bytes: &[u8]) -> Option<Option<usize>> {
    let mut found = None;
    let (words, rest) = bytes.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let mask = non_digits(u64::from_le_bytes(*word));
        if mask != 0 {
            // Two marks in one word, or one after an earlier one: not a decimal.
            if mask & (mask - 1) != 0 || found.is_some() {
                return None;
            }
            found = Some(index * 8 + first(mask));
        }
    }
    let base = words.len() * 8;
    for (index, &byte) in rest.iter().enumerate() {
        if !byte.is_ascii_digit() {
            if found.is_some() {
                return None;
            }
            found = Some(base + index);
        }
    }
    Some(found)
}

/// The fast path of OBIS parsing: `A-B:C.D.E(` with 1–3 digit groups of at most 255 in the 16
/// bytes at `at`. Returns the code and the index of the `(`, or `None` for anything else (an F
/// group, blanks, a code near the end of the text), which the caller hands to
/// [`ObisCode::parse_prefix`]. On what it accepts it agrees with `parse_prefix` exactly.
///
/// Straight-line code over a copied 16-byte array: every index is masked to 0–15, so there are
/// no bounds checks, and a code that does not end within the array is rejected at the end.
#[inline]
pub(crate) fn obis_before_group(bytes: &[u8], at: usize) -> Option<(ObisCode, usize)> {
    let head: [u8; 16] = *bytes.get(at..)?.first_chunk::<16>()?;
    let digit = |index: usize| {
        let digit = head[index & 15].wrapping_sub(b'0');
        (digit < 10).then_some(u16::from(digit))
    };
    let mut pos = 0;
    let mut field = |separator: u8| -> Option<u8> {
        let mut value = digit(pos)?;
        pos += 1;
        if let Some(next) = digit(pos) {
            value = value * 10 + next;
            pos += 1;
            if let Some(next) = digit(pos) {
                value = value * 10 + next;
                pos += 1;
            }
        }
        if head[pos & 15] != separator {
            return None;
        }
        pos += 1;
        u8::try_from(value).ok()
    };
    let a = field(b'-')?;
    let b = field(b':')?;
    let c = field(b'.')?;
    let d = field(b'.')?;
    let e = field(b'(')?;
    // `pos` is one past the `(`; beyond 16 the masked reads wrapped around.
    (pos <= 16).then(|| (ObisCode::new(a, b, c, d, e), at + pos - 1))
}

/// Where the `(…)` groups of a plain line are: see [`scan_plain_groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainGroups {
    /// The first group's `)`.
    pub first_close: usize,
    /// The last `*` inside the first group.
    pub first_star: Option<usize>,
    /// The last group's `)`.
    pub last_close: usize,
    /// The `\n` that ends the line.
    pub newline: usize,
}

/// The fast path of line parsing: `bytes[open]` is a `(` and the line goes on as the common
/// `(…)(…)…\r\n` — groups back to back, no blanks between them, no control bytes or parentheses
/// inside them, CR LF right after the last. Returns `None` for anything else (the caller then
/// takes the general, byte-by-byte path), so this only has to be right on what it accepts.
#[inline]
pub(crate) fn scan_plain_groups(bytes: &[u8], open: usize) -> Option<PlainGroups> {
    if bytes.get(open) != Some(&b'(') {
        return None;
    }
    let (first_close, first_star) = find_plain_close(bytes, open + 1)?;
    let mut close = first_close;
    loop {
        match bytes.get(close + 1..close + 3)? {
            [b'\r', b'\n'] => {
                return Some(PlainGroups {
                    first_close,
                    first_star,
                    last_close: close,
                    newline: close + 2,
                });
            }
            [b'(', _] => close = find_plain_close(bytes, close + 2)?.0,
            _ => return None,
        }
    }
}

/// From just after a `(`: the index of the `)` that closes the group and of the last `*` before
/// it, or `None` if a `(` or a control byte (CR, LF, tab, …) comes first or no `)` does.
#[inline(always)]
fn find_plain_close(bytes: &[u8], from: usize) -> Option<(usize, Option<usize>)> {
    let mut at = from;
    let mut star = None;
    while let Some(word) = word_at(bytes, at) {
        // `(` is 0x28 and `)` 0x29: one comparison after setting bit 0 catches both.
        let stop = control_bytes(word) | eq_bytes(word | LO, b')');
        let stars = eq_bytes(word, b'*');
        if stop != 0 {
            let index = first(stop);
            // The first stop must be the `)` itself.
            if eq_bytes(word, b')') & (0x80 << (index * 8)) == 0 {
                return None;
            }
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
    for (index, &byte) in bytes.get(at..)?.iter().enumerate() {
        match byte {
            b')' => return Some((at + index, star)),
            b'*' => star = Some(at + index),
            b'(' | 0..=0x1F => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{
        PlainGroups, find_close_and_last_star, find_group_stop_or_star, lone_non_digit,
        obis_before_group, scan_plain_groups,
    };
    use crate::p1::value::ObisCode;

    /// Deterministic pseudo-random numbers (xorshift64).
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// [`scan_plain_groups`] written as the plain byte loop it must agree with.
    fn plain_reference(bytes: &[u8], open: usize) -> Option<PlainGroups> {
        let mut at = open;
        let mut first = None;
        loop {
            if bytes.get(at) != Some(&b'(') {
                return None;
            }
            let (mut close, mut star) = (at + 1, None);
            loop {
                match *bytes.get(close)? {
                    b')' => break,
                    b'*' => star = Some(close),
                    b'(' | 0..=0x1F => return None,
                    _ => {}
                }
                close += 1;
            }
            let (first_close, first_star) = *first.get_or_insert((close, star));
            if bytes.get(close + 1..close + 3) == Some(b"\r\n") {
                let newline = close + 2;
                return Some(PlainGroups { first_close, first_star, last_close: close, newline });
            }
            at = close + 1;
        }
    }

    #[test]
    fn plain_groups_agree_with_a_byte_loop() {
        // Lines shaped like real ones (groups of value bytes, stars, CR LF), with a hostile byte
        // (parenthesis, line end, tab, blank between groups) or a cut-off end now and then.
        let benign = *b"0123456789.aWx*";
        let hostile = *b"()\r\n\t ";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut accepted = 0;
        for _ in 0..60_000 {
            let mut bytes = Vec::new();
            for _ in 0..1 + xorshift(&mut state) % 4 {
                bytes.push(b'(');
                for _ in 0..xorshift(&mut state) % 20 {
                    let roll = xorshift(&mut state);
                    bytes.push(if roll.is_multiple_of(24) {
                        hostile[(roll / 24 % 6) as usize]
                    } else {
                        benign[(roll / 24 % 15) as usize]
                    });
                }
                bytes.push(b')');
                if xorshift(&mut state).is_multiple_of(16) {
                    bytes.push(hostile[(xorshift(&mut state) % 6) as usize]);
                }
            }
            bytes.extend_from_slice(b"\r\n");
            let cut = bytes.len() - usize::from(xorshift(&mut state).is_multiple_of(8));
            let bytes = &bytes[..cut];
            let expected = plain_reference(bytes, 0);
            assert_eq!(
                scan_plain_groups(bytes, 0),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            accepted += usize::from(expected.is_some());
        }
        // The inputs reach the accepting branch too, not only the rejections.
        assert!(accepted > 10_000, "{accepted}");
        let line = b"(000004.426*kWh)(0*x)\r\n";
        let expected =
            PlainGroups { first_close: 15, first_star: Some(11), last_close: 20, newline: 22 };
        assert_eq!(scan_plain_groups(line, 0), Some(expected));
    }

    #[test]
    fn lone_non_digit_agrees_with_a_byte_loop() {
        let alphabet = *b"0123456789.-a\x80/:";
        let mut state = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..20_000 {
            let len = (xorshift(&mut state) % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let roll = xorshift(&mut state);
                    // Mostly digits, so the one-mark and no-mark answers come up often.
                    if roll.is_multiple_of(8) {
                        alphabet[(roll / 8 % alphabet.len() as u64) as usize]
                    } else {
                        b'0' + (roll / 8 % 10) as u8
                    }
                })
                .collect();
            let marks: Vec<usize> = (0..len).filter(|&i| !bytes[i].is_ascii_digit()).collect();
            let expected = match marks.as_slice() {
                [] => Some(None),
                [one] => Some(Some(*one)),
                _ => None,
            };
            assert_eq!(lone_non_digit(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn fast_obis_agrees_with_parse_prefix_where_it_answers() {
        let pieces: [&[u8]; 12] =
            [b"0", b"1", b"96", b"255", b"256", b"999", b"0001", b"", b"7", b"24", b"32", b"10"];
        let separators = *b"-:.(*. ";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut answered = 0;
        for _ in 0..60_000 {
            let mut line = Vec::new();
            for (index, wanted) in [b'-', b':', b'.', b'.', b'('].into_iter().enumerate() {
                line.extend_from_slice(pieces[(xorshift(&mut state) % 12) as usize]);
                // Mostly the right separator, sometimes another one.
                let roll = xorshift(&mut state) % 16;
                line.push(if roll < 13 { wanted } else { separators[(roll as usize + index) % 7] });
            }
            line.extend_from_slice(b"1.8.0)\r\n");
            if let Some((code, open)) = obis_before_group(&line, 0) {
                answered += 1;
                assert_eq!(line[open], b'(');
                assert_eq!(ObisCode::parse_prefix(&line), Some((code, open)), "{line:?}");
            }
        }
        assert!(answered > 1000, "{answered}");
        let line = b"1-0:32.7.0(0230.0*V)\r\n";
        assert_eq!(obis_before_group(line, 0), Some((ObisCode::new(1, 0, 32, 7, 0), 10)));
        // Fewer than 16 bytes, an F group, a leading blank: left to the general parser.
        assert_eq!(obis_before_group(b"1-0:1.8.1(1)\r\n", 0), None);
        assert_eq!(obis_before_group(b"1-0:1.8.0*255(1*kWh)\r\n", 0), None);
        assert_eq!(obis_before_group(b" 1-0:1.8.1(000004.426*kWh)\r\n", 0), None);
    }

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
