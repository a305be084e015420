//! End to end with real processes on loopback: a gateway, `pi-agent` replaying the 566-telegram
//! capture, a wallet driven here through `protocol`, and two `meterkast-provider` tools.
//!
//! Pair, grant both providers the 1 s tier, data flows; revoke one: it receives its revocation
//! notice and nothing from the epoch after the rotation; the other continues without a gap; every
//! reading received equals the telegram it came from (re-parsed here from the raw telegram the
//! reading carries, and found verbatim in the capture). The providers follow by the node's live
//! subscriptions (its `delivered` counter shows the pushed messages).
//!
//! Needs `gateway` and `meterkast-provider` built in the same target directory
//! (`cargo build -p gateway -p provider`).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use protocol::channel::Tier;
use protocol::p1::{Framer, Readings, Telegram};
use support::*;

/// The reading a provider wrote, compared with what the agent's own conversion makes of the raw
/// telegram it carries.
fn check_against_telegram(record: &serde_json::Value, capture: &BTreeMap<u64, String>) {
    let raw = record["raw_telegram"].as_str().expect("1 s readings carry their telegram");
    let timestamp = record["timestamp"].as_u64().unwrap();
    assert_eq!(capture.get(&timestamp).map(String::as_str), Some(raw), "telegram of {timestamp}");
    let mut framer = Framer::default();
    framer.feed(raw.as_bytes());
    let crc = protocol::p1::crc::crc16_arc(raw.as_bytes());
    framer.feed(format!("{crc:04X}\r\n").as_bytes());
    let frame = framer.next_frame().unwrap().unwrap();
    let telegram = Telegram::parse(frame).unwrap();
    let expected = pi_agent::reading::reading_from_telegram(
        &telegram,
        &Readings::from_telegram(&telegram),
        true,
    )
    .unwrap();
    assert_eq!(expected.timestamp, timestamp);
    assert_eq!(record["energy_import_wh"], serde_json::json!(expected.energy_import_wh));
    assert_eq!(record["energy_export_wh"], serde_json::json!(expected.energy_export_wh));
    assert_eq!(record["power_import_w"], serde_json::json!(expected.power_import_w));
    assert_eq!(record["power_export_w"], serde_json::json!(expected.power_export_w));
    assert_eq!(record["phases"].as_array().unwrap().len(), expected.phases.len());
    assert_eq!(
        record["gas"],
        serde_json::json!(expected.gas.map(|g| (g.volume_dm3, g.captured_at)))
    );
}

/// A counter from the node's `/metrics` (Prometheus text), read over a plain socket.
fn node_counter(node: &str, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(node.trim_start_matches("http://")).unwrap();
    socket.write_all(b"GET /metrics HTTP/1.0\r\nHost: node\r\n\r\n").unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

fn second_tier(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records.iter().filter(|r| r["type"] == "reading" && r["tier"] == "Second").collect()
}

#[test]
fn pair_grant_two_providers_revoke_one_the_other_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gateway, node) = gateway(tmp.path(), 0);
    let (alpha, alpha_link) =
        ProviderTool::setup(tmp.path().join("alpha"), &node, "Alpha", "second");
    let (beta, beta_link) = ProviderTool::setup(tmp.path().join("beta"), &node, "Beta", "second");
    let alpha_out = tmp.path().join("alpha.jsonl");
    let beta_out = tmp.path().join("beta.jsonl");
    let mut alpha_follow = alpha.follow(&alpha_out);
    let mut beta_follow = beta.follow(&beta_out);

    let state = tmp.path().join("agent");
    let mut agent_proc = agent(&state, &node, "8", &tmp.path().join("agent.log"));
    let code = wait_for("the pairing code", Duration::from_secs(30), || {
        std::fs::read_to_string(state.join("pairing-code")).ok()
    });
    let mut wallet = Wallet::pair(&node, code.trim());
    let alpha_grant = wallet.grant(&alpha_link, &[Tier::Second]);
    let _beta_grant = wallet.grant(&beta_link, &[Tier::Second]);

    // Data flows to both.
    wait_for("readings at both providers", Duration::from_secs(40), || {
        (second_tier(&records(&alpha_out)).len() >= 20
            && second_tier(&records(&beta_out)).len() >= 20)
            .then_some(())
    });
    wallet.revoke(alpha_grant);
    wait_for("alpha's revocation notice", Duration::from_secs(20), || {
        records(&alpha_out).iter().any(|r| r["notice"] == "revoked").then_some(())
    });
    // The replay ends, the outbox drains and the agent exits by itself.
    wait_for("the agent to finish the capture", Duration::from_secs(120), || {
        agent_proc.0.try_wait().unwrap()
    });
    let capture: BTreeMap<u64, String> = capture_telegrams().into_iter().collect();
    let last = *capture.keys().last().unwrap();
    wait_for("beta to read the last telegram", Duration::from_secs(30), || {
        second_tier(&records(&beta_out))
            .iter()
            .any(|r| r["timestamp"] == last && r["status"] == "verified")
            .then_some(())
    });
    // The providers were pushed their messages by live subscriptions, not polling.
    let pushed = node_counter(&node, "meterkast_node_delivered_total");
    alpha_follow.terminate();
    beta_follow.terminate();

    let alpha_records = records(&alpha_out);
    let beta_records = records(&beta_out);
    for record in second_tier(&alpha_records).into_iter().chain(second_tier(&beta_records)) {
        check_against_telegram(record, &capture);
    }
    // Beta: every telegram from its first reading to the end of the capture, none twice.
    let beta_times: Vec<u64> = second_tier(&beta_records)
        .iter()
        .filter(|r| r["status"] == "verified")
        .map(|r| r["timestamp"].as_u64().unwrap())
        .collect();
    let beta_set: BTreeSet<u64> = beta_times.iter().copied().collect();
    assert_eq!(beta_set.len(), beta_times.len(), "no verified reading twice");
    let first = *beta_set.first().unwrap();
    let expected: BTreeSet<u64> = capture.keys().copied().filter(|t| *t >= first).collect();
    assert_eq!(beta_set, expected, "beta continues without a gap");
    assert!(pushed >= beta_set.len() as u64, "{pushed} messages pushed to subscribers");

    // Alpha: nothing from the epoch that began with the rotation.
    let alpha_epochs: BTreeSet<&str> =
        second_tier(&alpha_records).iter().map(|r| r["epoch"].as_str().unwrap()).collect();
    let beta_last_epoch = second_tier(&beta_records).last().unwrap()["epoch"].as_str().unwrap();
    assert!(!alpha_epochs.contains(beta_last_epoch), "alpha reads nothing after the rotation");
    let alpha_last =
        second_tier(&alpha_records).iter().map(|r| r["timestamp"].as_u64().unwrap()).max().unwrap();
    assert!(alpha_last < last, "alpha's readings end before the capture does");
    assert!(records(&beta_out).iter().all(|r| r["notice"] != "revoked"));
}
