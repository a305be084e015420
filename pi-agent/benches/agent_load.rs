//! Load benchmark: N simulated meters at 1 Hz (each a real `pi-agent` process publishing its
//! 1 s stream) against one gateway, all granted to one provider tool that follows them.
//!
//! For growing N it prints the p50/p99 latency from "telegram in" (the simulator emits each
//! telegram at the wall-clock second it is stamped with) to "reading decrypted at the
//! provider" (the `received_at_ms` the provider writes), the largest N whose p99 stays under
//! 500 ms, and the agents' CPU time per reading (from /proc, utime + stime) with the energy
//! per reading it implies. Run through `scripts/bench-agent.sh` (release builds).
//!
//! Environment: `MK_BENCH_STEPS` (default `1,2,4,8,16,32`), `MK_BENCH_WINDOW_SECS` (default 20).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use protocol::channel::Tier;
use support::*;

/// Assumed power of a Raspberry Pi 4 while a core is busy (whole board, W).
const PI4_WATTS: f64 = 4.0;
/// Assumed slowdown of a Pi 4 core (Cortex-A72, 1.5 GHz) against one core of this machine.
const PI4_SLOWDOWN: f64 = 4.0;
/// The 2018 system's proof of work per published reading (see the issue).
const POC_JOULES_PER_READING: f64 = 540.0;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12) // utime, stime (fields 14 and 15 of the full line)
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100.0)
}

fn simulated_agent(state: &Path, node: &str, seed: usize) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pi-agent"))
            .args(["run", "--simulate", &seed.to_string(), "--node", node])
            .args(["--tiers", "second", "--consent-poll-ms", "500"])
            .arg("--state-dir")
            .arg(state)
            .env("MK_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let steps: Vec<usize> = std::env::var("MK_BENCH_STEPS")
        .unwrap_or_else(|_| "1,2,4,8,16,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window: u64 =
        std::env::var("MK_BENCH_WINDOW_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let (_gateway, node) = gateway(tmp.path(), 0);
    let (tool, link) = ProviderTool::setup(tmp.path().join("provider"), &node, "Bench", "second");
    let out = tmp.path().join("provider.jsonl");
    let _follow = Proc(
        Command::new(sibling_binary("meterkast-provider"))
            .arg("--state-dir")
            .arg(&tool.dir)
            .args(["--node", &node, "follow", "--format", "json", "--provisional"])
            .args(["--poll-ms", "100", "--window", "2", "--out"])
            .arg(&out)
            .env("MK_PROVIDER_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let clk = ticks_per_second();
    let mut agents: Vec<Proc> = Vec::new();
    let mut best = 0;
    println!("meters  streams_seen  readings  p50_ms  p99_ms  agent_cpu_ms_per_reading");
    for &n in &steps {
        while agents.len() < n {
            let state = tmp.path().join(format!("agent-{}", agents.len()));
            agents.push(simulated_agent(&state, &node, agents.len() + 1));
            let code = wait_for("a pairing code", Duration::from_secs(30), || {
                std::fs::read_to_string(state.join("pairing-code")).ok()
            });
            let mut wallet = Wallet::pair(&node, code.trim());
            wallet.grant(&link, &[Tier::Second]);
        }
        // Warm up: every meter's stream reaches the provider.
        std::thread::sleep(Duration::from_secs(5));
        let start_ms = now() * 1000;
        let cpu_before: u64 = agents.iter().map(|a| cpu_ticks(a.0.id())).sum();
        std::thread::sleep(Duration::from_secs(window));
        let cpu_after: u64 = agents.iter().map(|a| cpu_ticks(a.0.id())).sum();
        let end_ms = now() * 1000;
        let mut seen = HashSet::new();
        let mut latencies: Vec<i64> = records(&out)
            .iter()
            .filter(|r| r["type"] == "reading")
            .filter(|r| {
                let at = r["timestamp"].as_u64().unwrap_or(0) * 1000;
                at >= start_ms && at < end_ms
            })
            .filter(|r| seen.insert((r["device"].to_string(), r["timestamp"].as_u64())))
            .map(|r| {
                r["received_at_ms"].as_i64().unwrap_or(0)
                    - r["timestamp"].as_i64().unwrap_or(0) * 1000
            })
            .collect();
        latencies.sort_unstable();
        let devices: HashSet<String> = seen.iter().map(|(d, _)| d.clone()).collect();
        let readings = (n as u64 * (end_ms - start_ms) / 1000).max(1);
        let cpu_ms_per_reading = (cpu_after - cpu_before) as f64 / clk * 1000.0 / readings as f64;
        let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        println!(
            "{n:>6}  {:>12}  {:>8}  {p50:>6}  {p99:>6}  {cpu_ms_per_reading:>8.2}",
            devices.len(),
            latencies.len()
        );
        let complete = latencies.len() as u64 * 10 >= readings * 9;
        if p99 < 500 && complete {
            best = n;
        }
        if n == *steps.last().unwrap() || p99 >= 2000 {
            let joules = cpu_ms_per_reading / 1000.0 * PI4_SLOWDOWN * PI4_WATTS;
            println!();
            println!("largest N with p99 < 500 ms (and >= 90% of readings delivered): {best}");
            println!(
                "agent CPU per reading: {cpu_ms_per_reading:.2} ms on this machine; on a Pi 4 \
                 (assumed {PI4_SLOWDOWN}x slower, ~{PI4_WATTS} W busy) about {joules:.4} J per \
                 reading, vs ~{POC_JOULES_PER_READING} J of proof of work in the 2018 system \
                 ({:.0}x less)",
                POC_JOULES_PER_READING / joules.max(1e-9)
            );
            if p99 >= 2000 {
                println!("(stopped growing N: p99 above 2 s)");
            }
            break;
        }
    }
}
