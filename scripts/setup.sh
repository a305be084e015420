#!/usr/bin/env bash
# Idempotent setup: installs everything a fresh Debian 12 machine of this kind lacks to build,
# run and test Meterkast. A second run takes seconds (every step checks before it installs).
# Never exports RUSTFLAGS: that would drop the wasm cfg in .cargo/config.toml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
WEBPKI_ROOTS_PIN=1.0.10

log() { printf '[setup] %s\n' "$*"; }
have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# 1. Debian packages: headless Chromium + driver (browser tests), nats-server (node benchmark peer),
#    python3-venv (the dsmr_parser benchmark peer).
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. Rust: the wasm target and clippy/rustfmt.
if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt

# 3. Trunk, pinned: 0.22+ needs a newer rustc than these machines have.
if ! have_version trunk "$TRUNK_VERSION"; then
  log "cargo install trunk $TRUNK_VERSION (about 7 minutes once)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi

# 4. wasm-bindgen-cli, pinned to the library version. Its packaged lockfile wants a webpki-roots
#    the registry mirror lacks, so unpack the crate and pin that one dependency back.
if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION" || ! command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes once)"
  crate_file=$(ls "$HOME"/.cargo/registry/cache/*/wasm-bindgen-cli-"$WASM_BINDGEN_VERSION".crate 2>/dev/null | head -n1 || true)
  if [ -z "$crate_file" ]; then
    # Fails at lockfile resolution, but only after downloading the .crate into the cache.
    cargo install --locked wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" >/dev/null 2>&1 || true
    crate_file=$(ls "$HOME"/.cargo/registry/cache/*/wasm-bindgen-cli-"$WASM_BINDGEN_VERSION".crate 2>/dev/null | head -n1 || true)
  fi
  if [ -z "$crate_file" ]; then
    log "could not download wasm-bindgen-cli-$WASM_BINDGEN_VERSION.crate"; exit 1
  fi
  work=$(mktemp -d)
  tar -xzf "$crate_file" -C "$work"
  (
    cd "$work/wasm-bindgen-cli-$WASM_BINDGEN_VERSION"
    cargo update -p webpki-roots --precise "$WEBPKI_ROOTS_PIN" >/dev/null 2>&1 || true
    cargo install --locked --path . --force
  )
  rm -rf "$work"
fi

# 5. npm tools (wasm-opt from binaryen 132, playwright-core) into tools/node_modules.
#    Never Debian's binaryen: Trunk would use wasm-opt 108 and ship a broken app.
if [ ! -x "$ROOT/tools/node_modules/.bin/wasm-opt" ] || [ ! -d "$ROOT/tools/node_modules/playwright-core" ] \
   || [ "$ROOT/tools/package-lock.json" -nt "$ROOT/tools/node_modules/.package-lock.json" ]; then
  log "npm ci in tools/"
  (cd "$ROOT/tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

log "ready"
