#!/usr/bin/env bash
# Sets everything up, builds the web app, and starts the product on this machine:
#   - the gateway (tangle node + web app) on http://127.0.0.1:8080/ (MK_GATEWAY_LISTEN overrides),
#     storing messages in data/node.sqlite;
#   - a pi-agent reading a simulated household meter (no meter needed), publishing its encrypted
#     streams to that node; its state (identity, pairing code) lives in data/agent.
# Ctrl-C stops both. Extra arguments go to the gateway (see `target/release/gateway --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MK_ROOT"

bash scripts/setup.sh
echo "[run] building the web app (trunk build --release)"
trunk build --release --offline
echo "[run] building the gateway, pi-agent and provider tool"
cargo build --locked --release -p gateway -p pi-agent -p provider

listen="${MK_GATEWAY_LISTEN:-127.0.0.1:8080}"
mkdir -p data
target/release/gateway --assets dist --listen "$listen" --store data/node.sqlite "$@" &
gateway_pid=$!
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  kill "$gateway_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Wait until the node answers before the agent starts publishing to it.
for _ in $(seq 1 100); do
  if curl -fsS "http://$listen/api/v1/info" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$gateway_pid" 2>/dev/null; then echo "[run] the gateway did not start"; exit 1; fi
  sleep 0.1
done

echo "[run] starting a simulated meter (pi-agent run --simulate); its pairing code follows"
target/release/pi-agent run --simulate --state-dir data/agent --node "http://$listen" &
agent_pid=$!

echo
echo "[run] Meterkast is running. Open http://$listen/ in a browser. Ctrl-C stops it."
echo "[run] Meter status: target/release/pi-agent status --state-dir data/agent"
wait "$gateway_pid"
