#!/usr/bin/env bash
# The test command: installs what the suite needs (scripts/setup.sh), builds and checks the manual
# (scripts/docs.sh), lints the workflows, type-checks the tool for macOS (scripts/check-macos.sh),
# runs every test, then checks the wheel and the binstall archive (scripts/wheel-check.sh).
# Benchmarks are compiled (so they keep building) but not run; see scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The manual: mdbook must build docs/ cleanly, and every link inside it must resolve.
./scripts/docs.sh
# The release workflow runs only on a tag: lint it on every run.
"${LAMBDA_PACK_ACTIONLINT_VENV:-$HOME/.cache/lambda-pack-actionlint}/bin/actionlint" .github/workflows/*.yml
# The tool compiles for macOS (verify, Linux-only, says so there). One Apple triple here: each
# costs about 2 min of CPU cold, and our code is the same on both (target_os, not the
# architecture); the release workflow checks both and builds both on macOS.
./scripts/check-macos.sh aarch64-apple-darwin
cargo build --locked --benches
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The wheel, built from the test build's target directory, installed and used as a user would.
if [ "$status" -eq 0 ]; then
  ./scripts/wheel-check.sh || status=$?
fi
set -e
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
