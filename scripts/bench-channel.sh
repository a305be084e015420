#!/usr/bin/env bash
# Channel cost benchmark (protocol/benches/channel.rs): per-reading CPU and bytes at 1 s,
# checkpoint sign/verify, keyload, rotation with 1/10/100 remaining providers, and the 2018 MAM
# message (Curl-P-81 proof of work measured in the same run). Release build; prints medians.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MK_ROOT"
exec cargo bench -p protocol --bench channel "$@"
