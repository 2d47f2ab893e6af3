#!/bin/bash
# tools/bench-memcaslap.sh: ops/s of tiercached vs memcached under memcaslap
# (libmemcached-tools), same -m and -t, in alternation for several rounds.
#
# Usage: tools/bench-memcaslap.sh [--build=DIR] [--rounds=N] [--seconds=S] [--division=N]
#   --division=N   keys per multi-get (memcaslap -d); 1 = single gets
set -eu
build=build rounds=3 seconds=10 division=1 mem=64 threads=4
for arg in "$@"; do
    case "$arg" in
    --build=*) build=${arg#*=} ;;
    --rounds=*) rounds=${arg#*=} ;;
    --seconds=*) seconds=${arg#*=} ;;
    --division=*) division=${arg#*=} ;;
    *) echo "bench-memcaslap.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
command -v memcaslap >/dev/null || { echo "bench-memcaslap.sh: memcaslap not installed" >&2; exit 1; }
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket;socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-memcaslap.sh: nothing listens on port $1" >&2; exit 1
}
pm=$(free_port)
memcached -u "$(id -un)" -p "$pm" -l 127.0.0.1 -U 0 -m "$mem" -t "$threads" &
mpid=$!
pids="$pids $mpid"
pt=$(free_port)
"$build/tiercached" -p "$pt" -m "$mem" -t "$threads" --flash-size=0 2>/dev/null &
tpid=$!
pids="$pids $tpid"
wait_port "$pm"
wait_port "$pt"
# ops/s, and the server's CPU time per operation (user + system, from
# /proc): on a small, shared machine the CPU cost is the steadier figure.
run() { # port pid -> "TPS us_per_op"
    t0=$(awk '{print $14 + $15}' "/proc/$2/stat")
    out=$(memcaslap -s "127.0.0.1:$1" -T 2 -c 32 -t "${seconds}s" -d "$division" 2>&1 |
        awk '/^Run time/ {for (i = 1; i <= NF; i++) { if ($i == "Ops:") o = $(i + 1);
             if ($i == "TPS:") t = $(i + 1) } } END { print o, t }')
    t1=$(awk '{print $14 + $15}' "/proc/$2/stat")
    read -r ops tps <<<"$out"
    echo "$tps $(echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $ops" | bc -l)"
}
echo "memcaslap -T 2 -c 32 -t ${seconds}s -d $division; servers -m $mem -t $threads; $rounds rounds"
printf '%-6s %12s %12s %8s %10s %10s %8s\n' round "mc ops/s" "tc ops/s" ratio "mc us/op" \
    "tc us/op" ratio
sm=0 st=0 cm=0 ct=0
for r in $(seq "$rounds"); do
    read -r a ca <<<"$(run "$pm" "$mpid")"
    read -r b cb <<<"$(run "$pt" "$tpid")"
    sm=$((sm + a)) st=$((st + b))
    cm=$(echo "$cm + $ca" | bc -l) ct=$(echo "$ct + $cb" | bc -l)
    printf '%-6s %12s %12s %8.3f %10.2f %10.2f %8.3f\n' "$r" "$a" "$b" "$(echo "$b / $a" | bc -l)" \
        "$ca" "$cb" "$(echo "$cb / $ca" | bc -l)"
done
printf '%-6s %12d %12d %8.3f %10.2f %10.2f %8.3f\n' mean $((sm / rounds)) $((st / rounds)) \
    "$(echo "$st / $sm" | bc -l)" "$(echo "$cm / $rounds" | bc -l)" "$(echo "$ct / $rounds" | bc -l)" \
    "$(echo "$ct / $cm" | bc -l)"
