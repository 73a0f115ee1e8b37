#!/usr/bin/env bash
# Installs everything the build needs on a fresh Debian 12 machine (see
# docs/toolchain.md): clang (sqlite-wasm-rs compiles sqlite3.c for
# wasm32 with it), the wasm32 target, the wasm-bindgen CLI at the exact
# version in Cargo.lock, and the npm packages from package-lock.json.
# `scripts/setup.sh --tests` (what scripts/test.sh runs) adds what the tests
# need: Chromium and chromedriver (Debian's) and wasm-pack.
# Each step is skipped when already done, so running it again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=false
case "${1:-}" in
  --tests) tests=true ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
esac

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Debian packages: clang, and for the tests Chromium with its WebDriver
# (Debian's build; no tool downloads a browser of its own).
missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
if $tests; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt, about 80 s)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (about 5 minutes; --locked fails on this registry, see docs/toolchain.md)"
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

if $tests && ! command -v wasm-pack >/dev/null 2>&1; then
  log "installing wasm-pack (about 5 minutes): it runs the wasm tests in Node and in headless Chromium"
  cargo install wasm-pack --locked
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund
fi
