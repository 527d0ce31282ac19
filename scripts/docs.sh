#!/usr/bin/env bash
# Builds the manual (docs/, an mdBook) into docs/book/ and checks it: mdbook must build it without
# an error or a warning (a page missing from SUMMARY.md's list, an {{#include}} it cannot read),
# then scripts/check-docs.py checks that every page is listed and every link inside the book, and
# README.md's links into it, resolve. mdbook is installed by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mdbook="${LAMBDA_PACK_MDBOOK_VENV:-$HOME/.cache/lambda-pack-mdbook}/bin/mdbook"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$mdbook" build docs >"$log" 2>&1 || status=$?
cat "$log" >&2
if [ "$status" -ne 0 ]; then
  printf '\033[1;31merror\033[0m: mdbook build docs failed (exit %s)\n' "$status" >&2
  exit 1
fi
# mdbook goes on past some problems (an include it cannot read), saying so as a warning.
if grep -Eq '\b(WARN|ERROR)\b' "$log"; then
  printf '\033[1;31merror\033[0m: mdbook build docs printed warnings or errors (above)\n' >&2
  exit 1
fi
python3 scripts/check-docs.py docs README.md
