#!/usr/bin/env bash
# Sets everything up, builds the web app and starts the gateway (tangle node + app) on
# http://127.0.0.1:8080/ unless MK_GATEWAY_LISTEN says otherwise. Ctrl-C stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MK_ROOT"

bash scripts/setup.sh
echo "[run] building the web app (trunk build --release)"
trunk build --release --offline
echo "[run] building the gateway"
cargo build --locked --release -p gateway
echo "[run] starting the gateway; open the URL it prints below"
exec target/release/gateway --assets dist "$@"
