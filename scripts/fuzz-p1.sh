#!/usr/bin/env bash
# Fuzz the P1 framer + parser (fuzz/fuzz_targets/p1_stream.rs) with cargo-fuzz / libFuzzer.
#
#   scripts/fuzz-p1.sh [RUNS]        # default 10,000,000 executions, seeded from the P1 fixtures
#
# cargo-fuzz needs nightly-only compiler flags (sanitizer coverage); only stable Rust is pinned
# here, so the stable compiler is told to accept them with RUSTC_BOOTSTRAP=1 (the fuzz crate is
# outside the workspace and nothing else is built this way). cargo-fuzz is installed on first use
# into the target directory, not into ~/.cargo.
#
# No AddressSanitizer by default: `protocol` forbids `unsafe`, so the memory errors ASan finds
# cannot arise in it, and without ASan the target runs about 30x faster (≈6,000 vs ≈190 exec/s
# here). Panics, overflow (debug assertions are on) and the target's own checks are what the
# fuzzer hunts. FUZZ_SANITIZER=address turns ASan back on. Inputs are capped at 4 KiB (two or
# three telegrams; the framer's own size limit is exercised through the control byte).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
tools="$target_dir/tools"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.1 --root "$tools"
fi

corpus="fuzz/corpus/p1_stream"
mkdir -p "$corpus"
# Seed with every fixture telegram and a slice of the 566-telegram capture (idempotent).
for file in protocol/tests/fixtures/p1/plain/*/*.txt; do
  cp -n "$file" "$corpus/seed-$(basename "$(dirname "$file")")-$(basename "$file")" 2>/dev/null || true
done
head -c 4000 protocol/tests/fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt > "$corpus/seed-stream.txt"

log="$target_dir/fuzz-p1.log"
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --target-dir "$target_dir/fuzz" \
  --sanitizer "${FUZZ_SANITIZER:-none}" p1_stream "$corpus" -- \
  -runs="$runs" -max_len=4096 -print_final_stats=1 2>&1 | tee "$log" | grep -E "^#|Done|stat::|ERROR|panicked" | tail -n 20
echo "executions: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo unknown)"
