//! `pi-agent parse` end to end: the built binary on the protocol crate's P1 fixtures.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/fixtures/p1").join(path)
}

fn pi_agent(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pi-agent"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn text_output_shows_header_crc_objects_and_readings() {
    let file = fixture("plain/ndokter/telegram_v5.txt");
    let output = pi_agent(&["parse", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("telegram at byte 0: /ISk5\\2MT382-1000"), "{text}");
    assert!(text.contains("crc: 6EEE valid"));
    assert!(text.contains("2017-01-02T18:20:02Z (170102192002W)"));
    assert!(text.contains("import tariff 1 (low)"));
    assert!(text.contains("000004.426 kWh"));
    assert!(text.contains("M-Bus 1 gas      00000.107 m3 at 2017-01-02T15:10:05Z"));
}

#[test]
fn json_output_has_exact_decimals_utc_times_and_typed_readings() {
    let file = fixture("plain/ndokter/telegram_fluvius_v171.txt");
    let output = pi_agent(&["parse", "--json", file.to_str().unwrap()], None);
    assert!(output.status.success());
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let telegram = &lines[0];
    assert_eq!(telegram["header"], "FLU5\\253769484_A");
    assert_eq!(telegram["crc"]["status"], "valid");
    assert_eq!(telegram["crc"]["computed"], "3AD7");
    let import_t1 =
        telegram["objects"].as_array().unwrap().iter().find(|o| o["obis"] == "1-0:1.8.1").unwrap();
    assert_eq!(import_t1["values"][0]["value"], "000000.034");
    assert_eq!(import_t1["values"][0]["unit"], "kWh");
    let readings = &telegram["readings"];
    assert_eq!(readings["country"], "belgium");
    assert_eq!(readings["energy"][0]["meaning"], "day");
    assert_eq!(readings["demand_month_peak"]["at"], "2020-05-09T11:45:58Z");
    assert_eq!(readings["mbus"][1]["kind"], "water");
}

#[test]
fn country_override_changes_tariff_meanings() {
    let file = fixture("plain/ndokter/telegram_v5.txt");
    let output = pi_agent(&["parse", "--json", "--country", "be", file.to_str().unwrap()], None);
    let lines = json_lines(&output);
    assert_eq!(lines[0]["readings"]["country"], "belgium");
    assert_eq!(lines[0]["readings"]["energy"][0]["meaning"], "day");
    assert_eq!(lines[0]["readings"]["tariff_indicator"]["meaning"], "night");
}

#[test]
fn errors_are_reported_per_telegram_with_offsets_and_parsing_continues() {
    let good = std::fs::read(fixture("plain/ndokter/telegram_v5.txt")).unwrap();
    let mut bad_crc = good.clone();
    let digit = bad_crc.iter().position(|&b| b == b'4').unwrap();
    bad_crc[digit] = b'5';
    let mut input = Vec::new();
    input.extend_from_slice(&good);
    input.extend_from_slice(b"line noise\r\n");
    let noise_at = good.len();
    input.extend_from_slice(&good[..300]);
    let truncated_at = input.len() - 300;
    input.extend_from_slice(&bad_crc);
    input.extend_from_slice(&good);

    let output = pi_agent(&["parse", "--json", "-"], Some(&input));
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&output);
    let summary: Vec<(String, u64)> = lines
        .iter()
        .map(|l| {
            let what = if l["error"].is_string() {
                "error".to_owned()
            } else {
                l["crc"]["status"].as_str().unwrap().to_owned()
            };
            (what, l["offset"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("valid".to_owned(), 0),
            ("error".to_owned(), noise_at as u64),
            ("error".to_owned(), truncated_at as u64),
            ("mismatch".to_owned(), (truncated_at + 300) as u64),
            ("valid".to_owned(), (truncated_at + 300 + good.len()) as u64),
        ]
    );
    assert!(lines[2]["error"].as_str().unwrap().contains("truncated"));
}

#[test]
fn encrypted_frames_decrypt_with_the_key_and_fail_clearly_without_it() {
    let frame = fixture("encrypted/esphome/encrypted_packet.bin");
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let output = pi_agent(&["parse", "--json", "--key", key, frame.to_str().unwrap()], None);
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output);
    assert_eq!(lines[0]["header"], "EST5\\253710000_A");
    assert_eq!(lines[0]["crc"]["valid"], true);
    assert_eq!(lines[0]["readings"]["country"], "austria");

    let wrong = pi_agent(
        &["parse", "--key", "000102030405060708090A0B0C0D0E0F", frame.to_str().unwrap()],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    let text = String::from_utf8(wrong.stdout).unwrap();
    assert!(text.contains("error at byte 0: authentication failed: wrong key"), "{text}");

    let hex = fixture("encrypted/athombv/dsmr-luxembourgh-spec-example-without-aad.hex.txt");
    let lux = pi_agent(
        &[
            "parse",
            "--json",
            "--key",
            "0123456789abcdef0123456789abcdef",
            "--aad",
            "none",
            hex.to_str().unwrap(),
        ],
        None,
    );
    let lines = json_lines(&lux);
    assert_eq!(lines[0]["header"], "Lux5\\253694471_M");
    assert_eq!(lines[0]["readings"]["country"], "luxembourg");

    let bad_key = pi_agent(&["parse", "--key", "xyz", frame.to_str().unwrap()], None);
    assert_eq!(bad_key.status.code(), Some(2));
    assert!(
        String::from_utf8(bad_key.stderr).unwrap().contains("--key: a P1 key is 32 hex digits")
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = pi_agent(&["parse", "/nonexistent/telegram.txt"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr).unwrap().contains("cannot read /nonexistent/telegram.txt")
    );
}
