//! The decoder on encrypted meters (Luxembourg Smarty, Austrian Sagemcom T210-D-r): DLMS
//! cipher frames found in a byte stream cut at random points, decrypted with the key typed on
//! the Meter page; a wrong key shows as failed telegrams, never as readings. Fixtures from
//! `protocol/tests/fixtures/p1/encrypted/` (esphome-libs/dsmr_parser, MIT; athombv, ISC).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::reader::{DecodeProblem, Decoded, MeterDecoder};
use protocol::p1::MeterKey;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A Smarty-style frame (Smarty authentication key); its key is 16 bytes of 0xAA.
const SMARTY_FRAME: &[u8] =
    include_bytes!("../../protocol/tests/fixtures/p1/encrypted/esphome/encrypted_packet.bin");
const SMARTY_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// The plaintext of `SMARTY_FRAME`.
const SMARTY_PLAIN: &str =
    include_str!("../../protocol/tests/fixtures/p1/plain/ndokter/telegram_sagemcom_t210_d_r.txt");
/// The Luxembourg specification's example, sealed without additional data.
const SPEC_FRAME_HEX: &str = include_str!(
    "../../protocol/tests/fixtures/p1/encrypted/athombv/dsmr-luxembourgh-spec-example-without-aad.hex.txt"
);
const SPEC_KEY: &str = "0123456789abcdef0123456789abcdef";

fn feed_in_pieces(decoder: &mut MeterDecoder, stream: &[u8], piece: usize) -> Vec<Decoded> {
    let mut out = Vec::new();
    for chunk in stream.chunks(piece) {
        decoder.feed(chunk, &mut out);
    }
    out
}

fn stream_of(frame: &[u8], copies: usize) -> Vec<u8> {
    let mut stream = b"\x00\xff noise \r\n".to_vec();
    for _ in 0..copies {
        stream.extend_from_slice(frame);
        stream.extend_from_slice(b"\x13\x37");
    }
    stream
}

#[test]
fn cipher_frames_decrypt_with_the_key_in_any_chunking() {
    let stream = stream_of(SMARTY_FRAME, 3);
    let header = SMARTY_PLAIN.lines().next().unwrap().trim_start_matches('/');
    for piece in [1, 7, 64, 511, 4096] {
        let mut decoder = MeterDecoder::new(Some(MeterKey::from_hex(SMARTY_KEY).unwrap()));
        let out = feed_in_pieces(&mut decoder, &stream, piece);
        let telegrams: Vec<_> = out
            .iter()
            .filter_map(|d| match d {
                Decoded::Telegram(snapshot) => Some(snapshot),
                _ => None,
            })
            .collect();
        assert_eq!(telegrams.len(), 3, "piece size {piece}");
        assert!(telegrams.iter().all(|t| t.header == header && t.power_import.is_some()));
        assert_eq!(decoder.counts().good, 3);
        assert_eq!(decoder.counts().bad, 0);
        assert!(decoder.has_link_evidence());
    }
}

#[test]
fn the_specification_example_without_additional_data_decrypts() {
    let frame = hex::decode(SPEC_FRAME_HEX.split_whitespace().collect::<String>()).unwrap();
    let mut decoder = MeterDecoder::new(Some(MeterKey::from_hex(SPEC_KEY).unwrap()));
    let out = feed_in_pieces(&mut decoder, &frame, 100);
    assert!(matches!(out.as_slice(), [Decoded::Telegram(_)]), "{out:?}");
}

#[test]
fn a_wrong_key_yields_failed_telegrams_not_readings() {
    let stream = stream_of(SMARTY_FRAME, 2);
    let mut decoder = MeterDecoder::new(Some(MeterKey::from_hex(SPEC_KEY).unwrap()));
    let out = feed_in_pieces(&mut decoder, &stream, 50);
    assert!(
        out.iter().all(|d| matches!(d, Decoded::Problem(DecodeProblem::Decrypt(_)))),
        "{out:?}"
    );
    assert_eq!(out.len(), 2);
    assert_eq!(decoder.counts().good, 0);
    assert_eq!(decoder.counts().bad, 2);
    // The frames were well-formed: the line speed is right even though the key is wrong.
    assert!(decoder.has_link_evidence());
}
