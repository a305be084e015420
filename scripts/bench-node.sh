#!/usr/bin/env bash
# Load benchmark of the tangle node against NATS JetStream (file store), same workload, same
# run: acknowledged msg/s, p50/p99 acknowledgement latency, p99 delivery latency, peak RSS, the
# ratio, and proof-of-work solve times. Prints a Markdown table.
#
#   scripts/bench-node.sh                 # three scenarios, 8 s each per system (~2 minutes)
#   scripts/bench-node.sh --seconds 20    # longer runs
#   scripts/bench-node.sh --quick         # only the 32-publisher scenario
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MK_ROOT"

if ! command -v nats-server >/dev/null; then
  echo "[bench-node] nats-server is missing: run scripts/setup.sh (installs Debian's nats-server)" >&2
  exit 1
fi
echo "[bench-node] building (release) and running gateway/benches/load.rs" >&2
exec cargo bench --locked -p gateway --bench load -- "$@"
