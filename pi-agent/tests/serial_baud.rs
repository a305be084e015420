//! `auto` speed detection on a pseudo-terminal. A pty carries bytes whatever speed is set, so
//! the fake meter on the master side reads the speed the reader configured (the pair shares
//! one set of terminal settings) and talks like a real meter on a real line would: its
//! telegram when the speeds match, line noise when they do not.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use pi_agent::source::{SerialConfig, SerialSource, Source, seal_telegram};
use tokio_serial::SerialPort;

/// A DSMR 2.2 style telegram (a 7E1 meter at 9600 Bd).
fn old_telegram() -> Vec<u8> {
    seal_telegram(
        "/KFM5KAIFA-METER\r\n\r\n0-0:1.0.0(260324150500W)\r\n1-0:1.8.1(001234.567*kWh)\r\n\
         1-0:1.7.0(00.378*kW)\r\n!",
    )
}

/// Bytes as a 7E1 line delivers them to an 8N1 reader: bit 7 is the even-parity bit.
fn with_even_parity(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| if b.count_ones() % 2 == 1 { b | 0x80 } else { *b }).collect()
}

/// What a reader at the wrong speed sees: framing garbage, never a `/ … !` telegram.
fn noise(round: u8) -> Vec<u8> {
    (0..200u16).map(|i| 0x80 | (i as u8).wrapping_mul(37).wrapping_add(round) & 0xFE).collect()
}

/// A fake meter at `speed` behind a pty whose slave is linked at `link`; it writes every 50 ms
/// until aborted.
fn meter(link: &std::path::Path, speed: u32, telegram: Vec<u8>) -> tokio::task::JoinHandle<()> {
    let (mut master, slave) = tokio_serial::SerialStream::pair().unwrap();
    let name = slave.name().unwrap();
    drop(slave); // the reader opens it by path, exclusively
    std::os::unix::fs::symlink(name, link).unwrap();
    tokio::spawn(async move {
        for round in 0u8.. {
            let line = if master.baud_rate().ok() == Some(speed) {
                telegram.clone()
            } else {
                noise(round)
            };
            let _ = master.write_all(&line);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Reads until a chunk (masked as the framer does) holds `needle`; returns the locked speed.
async fn read_until_locked(source: &mut SerialSource, needle: &[u8]) -> Option<u32> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !seen.windows(needle.len()).any(|w| w == needle) || source.locked_baud().is_none() {
            let chunk = source.next_chunk().await.unwrap().unwrap();
            seen.extend(chunk.iter().map(|b| b & 0x7F));
        }
    })
    .await
    .expect("a telegram and a locked speed in time");
    source.locked_baud()
}

fn auto_config(link: &std::path::Path) -> SerialConfig {
    let mut config = SerialConfig::new(link.to_str().unwrap());
    config.probe = Duration::from_millis(600);
    config.reopen_delay = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn a_dsmr5_meter_is_read_at_115200_without_trying_9600() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("p1");
    let telegram = seal_telegram(
        "/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(260324150501W)\r\n\
         1-0:1.8.1(003432.827*kWh)\r\n!",
    );
    let meter = meter(&link, 115_200, telegram);
    let mut source = SerialSource::new(auto_config(&link));
    assert_eq!(read_until_locked(&mut source, b"260324150501W").await, Some(115_200));
    meter.abort();
}

#[tokio::test]
async fn a_7e1_meter_is_found_at_9600_with_bit_7_masked() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("p1");
    let meter = meter(&link, 9_600, with_even_parity(&old_telegram()));
    let mut source = SerialSource::new(auto_config(&link));
    // 115200 first: only noise for the probe time, then 9600, where the parity bits set on
    // the wire are cleared and the telegram frames.
    assert_eq!(read_until_locked(&mut source, b"260324150500W").await, Some(9_600));
    meter.abort();
}
