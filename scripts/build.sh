#!/usr/bin/env bash
# Builds the npm package into pkg/: the Rust core to wasm32 (release:
# lto, opt-level "s"), the JS glue with the wasm-bindgen CLI, wasm-opt -Oz
# (binaryen from npm; Debian's is too old, see docs/toolchain.md), the TypeScript
# façade with tsc, and package.json/README from pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[build]\033[0m %s\n' "$*"; }

log "cargo build (wasm32, release)"
cargo build --quiet --release --lib --target wasm32-unknown-unknown
rm -rf pkg/wasm && mkdir -p pkg/wasm
wasm-bindgen --target web --out-dir pkg/wasm --out-name durq target/wasm32-unknown-unknown/release/durq.wasm
if [ -z "${DURQ_NO_WASM_OPT:-}" ] && [ -x node_modules/.bin/wasm-opt ]; then
  log "wasm-opt -Oz"
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    pkg/wasm/durq_bg.wasm -o pkg/wasm/durq_bg.opt.wasm
  mv pkg/wasm/durq_bg.opt.wasm pkg/wasm/durq_bg.wasm
fi
log "tsc"
node_modules/.bin/tsc -p js
cp pkg-template/package.json pkg-template/README.md pkg/
raw=$(stat -c %s pkg/wasm/durq_bg.wasm); gz=$(gzip -9 -c pkg/wasm/durq_bg.wasm | wc -c)
log "pkg/ ready: durq_bg.wasm $raw bytes raw, $gz bytes gzip"
