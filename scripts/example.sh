#!/usr/bin/env bash
# The README's first command: set up a fresh machine, build the npm package,
# and run the main example (scan every package.json under node_modules with
# a durable queue). Extra arguments go to the example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec node examples/scan-packages.mjs "$@"
