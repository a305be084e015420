//! The serial source on a pseudo-terminal: telegrams are read, the "cable" is pulled (the pty
//! closes and its by-id style symlink disappears), and when a port appears again at the same
//! path reading resumes by itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use pi_agent::source::{BaudRate, SerialConfig, SerialSource, Source, seal_telegram};
use tokio_serial::SerialPort;

fn telegram(second: u32) -> Vec<u8> {
    seal_telegram(&format!(
        "/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(2603241505{second:02}W)\r\n\
         1-0:1.8.1(003432.827*kWh)\r\n1-0:1.7.0(00.378*kW)\r\n!"
    ))
}

/// A pty pair; the slave's path is linked at `link`.
fn plug(link: &std::path::Path) -> tokio_serial::SerialStream {
    let (master, slave) = tokio_serial::SerialStream::pair().unwrap();
    let name = slave.name().unwrap();
    drop(slave);
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(name, link).unwrap();
    master
}

async fn read_until(source: &mut SerialSource, needle: &[u8]) {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            seen.extend(source.next_chunk().await.unwrap().unwrap());
        }
    })
    .await
    .expect("telegram read in time");
}

#[tokio::test]
async fn reading_resumes_after_the_port_is_unplugged_and_plugged_back() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("usb-serial");
    let mut master = plug(&link);
    let mut config = SerialConfig::new(link.to_str().unwrap());
    config.baud = BaudRate::Fixed(115_200);
    config.reopen_delay = Duration::from_millis(200);
    let mut source = SerialSource::new(config);

    let writer = tokio::spawn(async move {
        // Keep writing until the reader has had time to open the port.
        for second in 0..20 {
            let _ = master.write_all(&telegram(second));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        master
    });
    read_until(&mut source, b"2603241505").await;
    let master = writer.await.unwrap();

    // Unplug: the pty goes away with its path.
    drop(master);
    std::fs::remove_file(&link).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Plug back in: a new device appears under the same name.
    let mut master = plug(&link);
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            let _ = master.write_all(&telegram(42));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    read_until(&mut source, b"260324150542W").await;
    writer.abort();
}
