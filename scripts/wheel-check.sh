#!/usr/bin/env bash
# What a `pip install cargo-lambda-pack` user gets, checked after the test build (scripts/test.sh
# runs it after `cargo test`):
# 1. the wheel, built with README.md's command in the dev profile and the target directory the
#    tests filled, so maturin links the binary instead of compiling the dependencies again;
# 2. installed into a fresh virtual environment (pip brings zig through the `ziglang` wheel);
# 3. from there, with no other cargo-lambda-pack reachable (neither on PATH nor in
#    `$CARGO_HOME/bin`, which cargo searches before PATH), `cargo lambda-pack` packs example/ and
#    `verify` runs its functions, and the zig the pack remembered is the virtual environment's;
#    check-jsonschema accepts the manifest it wrote against docs/manifest.schema.json;
# 4. the cargo-binstall archive scripts/release.sh makes, from the same binary, unpacks to a
#    binary that runs `--version`.
# Each step prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }
fail() { printf '\033[1;31merror\033[0m: %s\n' "$1" >&2; exit 1; }
step_start=$SECONDS
took() { say "$1" "in $((SECONDS - step_start)) s"; step_start=$SECONDS; }

maturin="${LAMBDA_PACK_MATURIN_VENV:-$HOME/.cache/lambda-pack-maturin}/bin/maturin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. README.md's wheel command (`maturin build --release ...`), in the test build's dev profile.
say Building "the wheel (maturin, dev profile, target/)"
"$maturin" build --locked --profile dev --compatibility linux --out "$work/wheel" 2>&1 | tail -n 3 >&2
wheel=$(find "$work/wheel" -name 'cargo_lambda_pack-*.whl' -print -quit)
[ -n "$wheel" ] || fail "maturin wrote no wheel into $work/wheel"
took Built

# 2. A fresh virtual environment, as `pip install cargo-lambda-pack` would fill it.
venv="$work/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "$wheel"
[ -x "$venv/bin/cargo-lambda-pack" ] || fail "the wheel installed no $venv/bin/cargo-lambda-pack"
took Installed

# 3. cargo (the toolchain's own binaries, not rustup's directory, which may hold an installed
#    copy of the tool) and the system's tools; a CARGO_HOME whose bin/ is empty, sharing the
#    registry so nothing is downloaded again.
sysroot=$(rustc --print sysroot)
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
user_cargo_home="$work/cargo-home"
mkdir "$user_cargo_home"
for entry in registry git config.toml config credentials.toml; do
  [ ! -e "$cargo_home/$entry" ] || ln -s "$cargo_home/$entry" "$user_cargo_home/$entry"
done
system_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$cargo_home/bin" | paste -sd: -)
user_env=(env -u CARGO -u RUSTC "PATH=$venv/bin:$sysroot/bin:$system_path" "CARGO_HOME=$user_cargo_home")
found=$("${user_env[@]}" bash -c 'command -v cargo-lambda-pack')
[ "$found" = "$venv/bin/cargo-lambda-pack" ] || fail "cargo-lambda-pack resolves to $found, not the wheel's"

# example/'s x86_64 half (orders with its extension, welcome on its runtime layer), in the dev
# profile: the whole example cold in its release profile (two architectures, thin LTO) took 9 min
# on the shared 2-core machine, most of the suite's 20 minutes; this is its cheapest real pack
# through zig. scripts/example.sh packs and verifies all of it.
cp -R example "$work/example"
target_dir="$repo/target/wheel-example"
(
  cd "$work/example"
  "${user_env[@]}" cargo lambda-pack --locked --profile dev --target-dir "$target_dir" -p orders -p welcome
  "${user_env[@]}" cargo lambda-pack verify --target-dir "$target_dir" orders --event events/order.json --expect events/quote.json
  "${user_env[@]}" cargo lambda-pack verify --target-dir "$target_dir" welcome --event events/welcome.json --expect events/welcome-expected.json
)
zig=$(cat "$target_dir/lambda-pack-cache/zig-path")
case "$zig" in
  "$venv"/*) say Zig "$zig (the wheel's environment)" ;;
  *) fail "the pack used zig at $zig, not the one in the wheel's environment $venv" ;;
esac
took "Packed, verified"

# The manifest that pack wrote against docs/manifest.schema.json (generated from the typed
# manifest; src/manifest/tests.rs keeps it current), read by an independent validator; and a
# manifest broken in two ways is refused, naming what is wrong.
check_jsonschema="${LAMBDA_PACK_JSONSCHEMA_VENV:-$HOME/.cache/lambda-pack-jsonschema}/bin/check-jsonschema"
manifest="$target_dir/lambda-pack/manifest.json"
"$check_jsonschema" --schemafile docs/manifest.schema.json "$manifest"
python3 - "$manifest" "$work/broken-manifest.json" <<'EOF_PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
manifest["artifacts"][0]["arch"] = "sparc"  # no architecture Lambda has
del manifest["artifacts"][0]["code_sha256"]
json.dump(manifest, open(sys.argv[2], "w"))
EOF_PY
if "$check_jsonschema" --schemafile docs/manifest.schema.json "$work/broken-manifest.json" >"$work/broken.log" 2>&1; then
  fail "check-jsonschema accepted a manifest with arch \"sparc\" and no code_sha256"
fi
if ! grep -q "sparc" "$work/broken.log" || ! grep -q "code_sha256" "$work/broken.log"; then
  fail "check-jsonschema refused the broken manifest for another reason: $(cat "$work/broken.log")"
fi
took "Schema checked"

# 4. The x86_64 binstall archive, made by scripts/release.sh's own function from the same binary.
# shellcheck source=scripts/release.sh
. scripts/release.sh
version=$(release_version)
archive=$(release_archive "$venv/bin/cargo-lambda-pack" x86_64-unknown-linux-gnu "$version" "$work/archive")
(cd "$work/archive" && sha256sum --check --quiet "$(basename "$archive").sha256")
mkdir "$work/unpacked"
tar -xzf "$archive" -C "$work/unpacked"
unpacked="$work/unpacked/cargo-lambda-pack-$version-x86_64-unknown-linux-gnu"
for file in README.md LICENSE-MIT LICENSE-APACHE; do
  [ -f "$unpacked/$file" ] || fail "$archive holds no $file"
done
printed=$("$unpacked/cargo-lambda-pack" --version)
[ "$printed" = "cargo-lambda-pack $version" ] || fail "the archive's binary printed '$printed'"
took "Archive runs"
say Checked "the wheel and the binstall archive ($printed)"
