#!/usr/bin/env bash
# Measures cargo-lambda-pack against its performance targets and writes BENCHMARKS.md from scratch.
#
#   ./scripts/bench.sh            # 15 to 30 minutes on 2 cores, once cargo-lambda is installed
#
# What it measures (each section of BENCHMARKS.md says how, and the target it is held to):
#   1. packaging throughput: our ZIP writer (the divan bench `benches/zip_writer.rs`) against
#      Info-ZIP `zip -6` (time) and `zip -9` (size) on the same bytes, plus the zip crate's
#      deflate backends (zlib-rs, miniz_oxide, zlib-ng at levels 6 and 9; libdeflate, what the
#      writer uses, at 6, 8 and 9) in a scratch crate;
#   2. end to end against cargo-lambda on a generated workspace (x86_64 function, arm64 function,
#      extension; real lambda_runtime and lambda-extension), cold, and the ZIP sizes;
#   3. a no-op run in that workspace once packed, against a no-op `cargo build`;
#   4. scale: 10, 25 and 50 dependency-free functions, cold, and the cargo invocations per run;
#   5. the planner bench (`benches/plan.rs`), for the record;
#   6. images: the OCI image of a 300 MiB function written by the tool vs `buildah bud` of the
#      Dockerfile it emits (same context), a second run with nothing changed (nothing may be
#      rewritten) and a second `--push` to a local docker-registry (no blob may be uploaded).
#      `BENCH_SECTIONS=image` alone updates only that section (and its summary rows) of an
#      existing BENCHMARKS.md;
#   7. shards: a generated workspace of BENCH_SHARD_FUNCTIONS (default 200) lambda_runtime functions
#      on fixtures/verify-functions' Cargo.lock (offline), packed whole vs as 4 shards one after
#      another (cold), then through a private sccache (local disk): empty cache, warm cache for the
#      whole pack and for the largest shard, with sccache's hit rate and the load average around
#      each run. `BENCH_SECTIONS=shards` alone updates only that section, as for images;
#   8. the tool's own binary: its size built in the debug, release and dist profiles (and dist
#      without `deploy`), and the pack time of example/ with each, a no-op run and a run that
#      writes every ZIP again. `BENCH_SECTIONS=binary` alone updates only that section, as for
#      images. It builds the release and dist profiles: most of an hour cold on 2 cores.
#
# Installs what is missing: scripts/setup.sh (zig, Rust targets, Info-ZIP), hyperfine and cmake
# (apt-get; cmake builds zlib-ng for the backend comparison), cargo-lambda (cargo install --locked).
# Needs the network for those installs and for the crates of the generated workspaces.
#
# Knobs (environment): BENCH_RUNS (default 10) and BENCH_WARMUP (1) for fast commands,
# BENCH_ZIP_RUNS (3, plus one warm-up) for each compressor, BENCH_COLD_RUNS (2) for cold builds
# (no warm-up: the size step before them builds everything once, which primes zig's cache and
# the page cache), BENCH_CHAIN=1 to also time the three cargo-lambda builds in one target dir,
# BENCH_SCALE_RUNS (3), BENCH_IMAGE_RUNS (3) for the image writers, BENCH_WORK (scratch directory, default a new temporary one),
# BENCH_SHARD_FUNCTIONS (200) for the shards section, BENCH_NO_DEPLOY=1 to build the tool without
# its `deploy` feature (nothing measured uses it; it saves most of a cold release build),
# BENCH_OUTPUT (default BENCHMARKS.md in the repository), BENCH_REPORT_ONLY=RESULTS_DIR to only
# rewrite the report from an earlier run's results, BENCH_SECTIONS=zip,backends,mixed,noop,scale,plan,image,shards,binary
# to run only some sections (noop needs mixed's workspace; other sections' results are kept).
# Sections of the existing report whose heading says "(measured by hand)" are carried over.
# cargo-lambda-pack itself is built into $CARGO_TARGET_DIR (default target/).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

RUNS=${BENCH_RUNS:-10}
WARMUP=${BENCH_WARMUP:-1}
ZIP_RUNS=${BENCH_ZIP_RUNS:-3}
COLD_RUNS=${BENCH_COLD_RUNS:-2}
SCALE_RUNS=${BENCH_SCALE_RUNS:-3}
IMAGE_RUNS=${BENCH_IMAGE_RUNS:-3}
OUTPUT=${BENCH_OUTPUT:-$ROOT/BENCHMARKS.md}
WORK=${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/lambda-pack-bench.XXXXXX")}
TOOL_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RESULTS=$WORK/results
SECTIONS=${BENCH_SECTIONS:-all}
want() { [[ ",$SECTIONS," == *",all,"* || ",$SECTIONS," == *",$1,"* ]]; }
if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
  # Re-render BENCHMARKS.md from the results directory of an earlier run, measuring nothing.
  RESULTS=$(cd "$BENCH_REPORT_ONLY" && pwd)
elif [ "$SECTIONS" = all ]; then
  rm -rf "$RESULTS"
elif [ -f "$RESULTS/machine.env" ] && [ ! -f "$RESULTS/machine-earlier.env" ]; then
  # A partial run keeps the other sections' results; the report says when those were taken.
  cp "$RESULTS/machine.env" "$RESULTS/machine-earlier.env"
fi
mkdir -p "$RESULTS"
# Sizes and commands the sections share.
ZIPDIR=$WORK/zip
MIXED=$WORK/mixed
PACK_CMD="cargo lambda-pack --quiet --target-dir target-pack"
CL_X86="cargo lambda build --release --disable-optimizations --output-format zip -p fn-x86"
CL_ARM="cargo lambda build --release --disable-optimizations --output-format zip --arm64 -p fn-arm"
CL_EXT="cargo lambda build --release --disable-optimizations --output-format zip --extension -p ext"
STARTED=$(date +%s)

measure() {
# ---------------------------------------------------------------------------------------------
say Installing "what is missing"
./scripts/setup.sh
apt_packages=()
command -v hyperfine >/dev/null || apt_packages+=(hyperfine)
if want backends; then command -v cmake >/dev/null || apt_packages+=(cmake); fi
if want image; then command -v curl >/dev/null || apt_packages+=(curl); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
if { want mixed || want noop; } && ! command -v cargo-lambda >/dev/null; then
  say Installing "cargo-lambda (cargo install --locked; takes a while)"
  cargo install cargo-lambda --locked --quiet
fi

# BENCH_NO_DEPLOY=1 leaves out the `deploy` feature (the AWS SDK, the longest part of a cold
# release build); nothing the benchmarks run uses it.
tool_features=()
[ "${BENCH_NO_DEPLOY:-0}" = 1 ] && tool_features=(--no-default-features)
if [ "$SECTIONS" != binary ]; then
  # (The binary section builds each profile it measures itself.)
  say Building "cargo-lambda-pack (release)"
  CARGO_TARGET_DIR=$TOOL_TARGET_DIR cargo build --release --quiet "${tool_features[@]}"
  mkdir -p "$WORK/bin"
  ln -sf "$TOOL_TARGET_DIR/release/cargo-lambda-pack" "$WORK/bin/cargo-lambda-pack"
  export PATH="$WORK/bin:$PATH"
  [ "$(command -v cargo-lambda-pack)" = "$WORK/bin/cargo-lambda-pack" ] || { echo "cargo-lambda-pack on PATH is not the one just built" >&2; exit 1; }
fi
# The generated workspaces choose their own target directories.
unset CARGO_TARGET_DIR

# Machine and versions.
{
  echo "nproc=$(nproc)"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc --version)"
  echo "cargo_lambda=$(cargo lambda --version 2>/dev/null | head -1)"
  echo "zig=$(python3 -m ziglang version 2>/dev/null || zig version)"
  echo "hyperfine=$(hyperfine --version)"
  echo "infozip=$(zip -v | sed -n 's/^This is \(Zip [0-9.]*\).*/\1/p' | head -1)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "tool_features=${tool_features[*]:-default}"
  echo "dirty=$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)"
  echo "zip_crate=$(awk '/^name = "zip"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
  echo "libdeflater=$(awk '/^name = "libdeflater"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
} >"$RESULTS/machine.env"

hf() { # hyperfine with JSON export: hf NAME [hyperfine args...]
  local name=$1
  shift
  hyperfine --style basic --export-json "$RESULTS/$name.json" "$@" >&2
}

# ---------------------------------------------------------------------------------------------
if want zip; then
say Measuring "ZIP writer (divan) on a 32 MiB synthetic binary and a real one"
REAL_BINARY=$(command -v cargo-lambda)
rm -rf "$ZIPDIR"
mkdir -p "$ZIPDIR/synthetic" "$ZIPDIR/real"
(cd "$ROOT" && CARGO_TARGET_DIR=$TOOL_TARGET_DIR LAMBDA_PACK_BENCH_OUT=$ZIPDIR/ours \
  LAMBDA_PACK_BENCH_BINARY=$REAL_BINARY cargo bench --quiet --bench zip_writer) \
  >"$RESULTS/divan_zip.txt" 2>"$RESULTS/divan_zip.err"
cat "$RESULTS/divan_zip.txt" >&2
# The same bytes under the same name for Info-ZIP (-X: no extra fields, as ours).
cp "$ZIPDIR/ours/synthetic_elf.bin" "$ZIPDIR/synthetic/bootstrap"
cp "$REAL_BINARY" "$ZIPDIR/real/bootstrap"
for input in synthetic real; do
  for level in 6 9; do
    hf "infozip_${input}_$level" --runs "$ZIP_RUNS" --warmup 1 --prepare "rm -f $ZIPDIR/$input-$level.zip" \
      -n "zip -$level" "cd $ZIPDIR/$input && zip -q -X -$level $ZIPDIR/$input-$level.zip bootstrap"
  done
done
{
  echo "synthetic_in=$(stat -c %s "$ZIPDIR/synthetic/bootstrap")"
  echo "real_in=$(stat -c %s "$ZIPDIR/real/bootstrap")"
  echo "synthetic_ours=$(stat -c %s "$ZIPDIR/ours/synthetic_elf.zip")"
  echo "real_ours=$(stat -c %s "$ZIPDIR/ours/real_binary.zip")"
  for input in synthetic real; do
    for level in 6 9; do echo "${input}_zip$level=$(stat -c %s "$ZIPDIR/$input-$level.zip")"; done
  done
  echo "real_binary=$REAL_BINARY"
} >"$RESULTS/zip_sizes.env"

fi
# ---------------------------------------------------------------------------------------------
if want backends; then
say Measuring "the zip crate's deflate backends (scratch crate, same zip version)"
BACKENDS=$WORK/backends
rm -rf "$BACKENDS"
mkdir -p "$BACKENDS/src" "$BACKENDS/bin"
ZIP_VERSION=$(sed -n 's/^zip_crate=//p' "$RESULTS/machine.env")
LIBDEFLATER_VERSION=$(sed -n 's/^libdeflater=//p' "$RESULTS/machine.env")
BACKEND_NAMES="zlib-rs miniz-oxide zlib-ng libdeflate"
# Levels per backend: libdeflate 8 is what src/emit/zip.rs writes; 6 and 9 are its neighbours' and
# the other backends' levels.
backend_levels() { if [ "$1" = libdeflate ]; then echo 6 8 9; else echo 6 9; fi; }
cat >"$BACKENDS/Cargo.toml" <<EOF
[package]
name = "deflate-backends"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
zip = { version = "=$ZIP_VERSION", default-features = false }
flate2 = { version = "1", default-features = false, optional = true }
libdeflater = { version = "=$LIBDEFLATER_VERSION", optional = true }

[features]
zlib-rs = ["zip/deflate-flate2-zlib-rs"]
miniz-oxide = ["zip/deflate-flate2", "flate2/rust_backend"]
zlib-ng = ["zip/deflate-flate2-zlib-ng"]
# The tool's own way: the zip features it enables, and libdeflate through src/emit/zip/deflate.rs.
libdeflate = ["dep:libdeflater", "zip/deflate"]

[profile.release]
codegen-units = 4

[workspace]
EOF
cat >"$BACKENDS/src/main.rs" <<'EOF'
//! deflate-backends LEVEL INPUT OUTPUT: one `bootstrap` entry, written as src/emit/zip.rs does:
//! with feature `libdeflate`, through the tool's own src/emit/zip/deflate.rs (copied in); with the
//! others, streamed through the zip crate's compressor, as the tool did before.
use std::fs::File;
use std::io::{BufWriter, Write};
use zip::{DateTime, ZipWriter};

#[cfg(feature = "libdeflate")]
#[allow(dead_code)]
mod deflate;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let level: i64 = args[1].parse().expect("level");
    let out = File::create(&args[3]).expect("create output");
    let mut writer = ZipWriter::new(BufWriter::with_capacity(1 << 20, out));
    #[cfg(feature = "libdeflate")]
    {
        // The whole file in memory, deflated in one call, as the tool does.
        let data = std::fs::read(&args[2]).expect("read input");
        let level = libdeflater::CompressionLvl::new(level as i32).expect("libdeflate level");
        let mut compressor = libdeflater::Compressor::new(level);
        deflate::add_deflated(&mut writer, &mut compressor, "bootstrap", &data, DateTime::default(), 0o755)
            .expect("add entry");
    }
    #[cfg(not(feature = "libdeflate"))]
    {
        use zip::write::SimpleFileOptions;
        use zip::{CompressionMethod, System};
        let options = SimpleFileOptions::default()
            .system(System::Unix)
            .last_modified_time(DateTime::default())
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(level))
            .unix_permissions(0o755);
        writer.start_file("bootstrap", options).expect("start entry");
        std::io::copy(&mut File::open(&args[2]).expect("open input"), &mut writer).expect("copy");
    }
    writer.finish().expect("finish").flush().expect("flush");
}
EOF
cp "$ROOT/src/emit/zip/deflate.rs" "$BACKENDS/src/deflate.rs"
for backend in $BACKEND_NAMES; do
  (cd "$BACKENDS" && CARGO_TARGET_DIR=$BACKENDS/target cargo build --release --quiet --features "$backend")
  cp "$BACKENDS/target/release/deflate-backends" "$BACKENDS/bin/$backend"
done
: >"$RESULTS/backend_sizes.env"
for input in synthetic real; do
  commands=()
  for backend in $BACKEND_NAMES; do
    for level in $(backend_levels "$backend"); do
      commands+=(-n "$backend $level" "$BACKENDS/bin/$backend $level $ZIPDIR/$input/bootstrap $BACKENDS/$input-$backend-$level.zip")
    done
  done
  hf "backends_$input" --runs "$ZIP_RUNS" --warmup 1 "${commands[@]}"
  for backend in $BACKEND_NAMES; do
    for level in $(backend_levels "$backend"); do
      echo "${input}|$backend|$level=$(stat -c %s "$BACKENDS/$input-$backend-$level.zip")" >>"$RESULTS/backend_sizes.env"
    done
  done
done

fi
# ---------------------------------------------------------------------------------------------
if want mixed; then
say Generating "the mixed workspace (x86_64 function, arm64 function, extension)"
rm -rf "$MIXED"
mkdir -p "$MIXED/fn-x86/src" "$MIXED/fn-arm/src" "$MIXED/ext/src"
cat >"$MIXED/Cargo.toml" <<'EOF'
[workspace]
resolver = "3"
members = ["fn-x86", "fn-arm", "ext"]

[workspace.dependencies]
lambda_runtime = "1"
lambda-extension = "1"
serde_json = "1"
tokio = { version = "1", features = ["macros"] }

# Both tools build with exactly this profile: cargo-lambda runs with --disable-optimizations, as
# otherwise it adds lto, codegen-units, panic and target-cpu settings of its own to release builds.
[profile.release]
strip = true
EOF
for fn in fn-x86 fn-arm; do
  arch_table=""
  [ "$fn" = fn-arm ] && arch_table=$'\n[package.metadata.lambda-pack]\narch = "arm64"\n'
  cat >"$MIXED/$fn/Cargo.toml" <<EOF
[package]
name = "$fn"
version = "0.1.0"
edition = "2024"
publish = false
$arch_table
[dependencies]
lambda_runtime.workspace = true
serde_json.workspace = true
tokio.workspace = true
EOF
  cat >"$MIXED/$fn/src/main.rs" <<'EOF'
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "request_id": event.context.request_id, "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
EOF
done
cat >"$MIXED/ext/Cargo.toml" <<'EOF'
[package]
name = "ext"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
lambda-extension.workspace = true
tokio.workspace = true
EOF
cat >"$MIXED/ext/src/main.rs" <<'EOF'
use lambda_extension::{Error, LambdaEvent, NextEvent, service_fn};

async fn extension(event: LambdaEvent) -> Result<(), Error> {
    match event.next {
        NextEvent::Shutdown(shutdown) => eprintln!("shutdown: {}", shutdown.shutdown_reason),
        NextEvent::Invoke(invoke) => eprintln!("invoke: {}", invoke.request_id),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_extension::run(service_fn(extension)).await
}
EOF
(cd "$MIXED" && cargo generate-lockfile --quiet && cargo fetch --quiet)

say Building "the mixed workspace once with each tool (sizes; primes zig's and the page cache)"
(cd "$MIXED" && $PACK_CMD)
(cd "$MIXED" && export CARGO_TARGET_DIR=target-cl && $CL_X86 && $CL_ARM && $CL_EXT) >"$RESULTS/cargo_lambda_build.log" 2>&1 \
  || { cat "$RESULTS/cargo_lambda_build.log" >&2; exit 1; }
python3 - "$MIXED" >"$RESULTS/mixed_sizes.env" <<'EOF'
import json, pathlib, sys
ws = pathlib.Path(sys.argv[1])
manifest = json.loads((ws / "target-pack/lambda-pack/manifest.json").read_text())
for a in manifest["artifacts"]:
    print(f"pack|{a['name']}|{a['arch']}|{a['kind']}={a['size_zipped']}")
for z in sorted((ws / "target-cl/lambda").rglob("*.zip")):
    print(f"cargo-lambda|{z.relative_to(ws / 'target-cl/lambda')}={z.stat().st_size}")
EOF
cat "$RESULTS/mixed_sizes.env" >&2

say Measuring "cold end-to-end: cargo lambda-pack vs cargo lambda build (x3)"
hf mixed_pack --runs "$COLD_RUNS" --prepare "rm -rf $MIXED/target-pack" \
  -n "cargo lambda-pack" "cd $MIXED && $PACK_CMD"
for cmd in "$CL_X86" "$CL_ARM" "$CL_EXT"; do
  name=$(awk '{print $NF}' <<<"$cmd")
  hf "mixed_cl_$name" --runs "$COLD_RUNS" --prepare "rm -rf $MIXED/target-cl" \
    -n "$cmd" "cd $MIXED && CARGO_TARGET_DIR=target-cl $cmd"
done
if [ "${BENCH_CHAIN:-0}" = 1 ]; then
  # The three cargo-lambda builds one after the other in one target directory (shared x86_64
  # dependencies), as one would run them by hand.
  hf mixed_cl_chain --runs "$COLD_RUNS" --prepare "rm -rf $MIXED/target-cl" \
    -n "the three in one target dir" "cd $MIXED && export CARGO_TARGET_DIR=target-cl && $CL_X86 && $CL_ARM && $CL_EXT"
fi

fi
# ---------------------------------------------------------------------------------------------
if want noop; then
say Measuring "no-op runs in the packed workspace"
# cargo-zigbuild's linker settings (CARGO_TARGET_<T>_LINKER, CC_<t>, ...) are part of every
# crate's fingerprint, so a plain `cargo build` sharing target-pack would rebuild everything (and
# then so would the next pack). So the pack's cargo commands and environment are recorded
# (through $CARGO) and the pack is compared against
#   - the baseline: one `cargo build --release --target <both triples>` with the same linker
#     settings, in its own target directory (built once first);
#   - the pack's own cargo commands (cargo metadata, then one cargo build per target, each with
#     the environment the pack gave it), replayed back to back in target-pack: what the pack
#     costs beyond the cargo work it does not skip.
cat >"$WORK/bin/record-cargo" <<'EOF'
#!/bin/sh
{ printf 'ARGS'; printf ' %s' "$@"; echo; env | grep -E '^(CARGO_|RUSTFLAGS|CC_|CXX_|AR_|CFLAGS_|CXXFLAGS_|BINDGEN_|RANLIB_|CMAKE_|__CARGO_)' | grep -v '^CARGO_MAKEFLAGS=' | sort; } >>"$RECORD_LOG"
exec cargo "$@"
EOF
chmod +x "$WORK/bin/record-cargo"
rm -f "$RESULTS/pack_cargo_commands.log"
(cd "$MIXED" && RECORD_LOG=$RESULTS/pack_cargo_commands.log CARGO=$WORK/bin/record-cargo \
  "$WORK/bin/cargo-lambda-pack" lambda-pack --quiet --target-dir target-pack)
python3 - "$RESULTS/pack_cargo_commands.log" "$MIXED/replay.sh" "$MIXED/noop-build.sh" <<'EOF'
import shlex, sys
log, replay, single = sys.argv[1:4]
invocations, current = [], None
for line in open(log):
    line = line.rstrip("\n")
    if line.startswith("ARGS "):
        current = {"args": line[5:].split(" "), "env": []}
        invocations.append(current)
    elif current is not None:
        current["env"].append(line)
builds = [i for i in invocations if i["args"][0] == "build"]
with open(replay, "w") as f:
    f.write("set -e\n")
    for b in invocations:
        f.write("env " + " ".join(shlex.quote(e) for e in b["env"]) + " cargo "
                + " ".join(shlex.quote(a) for a in b["args"]) + " >/dev/null\n")
env = sorted({e for b in builds for e in b["env"]})
triples = sorted({b["args"][b["args"].index("--target") + 1] for b in builds})
with open(single, "w") as f:
    f.write("exec env " + " ".join(shlex.quote(e) for e in env)
            + " cargo build --release --quiet --target-dir target-build "
            + " ".join("--target " + t for t in triples) + "\n")
EOF
cp "$MIXED/replay.sh" "$MIXED/noop-build.sh" "$RESULTS/"
say Building "the no-op baseline's own target directory (once)"
(cd "$MIXED" && sh noop-build.sh && $PACK_CMD)
# The replay must leave target-pack fresh for the pack: same environment, same fingerprints.
(cd "$MIXED" && sh replay.sh)
if (cd "$MIXED" && $PACK_CMD -v 2>&1 | grep -q Compiling); then
  echo "bench.sh: replay.sh left target-pack stale for the pack; the replay is not comparable" >&2
  exit 1
fi
hf noop --runs "$RUNS" --warmup "$WARMUP" \
  -n "cargo lambda-pack (no-op)" "cd $MIXED && $PACK_CMD" \
  -n "the pack's cargo commands, replayed (no-op)" "cd $MIXED && sh replay.sh" \
  -n "cargo build --target <both> (no-op)" "cd $MIXED && sh noop-build.sh"

fi
# ---------------------------------------------------------------------------------------------
if want scale; then
say Measuring "scale: 10, 25 and 50 dependency-free functions, cold"
: >"$RESULTS/scale.env"
for n in 10 25 50; do
  ws=$WORK/scale-$n
  rm -rf "$ws"
  mkdir -p "$ws"
  members=""
  for i in $(seq -w 1 "$n"); do
    mkdir -p "$ws/fn-$i/src"
    printf '[package]\nname = "fn-%s"\nversion = "0.1.0"\nedition = "2024"\npublish = false\n' "$i" >"$ws/fn-$i/Cargo.toml"
    printf 'fn main() {\n    let args: Vec<String> = std::env::args().collect();\n    println!("fn-%s: {args:?}");\n}\n' "$i" >"$ws/fn-$i/src/main.rs"
    members+="\"fn-$i\", "
  done
  printf '[workspace]\nresolver = "3"\nmembers = [%s]\n' "${members%, }" >"$ws/Cargo.toml"
  (cd "$ws" && cargo generate-lockfile --offline --quiet)
  hf "scale_$n" --runs "$SCALE_RUNS" --warmup 1 --prepare "rm -rf $ws/target" \
    -n "$n functions" "cd $ws && cargo lambda-pack --compiler cargo --quiet"
  rm -rf "$ws/target"
  (cd "$ws" && cargo lambda-pack --compiler cargo -v) >"$RESULTS/scale_$n.log" 2>&1
  # -v prints `Running \`<cargo> ...\`` for each cargo command the tool runs; cargo's own lines
  # for rustc and build scripts don't match these patterns.
  # The tool's lines may start with the variables it sets (`Running \`VAR=value .../cargo build ...`).
  cmd_re='Running `([A-Za-z0-9_]+=[^ `]* )*[^ `=]*cargo'
  echo "$n=$(grep -cE "$cmd_re build " "$RESULTS/scale_$n.log")|$(grep -cE "$cmd_re " "$RESULTS/scale_$n.log")" >>"$RESULTS/scale.env"
done

fi
# ---------------------------------------------------------------------------------------------
if want image; then
say Measuring "the OCI image of a 300 MiB function: our writer vs buildah bud, no-op run, second push"
IMG=$WORK/image
rm -rf "$IMG"
mkdir -p "$IMG/fn-big/src" "$IMG/fn-big/data"
printf '[workspace]\nresolver = "3"\nmembers = ["fn-big"]\n' >"$IMG/Cargo.toml"
# scratch: the bench needs no base image from the network; buildah builds FROM scratch offline.
printf '[package]\nname = "fn-big"\nversion = "0.1.0"\nedition = "2024"\npublish = false\n\n[package.metadata.lambda-pack]\nrole = "function"\nbase_image = "scratch"\ninclude = ["data/**"]\nimage_repository = "%s"\n' \
  "127.0.0.1:@PORT@/bench/fn-big" >"$IMG/fn-big/Cargo.toml"
printf 'fn main() {\n    println!("fn-big");\n}\n' >"$IMG/fn-big/src/main.rs"
# 300 MiB that gzip cannot shrink (seeded, so every run packs the same bytes): over the ZIP
# limit, so the function becomes an image by size.
python3 -c 'import random, sys
r = random.Random(12)
with open(sys.argv[1], "wb") as f:
    for _ in range(300):
        f.write(r.randbytes(1 << 20))' "$IMG/fn-big/data/blob.bin"
(cd "$IMG" && cargo generate-lockfile --offline --quiet)
# A registry of our own on a free loopback port, for the second push.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/@PORT@/$port/" "$IMG/fn-big/Cargo.toml"
mkdir -p "$IMG/registry"
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$IMG/registry/data" "$port" >"$IMG/registry/config.yml"
docker-registry serve "$IMG/registry/config.yml" >"$IMG/registry/log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
PACK_IMG="cargo lambda-pack --compiler cargo --quiet"
LAYOUT=$IMG/target/lambda-pack/x86_64/fn-big.oci
CONTEXT=$IMG/target/lambda-pack/x86_64/fn-big
(cd "$IMG" && $PACK_IMG)  # builds; writes the context and the layout once
BUILDAH="buildah --storage-driver=vfs --root $IMG/buildah/root --runroot $IMG/buildah/run"
hf image_ours --runs "$IMAGE_RUNS" --prepare "rm -rf $LAYOUT" \
  -n "cargo lambda-pack, OCI layout written (context in place)" "cd $IMG && $PACK_IMG"
hf image_buildah --runs "$IMAGE_RUNS" --prepare "rm -rf $IMG/buildah" \
  -n "buildah bud of the emitted Dockerfile (vfs, FROM scratch)" "$BUILDAH bud --isolation=chroot -q -t fn-big $CONTEXT >/dev/null"
# Nothing changed: the second run must leave every file of the layout and the context alone.
snapshot() { find "$LAYOUT" "$CONTEXT" -printf '%p %i %T@ %s\n' | sort; }
before=$(snapshot)
hf image_noop --runs "$RUNS" --warmup "$WARMUP" -n "cargo lambda-pack, nothing changed" "cd $IMG && $PACK_IMG"
after=$(snapshot)
rewritten=$(diff <(echo "$before") <(echo "$after") | grep -c '^>' || true)
blob_puts() { grep -c '"PUT /v2/[^"]*/blobs/uploads/' "$IMG/registry/log" || true; }
(cd "$IMG" && cargo lambda-pack --compiler cargo --push) 2>"$RESULTS/image_push1.log"
puts1=$(blob_puts)
(cd "$IMG" && cargo lambda-pack --compiler cargo --push) 2>"$RESULTS/image_push2.log"
puts2=$(blob_puts)
kill $registry_pid 2>/dev/null || true
trap - EXIT
{
  echo "layout_bytes=$(du -sb "$LAYOUT" | cut -f1)"
  echo "include_bytes=$(stat -c %s "$IMG/fn-big/data/blob.bin")"
  echo "noop_files=$(echo "$after" | wc -l)"
  echo "noop_rewritten=$rewritten"
  echo "push1=$(grep -o 'Pushed .*' "$RESULTS/image_push1.log" | head -1)"
  echo "push2=$(grep -o 'Pushed .*' "$RESULTS/image_push2.log" | head -1)"
  echo "push1_blob_puts=$puts1"
  echo "push2_blob_puts=$((puts2 - puts1))"
  echo "buildah=$(buildah --version)"
} >"$RESULTS/image.env"

fi
# ---------------------------------------------------------------------------------------------
if want shards; then
SHARD_N=${BENCH_SHARD_FUNCTIONS:-200}
say Measuring "sharding: $SHARD_N functions on lambda_runtime, whole vs 4 shards, cold vs a warm shared sccache"
SH=$WORK/shards
rm -rf "$SH"
mkdir -p "$SH"
# The dependency versions of fixtures/verify-functions (its Cargo.lock, reused offline): the
# tests build that workspace on every machine, so no network is needed here.
cp "$ROOT/fixtures/verify-functions/Cargo.lock" "$SH/Cargo.lock"
members=""
for i in $(seq -f '%03g' 1 "$SHARD_N"); do
  mkdir -p "$SH/fn-$i/src"
  printf '[package]\nname = "fn-%s"\nversion.workspace = true\nedition.workspace = true\npublish = false\n\n[dependencies]\nlambda_runtime.workspace = true\nserde_json.workspace = true\ntokio.workspace = true\n' \
    "$i" >"$SH/fn-$i/Cargo.toml"
  cat >"$SH/fn-$i/src/main.rs" <<EOF
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "function": "fn-$i", "request_id": event.context.request_id, "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
EOF
  members+="\"fn-$i\", "
done
cat >"$SH/Cargo.toml" <<EOF
[workspace]
resolver = "3"
members = [${members%, }]

[workspace.package]
version = "0.1.0"
edition = "2024"

[workspace.dependencies]
lambda_runtime = { version = "1", default-features = false }
serde_json = "1"
tokio = { version = "1", default-features = false, features = ["macros", "rt"] }
EOF
# Adds the members to the copied lock file without touching its versions.
(cd "$SH" && cargo metadata --offline --format-version 1 >/dev/null)
SHARD_PACK="cargo lambda-pack --compiler cargo --quiet --offline"
SH_ENV=$RESULTS/shards.env
: >"$SH_ENV"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# timed NAME COMMAND...: one cold run (each takes minutes; no repeat fits), its wall time and the
# load average just before and just after it, which says how much other work shared the cores.
timed() {
  local name=$1 before start end
  shift
  before=$(loadavg)
  start=$(date +%s.%N)
  (cd "$SH" && "$@")
  end=$(date +%s.%N)
  echo "$name=$(python3 -c "print(round($end - $start, 2))")|$before|$(loadavg)" >>"$SH_ENV"
  say Measured "$name: $(tail -1 "$SH_ENV")"
}
# The functions in one output directory's manifest.
functions_in() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["artifacts"]))' "$1/manifest.json"; }
echo "functions=$SHARD_N" >>"$SH_ENV"
echo "sccache_version=$(sccache --version)" >>"$SH_ENV"
# Debian's sccache lists its back ends in --help ("Redis: false" when built without it).
echo "sccache_redis=$(sccache --help | sed -n 's/^ *Redis: *//p')" >>"$SH_ENV"

timed whole $SHARD_PACK --target-dir target-whole --out-dir out-whole
echo "whole_functions=$(functions_in "$SH/out-whole")" >>"$SH_ENV"
for k in 1 2 3 4; do
  timed "shard$k" $SHARD_PACK --shard "$k/4" --target-dir "target-shard$k" --out-dir "out-shard$k"
  echo "shard${k}_functions=$(functions_in "$SH/out-shard$k")" >>"$SH_ENV"
  rm -rf "$SH/target-shard$k"
done
# The shards joined must be the whole pack, artifact for artifact.
(cd "$SH" && cargo lambda-pack merge out-shard1 out-shard2 out-shard3 out-shard4 --out-dir out-merged) 2>"$RESULTS/shards_merge.log"
python3 - "$SH/out-whole/manifest.json" "$SH/out-merged/manifest.json" >>"$SH_ENV" <<'EOF'
import json, sys
whole, merged = ({(a["name"], a["arch"], a["sha256"]) for a in json.load(open(p))["artifacts"]} for p in sys.argv[1:3])
print(f"merged_equal={'yes' if whole == merged else 'no'}")
EOF
rm -rf "$SH/target-whole"

# A private sccache server (own port, own local-disk cache): first a whole pack into a clean
# target directory with an empty cache (what filling it costs), then another clean target
# directory with the cache warm, as a fresh CI runner sharing the cache would, then the largest
# shard the same way.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SCCACHE_DIR=$SH/sccache SCCACHE_SERVER_PORT=$port
sccache --start-server >/dev/null
trap 'sccache --stop-server >/dev/null 2>&1 || true' EXIT
timed sccache_cold env RUSTC_WRAPPER=sccache $SHARD_PACK --target-dir target-cache1 --out-dir out-cache1
sccache --show-stats >"$RESULTS/sccache_cold.txt"
rm -rf "$SH/target-cache1"
sccache --zero-stats >/dev/null
timed sccache_warm env RUSTC_WRAPPER=sccache $SHARD_PACK --target-dir target-cache2 --out-dir out-cache2
sccache --show-stats >"$RESULTS/sccache_warm.txt"
rm -rf "$SH/target-cache2"
largest=$(python3 - "$SH_ENV" <<'EOF'
import sys
times = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
print(max(range(1, 5), key=lambda k: float(times[f"shard{k}"].split("|")[0])))
EOF
)
echo "largest_shard=$largest" >>"$SH_ENV"
sccache --zero-stats >/dev/null
timed sccache_warm_shard env RUSTC_WRAPPER=sccache $SHARD_PACK --shard "$largest/4" --target-dir target-cache3 --out-dir out-cache3
sccache --show-stats >"$RESULTS/sccache_warm_shard.txt"
rm -rf "$SH/target-cache3"
sccache --stop-server >/dev/null 2>&1 || true
trap - EXIT
unset SCCACHE_DIR SCCACHE_SERVER_PORT
python3 - "$SH/out-whole/manifest.json" "$SH/out-cache2/manifest.json" "$SH/out-cache1/manifest.json" >>"$SH_ENV" <<'EOF'
import json, sys
whole, cached, filled = ({(a["name"], a["arch"], a["sha256"]) for a in json.load(open(p))["artifacts"]} for p in sys.argv[1:4])
print(f"cached_equal={'yes' if whole == cached else 'no'}")
# Hits against misses: the warm run against the run that filled the cache.
print(f"hits_equal_misses={'yes' if filled == cached else 'no'}")
EOF

fi
# ---------------------------------------------------------------------------------------------
if want binary; then
say Measuring "the tool's own binary: debug, release and dist, sizes and the pack time of example/"
BIN=$WORK/binary
BIN_ENV=$RESULTS/binary.env
rm -rf "$BIN"
mkdir -p "$BIN/bin"
: >"$BIN_ENV"
# One build at a time; `dist` without `deploy` in a target directory of its own, since the
# features of shared crates (tokio, hyper, http) differ and would replace the default build's.
# BENCH_BINARY_PROFILES (default "debug release dist") leaves profiles out: a cold release
# build is most of an hour on 2 cores.
BIN_PROFILES=${BENCH_BINARY_PROFILES:-debug release dist}
echo "profiles=$BIN_PROFILES" >>"$BIN_ENV"
for profile in $BIN_PROFILES; do
  cargo_profile=$profile
  [ "$profile" = debug ] && cargo_profile=dev  # cargo's name for what it builds into debug/
  (cd "$ROOT" && CARGO_TARGET_DIR=$TOOL_TARGET_DIR cargo build --locked --quiet --profile "$cargo_profile")
  cp "$TOOL_TARGET_DIR/$profile/cargo-lambda-pack" "$BIN/$profile"
  echo "size_$profile=$(stat -c %s "$BIN/$profile")" >>"$BIN_ENV"
  if [ "$profile" = release ]; then
    strip -o "$BIN/release-stripped" "$BIN/release"
    echo "size_release-stripped=$(stat -c %s "$BIN/release-stripped")" >>"$BIN_ENV"
  fi
done
if [[ " $BIN_PROFILES " == *" dist "* ]]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$TOOL_TARGET_DIR/no-deploy cargo build --locked --quiet --profile dist --no-default-features)
  cp "$TOOL_TARGET_DIR/no-deploy/dist/cargo-lambda-pack" "$BIN/dist-no-deploy"
  echo "size_dist-no-deploy=$(stat -c %s "$BIN/dist-no-deploy")" >>"$BIN_ENV"
  # Sections of the dist binary (`size -A`): what the bytes are.
  size -A "$BIN/dist" >"$RESULTS/binary_dist_sections.txt"
fi

# example/'s x86_64 half in the dev profile (what scripts/wheel-check.sh packs), in a target
# directory all binaries share. Each binary is copied in turn to the same path: the tool's
# path is cargo's rustc wrapper, part of its fingerprints, so a path of its own would rebuild
# the example for each. A no-op run (everything up to date) times the tool's own work and
# cargo's freshness checks; a run after deleting the output directory (the target directory
# kept, so nothing is compiled) adds writing every ZIP: deflate and sha256 of the binaries.
cp -R "$ROOT/example" "$BIN/example"
BIN_PACK="cargo lambda-pack --locked --quiet --profile dev --target-dir ../example-target -p orders -p welcome"
echo "pack_cmd=$BIN_PACK" >>"$BIN_ENV"
for binary in $BIN_PROFILES; do
  cp "$BIN/$binary" "$BIN/bin/cargo-lambda-pack"
  (cd "$BIN/example" && export PATH="$BIN/bin:$PATH" && $BIN_PACK)  # the first one builds the example
  (cd "$BIN/example" && export PATH="$BIN/bin:$PATH" && hf "binary_noop_$binary" --runs "$RUNS" --warmup 2 -n "$binary" "$BIN_PACK")
  (cd "$BIN/example" && export PATH="$BIN/bin:$PATH" && hf "binary_rewrite_$binary" --runs "$RUNS" --warmup 1 \
    --prepare "rm -rf $BIN/example-target/lambda-pack" -n "$binary" "$BIN_PACK")
done
python3 - "$BIN/example-target/lambda-pack/manifest.json" >>"$BIN_ENV" <<'EOF'
import json, sys
artifacts = json.load(open(sys.argv[1]))["artifacts"]
print(f"example_artifacts={len(artifacts)}")
print(f"example_zipped={sum(a.get('size_zipped', 0) for a in artifacts)}")
print(f"example_unzipped={sum(a.get('size_unzipped', 0) for a in artifacts)}")
EOF
echo "load_binary_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$BIN_ENV"

fi
# ---------------------------------------------------------------------------------------------
if want plan; then
say Measuring "the planner (divan)"
(cd "$ROOT" && CARGO_TARGET_DIR=$TOOL_TARGET_DIR cargo bench --quiet --bench plan) >"$RESULTS/divan_plan.txt" 2>/dev/null
cat "$RESULTS/divan_plan.txt" >&2

fi
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.env"
echo "elapsed=$(($(date +%s) - STARTED))" >>"$RESULTS/machine.env"
printf '%s\n' "RUNS=$RUNS" "WARMUP=$WARMUP" "ZIP_RUNS=$ZIP_RUNS" "COLD_RUNS=$COLD_RUNS" "SCALE_RUNS=$SCALE_RUNS" "IMAGE_RUNS=$IMAGE_RUNS" \
  "PACK_CMD=$PACK_CMD" "CL_X86=$CL_X86" "CL_ARM=$CL_ARM" "CL_EXT=$CL_EXT" >"$RESULTS/settings.env"

}
[ -n "${BENCH_REPORT_ONLY:-}" ] || measure

say Writing "$OUTPUT"
python3 - "$RESULTS" >"$OUTPUT.tmp" <<'PYEOF'
import json, pathlib, re, sys

R = pathlib.Path(sys.argv[1])

def env(name):
    out = {}
    path = R / name
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out

def hyper(name):
    path = R / f"{name}.json"
    if not path.exists():
        return None
    return {r["command"]: r for r in json.loads(path.read_text())["results"]}

def one(name):
    h = hyper(name)
    return next(iter(h.values())) if h else None

def secs(x):
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"

def spread(r):
    return f"{secs(r['median'])} (min {secs(r['min'])}, max {secs(r['max'])}, n={len(r['times'])})"

def mb(n):
    return f"{int(n) / 1e6:.2f} MB"

def verdict(ratio, limit):
    return "**met**" if ratio <= limit else "**missed**"

def command_shapes(script):
    """The cargo commands of a recorded script (replay.sh, noop-build.sh) as a reader can run them:
    the variables the pack gave cargo are named, not printed (their values are this machine's
    paths to zig and cargo-zigbuild's wrapper scripts), with each Rust target written as a
    placeholder; shell redirections are left out."""
    import re, shlex
    commands, names = [], set()
    for line in script.splitlines():
        words = shlex.split(line)
        if not words or words[0] == "set":
            continue
        if words[0] == "exec":
            words = words[1:]
        if words[0] == "env":
            words = words[1:]
            while words and "=" in words[0] and not words[0].startswith("-"):
                name = words.pop(0).split("=", 1)[0]
                name = re.sub(r"(x86_64|aarch64)_unknown_linux_(gnu|musl)", "<triple>", name)
                name = re.sub(r"(X86_64|AARCH64)_UNKNOWN_LINUX_(GNU|MUSL)", "<TRIPLE>", name)
                names.add(name)
        commands.append(" ".join(shlex.quote(w) for w in words if not w.startswith(">")))
    return commands, sorted(names)

def cpu(r):
    return r["user"] + r["system"]

notes = {}  # summary label -> likely cause, shown when the target is missed

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

def divan(text):
    rows, last = {}, None
    for line in text.splitlines():
        m = re.match(r"^\s*[├╰]─ (\S+)\s+(.*)$", line)
        if m:
            cells = [c.strip() for c in m.group(2).split("│")]
            value, unit = cells[2].split()
            last = m.group(1)
            rows[last] = {"median": float(value) * UNITS[unit], "samples": cells[4]}
        elif last and "/s" in line:
            cells = [c.strip() for c in line.strip(" │").split("│")]
            rows[last]["throughput"] = cells[2] if len(cells) > 2 else ""
            last = None
    return rows

machine, settings = env("machine.env"), env("settings.env")
sizes = env("zip_sizes.env")
out = []
w = out.append
summary = []

w("# Benchmarks\n")
w("Written by `scripts/bench.sh` (re-run it to regenerate this file from scratch; it installs what it")
w("needs). All times are hyperfine or divan **medians** of wall-clock time. Ratios compare commands")
w("measured back to back in the same run.\n")
w("## Running them\n")
w("```sh")
w("./scripts/bench.sh                              # every section below: 15 to 30 minutes on 2 cores; rewrites this file")
w("BENCH_SECTIONS=zip,backends ./scripts/bench.sh   # only some: zip, backends, mixed, noop, scale, plan, image, shards")
w("cargo bench --bench zip_writer                  # the ZIP writer alone (divan)")
w("cargo bench --bench plan                        # the planner alone (divan)")
w("```\n")
w("`scripts/bench.sh` installs what it needs (hyperfine, cmake, cargo-lambda) and says in its header")
w("which environment variables set the number of runs. Each section gives the commands it timed;")
w("sections \"measured by hand\" give theirs.\n")
w("## Machine\n")
w(f"- {machine.get('nproc')} cores (`nproc`), CPU `{machine.get('cpu')}`, {machine.get('mem')} memory, {machine.get('kernel')}")
w(f"- {machine.get('rustc')}; {machine.get('cargo_lambda')}; zig {machine.get('zig')}; {machine.get('hyperfine')}; Info-ZIP {machine.get('infozip')}; zip crate {machine.get('zip_crate')}; libdeflater {machine.get('libdeflater')}")
w(f"- cargo-lambda-pack built from commit {machine.get('commit')} with {machine.get('dirty')} uncommitted change(s) under src/ and Cargo.*")
w(f"- run {machine.get('date')}, {int(machine.get('elapsed', '0')) // 60} min; load average at start {machine.get('load_start')}, at end {machine.get('load_end')}")
def first_load(text):
    try:
        return float(str(text).split()[0])
    except (IndexError, ValueError):
        return 0.0
busiest = max(first_load(machine.get("load_start")), first_load(machine.get("load_end")))
if busiest > float(machine.get("nproc") or 1) * 1.5:
    w("- the machine was shared: other work ran concurrently (load average well above the core count),")
    w("  so absolute times are noisy and wall times are inflated; ratios come from commands timed back")
    w("  to back in the same run, and the compressor tables also give CPU time, which load disturbs less.")
else:
    w("- nothing else heavy ran (load average near the core count, which the benchmarks themselves")
    w("  fill); ratios come from commands timed back to back in the same run.")
if (R / "machine-earlier.env").exists():
    mz = env("machine-earlier.env")
    w(f"- some sections were measured by an earlier invocation ({mz.get('date')}, load average at start {mz.get('load_start')}) and kept;")
    w(f"  the others were measured by the invocation dated below, run with BENCH_SECTIONS")
w("")
w(f"Runs: fast commands `--runs {settings.get('RUNS')} --warmup {settings.get('WARMUP')}`; compressors `--runs {settings.get('ZIP_RUNS')} --warmup 1`;")
w(f"cold builds `--runs {settings.get('COLD_RUNS')}` without warm-up (an untimed build of everything with each tool precedes them);")
w(f"scale `--runs {settings.get('SCALE_RUNS')} --warmup 1`; divan 10 samples per ZIP benchmark.\n")

# ---- packaging throughput
dz = divan((R / "divan_zip.txt").read_text()) if (R / "divan_zip.txt").exists() else {}
detail = []
for key, label, src in [("synthetic", "32 MiB synthetic ELF-like file", "synthetic_elf"), ("real", f"real release binary (`{pathlib.Path(sizes.get('real_binary', '?')).name}`, as installed)", "real_binary")]:
    ours = dz.get(src)
    z6, z9 = one(f"infozip_{key}_6"), one(f"infozip_{key}_9")
    if not (ours and z6 and z9):
        continue
    size_in = int(sizes[f"{key}_in"])
    ours_size, s6, s9 = int(sizes[f"{key}_ours"]), int(sizes[f"{key}_zip6"]), int(sizes[f"{key}_zip9"])
    t_ratio = ours["median"] / z6["median"]
    s_ratio = ours_size / s9
    summary.append((f"ZIP writer time vs `zip -6`, {key} input", f"{secs(ours['median'])} vs {secs(z6['median'])} = {t_ratio:.2f}x", "≤ 1.0x", verdict(t_ratio, 1.0)))
    notes[f"ZIP writer time vs `zip -6`, {key} input"] = "libdeflate level 8 (src/emit/zip.rs) searches harder than level 6; see the backend table for the other levels"
    summary.append((f"ZIP size vs `zip -9`, {key} input", f"{ours_size:,} vs {s9:,} B = {s_ratio:.4f}x", "≤ 1.0x", verdict(s_ratio, 1.0)))
    notes[f"ZIP size vs `zip -9`, {key} input"] = (f"Info-ZIP's own deflate at -9 finds better matches on this input ({ours_size - s9:+,} B); "
        "see the backend table below for what the other backends and levels give")
    detail.append(f"| {label}, {mb(size_in)} | {secs(ours['median'])} ({ours.get('throughput', '')}) | {ours_size:,} B ({ours_size / size_in:.1%}) | {secs(z6['median'])} (CPU {secs(cpu(z6))}) | {s6:,} B | {secs(z9['median'])} (CPU {secs(cpu(z9))}) | {s9:,} B |")

w("## Summary\n")
w("| measurement | measured (medians) | target | result | likely cause, when missed |")
w("|---|---|---|---|---|")
summary_at = len(out)

w("\n## Packaging throughput: our ZIP writer vs Info-ZIP\n")
w("Our writer is `emit::zip::write_zip` (single-threaded, one `bootstrap` entry read whole and deflated")
w("by libdeflate at level 8), timed by `cargo bench --bench zip_writer` (divan); it writes the archives it measured")
w("next to the inputs (`LAMBDA_PACK_BENCH_OUT`). Info-ZIP is timed by hyperfine on the very same")
w("bytes under the same entry name: `zip -q -X -6 out.zip bootstrap` and `zip -q -X -9 ...` (`-X`: no")
w("extra fields, as ours; the output is deleted before each run).\n")
w("| input | ours: time | ours: size | `zip -6` time | `zip -6` size | `zip -9` time | `zip -9` size |")
w("|---|---|---|---|---|---|---|")
out.extend(detail)
w("")
w("The synthetic input (`benches/zip_writer.rs`) is deterministic and laid out like a Rust release")
w("binary (code, mangled-symbol strings, symbol table, unwind tables, read-only data, some")
w("high-entropy constants, padding); it compresses to a ratio close to a real binary's.\n")

# ---- backends
w("### Deflate backends and levels (zip crate, same version)\n")
w("A scratch crate generated by the script writes one `bootstrap` entry exactly as `src/emit/zip.rs`")
w("does, built four times: zip features `deflate-flate2-zlib-rs` (what `deflate` selects, the tool's")
w("compressor before libdeflate), `deflate-flate2` + `flate2/rust_backend` (miniz_oxide),")
w("`deflate-flate2-zlib-ng` (C, needs cmake), and `libdeflate` (C, the libdeflater crate): the file read")
w("whole and deflated in one call by the tool's own `src/emit/zip/deflate.rs`, copied into the crate.")
w("Command: `deflate-backends LEVEL INPUT OUT.zip`, whole process timed by hyperfine.\n")
bsizes = env("backend_sizes.env")
best = {}
for key in ["synthetic", "real"]:
    h = hyper(f"backends_{key}")
    if not h:
        continue
    z6, z9 = one(f"infozip_{key}_6"), one(f"infozip_{key}_9")
    s9 = int(sizes[f"{key}_zip9"])
    w(f"**{key} input** ({mb(sizes[f'{key}_in'])}; `zip -6` {secs(z6['median'])}, CPU {secs(cpu(z6))}; `zip -9` {int(s9):,} B):\n")
    w("| backend | level | wall time | CPU time (user+sys, mean) | vs `zip -6` wall / CPU | size | vs `zip -9` size |")
    w("|---|---|---|---|---|---|---|")
    for name, r in h.items():
        backend, level = name.rsplit(" ", 1)
        size = int(bsizes[f"{key}|{backend}|{level}"])
        tr, cr, sr = r["median"] / z6["median"], cpu(r) / cpu(z6), size / s9
        best.setdefault(key, []).append((name, tr, sr, size))
        w(f"| {backend} | {level} | {secs(r['median'])} | {secs(cpu(r))} | {tr:.2f}x / {cr:.2f}x | {size:,} B | {sr:.4f}x |")
    w("")
meets = {}
for key, rows in best.items():
    for name, tr, sr, _ in rows:
        meets.setdefault(name, []).append(tr <= 1.0 and sr <= 1.0)
both = [n for n, ok in meets.items() if ok and all(ok)]
w("Combinations meeting both targets (time ≤ `zip -6` and size ≤ `zip -9`) on every input: "
  + (", ".join(f"`{n}`" for n in both) if both else "none") + ".")
w("`libdeflate 8` is what src/emit/zip.rs runs today: its sizes equal the divan run's archives byte for")
w("byte, a check that the scratch crate writes what the tool writes.\n")
if best:
    w("**Recommendation.** Among the measured combinations, by size on every input then time:\n")
    names = [n for n, *_ in next(iter(best.values()))]
    def total(n, i):
        return sum(next(r for r in rows if r[0] == n)[i] for rows in best.values())
    ranked = sorted(names, key=lambda n: (total(n, 3), total(n, 1)))
    for n in ranked:
        per_input = "; ".join(f"{k}: {next(r for r in rows if r[0] == n)[1]:.2f}x time, {next(r for r in rows if r[0] == n)[2]:.4f}x size" for k, rows in best.items())
        w(f"- `{n}`: {per_input}")
    w("")
    w("The tool runs `libdeflate 8` rather than the smallest: among the combinations meeting both")
    w("targets it keeps the widest margin on time (a slower, busier machine stays under `zip -6`) for")
    w("a size within about 0.1% of level 9's.\n")

# ---- cargo-lambda
w("## End to end against cargo-lambda\n")
w("A generated workspace: `fn-x86` (x86_64 function), `fn-arm` (arm64 function) and `ext` (an")
w("extension, `lambda-extension`), using the real `lambda_runtime` and `lambda-extension` crates,")
w("one `[profile.release]` (`strip = true`) for both tools: cargo-lambda runs with `--disable-optimizations`,")
w("without which it adds `lto = \"thin\"`, `codegen-units = 1`, `panic = \"abort\"` and `-C target-cpu` to")
w("release builds (smaller binaries, longer builds), which would compare two profiles. Both link through zig. The extension is")
w("packed by cargo-lambda-pack as an extension (detected from its `lambda-extension` dependency, ZIP")
w("layout `extensions/ext`) in the same cargo invocation as `fn-x86`: one cargo run per Rust target.")
w("Every run is cold: the tool's target directory is deleted before it (hyperfine `--prepare`).\n")
pack = one("mixed_pack")
cl = [(settings.get(k), one(f"mixed_cl_{n}")) for k, n in [("CL_X86", "fn-x86"), ("CL_ARM", "fn-arm"), ("CL_EXT", "ext")]]
if pack and all(r for _, r in cl):
    total = sum(r["median"] for _, r in cl)
    w("| command | median |")
    w("|---|---|")
    w(f"| `{settings.get('PACK_CMD')}` | {spread(pack)} |")
    for cmd, r in cl:
        w(f"| `{cmd}` | {spread(r)} |")
    w(f"| sum of the three cargo-lambda runs | {secs(total)} |")
    chain = one("mixed_cl_chain")
    if chain:
        w(f"| the three cargo-lambda runs in one target dir, one after the other | {spread(chain)} |")
    ratio = pack["median"] / total
    summary.append(("cold pack vs sum of cargo-lambda runs", f"{secs(pack['median'])} vs {secs(total)} = {ratio:.2f}x", "≤ 1.0x", verdict(ratio, 1.0)))
    notes["cold pack vs sum of cargo-lambda runs"] = "compile time dominates both; see the per-command medians"
    if chain:
        summary.append(("cold pack vs the three cargo-lambda runs in one target dir (for information)", f"{secs(pack['median'])} vs {secs(chain['median'])} = {pack['median'] / chain['median']:.2f}x", "—", ""))
    w("")
ms = env("mixed_sizes.env")
pack_sizes = {k.split("|")[1]: int(v) for k, v in ms.items() if k.startswith("pack|")}
pack_kinds = {k.split("|")[1]: k.split("|")[3] for k in ms if k.startswith("pack|")}
cl_all = {k.split("|", 1)[1]: int(v) for k, v in ms.items() if k.startswith("cargo-lambda|")}
cl_sizes = {}
for name, kind in pack_kinds.items():
    rel = f"extensions/{name}.zip" if kind == "extension" else f"{name}/bootstrap.zip"
    if rel in cl_all:
        cl_sizes[name] = (rel, cl_all[rel])
if pack_sizes:
    w("ZIP sizes (`cargo lambda build --output-format zip`, same binaries' sources and profile):\n")
    w("| artifact | cargo-lambda-pack | cargo-lambda | ratio |")
    w("|---|---|---|---|")
    for name in sorted(pack_sizes):
        ours = pack_sizes[name]
        if name in cl_sizes:
            rel, theirs = cl_sizes[name]
            r = ours / theirs
            w(f"| {name} | {ours:,} B | {theirs:,} B (`target/lambda/{rel}`) | {r:.3f}x |")
            summary.append((f"ZIP size vs cargo-lambda, {name}", f"{ours:,} vs {theirs:,} B = {r:.3f}x", "≤ 1.0x", verdict(r, 1.0)))
            notes[f"ZIP size vs cargo-lambda, {name}"] = "the binaries differ (glibc pin 2.34 vs zig's default), not only the compressor"
        else:
            w(f"| {name} | {ours:,} B | not found | |")
    w("")
    w("The binaries are not byte-identical between the tools: cargo-lambda-pack pins glibc 2.34")
    w("(provided.al2023) and cargo-lambda links against zig's default glibc, so sizes differ by the")
    w("binary as well as by the compressor.\n")

# ---- no-op
w("## No-op run\n")
w("In the workspace above, already packed. The baseline is the one the target names: one `cargo build --release`")
w("for both triples with cargo-zigbuild's linker settings (recorded from the pack's own cargo runs:")
w("they are part of cargo's fingerprints, so without them cargo rebuilds everything), in its own,")
w("already built, target directory.\n")
noop = hyper("noop")
if noop:
    w("| command | median |")
    w("|---|---|")
    for name, r in noop.items():
        w(f"| {name} | {spread(r)} |")
    w("")
    base_cmds, base_names = command_shapes((R / "noop-build.sh").read_text() if (R / "noop-build.sh").exists() else "")
    rep_cmds, rep_names = command_shapes((R / "replay.sh").read_text() if (R / "replay.sh").exists() else "")
    w("To measure it again: `BENCH_SECTIONS=mixed,noop ./scripts/bench.sh` (its work directory,")
    w("`BENCH_WORK`, keeps the recorded commands with their environment as `results/noop-build.sh` and")
    w("`results/replay.sh`). The baseline, run in the generated workspace:\n\n```sh\n" + "\n".join(base_cmds) + "\n```\n")
    w("The pack's own cargo commands, as recorded through `$CARGO` (`replay.sh`; the script checks that")
    w("replaying them leaves target-pack fresh for the pack, so they are the same no-op work):\n\n```sh\n" + "\n".join(rep_cmds) + "\n```\n")
    w("Each command runs with the variables the pack gave cargo, named here rather than printed (their")
    w("values are the measuring machine's paths to zig and to cargo-zigbuild's wrapper scripts):")
    w(", ".join(f"`{n}`" for n in sorted(set(base_names) | set(rep_names))) + ".\n")
    rs = list(noop.values())
    pack_, replay_, base_ = rs[0], rs[1], rs[-1]
    ratio = pack_["median"] / base_["median"]
    summary.append(("no-op pack vs no-op `cargo build`", f"{secs(pack_['median'])} vs {secs(base_['median'])} = {ratio:.2f}x", "≤ 1.2x", verdict(ratio, 1.2)))
    notes["no-op pack vs no-op `cargo build`"] = ("the pack runs cargo metadata and one cargo build per target (two here); the baseline "
        "is a single cargo run for both targets. See the next row for the pack's cost beyond those cargo runs")
    if len(rs) == 3:
        floor = replay_["median"] / base_["median"]
        notes["no-op pack vs no-op `cargo build`"] += (f"; those cargo commands alone take {secs(replay_['median'])} = "
            f"{floor:.2f}x the baseline")
        w(f"The pack's own cargo commands (cargo metadata, then one no-op `cargo build` per Rust target, as")
        own = pack_["median"] / replay_["median"]
        if own > 1:
            w(f"the tool runs them) take {floor:.2f}x the baseline by themselves; the pack adds"
              f" {secs(pack_['median'] - replay_['median'])} to them ({own:.2f}x).\n")
        else:
            w(f"the tool runs them) take {floor:.2f}x the baseline by themselves; the pack takes {own:.2f}x"
              " of their time back to back, since its first build runs while cargo metadata does.\n")
    if len(rs) == 3:
        own = pack_["median"] / replay_["median"]
        summary.append(("no-op pack vs its own cargo commands replayed", f"{secs(pack_['median'])} vs {secs(replay_['median'])} = {own:.2f}x", "(no target; what the tool adds)", "—"))


# ---- scale
w("## Scale\n")
w("Workspaces of N dependency-free functions (`fn main` printing its arguments), packed with")
w("`cargo lambda-pack --compiler cargo --quiet` (x86_64-unknown-linux-musl, rust-lld), cold: the")
w("target directory is deleted before each run. Cargo commands counted from one extra cold run with")
w("`-v`, which prints ``Running `cargo ...` `` for each cargo command the tool runs.\n")
sc = env("scale.env")
w("| functions | median | per function | `cargo build` runs | all cargo commands |")
w("|---|---|---|---|---|")
per = []
for n in [10, 25, 50]:
    r = one(f"scale_{n}")
    if not r:
        continue
    builds, total = sc.get(str(n), "?|?").split("|")
    per.append((n, r["median"] / n))
    w(f"| {n} | {spread(r)} | {r['median'] / n:.3f} s | {builds} | {total} |")
w("")
if len(per) == 3:
    growth = per[-1][1] / per[0][1]
    summary.append(("wall time per function, 50 vs 10 functions", f"{per[0][1]:.3f} s → {per[-1][1]:.3f} s per function = {growth:.2f}x", "≤ 1.0x (flat or falling)", verdict(growth, 1.0)))
    notes["wall time per function, 50 vs 10 functions"] = "per-crate compile and link time grows with the workspace; see the medians"
    builds = {sc.get(str(n), "?").split("|")[0] for n in [10, 25, 50]}
    summary.append(("cargo build runs per pack (10/25/50 functions, one Rust target)", ", ".join(sc.get(str(n), "?").split("|")[0] for n in [10, 25, 50]), "1 per Rust target", "**met**" if builds == {"1"} else "**missed**"))

# ---- image
w("## Writing an OCI image\n")
im = env("image.env")
ours, theirs = one("image_ours"), one("image_buildah")
if ours and theirs:
    w(f"One dependency-free function (`fn-big`, musl) with a {int(im.get('include_bytes', 0)) / 2**20:.0f} MiB include of seeded random bytes")
    w("(incompressible: the worst case for both), over the ZIP limit, so an image, on `base_image = \"scratch\"`")
    w("(no network; buildah builds `FROM scratch` offline). Ours: a pack whose only work is the OCI layout")
    w("(it is deleted before each run; cargo is fresh and the build context is already in place, so the")
    w("time also holds a no-op cargo build and the check of the 300 MiB context), writing every layer as")
    w("gzip (1 MiB blocks, deflated, or stored when a sample shows deflate cannot shrink them, as here;")
    w(f"layout {int(im.get('layout_bytes', 0)) / 1e6:.1f} MB). Theirs: `buildah bud` of the")
    w(f"Dockerfile the pack emitted, on the same context (vfs storage, deleted before each run; {im.get('buildah', '')}).")
    w("buildah stores its layers uncompressed; it compresses only when it pushes. Runs: `--runs " + settings.get("IMAGE_RUNS", "?") + "`.")
    w(f"Measured {machine.get('date')} from commit {machine.get('commit')} ({machine.get('dirty')} uncommitted change(s)), load average")
    w(f"{machine.get('load_start')} at start and {machine.get('load_end')} at the end on {machine.get('nproc')} cores (shared with other builds when well above that).\n")
    w("| command | median |")
    w("|---|---|")
    for r in (ours, theirs):
        w(f"| {r['command']} | {spread(r)} |")
    noop_r = one("image_noop")
    if noop_r:
        w(f"| {noop_r['command']} | {spread(noop_r)} |")
    w("")
    ratio = ours["median"] / theirs["median"]
    label = "OCI image of a 300 MiB function vs `buildah bud`"
    summary.append((label, f"{secs(ours['median'])} vs {secs(theirs['median'])} = {ratio:.2f}x", "≤ 0.5x", verdict(ratio, 0.5)))
    notes[label] = ("the layers' gzip and the three SHA-256 passes (blob, diff id, context) over 300 MiB; buildah "
        "stores the layer uncompressed at build time and compresses only on push")
    files, rewritten = im.get("noop_files", "?"), im.get("noop_rewritten", "?")
    w(f"Nothing changed: the second run left all {files} files and directories of the layout and the context")
    w(f"as they were ({rewritten} with a new inode, mtime or size).\n")
    summary.append(("OCI image: second run with nothing changed", f"{rewritten} of {files} files rewritten", "0", "**met**" if rewritten == "0" else "**missed**"))
    w("Pushes to a local `docker-registry` (`image_repository` on 127.0.0.1), the second with nothing changed:\n")
    w(f"- first: `{im.get('push1', '')}`; the registry logged {im.get('push1_blob_puts', '?')} completed blob upload(s)")
    w(f"- second: `{im.get('push2', '')}`; the registry logged {im.get('push2_blob_puts', '?')} more\n")
    second = im.get("push2", "")
    zero = "0 blob(s), 0 B uploaded" in second and im.get("push2_blob_puts") == "0"
    summary.append(("OCI image: second push, blob bytes uploaded", "0 B (0 blob uploads)" if zero else second, "0", "**met**" if zero else "**missed**"))
else:
    w("not run\n")

# ---- shards
w("## Sharding and a shared sccache\n")
sh = env("shards.env")
def run(name):
    value = sh.get(name)
    if not value:
        return None
    secs_, before, after = value.split("|")
    return float(secs_), before, after
def stats(name):
    path = R / f"sccache_{name}.txt"
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"^([A-Za-z][A-Za-z -]*?)\s{2,}(\d+)\s*$", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    return out
whole = run("whole")
if whole:
    n = sh.get("functions", "?")
    w(f"A generated workspace of {n} functions (`fn-001` ...), each a `lambda_runtime` handler echoing its")
    w("event with `serde_json` (`#[tokio::main]`), on the dependency versions of `fixtures/verify-functions/Cargo.lock`")
    w("(copied, used `--offline`). Every run: `cargo lambda-pack --compiler cargo --quiet --offline`")
    w("(x86_64-unknown-linux-musl, rust-lld, release) into its own **empty** target directory, **once**")
    w("(each takes minutes; no repeats fit), wall time from the shell. The four shards (`--shard K/4`) run")
    w("one after another on this machine; on a 4-runner CI matrix they run side by side, so the largest")
    w("is that matrix's wall time. The load average (`/proc/loadavg`, as `uptime` prints it) just before")
    w("and just after each run says how much other work shared the 2 cores (about 2: the pack alone;")
    w(f"more: other work ran beside it). Measured {machine.get('date')} from commit {machine.get('commit')}")
    features = machine.get("tool_features", "default")
    w(f"({machine.get('dirty')} uncommitted change(s)); the tool built with features: {features}"
      + (" (`BENCH_NO_DEPLOY=1`: without `deploy`, which nothing here uses)" if features != "default" else "") + ".\n")
    if n != "200":
        w(f"**{n} functions, not the 200 of the plan**: `BENCH_SHARD_FUNCTIONS={n}`, to finish in the time the run had on")
        w("a shared machine. The ratios below are for this size; with more functions the fixed cost each shard")
        w("repeats (the dependencies) weighs less.\n")
    w("| run | functions | wall time | load before | load after |")
    w("|---|---|---|---|---|")
    w(f"| whole workspace, cold | {sh.get('whole_functions', '?')} | {secs(whole[0])} | {whole[1]} | {whole[2]} |")
    shards = []
    for k in range(1, 5):
        r = run(f"shard{k}")
        if r:
            shards.append((r[0], k))
            w(f"| shard {k}/4, cold | {sh.get(f'shard{k}_functions', '?')} | {secs(r[0])} | {r[1]} | {r[2]} |")
    labels = {"sccache_cold": "whole, sccache with an empty cache (filling it)",
              "sccache_warm": "whole, clean target dir, warm shared sccache",
              "sccache_warm_shard": f"shard {sh.get('largest_shard', '?')}/4 (the largest), clean target dir, warm shared sccache"}
    for name, label in labels.items():
        r = run(name)
        if r:
            count = sh.get(f"shard{sh.get('largest_shard')}_functions", "?") if name.endswith("shard") else sh.get("whole_functions", "?")
            w(f"| {label} | {count} | {secs(r[0])} | {r[1]} | {r[2]} |")
    w("")
    # The shards together compile the dependencies four times, the whole pack once: the difference
    # is three compiles of them, which is all a warm cache can take away.
    total = sum(t for t, _ in shards)
    dependencies = (total - whole[0]) / 3 if len(shards) == 4 else None
    if shards:
        largest, k = max(shards)
        ratio = largest / whole[0]
        w(f"The four shards took {secs(total)} one after another ({total / whole[0]:.2f}x the whole pack: each")
        w("compiles the shared dependencies again); the largest, shard "
          f"{k}, {secs(largest)} = {ratio:.2f}x the whole pack. `merge` of the four output directories gave "
          + ("the same artifacts with the same sha256 as the whole pack." if sh.get("merged_equal") == "yes" else "**other artifacts than the whole pack**."))
        w("")
        label = "shards: largest of 4 vs the whole pack, cold"
        summary.append((label, f"{secs(largest)} vs {secs(whole[0])} = {ratio:.2f}x", "≤ 0.35x", verdict(ratio, 0.35)))
        notes[label] = ("each shard compiles every dependency (tokio, hyper, serde, lambda_runtime) again; only the "
                        "functions' own crates are split")
    warm, cold_fill = run("sccache_warm"), run("sccache_cold")
    ws = stats("warm")
    if warm and ws:
        hits, misses = ws.get("Cache hits", 0), ws.get("Cache misses", 0)
        rate = hits / (hits + misses) if hits + misses else 0.0
        w(f"sccache ({sh.get('sccache_version', '?')}, Debian's package), a private server with a local-disk cache")
        w("directory, `RUSTC_WRAPPER=sccache`. Its statistics (`sccache --show-stats`, zeroed before the run) for the")
        w(f"warm run: {ws.get('Compile requests', '?')} compile requests, {hits} cache hits, {misses} misses, "
          f"{ws.get('Non-cacheable calls', '?')} non-cacheable calls: a hit rate of {rate:.0%} of the cacheable compilations.")
        w("sccache never caches crates that are linked (bins, proc-macros, build scripts): each function's own")
        w("crate is compiled and linked on every runner, cache or not, so with many small functions most of the")
        w("time of a warm run is theirs. The artifacts built through the cache had "
          + ("the same sha256 as the cold pack's (without sccache)" if sh.get("cached_equal") == "yes" else "**other sha256 than the cold pack's** (without sccache)")
          + {"yes": " and the same as the run that filled the cache (hits give the bytes misses give).",
             "no": ", and other sha256 than the run that filled the cache.",
             None: "."}[sh.get("hits_equal_misses")])
        w("The functions keep their symbol tables (the workspace sets no `strip`), so this also compares the")
        w("`-C metadata` hashes cargo puts into every mangled name: they do not depend on the cache.")
        if dependencies is not None:
            w(f"What a warm cache can save: the four shards took {secs(total - whole[0])} more than the whole pack,")
            w(f"three more compiles of the dependencies, so about {secs(dependencies)} each: {dependencies / whole[0]:.0%} of the whole pack cold.")
            w("The rest is the functions' own crates, which no runner can fetch from sccache. The warm run saved")
            w(f"{secs(whole[0] - warm[0])}. With heavier dependencies (the AWS SDK takes minutes cold) the saving grows; with")
            w("many small functions the cache cannot bring a whole pack near half its cold time.")
        warm_shard, cold_shard = run("sccache_warm_shard"), run(f"shard{sh.get('largest_shard')}")
        if warm_shard and cold_shard:
            w(f"The largest shard with the warm cache took {secs(warm_shard[0])} = {warm_shard[0] / cold_shard[0]:.2f}x its cold time"
              f" and {warm_shard[0] / whole[0]:.2f}x the whole pack cold: a 4-runner matrix sharing a warm cache.")
        if cold_fill:
            w(f"Filling the empty cache cost {cold_fill[0] / whole[0]:.2f}x the pack without sccache.")
        if sh.get("sccache_redis", "").strip().lower() != "true":
            w("")
            w("**No Redis run**: the installed sccache is built without the Redis back end (`sccache --help`")
            w(f"lists `Redis: {sh.get('sccache_redis', '?')}`), so only the local-disk cache was measured. A Redis (or S3, GCS,")
            w("GitHub Actions) cache changes where the cached objects travel, not what is cached.")
        w("")
        ratio = warm[0] / whole[0]
        label = "shards: clean target dir + warm shared sccache vs none (whole pack)"
        summary.append((label, f"{secs(warm[0])} vs {secs(whole[0])} = {ratio:.2f}x", "≤ 0.5x", verdict(ratio, 0.5)))
        notes[label] = ("sccache never caches linked crates: the functions' own bin crates are compiled and linked "
                        "on every run; only the dependencies hit"
                        + (f" (about {dependencies / whole[0]:.0%} of this cold pack)" if dependencies is not None else ""))
        if warm_shard and cold_shard:
            summary.append(("shards: largest of 4, clean target dir + warm shared sccache vs the whole pack cold",
                            f"{secs(warm_shard[0])} vs {secs(whole[0])} = {warm_shard[0] / whole[0]:.2f}x", "(no target)", "—"))
        summary.append(("shards: sccache hit rate, warm run", f"{hits} of {hits + misses} cacheable compilations = {rate:.0%}", "(no target)", "—"))
else:
    w("not run\n")

# ---- the tool's own binary
w("## The tool's own binary: size and pack time\n")
bn = env("binary.env")
if bn:
    w("The tool built in its three profiles from the same commit: `debug` (`cargo build`), `release`")
    w("(`cargo build --release`: `codegen-units = 4`, not stripped; what `cargo install` builds) and `dist`")
    w("(`cargo build --profile dist`: fat LTO, one codegen unit, stripped, opt-level \"s\" but 3 for the")
    w("deflate, hashing and gzip crates; what the release archives and wheels ship), and `dist` without")
    w("the `deploy` feature (`--no-default-features`, no AWS SDK).")
    w("`release, stripped` is the release binary through `strip`, to tell what stripping alone gives.\n")
    w("```sh\ncargo build --locked --profile dist\ncargo build --locked --profile dist --no-default-features --target-dir target/no-deploy\n```\n")
    base_key = "release-stripped" if "size_release-stripped" in bn else "dist"
    base = int(bn[f"size_{base_key}"])
    labels = [("debug", "debug"), ("release", "release"), ("release-stripped", "release, stripped"),
              ("dist", "dist"), ("dist-no-deploy", "dist, `--no-default-features`")]
    w(f"| binary | bytes | MB (10^6 B) | vs {dict(labels)[base_key]} |")
    w("|---|---|---|---|")
    for key, label in labels:
        if f"size_{key}" in bn:
            n = int(bn[f"size_{key}"])
            w(f"| {label} | {n:,} | {mb(n)} | {n / base:.2f}x |")
    w("")
    if bn.get("profiles", "debug release dist") != "debug release dist":
        w(f"Only the profiles `{bn['profiles']}` were built (`BENCH_BINARY_PROFILES`).\n")
if "size_dist" in bn:
    dist_size = int(bn["size_dist"])
    summary.append(("tool binary: dist profile, default features", f"{dist_size:,} B = {mb(dist_size)}", "≤ 15 MB", verdict(dist_size, 15e6)))
if "size_dist" in bn and "size_dist-no-deploy" in bn:
    bare = int(bn["size_dist-no-deploy"])
    notes["tool binary: dist profile, default features"] = (f"the AWS SDK (`deploy`) is {mb(dist_size - bare)} of it: without it the "
                                                            f"dist binary is {mb(bare)}")
    summary.append(("tool binary: dist profile, `--no-default-features`", f"{bare:,} B = {mb(bare)}", "(no target)", "—"))
if bn:
    sections_txt = R / "binary_dist_sections.txt"
    if sections_txt.exists():
        rows = []
        for line in sections_txt.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit() and int(parts[1]) >= 100_000:
                rows.append((int(parts[1]), parts[0]))
        if rows:
            w("The dist binary's largest sections (`size -A`): " + ", ".join(f"`{name}` {mb(n)}" for n, name in sorted(rows, reverse=True)) + ".\n")
    w(f"The pack time of example/'s x86_64 half ({bn.get('example_artifacts', '?')} artifacts, {mb(bn.get('example_unzipped', 0))} of")
    w(f"binaries deflated to {mb(bn.get('example_zipped', 0))}), in the dev profile, with each binary in turn copied to the same path on")
    w("`PATH` (the tool is cargo's rustc wrapper, so its path is part of cargo's fingerprints), in one")
    w("target directory the example was built in once: a no-op run (everything up to date: the tool's own")
    w("work and cargo's freshness checks) and a run after deleting the output directory (nothing compiles;")
    w("every ZIP is written again: deflate and sha256 of the binaries). Command, in a copy of example/:\n")
    w(f"```sh\n{bn.get('pack_cmd', '?')}\n```\n")
    w("| binary | no-op | output deleted |")
    w("|---|---|---|")
    times = {}
    for key in ("debug", "release", "dist"):
        noop_r, rewrite_r = one(f"binary_noop_{key}"), one(f"binary_rewrite_{key}")
        if noop_r and rewrite_r:
            times[key] = (noop_r, rewrite_r)
            w(f"| {key} | {spread(noop_r)}, CPU {secs(cpu(noop_r))} | {spread(rewrite_r)}, CPU {secs(cpu(rewrite_r))} |")
    w("")
    if "release" in times and "dist" in times:
        (rn, rr), (dn, dr) = times["release"], times["dist"]
        w(f"dist vs release: no-op {dn['median'] / rn['median']:.2f}x, output deleted {dr['median'] / rr['median']:.2f}x"
          + (f"; debug vs release, output deleted: {times['debug'][1]['median'] / rr['median']:.2f}x" if "debug" in times else "")
          + f". Load average at the end of this section: {bn.get('load_binary_end', '?')}.\n")
        ratio = dr["median"] / rr["median"]
        summary.append(("tool binary: pack of example/ with the output deleted, dist vs release",
                        f"{secs(dr['median'])} vs {secs(rr['median'])} = {ratio:.2f}x", "≤ 1.05x (no slower, within noise)", verdict(ratio, 1.05)))
    elif "debug" in times and "dist" in times:
        (gn, gr), (dn, dr) = times["debug"], times["dist"]
        w(f"dist vs debug: no-op {dn['median'] / gn['median']:.2f}x, output deleted {dr['median'] / gr['median']:.2f}x."
          f" Load average at the end of this section: {bn.get('load_binary_end', '?')}.\n")
else:
    w("not run\n")

# ---- planner
w("## Planner\n")
w("`cargo bench --bench plan` (divan): `plan::plan` on generated inputs of 50 and 500 units")
w("(functions with attached extensions and layers, includes, stale artifacts). No target; for the")
w("record.\n")
w("```\n" + ((R / "divan_plan.txt").read_text().strip() if (R / "divan_plan.txt").exists() else "not run") + "\n```\n")
w("ZIP writer, divan's own output:\n")
w("```\n" + ((R / "divan_zip.txt").read_text().strip() if (R / "divan_zip.txt").exists() else "not run") + "\n```\n")

rows = [f"| {a} | {b} | {c} | {d} | {notes.get(a, '') if 'missed' in d else ''} |" for a, b, c, d in summary]
out[summary_at:summary_at] = rows
print("\n".join(out))
PYEOF
# Sections that can be measured alone: their heading and the prefix of their summary rows.
case $SECTIONS in
  image) SPLICE_HEADING="## Writing an OCI image" SPLICE_ROWS="| OCI image" ;;
  shards) SPLICE_HEADING="## Sharding and a shared sccache" SPLICE_ROWS="| shards:" ;;
  binary) SPLICE_HEADING="## The tool's own binary" SPLICE_ROWS="| tool binary:" ;;
  *) SPLICE_HEADING="" SPLICE_ROWS="" ;;
esac
if [ -n "$SPLICE_HEADING" ] && [ -f "$OUTPUT" ] && [ ! -f "$RESULTS/machine-earlier.env" ]; then
  # Only that section was measured and no earlier results exist: splice the section and its
  # summary rows into the existing file, keeping every other section as it was.
  python3 - "$OUTPUT" "$OUTPUT.tmp" "$SPLICE_HEADING" "$SPLICE_ROWS" >"$OUTPUT.spliced" <<'EOF'
import re, sys
old, new = (open(p).read() for p in sys.argv[1:3])
heading, row_prefix = sys.argv[3:5]
def sections(text):
    parts = re.split(r"(?m)^(?=## )", text)
    return parts[0], parts[1:]
def section(parts, prefix):
    return next((i for i, p in enumerate(parts) if p.startswith(prefix)), None)
_, new_parts = sections(new)
head, old_parts = sections(old)
measured = new_parts[section(new_parts, heading)]
at = section(old_parts, heading)
if at is None:
    at = section(old_parts, "## Planner") or len(old_parts)
    old_parts.insert(at, measured)
else:
    old_parts[at] = measured
rows = [l for l in new.splitlines() if l.startswith(row_prefix)]
summary = old_parts[section(old_parts, "## Summary")].splitlines()
summary = [l for l in summary if not l.startswith(row_prefix)]
last_row = max(i for i, l in enumerate(summary) if l.startswith("|"))
summary[last_row + 1:last_row + 1] = rows
old_parts[section(old_parts, "## Summary")] = "\n".join(summary) + "\n"
sys.stdout.write(head + "".join(old_parts))
EOF
  mv "$OUTPUT.spliced" "$OUTPUT.tmp"
elif [ -f "$OUTPUT" ]; then
  # A whole report: sections measured by hand (their heading says so) have no results here, so
  # they are carried over from the existing file, after the generated ones.
  python3 - "$OUTPUT" "$OUTPUT.tmp" >"$OUTPUT.kept" <<'EOF'
import re, sys
old, new = (open(p).read() for p in sys.argv[1:3])
def sections(text):
    return re.split(r"(?m)^(?=## )", text)[1:]
generated = {part.splitlines()[0] for part in sections(new)}
kept = [part for part in sections(old)
        if "(measured by hand)" in part.splitlines()[0] and part.splitlines()[0] not in generated]
sys.stdout.write(new.rstrip("\n") + "\n\n" + "".join(kept) if kept else new)
EOF
  mv "$OUTPUT.kept" "$OUTPUT.tmp"
fi
mv "$OUTPUT.tmp" "$OUTPUT"
say Done "$OUTPUT (raw results in $RESULTS)"
