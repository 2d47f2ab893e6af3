#!/bin/sh
# tests/run.sh: build tiercache three times, with -Werror: normal and with
# AddressSanitizer + UndefinedBehaviorSanitizer, each running every test,
# and with ThreadSanitizer, running the unit tests and the multi-threaded
# race tests. Installs what is missing first (tools/deps.sh test). Exit
# status 0 only if every test passed in every build.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh test
jobs=$(nproc 2>/dev/null || echo 2)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
# detect_deadlocks=0: see tests/tsan.supp
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp detect_deadlocks=0 second_deadlock_stack=1"
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
dir=build-test-thread
echo "=== thread sanitizer build ($dir)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTC_WERROR=ON -DTC_TSAN=ON >/dev/null
cmake --build "$dir" -j "$jobs"
echo "=== thread sanitizer tests"
ctest --test-dir "$dir" --output-on-failure -j 2 -L unit
ctest --test-dir "$dir" --output-on-failure -j 2 -R '^check_(concurrency|flash_race|flash_cold)$'
echo "=== all tests passed (normal, address/undefined and thread sanitizer builds)"
