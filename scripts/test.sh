#!/usr/bin/env bash
# The README's second command: set up, build, and run every test.
#   1. the Rust core natively (cargo test)
#   2. the same Rust tests compiled to wasm32 (wasm-bindgen-test, through
#      wasm-pack): in Node, and in headless Chromium in a dedicated worker
#      on the OPFS VFS (tests/browser.rs)
#   3. the built npm package from JavaScript (node's test runner), memory and
#      file storage, crash tests with kill -9 in child processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
scripts/build.sh

step() { printf '\n\033[1m[test]\033[0m %s\n' "$*"; }
step "Rust core, native"
cargo test --tests
step "Rust core, wasm32 in Node (wasm-pack test --node)"
wasm-pack test --node
step "Rust core, wasm32 in headless Chromium, in a dedicated worker on OPFS (wasm-pack test --headless --chrome)"
wasm-pack test --headless --chrome
step "npm package, node --test"
node --test --test-concurrency=1 js/test/
