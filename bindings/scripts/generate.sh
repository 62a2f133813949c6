#!/usr/bin/env bash
# Builds the host library and generates the Kotlin and Swift bindings from it.
#
#   bindings/scripts/generate.sh [--release] [--features testing]
#
# Output: bindings/build/kotlin/dev/microcohort/microcohort.kt,
#         bindings/build/swift/{Microcohort.swift, MicrocohortFFI.h, MicrocohortFFI.modulemap},
#         bindings/build/lib/ (the host library the Kotlin tests load).
# Bindings are generated from the unstripped library: stripping removes the metadata they come from.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=dev
dir=debug
features=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release-ffi; dir=release-ffi ;;
    --features) features=(--features "$(echo "$2" | sed 's/\([^,]*\)/microcohort-ffi\/\1/g')"); shift ;;
    *) echo "usage: $0 [--release] [--features LIST]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$profile" = dev ]; then
  # The whole workspace with every target, so dependencies resolve to the same features as
  # `cargo test --workspace` and its build is reused (building the two crates alone recompiles
  # most dependencies with other features). This also builds the server the Kotlin tests start.
  cargo build --locked --workspace --all-targets "${features[@]}"
else
  cargo build --locked --profile "$profile" -p microcohort-ffi "${features[@]}"
  cargo build --locked -p microcohort-uniffi-bindgen
fi

# Wherever cargo builds: CARGO_TARGET_DIR when set, else the workspace's target/.
target="${CARGO_TARGET_DIR:-target}"
case "$(uname -s)" in
  Darwin) lib="$target/$dir/libmicrocohort_ffi.dylib" ;;
  *) lib="$target/$dir/libmicrocohort_ffi.so" ;;
esac
out=bindings/build
rm -rf "$out/kotlin" "$out/swift" "$out/lib"
mkdir -p "$out/lib"
cp "$lib" "$out/lib/"

bindgen="$target/debug/uniffi-bindgen"
"$bindgen" generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
"$bindgen" generate --library "$lib" --language swift --out-dir "$out/swift" --no-format
echo "generated: $(find "$out/kotlin" "$out/swift" -type f | sort | tr '\n' ' ')"
