#!/bin/sh
# tests/run.sh: build tiercache three times, with -Werror: normal and with
# AddressSanitizer + UndefinedBehaviorSanitizer, each running every test,
# and with ThreadSanitizer, running the unit tests and the multi-threaded
# race tests; then a fourth, with clang, of the libFuzzer targets
# (tests/fuzz), which replays their seeds and fuzzes each for a bounded time
# (TC_FUZZ_SECONDS, 90 by default). Installs what is missing first
# (tools/deps.sh test; clang for the fuzz stage). Exit status 0 only if
# every test passed in every build.
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

# libFuzzer (tests/fuzz): replay the checked-in seeds and regressions, then
# fuzz the three targets side by side for TC_FUZZ_SECONDS (default 90) on a
# copy of their seeds; any crash, timeout (5 s), or input that takes over
# 2 GB or allocates over 256 MB at once (the dump reader promises to grow
# with the bytes read) fails.
fuzz_start=$(date +%s)
missing=""
for p in clang libclang-rt-dev; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: missing packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "tests/run.sh: installing$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
dir=build-test-fuzz
echo "=== fuzz build ($dir)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTC_WERROR=ON -DCMAKE_C_COMPILER=clang \
    -DTC_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$jobs" --target fuzz_parse fuzz_meta fuzz_dumpfile
echo "=== fuzz: replay of the seeds and regressions"
ctest --test-dir "$dir" --output-on-failure -L fuzz
secs=${TC_FUZZ_SECONDS:-90}
targets="fuzz_parse fuzz_meta fuzz_dumpfile"
[ "$secs" -gt 0 ] || targets="" # 0: the replay only (libFuzzer reads 0 as "no limit")
echo "=== fuzz: each target for ${secs}s"
work="$dir/fuzz-work"
rm -rf "$work"
pids=""
for t in $targets; do
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp tests/fuzz/corpus/$t/* "$work/$t/corpus/"
    seeds="$work/$t/corpus"
    [ -d "tests/fuzz/regressions/$t" ] && seeds="$seeds tests/fuzz/regressions/$t"
    "$dir/tests/fuzz/$t" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
        -malloc_limit_mb=256 -print_final_stats=1 -dict="tests/fuzz/$t.dict" \
        -artifact_prefix="$work/$t/artifacts/" $seeds >"$work/$t.log" 2>&1 &
    pids="$pids $t:$!"
done
failed=""
for tp in $pids; do
    t=${tp%%:*}
    if wait "${tp#*:}"; then
        echo "$t: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" | tail -n 1)"
        continue
    fi
    failed="$failed $t"
    echo "=== $t FAILED: $work/$t.log from the first error"
    first=$(grep -n -m 1 -E 'ERROR|runtime error|invariant broken' "$work/$t.log" | cut -d: -f1)
    sed -n "${first:-1},\$p" "$work/$t.log" | tail -n 150
    for f in "$work/$t/artifacts"/*; do
        [ -f "$f" ] || continue
        echo "--- $f ($(wc -c <"$f") bytes), hex-escaped (at most 4096):"
        head -c 4096 "$f" | od -An -v -tx1 | awk -v h=0123456789abcdef '
            { for (i = 1; i <= NF; i++) {
                v = index(h, substr($i, 1, 1)) * 16 + index(h, substr($i, 2, 1)) - 17
                if (v >= 32 && v < 127 && v != 92) printf "%c", v; else printf "\\x%s", $i
              } }
            END { printf "\n" }'
    done
done
echo "=== fuzz stage: $(($(date +%s) - fuzz_start))s"
if [ -n "$failed" ]; then
    echo "=== fuzzing failed (crash, timeout or out of memory) in:$failed"
    echo "    (fix it, and add the input to tests/fuzz/regressions/<target>/)"
    exit 1
fi
echo "=== all tests passed (normal, address/undefined and thread sanitizer builds, fuzzing)"
