#!/usr/bin/env bash
# Type-checks the tool (library and binary) for macOS from a Linux machine: `cargo check --target <triple>` for each
# Apple triple given (both when none is), with zig as the C compiler of the build scripts that
# compile C (ring, libdeflate-sys). Nothing is linked, so no macOS SDK is needed.
#
#   ./scripts/check-macos.sh                          # aarch64-apple-darwin and x86_64-apple-darwin
#   ./scripts/check-macos.sh aarch64-apple-darwin     # one of them
#
# zig is found as the tool finds it: the `ziglang` package of `python3`, else `zig` on PATH
# (scripts/setup.sh installs the former and the rustup targets).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-apple-darwin x86_64-apple-darwin)

zig=$(python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))' 2>/dev/null) \
  || zig=$(command -v zig) \
  || { echo "error: zig is not installed" >&2; echo "help: run scripts/setup.sh, or \`pip install ziglang\`" >&2; exit 1; }

# cc-rs passes clang's `--target=arm64-apple-macosx`, which zig does not parse; the wrapper drops
# it and names zig's own target instead. One wrapper per triple, in the target directory.
wrappers="${CARGO_TARGET_DIR:-target}/macos-cc"
mkdir -p "$wrappers"
wrappers=$(cd "$wrappers" && pwd)
for target in "${targets[@]}"; do
  case "$target" in
    aarch64-apple-darwin) zig_target=aarch64-macos ;;
    x86_64-apple-darwin) zig_target=x86_64-macos ;;
    *) echo "error: \`$target\` is not a macOS target" >&2; echo "help: give aarch64-apple-darwin or x86_64-apple-darwin" >&2; exit 1 ;;
  esac
  cc="$wrappers/$target-cc"
  cat >"$cc.tmp" <<EOF
#!/usr/bin/env bash
args=()
for arg in "\$@"; do
  case "\$arg" in --target=*) ;; *) args+=("\$arg") ;; esac
done
exec "$zig" cc -target $zig_target "\${args[@]}"
EOF
  printf '#!/bin/sh\nexec "%s" ar "$@"\n' "$zig" >"$wrappers/$target-ar.tmp"
  chmod +x "$cc.tmp" "$wrappers/$target-ar.tmp"
  mv "$cc.tmp" "$cc"
  mv "$wrappers/$target-ar.tmp" "$wrappers/$target-ar"

  triple_env=${target//-/_}
  say Checking "$target (C through zig cc -target $zig_target)"
  env "CC_$triple_env=$cc" "AR_$triple_env=$wrappers/$target-ar" \
    cargo check --locked --target "$target"
done
