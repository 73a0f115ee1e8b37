#!/usr/bin/env bash
# The README's second command: set up, build, and run every test.
#   1. the Rust core natively (cargo test)
#   2. the same Rust tests compiled to wasm32 (wasm-bindgen-test, through
#      wasm-pack): in Node, and in headless Chromium in a dedicated worker
#      on the OPFS VFS (tests/browser.rs)
#   3. the built npm package from JavaScript (node's test runner), memory and
#      file storage, crash tests with kill -9 in child processes.
# Before them, the checks that need no build: Rust and TypeScript formatting
# and lint (cargo fmt, Biome), the platform-free TypeScript layer typechecked
# without Node or DOM types, and no import cycle among js/src modules (the
# Rust layer and cycle test is tests/layers.rs, run with the native tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests

# A busy machine (CI runs beside other work) must not fail a test that only
# ran slowly: wasm-bindgen-test gives each test 20 s by default, which the
# Chromium suite overran at load 6. Timeouts are generous; no test waits on
# a timer for its result.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"          # seconds, whole headless run
export WASM_BINDGEN_TEST_DRIVER_TIMEOUT="${WASM_BINDGEN_TEST_DRIVER_TIMEOUT:-60}" # chromedriver start

step() { printf '\n\033[1m[test]\033[0m %s\n' "$*"; }
step "formatting and lint: cargo fmt --check, biome ci"
cargo fmt --all --check
node_modules/.bin/biome ci
step "TypeScript layers: the platform-free modules without Node or DOM types; no import cycle"
node_modules/.bin/tsc -p js/tsconfig.core.json
node scripts/check-ts-cycles.mjs

scripts/build.sh

step "Rust core, native (with the layer and cycle test, and the generated boundary types)"
cargo test --tests
step "Rust core, wasm32 in Node (wasm-pack test --node)"
wasm-pack test --node
step "Rust core, wasm32 in headless Chromium, in a dedicated worker on OPFS (wasm-pack test --headless --chrome)"
wasm-pack test --headless --chrome
step "npm package, node --test"
node --test --test-concurrency=1 js/test/
