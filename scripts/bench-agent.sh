#!/usr/bin/env bash
# Load benchmark of the Pi agent. First the cost of one publish (tangle-client with its publish
# cache against the same client without it: time and HTTP requests per message), then N
# simulated meters at 1 Hz against one gateway, all followed by one provider tool: p50/p99
# telegram-in → decrypted-at-provider latency per N, the largest N with p99 < 500 ms, and the
# agent's CPU time and energy per reading (vs the 2018 PoW figure).
#
#   scripts/bench-agent.sh                      # N = 1,2,4,8,16,32, 20 s per step
#   MK_BENCH_STEPS=1,8,32 MK_BENCH_WINDOW_SECS=30 scripts/bench-agent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p gateway -p provider -p pi-agent
# What one publish costs the agent: the client with its publish cache vs without (same run).
cargo bench -p tangle-client --bench publish
cargo bench -p pi-agent --bench agent_load
