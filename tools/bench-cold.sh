#!/bin/bash
# tools/bench-cold.sh: gets of flash-resident keys against gets of
# RAM-resident keys, through the network, on one tiercached.
#
# Starts tiercached (-m RAM, a flash tier in a scratch data dir), sets
# COLD keys ("cold:" prefix, more than RAM holds), then HOT keys ("hot:",
# a tenth of RAM), waits for the flash writer, and reads the first
# COLD/2 cold keys once in order (so the data is in the page cache). Then,
# alternating for --rounds rounds: --seconds of uniform gets over the hot
# keys, then over the first half of the cold keys (the oldest: on flash).
# Reports ops/s of each, their ratio, and the share of cold gets that were
# flash hits (from `stats tiers`; a second hit may bring a key back to RAM).
#
# Usage: tools/bench-cold.sh [--build=DIR] [--ram=MB] [--cold=N] [--size=B]
#          [--rounds=N] [--seconds=S] [--threads=N] [--connections=N]
set -euo pipefail
build=build ram=64 cold=2000000 size=100 rounds=3 seconds=10 threads=2 conns=4
for arg in "$@"; do
    case "$arg" in
    --build=*) build=${arg#*=} ;;
    --ram=*) ram=${arg#*=} ;;
    --cold=*) cold=${arg#*=} ;;
    --size=*) size=${arg#*=} ;;
    --rounds=*) rounds=${arg#*=} ;;
    --seconds=*) seconds=${arg#*=} ;;
    --threads=*) threads=${arg#*=} ;;
    --connections=*) conns=${arg#*=} ;;
    *) echo "bench-cold.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
bench=$build/tools/tiercache-bench
tiercached=$build/tiercached
for f in "$bench" "$tiercached"; do
    [ -x "$f" ] || { echo "bench-cold.sh: $f not built" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-cold.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$tiercached" -p "$port" -m "$ram" -t "$threads" --data-dir="$work/data" --flash-size=8g \
    2>"$work/log" &
pid=$!

stat_of() { # name -> value from `stats`
    python3 - "$port" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
for line in buf.decode().split("\r\n"):
    p = line.split()
    if len(p) == 3 and p[1] == sys.argv[2]:
        print(p[2])
        break
EOF
}
for _ in $(seq 100); do stat_of pid >/dev/null 2>&1 && break; sleep 0.1; done

run() { # prefix keys [extra...] -> JSON line
    local prefix=$1 keys=$2
    shift 2
    "$bench" -s "127.0.0.1:$port" -t "$threads" -c "$conns" --key-prefix="$prefix" -k "$keys" \
        --value-size="$size" -q --json "$@" | tail -1
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

hot=$((ram * 1048576 / 10 / (size + 60)))
echo "filling $cold cold and $hot hot keys of ${size} B (-m $ram)" >&2
run cold: "$cold" --fill --key-pattern=sequential -r 0:1 -n 1 >/dev/null
run hot: "$hot" --fill --key-pattern=sequential -r 0:1 -n 1 >/dev/null
for _ in $(seq 600); do [ "$(stat_of writer_queue_ops)" = 0 ] && break; sleep 0.1; done
half=$((cold / 2))
run cold: "$half" --key-pattern=sequential -r 1:0 -n "$half" >/dev/null # into the page cache

printf '%-6s %12s %12s %8s %14s\n' round "RAM gets/s" "cold gets/s" ratio "flash hit share"
sum_ratio=0
for r in $(seq "$rounds"); do
    h=$(run hot: "$hot" --key-pattern=uniform -r 1:0 -d "$seconds")
    f0=$(stat_of flash_hits) g0=$(stat_of cmd_get)
    c=$(run cold: "$half" --key-pattern=uniform -r 1:0 -d "$seconds" --seed="$((r + 1))")
    f1=$(stat_of flash_hits) g1=$(stat_of cmd_get)
    ho=$(field "$h" ops_per_sec) co=$(field "$c" ops_per_sec)
    ratio=$(echo "$co / $ho" | bc -l)
    share=$(echo "($f1 - $f0) / ($g1 - $g0)" | bc -l)
    sum_ratio=$(echo "$sum_ratio + $ratio" | bc -l)
    printf '%-6s %12.0f %12.0f %8.3f %14.3f\n' "$r" "$ho" "$co" "$ratio" "$share"
done
printf 'mean ratio cold/RAM: %.3f\n' "$(echo "$sum_ratio / $rounds" | bc -l)"
