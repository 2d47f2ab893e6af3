#!/bin/sh
# tests/run.sh: build tiercache twice (normal, and with AddressSanitizer +
# UndefinedBehaviorSanitizer), with -Werror, and run every test in both.
# Installs what is missing first (tools/deps.sh test). Exit status 0 only
# if every test passed in both builds.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh test
jobs=$(nproc 2>/dev/null || echo 2)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
for variant in normal sanitize; do
    dir="build-test-$variant"
    sanitize=OFF
    [ "$variant" = sanitize ] && sanitize=ON
    echo "=== $variant build ($dir)"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTC_WERROR=ON \
        -DTC_SANITIZE="$sanitize" >/dev/null
    cmake --build "$dir" -j "$jobs"
    echo "=== $variant tests"
    ctest --test-dir "$dir" --output-on-failure -j 2
done
echo "=== all tests passed (normal and sanitizer builds)"
