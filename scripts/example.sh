#!/usr/bin/env bash
# The main job on a fresh machine: install the toolchain pieces and cargo-lambda-pack itself,
# then pack the example workspace in example/ (two functions, x86_64 and arm64, one run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo install --locked --quiet --path .
cd example
cargo lambda-pack "$@"
