#!/usr/bin/env python3
"""ketama_vectors.py: record which server twemproxy (and libmemcached) picks
for keys, to check tiercache-bench's ketama ring (check_bench_dist.c's
`vectors`). Run by hand, on loopback only; needs the Debian packages
nutcracker and memcached (and libmemcached11 for --libmemcached).

For a list of ketama server names (what twemproxy hashes: "HOST" for port
11211, "HOST:PORT" otherwise, or a name of your choosing), it starts one
memcached per name on a free loopback port, a nutcracker in front of them
(`distribution: ketama`, `hash: md5`, each server given its name:
"127.0.0.1:P:1 NAME"), sets keys <prefix>0 .. <prefix>(n-1) through the
proxy, asks every memcached which of them it holds, and prints the owners
as one base-36 digit per key (the server's position in the list).
--libmemcached also asks libmemcached's memcached_generate_hash() with
MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, for servers HOST[:PORT] given by the
same names, and says whether it agrees (no connection is made for that).

  tests/bench/ketama_vectors.py 10.0.1.1,10.0.1.2,10.0.1.3 tcb: 64 --libmemcached
"""
import argparse
import ctypes
import os
import socket
import subprocess
import sys
import tempfile
import time

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def held_ports(n):
    """n distinct free loopback ports (all bound at once, then released)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def connect(port, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > end:
                raise SystemExit("nothing listens on port %d" % port)
            time.sleep(0.02)


def request(sock, data, terminator):
    sock.sendall(data)
    buf = b""
    while not buf.endswith(terminator):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf


def twemproxy_owners(names, prefix, n, workdir):
    procs = []
    try:
        ports = held_ports(len(names) + 2)
        listen, stats, backends = ports[0], ports[1], ports[2:]
        for p in backends:
            procs.append(subprocess.Popen(
                ["/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(p), "-U", "0",
                 "-m", "8"]))
        for p in backends:
            connect(p).close()
        conf = os.path.join(workdir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write("vectors:\n  listen: 127.0.0.1:%d\n  hash: md5\n  distribution: ketama\n"
                    "  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n" % listen)
            for name, p in zip(names, backends):
                f.write("   - 127.0.0.1:%d:1 %s\n" % (p, name))
        procs.append(subprocess.Popen(
            ["/usr/sbin/nutcracker", "-c", conf, "-s", str(stats), "-a", "127.0.0.1", "-o",
             os.path.join(workdir, "nutcracker.log")]))
        proxy = connect(listen)
        keys = ["%s%d" % (prefix, i) for i in range(n)]
        for k in keys:
            r = request(proxy, b"set %s 0 0 1\r\nx\r\n" % k.encode(), b"\r\n")
            if r != b"STORED\r\n":
                raise SystemExit("set %s through nutcracker: %r" % (k, r))
        owner = {}
        for idx, p in enumerate(backends):
            c = connect(p)
            for k in keys:
                if request(c, b"get %s\r\n" % k.encode(), b"END\r\n").startswith(b"VALUE"):
                    if k in owner:
                        raise SystemExit("%s is on two backends" % k)
                    owner[k] = idx
        return [owner[k] for k in keys]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def libmemcached_owners(names, prefix, n):
    lib = ctypes.CDLL("libmemcached.so.11")
    lib.memcached_create.restype = ctypes.c_void_p
    lib.memcached_create.argtypes = [ctypes.c_void_p]
    lib.memcached_server_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16]
    lib.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
    lib.memcached_generate_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.memcached_generate_hash.restype = ctypes.c_uint32
    lib.memcached_free.argtypes = [ctypes.c_void_p]
    ketama_weighted = 16  # MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
    memc = lib.memcached_create(None)
    for name in names:
        host, _, port = name.rpartition(":") if name.count(":") == 1 else (name, "", "")
        if lib.memcached_server_add(memc, host.encode(), int(port or 11211)) != 0:
            raise SystemExit("libmemcached refused server %s" % name)
    if lib.memcached_behavior_set(memc, ketama_weighted, 1) != 0:
        raise SystemExit("libmemcached refused KETAMA_WEIGHTED")
    out = []
    for i in range(n):
        k = ("%s%d" % (prefix, i)).encode()
        out.append(lib.memcached_generate_hash(memc, k, len(k)))
    lib.memcached_free(memc)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", help="comma-separated ketama server names")
    ap.add_argument("prefix", help="key prefix")
    ap.add_argument("n", type=int, help="keys <prefix>0 .. <prefix>(n-1)")
    ap.add_argument("--libmemcached", action="store_true",
                    help="also compare with libmemcached (names must be HOST or HOST:PORT)")
    a = ap.parse_args()
    names = a.names.split(",")
    if len(names) > len(DIGITS):
        raise SystemExit("at most %d servers" % len(DIGITS))
    with tempfile.TemporaryDirectory() as work:
        owners = twemproxy_owners(names, a.prefix, a.n, work)
    print("".join(DIGITS[o] for o in owners))
    if a.libmemcached:
        lm = libmemcached_owners(names, a.prefix, a.n)
        differ = sum(1 for x, y in zip(owners, lm) if x != y)
        print("libmemcached KETAMA_WEIGHTED: %s" %
              ("the same owners" if differ == 0 else "%d of %d keys differ" % (differ, a.n)),
              file=sys.stderr)
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
