//! A restart before pairing keeps the pairing code: real processes on loopback (a gateway and
//! `pi-agent run` replaying the capture), the code read through `pi-agent pair-code`, the agent
//! stopped and started again, and the wallet pairing with the code it read before the restart.
//!
//! Needs `gateway` built in the same target directory (`cargo build -p gateway`).
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use protocol::pairing::PairingCode;
use support::*;

/// The code `pi-agent pair-code` shows for the state directory (the line that parses as one).
fn shown_code(state: &Path) -> PairingCode {
    let out = Command::new(env!("CARGO_BIN_EXE_pi-agent"))
        .arg("pair-code")
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|line| PairingCode::parse(line).ok())
        .unwrap_or_else(|| panic!("no pairing code in `pair-code` output:\n{text}"))
}

/// Waits until the agent logging to `log` has started (its first pairing step is stored).
fn wait_running(log: &Path) {
    wait_for("the agent to start", Duration::from_secs(30), || {
        std::fs::read_to_string(log).unwrap_or_default().contains("agent running").then_some(())
    });
}

#[test]
fn restart_before_pairing_shows_the_same_code_and_it_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gateway, node) = gateway(tmp.path(), 0);
    let state = tmp.path().join("agent");

    let first_log = tmp.path().join("agent1.log");
    let mut first = agent(&state, &node, "1", &first_log);
    wait_running(&first_log);
    let before = shown_code(&state);
    let seed_mode = std::fs::metadata(state.join("pairing-seed")).unwrap().permissions().mode();
    assert_eq!(seed_mode & 0o777, 0o600, "the seed is as secret as the code");
    first.terminate();

    let second_log = tmp.path().join("agent2.log");
    let _second = agent(&state, &node, "1", &second_log);
    wait_running(&second_log);
    let after = shown_code(&state);
    assert_eq!(after.device(), before.device());
    assert_eq!(*after.to_text(), *before.to_text(), "the restart showed a new pairing code");

    // The code copied before the restart pairs with the restarted agent.
    let wallet = Wallet::pair(&node, &before.to_text());
    assert_eq!(wallet.paired.device.id(), before.device());
    wait_for("the agent to store its owner", Duration::from_secs(30), || {
        state.join("pairing.bin").exists().then_some(())
    });
    assert!(!state.join("pairing-seed").exists(), "the seed is forgotten once paired");
    assert!(!state.join("pairing-code").exists(), "the code is forgotten once paired");
}
