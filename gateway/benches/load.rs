//! Load benchmark: the tangle node against NATS JetStream (file store) on loopback, with the
//! same workload in the same run, plus proof-of-work solve times.
//!
//! For each scenario (N publishers, M subscribers, ~512-byte messages) and each system:
//! - publishers send one message at a time and wait for its acknowledgement (closed loop), or
//!   keep a fixed total rate (paced; latency then counts from the scheduled send time, so a
//!   stalled system cannot hide its queueing);
//! - subscribers follow every publisher's address/subject live; each message carries its send
//!   time, so delivery latency is publish → subscriber;
//! - printed: acknowledged messages/s, p50/p99 acknowledgement latency, p99 delivery latency,
//!   messages delivered, and the server process's peak resident memory (VmHWM).
//!
//! Systems: the gateway binary with `--durability full` (fsync before ack) and `normal` (page
//! cache, like JetStream), and Debian's `nats-server -js` (file store, acks after the page
//! cache). Load generator and servers share the same cores.
//!
//! Usage: `scripts/bench-node.sh [--seconds S] [--quick]` (or `cargo bench -p gateway --bench
//! load -- …`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use protocol::tangle::{Address, Difficulty, MessageDraft, MessageId};
use tokio::sync::Mutex;

const PAYLOAD: usize = 512;
const WARMUP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    publishers: usize,
    subscribers: usize,
    /// Total messages/s across publishers; `None` = as fast as acknowledgements come back.
    pace: Option<f64>,
    /// Messages each publisher has in flight per round trip: 1 = one request per message; more =
    /// one `POST /messages/batch` for the node, that many pipelined publishes for JetStream.
    in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum System {
    NodeFull,
    NodeNormal,
    JetStream,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            Self::NodeFull => "node (fsync, durability=full)",
            Self::NodeNormal => "node (page cache, durability=normal)",
            Self::JetStream => "NATS JetStream file store",
        }
    }
}

#[derive(Debug, Default)]
struct Samples {
    /// (send time since start, ack latency) in µs.
    acks: Vec<(u64, u64)>,
    /// delivery latencies in µs, for messages sent after the warm-up.
    deliveries: Vec<u64>,
    errors: u64,
}

#[derive(Debug)]
struct Outcome {
    acked_per_sec: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    delivery_p99_ms: f64,
    delivered: usize,
    errors: u64,
    peak_rss_mib: f64,
    /// Server CPU time (user + system) per 1,000 acknowledged messages, whole run.
    cpu_ms_per_1k: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn summarise(samples: Samples, measured: Duration, peak_rss_kib: u64, cpu_secs: f64) -> Outcome {
    let all_acks = samples.acks.len().max(1) as f64;
    let warm = WARMUP.as_micros() as u64;
    let mut acks: Vec<u64> =
        samples.acks.iter().filter(|(sent, _)| *sent >= warm).map(|(_, lat)| *lat).collect();
    acks.sort_unstable();
    let mut deliveries = samples.deliveries;
    deliveries.sort_unstable();
    Outcome {
        acked_per_sec: acks.len() as f64 / measured.as_secs_f64(),
        ack_p50_ms: percentile(&acks, 0.50),
        ack_p99_ms: percentile(&acks, 0.99),
        delivery_p99_ms: percentile(&deliveries, 0.99),
        delivered: deliveries.len(),
        errors: samples.errors,
        peak_rss_mib: peak_rss_kib as f64 / 1024.0,
        cpu_ms_per_1k: cpu_secs * 1000.0 / all_acks * 1000.0,
    }
}

/// Peak resident set of a process, from /proc (kB).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s, the
/// Linux default).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Paces a publisher: the instant its `k`-th message is due, or `None` when unpaced.
fn due(start: Instant, pace_each: Option<f64>, k: u64) -> Option<Instant> {
    pace_each.map(|rate| start + Duration::from_secs_f64(k as f64 / rate))
}

// ───────────────────────────── the node ─────────────────────────────

struct NodeProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn start_node(durability: &str) -> NodeProcess {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--listen", "127.0.0.1:0", "--api-only", "--difficulty", "0", "--rate-limit", "0"])
        .args(["--durability", durability, "--subscriber-buffer", "65536"])
        .arg("--store")
        .arg(dir.path().join("node.sqlite"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gateway");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("start line");
    let url = line
        .trim()
        .strip_prefix("Meterkast gateway listening on ")
        .expect("listening line")
        .trim_end_matches('/')
        .to_owned();
    NodeProcess { child, url, _dir: dir }
}

/// The send time (µs since the run started) carried in a message's timestamp field, read
/// straight from the base64 of the encoding: with one parent the timestamp is bytes 66..74,
/// which are base64 characters 88..100 (bytes 66..75).
fn stamp_from_event(data: &str) -> Option<u64> {
    let start = data.find("\"message\":\"")? + "\"message\":\"".len();
    let chunk = data.get(start + 88..start + 100)?;
    let bytes = BASE64.decode(chunk).ok()?;
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

async fn run_node(scenario: Scenario, durability: &str, seconds: f64) -> Outcome {
    let mut node = start_node(durability);
    let http =
        reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().expect("client");
    let addresses: Vec<Address> =
        (0..scenario.publishers).map(|p| Address([p as u8 + 1; 32])).collect();
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let list: Vec<String> = addresses.iter().map(Address::to_hex).collect();
    let url = format!("{}/api/v1/subscribe?addresses={}", node.url, list.join(","));
    let mut subscribers = Vec::new();
    for _ in 0..scenario.subscribers {
        let response = http.get(&url).send().await.expect("subscribe");
        let mut bytes = response.bytes_stream();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (samples, stop) = (samples.clone(), stop.clone());
        subscribers.push(tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut buffer: Vec<u8> = Vec::new();
            let mut mine = Vec::new();
            let warm = WARMUP.as_micros() as u64;
            while let Some(Ok(chunk)) = bytes.next().await {
                buffer.extend_from_slice(&chunk);
                // Walk the complete events with a cursor, then drop them in one move.
                let mut at = 0;
                while let Some(len) = buffer[at..].windows(2).position(|w| w == b"\n\n") {
                    let event = std::str::from_utf8(&buffer[at..at + len]).unwrap_or("");
                    if event.starts_with("event: live") {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    } else if let Some(sent) = stamp_from_event(event) {
                        let now = started.elapsed().as_micros() as u64;
                        if sent >= warm {
                            mine.push(now.saturating_sub(sent));
                        }
                    }
                    at += len + 2;
                }
                buffer.drain(..at);
                if stop.load(Ordering::Relaxed) && buffer.is_empty() {
                    break;
                }
            }
            samples.lock().await.deliveries.extend(mine);
        }));
        ready_rx.await.expect("subscriber live");
    }

    let pace_each = scenario.pace.map(|total| total / scenario.publishers as f64);
    let deadline = started + Duration::from_secs_f64(seconds) + WARMUP;
    let publishers: Vec<_> = addresses
        .iter()
        .enumerate()
        .map(|(p, address)| {
            let (http, samples, address) = (http.clone(), samples.clone(), *address);
            let in_flight = scenario.in_flight;
            let path = if in_flight > 1 { "/api/v1/messages/batch" } else { "/api/v1/messages" };
            let url = format!("{}{path}", node.url);
            tokio::spawn(async move {
                let mut acks = Vec::new();
                let mut errors = 0;
                let t0 = Instant::now();
                for k in 0u64.. {
                    let scheduled = due(t0, pace_each, k);
                    if let Some(at) = scheduled {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    let sent_at = scheduled.unwrap_or_else(Instant::now);
                    let stamp = sent_at.duration_since(started).as_micros() as u64;
                    let mut body = Vec::new();
                    for i in 0..in_flight {
                        let mut payload = vec![p as u8; PAYLOAD];
                        payload[..8]
                            .copy_from_slice(&(k * in_flight as u64 + i as u64).to_be_bytes());
                        let encoded =
                            MessageDraft::new(vec![MessageId::GENESIS], address, stamp, payload)
                                .expect("draft")
                                .with_nonce(0)
                                .encode();
                        if in_flight > 1 {
                            body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
                        }
                        body.extend_from_slice(&encoded);
                    }
                    let response = http
                        .post(&url)
                        .header("content-type", "application/octet-stream")
                        .body(body)
                        .send()
                        .await;
                    let acked = match response {
                        Ok(r) if r.status() == 201 => r.bytes().await.map_or(0, |_| 1),
                        // A batch answers one result per message; count the receipts.
                        Ok(r) if r.status() == 200 && in_flight > 1 => {
                            r.text().await.map_or(0, |t| t.matches("\"seq\":").count())
                        }
                        _ => 0,
                    };
                    let latency = sent_at.elapsed().as_micros() as u64;
                    acks.extend(std::iter::repeat_n((stamp, latency), acked));
                    errors += (in_flight - acked.min(in_flight)) as u64;
                }
                let mut all = samples.lock().await;
                all.acks.extend(acks);
                all.errors += errors;
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let rss = peak_rss_kib(node.child.id());
    let cpu = cpu_secs(node.child.id());
    let _ = node.child.kill();
    let _ = node.child.wait();
    for subscriber in subscribers {
        let _ = tokio::time::timeout(Duration::from_secs(5), subscriber).await;
    }
    let samples = std::mem::take(&mut *samples.lock().await);
    summarise(samples, Duration::from_secs_f64(seconds), rss, cpu)
}

// ───────────────────────────── JetStream ─────────────────────────────

struct NatsProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn start_nats() -> NatsProcess {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nats-server (Debian package nats-server; scripts/setup.sh installs it)");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    NatsProcess { child, url: format!("nats://127.0.0.1:{port}"), _dir: dir }
}

async fn run_jetstream(scenario: Scenario, seconds: f64) -> Outcome {
    use async_nats::jetstream::{self, consumer, stream};
    let mut nats = start_nats();
    let admin = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    let bench_stream = admin
        .create_stream(stream::Config {
            name: "BENCH".into(),
            subjects: vec!["bench.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("create stream");
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let mut subscribers = Vec::new();
    for s in 0..scenario.subscribers {
        let client = async_nats::connect(&nats.url).await.expect("connect");
        let stream = jetstream::new(client).get_stream("BENCH").await.expect("stream");
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                name: Some(format!("sub{s}")),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let (samples, stop) = (samples.clone(), stop.clone());
        subscribers.push(tokio::spawn(async move {
            let warm = WARMUP.as_micros() as u64;
            let mut mine = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(300), messages.next()).await;
                match next {
                    Ok(Some(Ok(message))) => {
                        if let Some(stamp) = message.payload.get(..8) {
                            let sent = u64::from_be_bytes(stamp.try_into().unwrap_or([0; 8]));
                            if sent >= warm {
                                let now = started.elapsed().as_micros() as u64;
                                mine.push(now.saturating_sub(sent));
                            }
                        }
                    }
                    Ok(_) => break,
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            samples.lock().await.deliveries.extend(mine);
        }));
    }
    drop(bench_stream);

    let pace_each = scenario.pace.map(|total| total / scenario.publishers as f64);
    let deadline = started + Duration::from_secs_f64(seconds) + WARMUP;
    let mut publishers = Vec::new();
    for p in 0..scenario.publishers {
        let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
        let samples = samples.clone();
        let in_flight = scenario.in_flight;
        publishers.push(tokio::spawn(async move {
            let subject = format!("bench.{p}");
            let mut acks = Vec::new();
            let mut errors = 0;
            let t0 = Instant::now();
            for k in 0u64.. {
                let scheduled = due(t0, pace_each, k);
                if let Some(at) = scheduled {
                    tokio::time::sleep_until(at.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let sent_at = scheduled.unwrap_or_else(Instant::now);
                let stamp = sent_at.duration_since(started).as_micros() as u64;
                let mut pending = Vec::with_capacity(in_flight);
                for _ in 0..in_flight {
                    let mut payload = vec![p as u8; PAYLOAD];
                    payload[..8].copy_from_slice(&stamp.to_be_bytes());
                    match js.publish(subject.clone(), payload.into()).await {
                        Ok(ack) => pending.push(ack),
                        Err(_) => errors += 1,
                    }
                }
                for ack in pending {
                    if ack.await.is_ok() {
                        acks.push((stamp, sent_at.elapsed().as_micros() as u64));
                    } else {
                        errors += 1;
                    }
                }
            }
            let mut all = samples.lock().await;
            all.acks.extend(acks);
            all.errors += errors;
        }));
    }
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for subscriber in subscribers {
        let _ = tokio::time::timeout(Duration::from_secs(5), subscriber).await;
    }
    let rss = peak_rss_kib(nats.child.id());
    let cpu = cpu_secs(nats.child.id());
    let _ = nats.child.kill();
    let _ = nats.child.wait();
    let samples = std::mem::take(&mut *samples.lock().await);
    summarise(samples, Duration::from_secs_f64(seconds), rss, cpu)
}

// ───────────────────────────── proof of work ─────────────────────────────

/// Median and mean solve time at each difficulty over distinct drafts.
fn pow_table() -> Vec<(u8, usize, f64, f64)> {
    [0u8, 8, 12, 16, 20]
        .into_iter()
        .map(|bits| {
            let samples = match bits {
                0..=12 => 200,
                16 => 40,
                _ => 8,
            };
            let difficulty = Difficulty::new(bits).expect("difficulty");
            let mut times: Vec<f64> = (0..samples)
                .map(|n| {
                    let draft = MessageDraft::new(
                        vec![MessageId::GENESIS],
                        Address([9; 32]),
                        n as u64,
                        vec![0; PAYLOAD],
                    )
                    .expect("draft");
                    let t = Instant::now();
                    std::hint::black_box(draft.solve_fully(difficulty));
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            (bits, samples, times[times.len() / 2], mean)
        })
        .collect()
}

// ───────────────────────────── main ─────────────────────────────

#[allow(clippy::print_stdout)]
fn print_row(scenario: &Scenario, system: System, o: &Outcome) {
    println!(
        "| {:<28} | {:<37} | {:>10.0} | {:>8.2} | {:>8.2} | {:>11.2} | {:>9} | {:>6} | {:>8.1} | {:>9.0} |",
        scenario.name,
        system.label(),
        o.acked_per_sec,
        o.ack_p50_ms,
        o.ack_p99_ms,
        o.delivery_p99_ms,
        o.delivered,
        o.errors,
        o.peak_rss_mib,
        o.cpu_ms_per_1k
    );
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(8.0);
    let quick = args.iter().any(|a| a == "--quick");
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse::<usize>().ok())
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let mut scenarios = vec![Scenario {
        name: "32 pub / 4 sub, max rate",
        publishers: 32,
        subscribers: 4,
        pace: None,
        in_flight: 1,
    }];
    if let (Some(publishers), Some(subscribers)) = (number("--publishers"), number("--subscribers"))
    {
        scenarios = vec![Scenario {
            name: "custom, max rate",
            publishers,
            subscribers,
            pace: None,
            in_flight: number("--in-flight").unwrap_or(1).max(1),
        }];
    } else if !quick {
        scenarios.push(Scenario {
            name: "1 pub / 1 sub, max rate",
            publishers: 1,
            subscribers: 1,
            pace: None,
            in_flight: 1,
        });
        scenarios.push(Scenario {
            name: "32 pub / 4 sub, 10k msg/s",
            publishers: 32,
            subscribers: 4,
            pace: Some(10_000.0),
            in_flight: 1,
        });
        scenarios.push(Scenario {
            name: "32 pub × 16 in flight / 4 sub",
            publishers: 32,
            subscribers: 4,
            pace: None,
            in_flight: 16,
        });
    }

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "# Meterkast node vs NATS JetStream — {cores} cores, {PAYLOAD}-byte payloads, {seconds} s per run after a {} s warm-up",
        WARMUP.as_secs()
    );
    println!(
        "# load generator, servers and subscribers share the same cores; node runs at difficulty 0 (validation still decodes and hashes every message)"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# load average before the run (other work on the machine skews both systems): {}",
        load.trim()
    );
    println!();
    println!(
        "| scenario                     | system                                |  acked/s   | ack p50  | ack p99  | deliv. p99  | delivered | errors | peak RSS | server CPU |"
    );
    println!(
        "|                              |                                       |            |   (ms)   |   (ms)   |    (ms)     |           |        |  (MiB)   | ms/1k msg |"
    );
    println!(
        "|------------------------------|---------------------------------------|------------|----------|----------|-------------|-----------|--------|----------|------------|"
    );
    for scenario in &scenarios {
        let mut results = Vec::new();
        for system in [System::NodeFull, System::NodeNormal, System::JetStream] {
            let outcome = runtime.block_on(async {
                match system {
                    System::NodeFull => run_node(*scenario, "full", seconds).await,
                    System::NodeNormal => run_node(*scenario, "normal", seconds).await,
                    System::JetStream => run_jetstream(*scenario, seconds).await,
                }
            });
            print_row(scenario, system, &outcome);
            results.push((system, outcome));
        }
        let rate = |s: System| {
            results.iter().find(|(x, _)| *x == s).map_or(f64::NAN, |(_, o)| o.acked_per_sec)
        };
        let js = rate(System::JetStream);
        println!(
            "|   ratio node/JetStream       | equal durability (normal): {:.2}×; node fsync (full) vs JetStream page cache: {:.2}× |",
            rate(System::NodeNormal) / js,
            rate(System::NodeFull) / js
        );
    }
    println!();
    println!(
        "# Proof of work: solve time per message on this machine. No Raspberry Pi here: scale by the"
    );
    println!("# ratio of its work-hash rate to the rate printed below.");
    println!(
        "| difficulty (bits) | samples | median (ms) | mean (ms) | expected hashes | work hashes/s |"
    );
    println!("|---|---|---|---|---|---|");
    for (bits, samples, median, mean) in pow_table() {
        let expected = 1u64 << bits;
        let rate = if bits >= 8 {
            format!("{:.0}", expected as f64 / (mean / 1000.0))
        } else {
            "-".into()
        };
        println!("| {bits} | {samples} | {median:.3} | {mean:.3} | {expected} | {rate} |");
    }
}
