#!/bin/bash
# tools/bench-compare.sh: tiercached next to memcached, measured the same way.
#
# Starts, on loopback, with the same RAM budget (and the same flash budget
# where there is one):
#   memcached       RAM only
#   memcached-ext   memcached with extstore (skipped, with a note, if this
#                   memcached was built without it), plus --ext-opts: by
#                   default slab_automove=2, without which memcached 1.6.18
#                   at a small -m keeps flash headers in one slab page (about
#                   11,000 items) and its flash tier barely helps (memcached
#                   issue #541)
#   tiercached      with its flash tier: --flash-size=FLASH and a data dir
#                   in the work directory
# and runs the same tiercache-bench workloads against each, alternating
# servers (A B C A B C ..., --rounds rounds), so slow drifts of the machine
# hit every server alike. Prints one Markdown table: per workload and server
# the median over rounds of ops/s, hit ratio and p99 latency, their ratios
# to memcached, and the spread of ops/s over the rounds (noise indicator).
#
# Workloads (values --value-size bytes; the RAM-resident key space holds
# half the RAM budget in values):
#   ram      RAM-resident, uniform keys, 90 % get / 10 % set
#   mget     RAM-resident, uniform keys, gets of 10 keys each, no sets
#   zipf8x   key space 8x the RAM budget, Zipf 0.99, 90/10 (where a flash
#            tier matters)
#   write    RAM-resident, uniform keys, 50 % get / 50 % set
# Servers are started fresh for each workload and filled (every key set
# once) before its rounds. zipf8x then runs --settle seconds of its own
# workload, unrecorded, so that RAM holds the popular keys rather than the
# last ones filled before round 1 measures anything.
#
# Usage: tools/bench-compare.sh [--duration=S] [--rounds=N] [--ram=MB]
#          [--flash=MB] [--value-size=B] [--server-threads=N]
#          [--connections=N] [--pipeline=N] [--warmup=S] [--settle=S]
#          [--workloads="ram mget zipf8x write"] [--ext-opts=OPTS] [--build=DIR]
#          [--base-port=P] [--results=FILE] [--keep]
# Every option also reads from the environment (DURATION, ROUNDS, ...).
# Exit: 0 done, 1 a server or a run failed, 2 bad usage.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
RAM_MB=${RAM_MB:-64}
FLASH_MB=${FLASH_MB:-1024}
VALUE_SIZE=${VALUE_SIZE:-1000}
SERVER_THREADS=${SERVER_THREADS:-2}
CONNECTIONS=${CONNECTIONS:-4}
PIPELINE=${PIPELINE:-1}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-10}
WORKLOADS=${WORKLOADS:-"ram mget zipf8x write"}
BUILD=${BUILD:-build}
BASE_PORT=${BASE_PORT:-23211}
RESULTS=${RESULTS:-}
KEEP=${KEEP:-0}
EXT_OPTS=${EXT_OPTS-slab_automove=2}
MEMCACHED=${MEMCACHED_BIN:-memcached}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die_usage() {
    echo "bench-compare.sh: $1 (see --help)" >&2
    exit 2
}

for arg in "$@"; do
    case "$arg" in
    --duration=*) DURATION=${arg#*=} ;;
    --rounds=*) ROUNDS=${arg#*=} ;;
    --ram=*) RAM_MB=${arg#*=} ;;
    --flash=*) FLASH_MB=${arg#*=} ;;
    --value-size=*) VALUE_SIZE=${arg#*=} ;;
    --server-threads=*) SERVER_THREADS=${arg#*=} ;;
    --connections=*) CONNECTIONS=${arg#*=} ;;
    --pipeline=*) PIPELINE=${arg#*=} ;;
    --warmup=*) WARMUP=${arg#*=} ;;
    --settle=*) SETTLE=${arg#*=} ;;
    --workloads=*) WORKLOADS=${arg#*=} ;;
    --ext-opts=*) EXT_OPTS=${arg#*=} ;;
    --build=*) BUILD=${arg#*=} ;;
    --base-port=*) BASE_PORT=${arg#*=} ;;
    --results=*) RESULTS=${arg#*=} ;;
    --keep) KEEP=1 ;;
    --help | -h)
        usage
        exit 0
        ;;
    --version)
        echo "bench-compare.sh (tiercache tools)"
        exit 0
        ;;
    *) die_usage "unknown argument '$arg'" ;;
    esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_num() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
is_num "$DURATION" || die_usage "--duration: '$DURATION' is not a number of seconds"
is_num "$WARMUP" || die_usage "--warmup: '$WARMUP' is not a number of seconds"
is_num "$SETTLE" || die_usage "--settle: '$SETTLE' is not a number of seconds"
for v in ROUNDS RAM_MB FLASH_MB VALUE_SIZE SERVER_THREADS CONNECTIONS PIPELINE BASE_PORT; do
    if ! is_uint "${!v}" || [ "${!v}" -eq 0 ]; then
        die_usage "$v: '${!v}' is not a positive integer"
    fi
done
for w in $WORKLOADS; do
    case "$w" in ram | mget | zipf8x | write) ;; *) die_usage "unknown workload '$w'" ;; esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BENCH="$BUILD/tools/tiercache-bench"
TIERCACHED="$BUILD/tiercached"
for bin in "$BENCH" "$TIERCACHED"; do
    [ -x "$bin" ] || die_usage "$bin not found: build first (cmake -S . -B build && cmake --build build)"
done
command -v "$MEMCACHED" >/dev/null || die_usage "memcached not found (apt-get install memcached)"

WORK=$(mktemp -d /tmp/tc-bench-compare.XXXXXX)
[ -n "$RESULTS" ] || RESULTS="$WORK/results.tsv"
: >"$RESULTS"
declare -A PID=()

cleanup() {
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
    done
    PID=()
    if [ "$KEEP" = 1 ]; then
        echo "bench-compare.sh: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

log() { echo "bench-compare.sh: $*" >&2; }

# Is something listening on 127.0.0.1:$1?
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

NEXT_PORT=$BASE_PORT
free_port() {
    while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    echo "$NEXT_PORT"
    NEXT_PORT=$((NEXT_PORT + 1))
}

# Wait (at most about 10 s) until the server on port $1 answers "version".
wait_ready() {
    local port=$1 tries line
    for ((tries = 0; tries < 100; tries++)); do
        line=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'version\r\n' >&3 &&
            read -r -t 2 reply <&3 && echo "$reply") 2>/dev/null || true)
        case "$line" in VERSION*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

USER_OPT=()
[ "$(id -u)" = 0 ] && USER_OPT=(-u root) # memcached refuses to run as root without -u

# start_server NAME PORT: start it in the background, wait until it answers.
start_server() {
    local name=$1 port=$2
    case "$name" in
    memcached)
        "$MEMCACHED" "${USER_OPT[@]}" -l 127.0.0.1 -p "$port" -U 0 -m "$RAM_MB" \
            -t "$SERVER_THREADS" >"$WORK/$name.log" 2>&1 &
        ;;
    memcached-ext)
        rm -rf "$WORK/extstore"
        "$MEMCACHED" "${USER_OPT[@]}" -l 127.0.0.1 -p "$port" -U 0 -m "$RAM_MB" \
            -t "$SERVER_THREADS" -o "ext_path=$WORK/extstore:${FLASH_MB}m${EXT_OPTS:+,$EXT_OPTS}" \
            >"$WORK/$name.log" 2>&1 &
        ;;
    tiercached)
        rm -rf "$WORK/tc-data"
        "$TIERCACHED" -l 127.0.0.1 -p "$port" -m "$RAM_MB" -t "$SERVER_THREADS" \
            --flash-size="${FLASH_MB}m" --data-dir="$WORK/tc-data" >"$WORK/$name.log" 2>&1 &
        ;;
    esac
    PID[$name]=$!
    if ! wait_ready "$port"; then
        log "$name did not start on port $port:"
        sed 's/^/    /' "$WORK/$name.log" >&2
        return 1
    fi
}

stop_server() {
    local name=$1
    if [ -n "${PID[$name]:-}" ]; then
        kill "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
        unset "PID[$name]"
    fi
}

# The value of a numeric field of a one-line JSON object ($1 = json, $2 = name).
jfield() {
    local v
    v=$(printf '%s\n' "$1" | grep -o "\"$2\":[-0-9.e+]*" | head -1)
    echo "${v#*:}"
}

# --- does this memcached have extstore? ----------------------------------------
SERVERS="memcached memcached-ext tiercached"
EXT_NOTE=""
if ! "$MEMCACHED" -h 2>/dev/null | grep -q ext_path; then
    EXT_NOTE="this memcached ($("$MEMCACHED" -V)) was built without extstore: memcached-ext skipped"
else
    port=$(free_port)
    if start_server memcached-ext "$port" 2>/dev/null; then
        stop_server memcached-ext
    else
        stop_server memcached-ext
        EXT_NOTE="memcached would not start with -o ext_path=...: memcached-ext skipped"
    fi
fi
if [ -n "$EXT_NOTE" ]; then
    log "$EXT_NOTE"
    SERVERS="memcached tiercached"
fi

# --- workloads --------------------------------------------------------------------
KEYS_RAM=$((RAM_MB * 1048576 / 2 / VALUE_SIZE))
KEYS_BIG=$((RAM_MB * 1048576 * 8 / VALUE_SIZE))
if [ $((FLASH_MB * 1048576)) -lt $((KEYS_BIG * (VALUE_SIZE + 100))) ]; then
    log "note: --flash=$FLASH_MB MB is less than the zipf8x data; extstore will drop items"
fi

workload_keys() {
    case "$1" in zipf8x) echo "$KEYS_BIG" ;; *) echo "$KEYS_RAM" ;; esac
}

workload_args() {
    case "$1" in
    ram) echo "-k $KEYS_RAM --key-pattern=uniform -r 9:1" ;;
    mget) echo "-k $KEYS_RAM --key-pattern=uniform -r 1:0 --multiget=10" ;;
    zipf8x) echo "-k $KEYS_BIG --key-pattern=zipf --zipf-alpha=0.99 -r 9:1" ;;
    write) echo "-k $KEYS_RAM --key-pattern=uniform -r 1:1" ;;
    esac
}

workload_title() {
    case "$1" in
    ram) echo "RAM-resident 90/10 get/set" ;;
    mget) echo "multi-get, 10 keys per get" ;;
    zipf8x) echo "key space 8x RAM, Zipf 0.99, 90/10" ;;
    write) echo "write-heavy 50/50 get/set" ;;
    esac
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
START_LOAD=$(loadavg)
log "servers: $SERVERS; workloads: $WORKLOADS; $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
log "raw results: $RESULTS"

# --- run ----------------------------------------------------------------------------
declare -A PORT=()
for wl in $WORKLOADS; do
    keys=$(workload_keys "$wl")
    for s in $SERVERS; do
        PORT[$s]=$(free_port)
        start_server "$s" "${PORT[$s]}" || exit 1
        log "[$wl] filling $s with $keys keys of $VALUE_SIZE bytes"
        if ! "$BENCH" -s "127.0.0.1:${PORT[$s]}" -k "$keys" --key-pattern=sequential -r 0:1 \
            -n "$keys" -c 4 -P 8 --value-size="$VALUE_SIZE" -q --json >"$WORK/fill.json"; then
            log "[$wl] filling $s failed"
            exit 1
        fi
    done
    sleep 2 # let extstore flush its write buffers
    if [ "$wl" = zipf8x ] && [ "$SETTLE" != 0 ]; then
        for s in $SERVERS; do
            log "[$wl] settling $s: ${SETTLE}s of the workload, not recorded"
            # shellcheck disable=SC2046 # workload_args is meant to split into words
            "$BENCH" -s "127.0.0.1:${PORT[$s]}" -t 1 -c "$CONNECTIONS" -P "$PIPELINE" \
                -d "$SETTLE" --value-size="$VALUE_SIZE" --seed=1000 $(workload_args "$wl") \
                -q --json >/dev/null 2>&1 || true
        done
    fi
    for round in $(seq "$ROUNDS"); do
        for s in $SERVERS; do
            # A run with wrong values exits 1 but still prints its JSON line: record it.
            # shellcheck disable=SC2046 # workload_args is meant to split into words
            json=$("$BENCH" -s "127.0.0.1:${PORT[$s]}" -t 1 -c "$CONNECTIONS" -P "$PIPELINE" \
                -d "$DURATION" -w "$WARMUP" --value-size="$VALUE_SIZE" --seed="$round" \
                $(workload_args "$wl") -q --json 2>"$WORK/bench.err" | tail -1) || true
            case "$json" in
            "{"*) ;;
            *)
                log "[$wl] round $round on $s failed: $(cat "$WORK/bench.err")"
                exit 1
                ;;
            esac
            ops=$(jfield "$json" ops_per_sec)
            hit=$(jfield "$json" hit_ratio)
            p50=$(jfield "$json" p50_us)
            p99=$(jfield "$json" p99_us)
            wrong=$(jfield "$json" wrong_values)
            errors=$(jfield "$json" errors)
            cpu=$(jfield "$json" client_cpu_pct)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$s" "$round" "$ops" \
                "$hit" "$p50" "$p99" "$wrong" "$errors" "$cpu" "$(loadavg)" >>"$RESULTS"
            log "[$wl] round $round/$ROUNDS $s: $ops ops/s, hit $hit, p99 ${p99} us, wrong $wrong, errors $errors (load $(loadavg))"
        done
    done
    for s in $SERVERS; do stop_server "$s"; done
done
END_LOAD=$(loadavg)

# --- the table ------------------------------------------------------------------------
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "## tiercache-bench comparison, $START_DATE"
echo
echo "- machine: $(nproc) cores, ${MODEL:-unknown CPU}, $(free -g | awk '/^Mem:/ {print $2}') GB RAM; load average $START_LOAD at start, $END_LOAD at end"
echo "- servers: $("$MEMCACHED" -V), tiercached $("$TIERCACHED" --version | awk '{print $2}'); each -t $SERVER_THREADS, -m $RAM_MB (RAM budget $RAM_MB MB), flash budget $FLASH_MB MB where there is a flash tier"
[ -z "$EXT_NOTE" ] && echo "- memcached-ext: -o ext_path=FILE:${FLASH_MB}m${EXT_OPTS:+,$EXT_OPTS}"
echo "- client: tiercache-bench -t 1 -c $CONNECTIONS -P $PIPELINE, closed loop, ${DURATION}s per run after ${WARMUP}s warm-up, values $VALUE_SIZE bytes; $ROUNDS rounds, servers alternated; figures are medians over rounds"
echo "- key spaces: RAM-resident $KEYS_RAM keys, zipf8x $KEYS_BIG keys; every server filled (each key set once) before a workload's rounds; zipf8x then settled with ${SETTLE}s of its workload"
[ -n "$EXT_NOTE" ] && echo "- $EXT_NOTE"
echo "- tiercached has no flash tier yet (--flash-size/--data-dir are accepted and ignored): it runs RAM-only"
echo
echo "| workload | server | ops/s | ops/s vs memcached | hit ratio | p99 us | p99 vs memcached | ops/s spread | wrong values |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' -v workloads="$WORKLOADS" -v servers="$SERVERS" '
# median of the n values in v[1..n] (insertion sort; n is the round count)
function median(v, n,    i, j, t) {
    for (i = 2; i <= n; i++) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
    k = $1 SUBSEP $2
    n[k]++
    ops[k, n[k]] = $4; hit[k, n[k]] = $5; p99[k, n[k]] = $7
    wrong[k] += $8
    if (!(k in lo) || $4 < lo[k]) lo[k] = $4
    if (!(k in hi) || $4 > hi[k]) hi[k] = $4
}
END {
    nw = split(workloads, W, " "); ns = split(servers, S, " ")
    title["ram"] = "RAM-resident 90/10"; title["mget"] = "multi-get 10 keys"
    title["zipf8x"] = "8x RAM, Zipf 0.99, 90/10"; title["write"] = "write-heavy 50/50"
    for (a = 1; a <= nw; a++) {
        for (b = 1; b <= ns; b++) {
            k = W[a] SUBSEP S[b]
            if (!(k in n)) continue
            for (i = 1; i <= n[k]; i++) { o[i] = ops[k, i]; h[i] = hit[k, i]; q[i] = p99[k, i] }
            mo[k] = median(o, n[k]); mh[k] = median(h, n[k]); mq[k] = median(q, n[k])
        }
        base = W[a] SUBSEP "memcached"
        for (b = 1; b <= ns; b++) {
            k = W[a] SUBSEP S[b]
            if (!(k in n)) continue
            r1 = (base in mo) && mo[base] > 0 ? sprintf("%.2fx", mo[k] / mo[base]) : "-"
            r2 = (base in mq) && mq[base] > 0 ? sprintf("%.2fx", mq[k] / mq[base]) : "-"
            spread = mo[k] > 0 ? sprintf("%.0f%%", 100 * (hi[k] - lo[k]) / mo[k]) : "-"
            printf "| %s | %s | %.0f | %s | %.3f | %.0f | %s | %s | %d |\n", title[W[a]], S[b], \
                mo[k], r1, mh[k], mq[k], r2, spread, wrong[k]
        }
    }
}' "$RESULTS"
echo
echo "ops/s: operations per second (a multi-get of 10 keys is one operation); hit ratio: keys found with the right bytes / keys asked for; p99: 99th-percentile latency of all operations, send to last reply byte; spread: (max - min) / median of ops/s over the rounds; ratios are to memcached (RAM only) on the same workload (ops/s: higher is better, p99: lower is better)."
