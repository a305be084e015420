# Sourced by the scripts: puts the project's pinned tools first on PATH. Never sets RUSTFLAGS.
MK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$MK_ROOT/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# wasm-bindgen-test-runner: run wasm tests in Debian's headless Chromium (options in webdriver.json).
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_USE_BROWSER=1
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
