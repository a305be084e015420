//! The entry point of the `p1_stream` cargo-fuzz target (`fuzz/`), kept here so the target is a
//! three-line shim and this code is compiled, linted and tested with the crate.

use super::cipher::{CipherFrameIn, MeterKey, SMARTY_AUTHENTICATION_KEY};
use super::framer::{Framer, FramerConfig};
use super::readings::Readings;
use super::registry::value_kind;
use super::telegram::Telegram;

/// Feeds `data` through the whole read path and checks the framer's promises; panics (which
/// is what the fuzzer looks for) only if one is broken.
///
/// The first byte picks the chunk size (1–256) and a small size limit now and then, so chunk
/// boundaries and the oversize path are explored too. Every frame is parsed, its readings
/// built and every value classified and converted; a 0xDB frame is split and decrypted.
pub fn fuzz_stream(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else { return };
    let chunk = usize::from(control) + 1;
    let max_telegram_len = if control & 0x80 != 0 { 512 } else { 8192 };
    let mut framer =
        Framer::new(FramerConfig { max_telegram_len, mask_parity_bit: control & 1 == 0 });
    let check = |framer: &mut Framer| {
        while let Some(step) = framer.next_frame() {
            let Ok(frame) = step else { continue };
            assert_eq!(frame.body.first(), Some(&b'/'));
            assert_eq!(frame.body.last(), Some(&b'!'));
            assert!(frame.body.len() <= max_telegram_len);
            assert!(frame.crc_digits.len() <= 4);
            if let Ok(telegram) = Telegram::parse(frame) {
                exercise(&telegram);
            }
        }
    };
    for piece in bytes.chunks(chunk) {
        framer.feed(piece);
        check(&mut framer);
    }
    framer.finish();
    check(&mut framer);

    if let Ok((frame, _)) = CipherFrameIn::split(bytes) {
        let key = MeterKey::new([0xAA; 16]);
        if let Ok(plain) = frame.decrypt(&key, Some(&SMARTY_AUTHENTICATION_KEY))
            && let Ok(telegram) = Telegram::parse_bytes(&plain)
        {
            exercise(&telegram);
        }
    }
}

/// Touches every value the way the CLI and the readings do.
fn exercise(telegram: &Telegram<'_>) {
    let readings = Readings::from_telegram(telegram);
    core::hint::black_box(&readings);
    for object in telegram.objects() {
        for (index, value) in object.values().enumerate() {
            core::hint::black_box(value_kind(object.obis, index, &value));
            if let Ok(stamp) = value.timestamp() {
                core::hint::black_box(stamp.to_utc().to_string());
            }
            if let Ok(quantity) = value.quantity() {
                core::hint::black_box(quantity.value.trimmed().to_string());
                core::hint::black_box(quantity.value.mantissa_and_scale());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::fuzz_stream;

    #[test]
    fn the_fuzz_entry_point_survives_edge_inputs() {
        let telegram: &[u8] = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n!4AB4\r\n";
        for control in [0u8, 1, 7, 0x80, 0xFF] {
            let mut input = vec![control];
            input.extend_from_slice(telegram);
            input.extend_from_slice(b"/\r\n!\r\n/ABC5\n(\n!FFFFF\xDB\x08");
            fuzz_stream(&input);
        }
        fuzz_stream(b"");
        fuzz_stream(&[0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x30, 0, 0, 0, 1]);
    }
}
