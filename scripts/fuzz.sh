#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes, one target after the other.
#
#   ./scripts/fuzz.sh            # 60 seconds per target
#   ./scripts/fuzz.sh 600        # 10 minutes per target
#   FUZZ_TARGETS="verify_zip inspect_elf" ./scripts/fuzz.sh 120
#
# Targets (fuzz/fuzz_targets/):
#   inspect_elf     bytes -> inspect::inspect_bytes, then inspect::check_binary on every target
#   metadata_json   bytes as JSON -> metadata::parse_package / parse_workspace
#   metadata_toml   bytes as a Cargo.toml -> JSON -> parse_package(package.metadata) /
#                   parse_workspace(workspace.metadata)
#   cargo_messages  bytes as cargo's JSON message stream -> build::parse_messages
#   verify_zip      bytes as a ZIP (up to 1 MB) -> verify::extract_zip into a fresh directory;
#                   fails if anything lands outside it or a symlink leads out of it
#   oci_base        bytes as the OCI cache a registry pull fills (index.json, index, manifest,
#                   config, layers) -> image::base resolve (--offline) -> image::config; fails
#                   if anything outside the cache is removed or written
#   image_layers    bytes as up to four layer tars of an OCI layout -> verify::unpack_image
#                   (untar: whiteouts, links, devices); fails if anything lands outside the root
#   docker_credentials  bytes as a Docker config.json and a credential helper's answer ->
#                   image::credentials; fails if where a credential came from quotes the secret
#   dotenv          bytes as an --env-file -> lambda_env::parse_env_file; the pairs written back
#                   quoted parse to the same pairs
#   merge_manifests bytes as two shards' manifest.json -> merge into a new --out-dir; fails if
#                   anything outside --out-dir changes or a failed merge leaves anything
#
# Installs what is missing: the nightly toolchain (rustup, minimal profile) and cargo-fuzz
# (cargo install --locked). Each target runs as a single libFuzzer process (one core), with debug
# assertions on, starting from fuzz/seeds/<target>/ (committed) copied into fuzz/corpus/<target>/
# (the working corpus, ignored by git, kept between runs). Crash inputs and each run's log land in
# fuzz/artifacts/<target>/. Exits non-zero if any target found a crash or a hang.
#
# Build output goes to $CARGO_TARGET_DIR when set, else fuzz/target/.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-inspect_elf metadata_json metadata_toml cargo_messages verify_zip oci_base image_layers docker_credentials dotenv merge_manifests telemetry_subscription}
say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET == 0)); then
    echo "usage: $0 [SECONDS_PER_TARGET]   (a positive number of seconds, default 60)" >&2
    exit 2
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    say Installing "the nightly toolchain (cargo-fuzz needs -Zsanitizer)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say Installing cargo-fuzz
    cargo install cargo-fuzz --locked
fi

dict_for() {
    case $1 in
        metadata_json | metadata_toml) echo "$ROOT/fuzz/dicts/metadata.dict" ;;
        cargo_messages) echo "$ROOT/fuzz/dicts/cargo_messages.dict" ;;
        oci_base) echo "$ROOT/fuzz/dicts/oci.dict" ;;
        image_layers) echo "$ROOT/fuzz/dicts/tar.dict" ;;
        docker_credentials) echo "$ROOT/fuzz/dicts/credentials.dict" ;;
        dotenv) echo "$ROOT/fuzz/dicts/dotenv.dict" ;;
        merge_manifests) echo "$ROOT/fuzz/dicts/manifest.dict" ;;
        telemetry_subscription) echo "$ROOT/fuzz/dicts/telemetry.dict" ;;
    esac
}

say Building "fuzz targets (release, debug assertions, address sanitizer)"
(cd fuzz && cargo +nightly fuzz build --debug-assertions)
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=${CARGO_TARGET_DIR:-$ROOT/fuzz/target}/$host/release

failed=()
summary=()
for target in $TARGETS; do
    corpus=$ROOT/fuzz/corpus/$target
    artifacts=$ROOT/fuzz/artifacts/$target
    log=$artifacts/fuzz.log
    mkdir -p "$corpus" "$artifacts"
    cp -n "$ROOT/fuzz/seeds/$target"/* "$corpus"/
    extra=()
    dict=$(dict_for "$target")
    [[ -n $dict ]] && extra+=("-dict=$dict")
    say Fuzzing "$target for ${SECONDS_PER_TARGET}s"
    status=0
    # The binaries built above run directly: `cargo fuzz run` would rebuild whenever src/
    # changed in the meantime, and every target should test the same source.
    (cd fuzz && "$bin_dir/$target" "$corpus" -artifact_prefix="$artifacts/" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
        "${extra[@]}") >"$log" 2>&1 || status=$?

    # The final status line: `#N DONE cov: C ft: F corp: ... exec/s: E ...`, or the last
    # progress line before a crash.
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [[ -z $execs ]] && execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
    if ((status != 0)) || [[ -n $crash ]]; then
        failed+=("$target")
        result="CRASH ${crash:-(exit status $status, see $log)}"
    else
        result="no crash"
    fi
    line=$(printf '%-18s %6ss  execs %-10s exec/s %-7s cov %-6s %s' \
        "$target" "$SECONDS_PER_TARGET" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result")
    summary+=("$line")
    echo "$line"
done

echo
echo "summary (logs and crash inputs in fuzz/artifacts/<target>/):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "crashed: ${failed[*]}" >&2
    echo "reproduce one with: (cd fuzz && cargo +nightly fuzz run --debug-assertions <target> <crash file>)" >&2
    exit 1
fi
