#!/usr/bin/env bash
# P1 throughput: Meterkast's read path against dsmr_parser 1.11.2 (the reference Python parser),
# same 890-byte DSMR 5 telegram (ndokter telegram_v5.txt), CRC checking on, one pinned core.
#
#   scripts/bench-p1.sh            # prints both rates and the ratio
#
# dsmr_parser is installed from PyPI into a virtualenv under target/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
fixtures=protocol/tests/fixtures/p1
telegram="$fixtures/plain/ndokter/telegram_v5.txt"
venv="$target_dir/venv-dsmr-oracle"
pin=(taskset -c 0)
command -v taskset >/dev/null 2>&1 || pin=()

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$fixtures/oracle/requirements.txt"
fi

echo "dsmr_parser: parsing $telegram for 5 s ..." >&2
python_json=$("${pin[@]}" "$venv/bin/python" "$fixtures/oracle/dsmr_oracle.py" --bench "$telegram" --seconds 5)
cargo build --quiet --release -p protocol --benches
echo "meterkast: framer + CRC + parser + typed readings, median of 15 rounds ..." >&2
rust_json=$("${pin[@]}" cargo bench --quiet -p protocol --bench p1_parse 2>/dev/null | tail -n 1)

python3 - "$python_json" "$rust_json" <<'PY'
import json, sys
py, rs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ours, theirs = rs["framer_parse_readings_per_second"], py["telegrams_per_second"]
print(f"telegram: {rs['bytes']} bytes, CRC checked, one core")
print(f"dsmr_parser 1.11.2 : {theirs:>12,.0f} telegrams/s")
print(f"meterkast          : {ours:>12,.0f} telegrams/s  (CRC + lines only, no typed readings: {rs['parse_only_per_second']:,.0f}/s)")
print(f"ratio              : {ours / theirs:>12,.1f}x")
PY
