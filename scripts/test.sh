#!/usr/bin/env bash
# Runs every test Meterkast has, after the idempotent setup. Stops at the first failing step.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MK_ROOT"

bash scripts/setup.sh

# A test run builds each crate once, so incremental caches only cost disk (gigabytes on a full run).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() {
  local name="$1"; shift
  printf '\n==> %s\n' "$name"
  local start=$SECONDS
  "$@"
  printf '<== %s (%ss)\n' "$name" "$((SECONDS - start))"
}

step "format" cargo fmt --all --check
step "clippy, native crates" cargo clippy --locked --all-targets -- -D warnings
step "clippy, wasm32 (app, protocol, tangle-client)" \
  cargo clippy --locked --target wasm32-unknown-unknown -p app -p protocol -p tangle-client \
  --all-targets -- -D warnings
# The end-to-end tests spawn sibling binaries (gateway, pi-agent, meterkast-provider) from the same
# target dir; `cargo test` alone builds only the binaries of packages that have integration tests.
step "binaries for the process tests" cargo build --locked --bins
step "tests, native" cargo test --locked
# chromedriver gives every test binary's Chromium a fresh ~70 MB profile under $TMPDIR and, as the
# runner ends the browser without a WebDriver session delete, never removes it: keep them in a
# private folder that is deleted afterwards, or a full run leaves gigabytes in /tmp.
wasm_tmp="$(mktemp -d "${TMPDIR:-/tmp}/meterkast-wasm-tests.XXXXXX")"
trap 'rm -rf "$wasm_tmp"' EXIT
step "tests, protocol and app on wasm32 in headless Chromium" \
  env TMPDIR="$wasm_tmp" cargo test --locked --target wasm32-unknown-unknown -p protocol -p app
rm -rf "$wasm_tmp"
step "web app build (trunk, release)" trunk build --release --offline
step "gateway build (release)" cargo build --locked --release -p gateway
step "browser end-to-end (playwright-core + Debian chromium)" \
  node --test --test-reporter=spec tools/e2e/
