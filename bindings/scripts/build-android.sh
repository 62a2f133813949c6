#!/usr/bin/env bash
# Builds the Android libraries (arm64-v8a, armeabi-v7a, x86_64) as jniLibs, linked for 16 KB
# pages (required by Google Play for Android 15+ devices), plus the Kotlin bindings.
# Needs the Android NDK (ANDROID_NDK_HOME); it is not run on the project's Linux machines.
#
#   bindings/scripts/build-android.sh
# Output: bindings/build/android/jniLibs/<abi>/libmicrocohort_ffi.so and
#         bindings/build/kotlin/dev/microcohort/microcohort.kt
# The app adds that file and bindings/kotlin/src/main/kotlin/ (the Flow adapter over listeners)
# to its sources.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK}"
command -v cargo-ndk >/dev/null || cargo install --locked cargo-ndk
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android

out=bindings/build/android/jniLibs
rm -rf "$out"
# 16 KB page alignment; only for this build, so host builds keep their flags.
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384" \
  cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$out" \
  build --locked --profile release-ffi -p microcohort-ffi

# The Kotlin comes from the unstripped host library (cargo-ndk's copies may be stripped).
bindings/scripts/generate.sh --release
find "$out" -name '*.so' -exec ls -l {} +
