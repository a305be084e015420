//! CRC-16/ARC as DSMR 4+ uses it: polynomial 0x8005 (reflected 0xA001), initial value 0, no final
//! XOR, computed over every byte from the leading `/` up to and including the `!`.

/// Bytes consumed per step of the sliced loop.
const SLICE: usize = 16;

/// Lookup tables for the reflected polynomial 0xA001, built at compile time. `TABLES[0]` is the
/// classic byte-at-a-time table; `TABLES[k][b]` is the CRC contribution of byte `b` followed by
/// `k` zero bytes, which lets [`crc16_arc`] fold 16 bytes per step with independent lookups
/// ("slicing-by-16") instead of one dependent lookup per byte. The CRC over a telegram is the
/// largest single cost of reading it, so this is where the parser's speed is decided.
const TABLES: [[u16; 256]; SLICE] = build_tables();

const fn build_tables() -> [[u16; 256]; SLICE] {
    let mut tables = [[0u16; 256]; SLICE];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < SLICE {
        let mut byte = 0;
        while byte < 256 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

/// CRC-16/ARC of `bytes`.
#[must_use]
pub fn crc16_arc(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    let mut blocks = bytes.chunks_exact(SLICE);
    for block in &mut blocks {
        // The running CRC folds into the first two bytes of the block; every byte then
        // contributes through the table for its distance from the block's end.
        let [low, high] = crc.to_le_bytes();
        let mut next = TABLES[SLICE - 1][usize::from(block[0] ^ low)]
            ^ TABLES[SLICE - 2][usize::from(block[1] ^ high)];
        for (index, &byte) in block.iter().enumerate().skip(2) {
            next ^= TABLES[SLICE - 1 - index][usize::from(byte)];
        }
        crc = next;
    }
    crc16_arc_bytewise(crc, blocks.remainder())
}

/// The byte-at-a-time form, continuing from `crc`: the reference the sliced loop is tested
/// against, and the tail of it.
fn crc16_arc_bytewise(crc: u16, bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(crc, |crc, &b| (crc >> 8) ^ TABLES[0][usize::from((crc ^ u16::from(b)) as u8)])
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::crc16_arc;

    #[test]
    fn check_value_of_the_catalogue() {
        // The CRC catalogue's check value for CRC-16/ARC over "123456789".
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn sliced_and_bytewise_agree_on_every_length_and_alignment() {
        // Deterministic pseudo-random bytes (xorshift), lengths 0..=100 at every offset 0..16.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for start in 0..16 {
            for len in 0..=100 {
                let slice = &data[start..start + len];
                assert_eq!(crc16_arc(slice), super::crc16_arc_bytewise(0, slice), "{start}+{len}");
            }
        }
    }

    #[test]
    fn empty_input_is_the_initial_value() {
        assert_eq!(crc16_arc(b""), 0);
    }

    #[test]
    fn a_flipped_bit_changes_the_crc() {
        let good = crc16_arc(b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(001234.567*kWh)\r\n!");
        let bad = crc16_arc(b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(001234.566*kWh)\r\n!");
        assert_ne!(good, bad);
    }
}
