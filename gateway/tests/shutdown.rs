//! Graceful shutdown of the real binary cannot be held hostage by a subscriber that stopped
//! reading: SIGTERM ends every subscription, and connections still stuck after the grace period
//! are closed anyway, with every acknowledged message kept.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::tangle::{Address, MessageDraft, MessageId};

#[tokio::test]
async fn sigterm_finishes_even_with_a_subscriber_that_never_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("node.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", "127.0.0.1:0", "--api-only", "--difficulty", "0", "--rate-limit", "0"])
        .args(["--subscriber-buffer", "1000000"]) // never dropped for lagging: it must be stuck
        .arg("--store")
        .arg(&store)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gateway");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("start line");
    let base =
        line.trim().trim_start_matches("Meterkast gateway listening on ").trim_end_matches('/');
    let host = base.trim_start_matches("http://").to_owned();

    // A subscriber that sends its request and then never reads a byte.
    let address = Address([4; 32]);
    let mut stuck = TcpStream::connect(&host).expect("connect");
    write!(
        stuck,
        "GET /api/v1/subscribe?addresses={address} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");

    // Far more than the socket buffers hold, so the node's writes to it block.
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut acknowledged = 0;
    for n in 0..600u64 {
        let message =
            MessageDraft::new(vec![MessageId::GENESIS], address, n, vec![n as u8; 30_000])
                .expect("draft")
                .with_nonce(0);
        let response = http
            .post(format!("{base}/api/v1/messages"))
            .header("content-type", "application/octet-stream")
            .body(message.encode())
            .send()
            .await
            .expect("submit");
        assert_eq!(response.status(), 201);
        acknowledged += 1;
    }

    let terminate = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(terminate.expect("kill").success());
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(asked.elapsed() < Duration::from_secs(20), "still running 20 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    drop(stuck);

    let conn = rusqlite::Connection::open(&store).expect("open store");
    let stored: i64 =
        conn.query_row("SELECT count(*) FROM messages", [], |row| row.get(0)).expect("count");
    assert_eq!(stored, acknowledged);
}
