//! Crash safety: publishers write continuously while the real gateway binary is killed with
//! SIGKILL five times and restarted on the same store. Afterwards every acknowledged message is
//! present exactly once, sequences are strictly increasing, and SQLite finds the file intact.
//!
//! Publishers behave like real clients: a submission that got no answer (the node died under it)
//! is sent again after the restart, so the test also shows that a message committed just before
//! a kill is answered as a duplicate rather than stored twice.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use protocol::tangle::{Address, MessageDraft, MessageId};

const KILLS: usize = 5;
const PUBLISHERS: u64 = 4;

/// Starts the gateway on a free port over `store`; returns the child and its base URL.
fn start(store: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", "127.0.0.1:0", "--api-only", "--difficulty", "0", "--rate-limit", "0"])
        .arg("--store")
        .arg(store)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gateway");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read start line");
    let url = line
        .trim()
        .strip_prefix("Meterkast gateway listening on ")
        .unwrap_or_else(|| panic!("unexpected start line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_repeated_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("node.sqlite");
    let (mut child, url) = start(&store);
    let base = Arc::new(RwLock::new(url));
    let acked: Arc<Mutex<HashMap<MessageId, u64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Retries answered "duplicate": the node had committed the message when it was killed.
    let duplicates = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (base, acked, stop, http) =
                (base.clone(), acked.clone(), stop.clone(), http.clone());
            let duplicates = duplicates.clone();
            tokio::spawn(async move {
                let address = Address([p as u8 + 1; 32]);
                let mut n = 0u64;
                let mut retries = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let message =
                        MessageDraft::new(vec![MessageId::GENESIS], address, n, vec![p as u8; 512])
                            .expect("draft")
                            .with_nonce(n);
                    // Until acknowledged, keep re-sending the same bytes (a client's retry).
                    loop {
                        let url = format!("{}/api/v1/messages", base.read().expect("lock"));
                        let sent = http
                            .post(url)
                            .header("content-type", "application/octet-stream")
                            .body(message.encode())
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status() == 201 || r.status() == 200 => {
                                let receipt: serde_json::Value = r.json().await.expect("receipt");
                                if receipt["duplicate"] == true {
                                    duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                let seq = receipt["seq"].as_u64().expect("seq");
                                let previous =
                                    acked.lock().expect("lock").insert(message.id(), seq);
                                assert!(previous.is_none(), "acknowledged twice");
                                break;
                            }
                            Ok(r) => panic!("unexpected answer {}", r.status()),
                            Err(_) => {
                                retries += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                    return retries;
                                }
                            }
                        }
                    }
                    n += 1;
                }
                retries
            })
        })
        .collect();

    let started = Instant::now();
    let mut acked_at_kill = Vec::new();
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1_500 + 300 * kill as u64)).await;
        child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
        child.wait().expect("reap");
        acked_at_kill.push(acked.lock().expect("lock").len());
        let (next, url) = start(&store);
        child = next;
        *base.write().expect("lock") = url;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut retries = 0;
    for publisher in publishers {
        retries += publisher.await.expect("publisher");
    }
    assert!(started.elapsed() < Duration::from_secs(40), "bounded run");

    // Read everything back from the restarted node, address by address, page by page.
    let acked = acked.lock().expect("lock").clone();
    let base = base.read().expect("lock").clone();
    let mut stored: Vec<(u64, MessageId)> = Vec::new();
    for p in 0..PUBLISHERS {
        let address = Address([p as u8 + 1; 32]);
        let mut after = 0;
        loop {
            let url =
                format!("{base}/api/v1/addresses/{address}/messages?after={after}&limit=1000");
            let page: serde_json::Value =
                http.get(url).send().await.expect("list").json().await.expect("page");
            for m in page["messages"].as_array().expect("messages") {
                let id = MessageId::from_hex(m["id"].as_str().expect("id")).expect("hex");
                stored.push((m["seq"].as_u64().expect("seq"), id));
            }
            after = page["next_after"].as_u64().expect("cursor");
            if !page["more"].as_bool().expect("more") {
                break;
            }
        }
    }
    child.kill().expect("stop");
    child.wait().expect("reap");

    let unique: HashSet<MessageId> = stored.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), stored.len(), "a message is stored twice");
    for (id, seq) in &acked {
        assert!(unique.contains(id), "acknowledged message {id} (seq {seq}) was lost");
    }
    let mut seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequences repeat");
    for (seq, id) in &stored {
        if let Some(acked_seq) = acked.get(id) {
            assert_eq!(acked_seq, seq, "the acknowledged sequence is the stored one");
        }
    }
    // Progress was made between every pair of kills, so each kill hit a busy node.
    assert!(acked_at_kill.windows(2).all(|w| w[0] < w[1]), "{acked_at_kill:?}");
    assert!(retries >= KILLS as u64, "publishers noticed the kills ({retries} retries)");

    let conn = rusqlite::Connection::open(&store).expect("open store");
    let integrity: String =
        conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).expect("integrity check");
    assert_eq!(integrity, "ok");
    eprintln!(
        "crash test: {} acknowledged, {} stored, {KILLS} kills, {retries} retried sends ({} answered as duplicates), acked at kills {acked_at_kill:?}",
        acked.len(),
        stored.len(),
        duplicates.load(std::sync::atomic::Ordering::Relaxed)
    );
}
