//! The parser on every fixture telegram, the typed readings of the interesting ones, and
//! Smarty/Austrian decryption. Runs natively and in the browser (wasm32): fixtures are embedded.
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use protocol::p1::cipher::CipherFrameError;
use protocol::p1::readings::{MbusKind, Peak};
use protocol::p1::{
    CipherFrameIn, Country, CrcCheck, DecryptError, Direction, MeterKey, ObisCode, Readings,
    SMARTY_AUTHENTICATION_KEY, TariffMeaning, Telegram, TelegramError,
};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("fixtures/p1/", $path))
    };
}

/// `(file, CRC verdict)` for every plaintext fixture: `V` valid, `A` absent, `M` mismatch (spec
/// examples and anonymised samples), `T` truncated (no `!` line). The verdicts are the ones the
/// fixture README lists from an independent CRC implementation.
const ALL: &[(&str, &[u8], char)] = &[
    ("ndokter/telegram_v2_2", fixture!("plain/ndokter/telegram_v2_2.txt"), 'A'),
    ("ndokter/telegram_v3", fixture!("plain/ndokter/telegram_v3.txt"), 'A'),
    ("ndokter/telegram_v4_2", fixture!("plain/ndokter/telegram_v4_2.txt"), 'V'),
    ("ndokter/telegram_v5", fixture!("plain/ndokter/telegram_v5.txt"), 'V'),
    ("ndokter/telegram_v5_two_mbus", fixture!("plain/ndokter/telegram_v5_two_mbus.txt"), 'V'),
    ("ndokter/telegram_unpadded_crc", fixture!("plain/ndokter/telegram_unpadded_crc.txt"), 'V'),
    ("ndokter/telegram_fluvius_v171", fixture!("plain/ndokter/telegram_fluvius_v171.txt"), 'V'),
    (
        "ndokter/telegram_fluvius_v171_alt",
        fixture!("plain/ndokter/telegram_fluvius_v171_alt.txt"),
        'V',
    ),
    (
        "ndokter/telegram_esy5q3db1024_v304",
        fixture!("plain/ndokter/telegram_esy5q3db1024_v304.txt"),
        'A',
    ),
    (
        "ndokter/telegram_esy5q3da1004_v304",
        fixture!("plain/ndokter/telegram_esy5q3da1004_v304.txt"),
        'A',
    ),
    (
        "ndokter/telegram_sagemcom_t210_d_r",
        fixture!("plain/ndokter/telegram_sagemcom_t210_d_r.txt"),
        'V',
    ),
    ("ndokter/telegram_iskra_ie", fixture!("plain/ndokter/telegram_iskra_ie.txt"), 'V'),
    ("ndokter/telegram_v5_eon_hu", fixture!("plain/ndokter/telegram_v5_eon_hu.txt"), 'V'),
    ("athombv/dsmr-2.2-kfm-1", fixture!("plain/athombv/dsmr-2.2-kfm-1.txt"), 'A'),
    ("athombv/dsmr-3.0-spec-example", fixture!("plain/athombv/dsmr-3.0-spec-example.txt"), 'A'),
    ("athombv/dsmr-4.0-isk-1", fixture!("plain/athombv/dsmr-4.0-isk-1.txt"), 'M'),
    ("athombv/dsmr-4.0-isk-2", fixture!("plain/athombv/dsmr-4.0-isk-2.txt"), 'V'),
    ("athombv/dsmr-4.0-spec-example", fixture!("plain/athombv/dsmr-4.0-spec-example.txt"), 'M'),
    ("athombv/dsmr-4.2-kfm-1", fixture!("plain/athombv/dsmr-4.2-kfm-1.txt"), 'V'),
    ("athombv/dsmr-4.2-xmx-1", fixture!("plain/athombv/dsmr-4.2-xmx-1.txt"), 'M'),
    ("athombv/dsmr-4.2.2-spec-example", fixture!("plain/athombv/dsmr-4.2.2-spec-example.txt"), 'M'),
    ("athombv/dsmr-5.0-ene-1", fixture!("plain/athombv/dsmr-5.0-ene-1.txt"), 'M'),
    ("athombv/dsmr-5.0-ene-2", fixture!("plain/athombv/dsmr-5.0-ene-2.txt"), 'M'),
    ("athombv/dsmr-5.0-ene-3", fixture!("plain/athombv/dsmr-5.0-ene-3.txt"), 'M'),
    ("athombv/dsmr-5.0-est-units", fixture!("plain/athombv/dsmr-5.0-est-units.txt"), 'M'),
    ("athombv/dsmr-5.0-isk-1", fixture!("plain/athombv/dsmr-5.0-isk-1.txt"), 'V'),
    (
        "athombv/dsmr-5.0-spec-example-lowercase",
        fixture!("plain/athombv/dsmr-5.0-spec-example-lowercase.txt"),
        'M',
    ),
    ("athombv/dsmr-5.0-spec-example", fixture!("plain/athombv/dsmr-5.0-spec-example.txt"), 'M'),
    (
        "athombv/dsmr-luxembourgh-spec-example",
        fixture!("plain/athombv/dsmr-luxembourgh-spec-example.txt"),
        'M',
    ),
    (
        "athombv/emucs-p1-v2.1.1-spec-example-1",
        fixture!("plain/athombv/emucs-p1-v2.1.1-spec-example-1.txt"),
        'M',
    ),
    (
        "athombv/emucs-p1-v2.1.1-spec-example-2",
        fixture!("plain/athombv/emucs-p1-v2.1.1-spec-example-2.txt"),
        'M',
    ),
    (
        "athombv/iskra-mt-382-no-crc-with-text-message",
        fixture!("plain/athombv/iskra-mt-382-no-crc-with-text-message.txt"),
        'T',
    ),
    ("athombv/iskra-mt-382-no-crc", fixture!("plain/athombv/iskra-mt-382-no-crc.txt"), 'T'),
    (
        "athombv/kamstrup-OMNIA-e-meter-three-phase",
        fixture!("plain/athombv/kamstrup-OMNIA-e-meter-three-phase.txt"),
        'M',
    ),
    ("athombv/sagemcom-xt211", fixture!("plain/athombv/sagemcom-xt211.txt"), 'M'),
    ("athombv/unknown-xmx-1", fixture!("plain/athombv/unknown-xmx-1.txt"), 'A'),
    ("twistedfall/telegram", fixture!("plain/twistedfall/telegram.txt"), 'M'),
    ("twistedfall/telegram2", fixture!("plain/twistedfall/telegram2.txt"), 'M'),
    ("twistedfall/telegram3", fixture!("plain/twistedfall/telegram3.txt"), 'M'),
    ("mthmulders/output1", fixture!("plain/mthmulders/output1.txt"), 'M'),
];

/// Lines in the fixtures that are not objects: typos in the DSMR 4.0/4.2.2 specification
/// examples (`99:97.0`, `72:32.0`), which the athombv sample copied.
const MALFORMED: &[(&str, &[&str])] = &[
    ("athombv/dsmr-4.0-isk-1", SPEC_40_TYPOS),
    ("athombv/dsmr-4.0-spec-example", SPEC_40_TYPOS),
    ("athombv/dsmr-4.2.2-spec-example", &["1-0:72:32.0(00000)"]),
];
const SPEC_40_TYPOS: &[&str] = &[
    "1-0:99:97.0(2)(0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(00000000301*s)",
    "1-0:72:32.0(00000)",
];

#[test]
fn every_fixture_frames_parses_and_gets_its_crc_verdict() {
    for &(name, bytes, expected) in ALL {
        let verdict = match Telegram::parse_bytes(bytes) {
            Ok(telegram) => {
                assert!(telegram.objects().len() >= 3, "{name}: objects");
                // Lines that are not `OBIS(…)` are kept and reported, not fatal.
                let malformed: Vec<&str> =
                    telegram.malformed_lines().iter().map(|l| l.text).collect();
                let known = MALFORMED.iter().find(|(n, _)| *n == name).map_or(&[][..], |m| m.1);
                assert_eq!(malformed, known, "{name}");
                match telegram.crc() {
                    CrcCheck::Valid { .. } => 'V',
                    CrcCheck::Absent { .. } => 'A',
                    CrcCheck::Mismatch { .. } => 'M',
                }
            }
            Err(TelegramError::Frame(protocol::p1::FrameError::Truncated { .. })) => 'T',
            Err(error) => panic!("{name}: {error}"),
        };
        // The LF-only twistedfall/mthmulders files were CRC'd over CRLF by their meters.
        let lf_only = !bytes.windows(2).any(|w| w == b"\r\n");
        let expected = if lf_only { 'M' } else { expected };
        assert_eq!(verdict, expected, "{name}");
    }
}

#[test]
fn typed_readings_of_every_fixture_have_no_unexplained_problems() {
    for &(name, bytes, _) in ALL {
        let Ok(telegram) = Telegram::parse_bytes(bytes) else { continue };
        let readings = Readings::from_telegram(&telegram);
        let problems: Vec<String> = readings.problems.iter().map(ToString::to_string).collect();
        let known = PROBLEMS.iter().find(|(n, _)| *n == name).map_or(&[][..], |p| p.1);
        assert_eq!(problems, known, "{name}");
        assert!(!readings.energy.is_empty() || readings.mbus.len() == 1, "{name}: no energy");
    }
}

/// Known objects whose values do not fit their definition, per fixture: the anonymised Kamstrup
/// and XT211 samples carry impossible telegram times (`250000000000W`, `123412341234W`).
const PROBLEMS: &[(&str, &[&str])] = &[
    ("athombv/kamstrup-OMNIA-e-meter-three-phase", &[BAD_TIME]),
    ("athombv/sagemcom-xt211", &[BAD_TIME]),
];
const BAD_TIME: &str =
    "0-0:1.0.0: bad timestamp: timestamp fields out of range (month, day, hour, minute or second)";

#[test]
fn lf_only_files_validate_once_crlf_is_restored() {
    for &(name, bytes, _) in
        ALL.iter().filter(|(n, ..)| n.starts_with("twistedfall") || n.starts_with("mthmulders"))
    {
        let crlf = String::from_utf8_lossy(bytes).replace('\n', "\r\n");
        let telegram = Telegram::parse_bytes(crlf.as_bytes()).unwrap();
        assert!(telegram.crc().is_valid(), "{name}");
    }
}

fn parse(name: &str) -> Telegram<'static> {
    let bytes = ALL.iter().find(|(n, ..)| *n == name).unwrap().1;
    Telegram::parse_bytes(bytes).unwrap()
}

#[test]
fn dsmr5_readings() {
    let telegram = parse("ndokter/telegram_v5");
    let r = Readings::from_telegram(&telegram);
    assert_eq!(r.country, Country::Netherlands);
    assert_eq!(r.version, Some("50"));
    assert_eq!(r.meter_time.unwrap().to_utc().to_string(), "2017-01-02T18:20:02Z");
    let low = r.energy(Direction::Import, Some(1)).unwrap();
    assert_eq!((low.energy.value.as_str(), low.energy.unit), ("000004.426", Some("kWh")));
    assert_eq!(low.meaning, TariffMeaning::Low);
    assert_eq!(r.tariff_indicator, Some(("0002", Some(2), TariffMeaning::Normal)));
    assert_eq!(r.power_failures, Some(13));
    assert_eq!(r.phases[2].current.unwrap().value.as_str(), "0.86");
    assert_eq!(r.mbus[0].kind, Some(MbusKind::Gas));
    assert_eq!(r.mbus[0].reading.unwrap().to_string(), "00000.107 m3");
    assert_eq!(r.mbus[0].captured_at.unwrap().to_utc().to_string(), "2017-01-02T15:10:05Z");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn belgian_readings_have_day_night_tariffs_and_capacity_peaks() {
    let telegram = parse("ndokter/telegram_fluvius_v171");
    let r = Readings::from_telegram(&telegram);
    assert_eq!(r.country, Country::Belgium);
    assert_eq!(r.energy(Direction::Import, Some(1)).unwrap().meaning, TariffMeaning::Day);
    assert_eq!(r.energy(Direction::Import, Some(2)).unwrap().meaning, TariffMeaning::Night);
    assert_eq!(r.tariff_indicator, Some(("0001", Some(1), TariffMeaning::Day)));
    assert_eq!(r.demand_current.unwrap().to_string(), "02.351 kW");
    let peak = r.demand_month_peak.unwrap();
    assert_eq!(peak.at.unwrap().to_utc().to_string(), "2020-05-09T11:45:58Z");
    assert_eq!(peak.demand.to_string(), "02.589 kW");
    assert_eq!(r.demand_peak_history.len(), 3);
    assert_eq!(r.demand_peak_history[2].demand.to_string(), "04.318 kW");
    // Gas on 0-1:24.2.3 with its id on 0-1:96.1.1; water on channel 2.
    assert_eq!(r.mbus[0].reading.unwrap().to_string(), "00112.384 m3");
    assert_eq!(r.mbus[0].valve, Some("1"));
    assert_eq!(r.mbus[1].kind, Some(MbusKind::Water));
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    // A month without a peak carries the impossible time 632525252525W.
    let alt = Readings::from_telegram(&parse("ndokter/telegram_fluvius_v171_alt"));
    let first: &Peak<'_> = &alt.demand_peak_history[0];
    assert_eq!(first.at, None);
    assert_eq!(first.month.unwrap().to_utc().to_string(), "2023-07-31T22:00:00Z");
}

#[test]
fn dsmr3_gas_profile_value_on_the_next_line() {
    let r = Readings::from_telegram(&parse("ndokter/telegram_v3"));
    let gas = &r.mbus[0];
    assert_eq!(gas.reading.unwrap().to_string(), "00001.001 m3");
    // No S/W flag in DSMR 3: the EU rule says February is winter time.
    assert_eq!(gas.captured_at.unwrap().to_utc().to_string(), "2009-02-12T15:00:00Z");
    assert_eq!(gas.valve, Some("1"));
    assert_eq!(r.text_message.as_deref().map(str::len), Some(80));
}

#[test]
fn odd_headers_short_crcs_and_d0_meters() {
    let warmtelink = parse("ndokter/telegram_unpadded_crc");
    assert_eq!(warmtelink.crc(), CrcCheck::Valid { value: 0x0B9F, digits: 3 });
    let heat = Readings::from_telegram(&warmtelink);
    assert_eq!(heat.mbus[0].kind, Some(MbusKind::Heat));
    assert_eq!(heat.mbus[0].reading.unwrap().to_string(), "240.860 GJ");

    let irish = parse("ndokter/telegram_iskra_ie");
    assert_eq!(irish.header(), "ISk5\u{2}MIE5T-200");

    let q3d = parse("ndokter/telegram_esy5q3db1024_v304");
    let total = q3d.objects().iter().find(|o| o.obis.cde() == (1, 8, 0)).unwrap();
    assert_eq!(total.obis.to_string(), "1-0:1.8.0*255");
    assert_eq!(total.value(0).unwrap().text, "00052185.7825309");
    assert_eq!(Readings::from_telegram(&q3d).country, Country::Other);
}

#[test]
fn hungarian_and_austrian_variants() {
    let hu = Readings::from_telegram(&parse("ndokter/telegram_v5_eon_hu"));
    assert_eq!(hu.country, Country::Hungary);
    assert_eq!(hu.energy.iter().filter(|r| r.direction == Direction::Import).count(), 5);
    assert_eq!(hu.energy(Direction::Import, Some(4)).unwrap().meaning, TariffMeaning::Unspecified);
    assert_eq!(hu.equipment_id, Some("53414733303832323030303032313630"));

    let at = Readings::from_telegram(&parse("ndokter/telegram_sagemcom_t210_d_r"));
    assert_eq!(at.country, Country::Austria);
    assert_eq!(at.energy(Direction::Import, None).unwrap().energy.to_string(), "006545766 Wh");
    assert_eq!(at.power_import.unwrap().to_string(), "000000286 W");
}

/// Hex text as in the athombv fixtures (whitespace between bytes).
fn from_hex_text(text: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = text.iter().copied().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const LUX_PLAIN: &[u8] = fixture!("plain/athombv/dsmr-luxembourgh-spec-example.txt");
const LUX_WITH_AAD: &[u8] =
    fixture!("encrypted/athombv/dsmr-luxembourgh-spec-example-with-aad.hex.txt");
const LUX_WITHOUT_AAD: &[u8] =
    fixture!("encrypted/athombv/dsmr-luxembourgh-spec-example-without-aad.hex.txt");
const ESPHOME_FRAME: &[u8] = fixture!("encrypted/esphome/encrypted_packet.bin");
const AT_PLAIN: &[u8] = fixture!("plain/ndokter/telegram_sagemcom_t210_d_r.txt");

#[test]
fn luxembourg_frames_decrypt_to_the_spec_telegram() {
    let key = MeterKey::from_hex("0123456789abcdef0123456789abcdef").unwrap();
    let auth: [u8; 16] = from_hex_text(b"ffeeddccbbaa99887766554433221100").try_into().unwrap();

    let with = from_hex_text(LUX_WITH_AAD);
    let (frame, used) = CipherFrameIn::split(&with).unwrap();
    assert_eq!(used, with.len());
    assert_eq!(&frame.system_title, b"systitle");
    assert_eq!(frame.frame_counter, 0x1122_3344);
    assert_eq!(frame.decrypt(&key, Some(&auth)).unwrap(), LUX_PLAIN);

    let without = from_hex_text(LUX_WITHOUT_AAD);
    let (frame, _) = CipherFrameIn::split(&without).unwrap();
    let plain = frame.decrypt(&key, None).unwrap();
    assert_eq!(plain, LUX_PLAIN);
    let telegram = Telegram::parse_bytes(&plain).unwrap();
    let readings = Readings::from_telegram(&telegram);
    assert_eq!(readings.country, Country::Luxembourg);
    assert_eq!(readings.equipment_id, Some("53414731303330373930303032353734"));
    assert_eq!(
        readings.energy(Direction::Import, None).unwrap().energy.to_string(),
        "000025.653 kWh"
    );
}

#[test]
fn smarty_frame_decrypts_to_the_austrian_telegram() {
    let key = MeterKey::new([0xAA; 16]);
    let (frame, used) = CipherFrameIn::split(ESPHOME_FRAME).unwrap();
    assert_eq!(used, ESPHOME_FRAME.len());
    assert_eq!(&frame.system_title, b"SYSTEMID");
    assert_eq!(frame.frame_counter, 0x1000_0001);
    let plain = frame.decrypt(&key, Some(&SMARTY_AUTHENTICATION_KEY)).unwrap();
    assert_eq!(plain, AT_PLAIN);
    assert!(Telegram::parse_bytes(&plain).unwrap().crc().is_valid());
}

#[test]
fn wrong_keys_and_damaged_frames_fail_authentication() {
    let (frame, _) = CipherFrameIn::split(ESPHOME_FRAME).unwrap();
    let wrong = MeterKey::new([0xAB; 16]);
    assert_eq!(
        frame.decrypt(&wrong, Some(&SMARTY_AUTHENTICATION_KEY)),
        Err(DecryptError::Authentication)
    );
    let right = MeterKey::new([0xAA; 16]);
    assert_eq!(frame.decrypt(&right, None), Err(DecryptError::Authentication));
    assert_eq!(
        DecryptError::Authentication.to_string(),
        "authentication failed: wrong key or authentication key, or a corrupted frame"
    );
    let mut damaged = ESPHOME_FRAME.to_vec();
    damaged[100] ^= 1;
    let (frame, _) = CipherFrameIn::split(&damaged).unwrap();
    assert_eq!(
        frame.decrypt(&right, Some(&SMARTY_AUTHENTICATION_KEY)),
        Err(DecryptError::Authentication)
    );
    // A frame cut short is "need more", not "wrong key".
    assert_eq!(
        CipherFrameIn::split(&ESPHOME_FRAME[..300]),
        Err(CipherFrameError::Incomplete { needed: ESPHOME_FRAME.len() })
    );
}

#[test]
fn obis_lookup_helpers() {
    let telegram = parse("ndokter/telegram_v5_two_mbus");
    assert!(telegram.object(ObisCode::new(0, 2, 24, 1, 0)).is_some());
    assert_eq!(telegram.version(), Some("50"));
    assert_eq!(telegram.manufacturer(), Some("ISK"));
}
