#!/usr/bin/env bash
# Builds MicrocohortFFI.xcframework (iOS device, iOS simulator, macOS) and the Swift sources for
# Package.swift. Runs on a Mac with Xcode and rustup; it is not run on the project's Linux machines.
#
#   bindings/swift/build-xcframework.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release-ffi
swift_dir=bindings/swift
# Wherever cargo builds: CARGO_TARGET_DIR when set, else the workspace's target/.
build="${CARGO_TARGET_DIR:-target}"
ios=aarch64-apple-ios
sims=(aarch64-apple-ios-sim x86_64-apple-ios)
macs=(aarch64-apple-darwin x86_64-apple-darwin)

rustup target add "$ios" "${sims[@]}" "${macs[@]}"
for target in "$ios" "${sims[@]}" "${macs[@]}"; do
  cargo build --locked --profile "$profile" --target "$target" -p microcohort-ffi
done

# Swift and the C header come from the unstripped host library (generate.sh builds it).
bindings/scripts/generate.sh --release
headers=bindings/build/xcframework/headers
rm -rf "$headers" && mkdir -p "$headers"
cp bindings/build/swift/MicrocohortFFI.h "$headers/"
cp bindings/build/swift/MicrocohortFFI.modulemap "$headers/module.modulemap"
mkdir -p "$swift_dir/Sources/Microcohort"
cp bindings/build/swift/Microcohort.swift "$swift_dir/Sources/Microcohort/"

# One fat static library per platform: the simulator and macOS slices have two architectures.
lib=libmicrocohort_ffi.a
fat=bindings/build/xcframework
lipo -create $(for t in "${sims[@]}"; do echo "$build/$t/$profile/$lib"; done) -output "$fat/sim-$lib"
lipo -create $(for t in "${macs[@]}"; do echo "$build/$t/$profile/$lib"; done) -output "$fat/macos-$lib"

rm -rf "$swift_dir/MicrocohortFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$build/$ios/$profile/$lib" -headers "$headers" \
  -library "$fat/sim-$lib" -headers "$headers" \
  -library "$fat/macos-$lib" -headers "$headers" \
  -output "$swift_dir/MicrocohortFFI.xcframework"
echo "built $swift_dir/MicrocohortFFI.xcframework and $swift_dir/Sources/Microcohort/Microcohort.swift"
