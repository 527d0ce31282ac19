#!/usr/bin/env bash
# The main job on a fresh machine: install the toolchain pieces and cargo-lambda-pack itself,
# pack the example workspace in example/ (two functions on x86_64 and arm64, an extension layer,
# a custom runtime layer and a handler-only function that runs on it, in one run), then run the
# packed artifacts against the local Lambda emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo install --locked --quiet --path .
cd example
cargo lambda-pack "$@"
cargo lambda-pack verify orders --event events/order.json --expect events/quote.json
cargo lambda-pack verify thumbnails --event events/image.json
cargo lambda-pack verify welcome --event events/welcome.json --expect events/welcome-expected.json
