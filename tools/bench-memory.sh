#!/bin/bash
# tools/bench-memory.sh: resident memory per item, tiercached vs memcached.
#
# Starts memcached and tiercached (RAM only) with the same -m and -t on
# loopback, sets N items of SIZE-byte values in each (tiercache-bench --fill,
# sequential keys tcb:0 .. tcb:N-1), and reports each server's resident set
# (VmRSS from /proc) before and after, per item, and the ratio.
#
# Usage: tools/bench-memory.sh [--build=DIR] [--items=N] [--size=BYTES] [--mem=MB]
set -eu
build=build items=1000000 size=100 mem=1024 threads=4
for arg in "$@"; do
    case "$arg" in
    --build=*) build=${arg#*=} ;;
    --items=*) items=${arg#*=} ;;
    --size=*) size=${arg#*=} ;;
    --mem=*) mem=${arg#*=} ;;
    *) echo "bench-memory.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
bench=$build/tools/tiercache-bench
tiercached=$build/tiercached
for f in "$bench" "$tiercached"; do
    [ -x "$f" ] || { echo "bench-memory.sh: $f not built" >&2; exit 1; }
done
command -v memcached >/dev/null || { echo "bench-memory.sh: memcached not installed" >&2; exit 1; }

pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket;socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-memory.sh: nothing listens on port $1" >&2; exit 1
}

stat_of() { # port name
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
out = b""
while not out.endswith(b"END\r\n"):
    out += s.recv(65536)
for line in out.decode().split("\r\n"):
    p = line.split()
    if len(p) == 3 and p[1] == sys.argv[2]:
        print(p[2])
PY
}

# Both servers grow their hash table in the background: measure once it
# has settled (no growth under way, same size twice a second apart).
settle() { # port
    last=""
    for _ in $(seq 120); do
        cur="$(stat_of "$1" hash_power_level)/$(stat_of "$1" hash_is_expanding)"
        [ "$cur" = "$last" ] && [ "${cur#*/}" = 0 ] && return 0
        last=$cur
        sleep 1
    done
}

measure() { # name port pid
    before=$(rss_kb "$3")
    "$bench" -s "127.0.0.1:$2" --fill -k "$items" --key-pattern=sequential \
        --value-size="$size" -t 2 -c 4 -P 16 -n 1 -q --json >/dev/null
    settle "$2"
    after=$(rss_kb "$3")
    echo "$1 $before $after $(stat_of "$2" hash_power_level)"
}

p1=$(free_port)
memcached -u "$(id -un)" -p "$p1" -l 127.0.0.1 -U 0 -m "$mem" -t "$threads" &
pids="$pids $!"; mc=$!
wait_port "$p1"
r1=$(measure memcached "$p1" "$mc")

p2=$(free_port)
"$tiercached" -p "$p2" -m "$mem" -t "$threads" --flash-size=0 2>/dev/null &
pids="$pids $!"; tc=$!
wait_port "$p2"
r2=$(measure tiercached "$p2" "$tc")

echo "items=$items value=${size}B -m $mem -t $threads"
printf '%-11s %12s %12s %14s %10s\n' server "RSS before" "RSS after" "bytes/item" hashpower
for r in "$r1" "$r2"; do
    read -r name before after hp <<<"$r"
    printf '%-11s %9s KB %9s KB %14.1f %10s\n' "$name" "$before" "$after" \
        "$(echo "($after - $before) * 1024 / $items" | bc -l)" "$hp"
done
read -r _ mb ma _ <<<"$r1"
read -r _ tb ta _ <<<"$r2"
m=$((ma - mb)) t=$((ta - tb))
printf 'ratio tiercached/memcached (growth): %.3f\n' "$(echo "$t / $m" | bc -l)"
printf 'ratio tiercached/memcached (total RSS): %.3f\n' "$(echo "$ta / $ma" | bc -l)"
