#!/usr/bin/env bash
# Release artifacts, into dist/: for each target triple, a Python wheel (maturin, `bindings =
# "bin"`: the binary plus a dependency on the `ziglang` wheel) and the cargo-binstall archive
# `cargo-lambda-pack-<version>-<triple>.tar.gz` (the binary, README.md, LICENSE-MIT,
# LICENSE-APACHE) with its `.sha256`. One cargo build per triple serves both: the archive holds
# the binary maturin built. Linux binaries are linked by zig against glibc 2.28 (manylinux_2_28:
# Debian 10, Ubuntu 18.10, RHEL 8, Amazon Linux 2023 and later), and the aarch64 one
# cross-compiles from x86_64. Not glibc 2.17 (manylinux2014): against it the aarch64 link fails,
# the Rust standard library referring to `getrandom`, which glibc added in 2.25.
#
#   scripts/release.sh [--profile PROFILE] [TRIPLE...]
#
# PROFILE defaults to `dist` (Cargo.toml: LTO, one codegen unit, stripped); TRIPLE defaults to
# x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu; x86_64-apple-darwin and
# aarch64-apple-darwin build on macOS. Needs maturin with zig for the Linux targets, in the
# Python that runs maturin (`pip install 'maturin[zig]>=1.7,<2'`).
#
# Sourced (`. scripts/release.sh`), it only defines its functions: scripts/test.sh makes an
# archive with `release_archive` from the test build's binary and runs what it unpacks to.
set -euo pipefail
# A failing command inside `$(...)` stops the script (bash 4.4 and later; the steps that matter
# also check their status themselves, for macOS's bash 3.2).
shopt -s inherit_errexit 2>/dev/null || true

release_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release_name=cargo-lambda-pack

release_say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

# The crate's version, which is also the wheel's (pyproject.toml: `dynamic = ["version"]`).
release_version() {
  cargo metadata --no-deps --format-version 1 --manifest-path "$release_root/Cargo.toml" \
    | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cargo-lambda-pack"))'
}

release_sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi
}

# release_archive BINARY TRIPLE VERSION OUT_DIR
# Writes OUT_DIR/cargo-lambda-pack-VERSION-TRIPLE.tar.gz, whose one directory of the same name
# holds the binary, README.md and the licence files (the layout Cargo.toml's
# [package.metadata.binstall] `bin-dir` names), and beside it the archive's `.sha256` in
# `sha256sum` format. Prints the archive's path.
release_archive() {
  local binary=$1 triple=$2 version=$3 out_dir=$4
  local name="$release_name-$version-$triple"
  [ -f "$binary" ] || { echo "error: no binary at $binary" >&2; return 1; }
  mkdir -p "$out_dir"
  local staging
  staging=$(mktemp -d)
  mkdir "$staging/$name"
  cp "$binary" "$staging/$name/$release_name"
  chmod 755 "$staging/$name/$release_name"
  cp "$release_root/README.md" "$release_root/LICENSE-MIT" "$release_root/LICENSE-APACHE" "$staging/$name/"
  chmod 644 "$staging/$name/README.md" "$staging/$name/LICENSE-MIT" "$staging/$name/LICENSE-APACHE"
  # GNU tar (Linux) writes entries in a fixed order with fixed owners and times, so the same
  # binary gives the same archive; macOS's bsdtar has no such flags and writes a plain archive.
  local tar_flags=()
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar_flags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
  fi
  # Written under a temporary name and renamed, so an interrupted run leaves no partial archive.
  tar ${tar_flags[@]+"${tar_flags[@]}"} -C "$staging" -cf - "$name" | gzip -n >"$out_dir/$name.tar.gz.partial"
  mv "$out_dir/$name.tar.gz.partial" "$out_dir/$name.tar.gz"
  (cd "$out_dir" && release_sha256 "$name.tar.gz" >"$name.tar.gz.sha256.partial" \
    && mv "$name.tar.gz.sha256.partial" "$name.tar.gz.sha256")
  rm -rf "$staging"
  printf '%s\n' "$out_dir/$name.tar.gz"
}

# release_build PROFILE TRIPLE OUT_DIR: the wheel into OUT_DIR; prints the path of the binary.
release_build() {
  local profile=$1 triple=$2 out_dir=$3
  local maturin=(maturin build --locked --profile "$profile" --target "$triple" --out "$out_dir")
  case "$triple" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) maturin+=(--zig --compatibility manylinux_2_28) ;;
    x86_64-apple-darwin | aarch64-apple-darwin) ;;
    *)
      echo "error: no release build for target \`$triple\`" >&2
      echo "help: build one of x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, x86_64-apple-darwin, aarch64-apple-darwin" >&2
      return 1
      ;;
  esac
  if ! rustup target list --installed | grep -qx "$triple"; then
    release_say Installing "Rust target $triple (rustup)"
    rustup target add "$triple" >/dev/null
  fi
  release_say Building "wheel and binary for $triple (profile $profile)"
  (cd "$release_root" && "${maturin[@]}" >&2) || return 1
  local target_dir profile_dir=$profile
  target_dir=$(cargo metadata --no-deps --format-version 1 --manifest-path "$release_root/Cargo.toml" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  # cargo names the dev profile's directory `debug`.
  [ "$profile" != dev ] || profile_dir=debug
  printf '%s\n' "$target_dir/$triple/$profile_dir/$release_name"
}

release_main() {
  local profile=dist
  while [ $# -gt 0 ]; do
    case "$1" in
      --profile) profile=$2; shift 2 ;;
      --profile=*) profile=${1#--profile=}; shift ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
      -*) echo "error: unknown option \`$1\`" >&2; echo "help: scripts/release.sh [--profile PROFILE] [TRIPLE...]" >&2; return 2 ;;
      *) break ;;
    esac
  done
  local triples=("$@")
  [ ${#triples[@]} -gt 0 ] || triples=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
  local out_dir="$release_root/dist" version binary archive triple
  version=$(release_version)
  for triple in "${triples[@]}"; do
    binary=$(release_build "$profile" "$triple" "$out_dir")
    archive=$(release_archive "$binary" "$triple" "$version" "$out_dir")
    release_say Archived "$archive"
  done
  ls -l "$out_dir" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  release_main "$@"
fi
