#!/usr/bin/env python3
"""tools/bench-dump.py: dump and restore rates, and what a dump costs the
traffic it runs beside.

For each value size of --sizes (default 100 and 4096 bytes), --items items
(default 1M) are set in a tiercached (-m --ram, a flash tier: 4 KB values
go mostly to flash), then:

  online dump     tiercache-dump -s  -> a native file (timed)
  online restore  tiercache-restore -s into a fresh tiercached (timed)
  offline dump    tiercache-dump --data-dir after a SIGTERM stop (timed)
  offline restore tiercache-restore --data-dir into a fresh dir (timed)

Then, on the 100-byte data set: --seconds of a 90/10 Zipf workload
(tiercache-bench -t 1 -c 4) alone, and the same while tiercache-dump runs
over and over, alternating --rounds times: ops/s during a dump as a ratio
to without. Prints Markdown on stdout, progress on stderr.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROCS = []


def log(msg):
    print("bench-dump: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_up(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), 1.0) as s:
                s.sendall(b"version\r\n")
                if s.recv(100).startswith(b"VERSION"):
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("server on port %d did not answer" % port)


def tiercached(args, data, ram, logpath):
    port = free_port()
    logf = open(logpath, "ab")
    p = subprocess.Popen([args.bin("tiercached"), "-l", "127.0.0.1", "-p", str(port), "-m",
                          str(ram), "-t", "2", "--data-dir=" + data, "--flash-size=8g"],
                         stdout=logf, stderr=logf)
    logf.close()
    PROCS.append(p)
    wait_up(port, p)
    return port, p


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(600)


def timed(argv):
    t = time.monotonic()
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], res.returncode,
                                                   res.stderr.decode(errors="replace")[-500:]))
    return dt


def bench(args, port, extra):
    argv = [args.bin("tools/tiercache-bench"), "-s", "127.0.0.1:%d" % port, "--json", "-q"] + extra
    out = subprocess.run(argv, stdout=subprocess.PIPE, check=True).stdout.decode()
    return json.loads(out.strip().splitlines()[-1])


def rate(n, nbytes, dt):
    return "%.0f items/s, %.0f MB/s (%.1f s)" % (n / dt, nbytes / 1e6 / dt, dt)


def size_rows(args, work, size, out):
    n = args.items
    src = os.path.join(work, "src-%d" % size)
    port, p = tiercached(args, src, args.ram, os.path.join(work, "src.log"))
    log("%d B: filling %d items" % (size, n))
    bench(args, port, ["-t", "2", "-c", "4", "--key-prefix=d:", "-k", str(n), "--value-size=" +
                       str(size), "--fill", "--key-pattern=sequential", "-r", "0:1", "-n", "1"])
    data_bytes = n * (size + len("d:%d" % (n // 2)))
    f = os.path.join(work, "dump-%d.tcd" % size)
    log("%d B: online dump" % size)
    t_dump = timed([args.bin("tools/tiercache-dump"), "-s", "127.0.0.1:%d" % port, "-o", f])
    fsize = os.path.getsize(f)
    stop(p)
    dst = os.path.join(work, "dst-%d" % size)
    port2, p2 = tiercached(args, dst, args.ram, os.path.join(work, "dst.log"))
    log("%d B: online restore" % size)
    t_rest = timed([args.bin("tools/tiercache-restore"), "-s", "127.0.0.1:%d" % port2, "-i", f])
    stop(p2)
    f2 = os.path.join(work, "dump-%d-offline.tcd" % size)
    log("%d B: offline dump" % size)
    t_odump = timed([args.bin("tools/tiercache-dump"), "--data-dir=" + src, "-o", f2])
    dst2 = os.path.join(work, "dst2-%d" % size)
    log("%d B: offline restore" % size)
    t_orest = timed([args.bin("tools/tiercache-restore"), "--data-dir=" + dst2,
                     "--flash-size=8g", "-i", f2])
    out.append("| %d B | %s | %s | %s | %s | %.0f MB |" % (
        size, rate(n, data_bytes, t_dump), rate(n, data_bytes, t_rest),
        rate(n, data_bytes, t_odump), rate(n, data_bytes, t_orest), fsize / 1e6))
    for d in (dst, dst2):
        shutil.rmtree(d, ignore_errors=True)
    return src


def during_dump(args, work, out):
    n = args.items
    rates = [int(x) for x in args.dump_rates.split(",") if x != ""]
    data = os.path.join(work, "live")
    port, p = tiercached(args, data, args.ram, os.path.join(work, "live.log"))
    log("concurrent: filling %d items of 100 B" % n)
    bench(args, port, ["-t", "2", "-c", "4", "--key-prefix=d:", "-k", str(n), "--value-size=100",
                       "--fill", "--key-pattern=sequential", "-r", "0:1", "-n", "1"])
    work_args = ["-t", "1", "-c", "4", "--key-prefix=d:", "-k", str(n), "--value-size=100",
                 "--key-pattern=zipf", "-r", "9:1", "-d", str(args.seconds)]
    out.append("")
    out.append("Traffic beside a dump (%s items of 100 B, tiercache-bench -t 1 -c 4, Zipf 0.99 "
               "90/10, %d s per run, %d rounds alternating with the same traffic alone; dumps run "
               "back to back throughout):\n" % ("{:,}".format(n), args.seconds, args.rounds))
    out.append("| tiercache-dump | traffic alone, ops/s | beside dumps, ops/s | ratio (median) "
               "| per round | dumps completed |")
    out.append("|---|---:|---:|---:|---|---:|")
    for rate in rates:
        beside_dump(args, work, out, port, work_args, rate)
    stop(p)


def beside_dump(args, work, out, port, work_args, rate):
    alone, beside, dumps = [], [], 0
    f = os.path.join(work, "loop.tcd")
    for r in range(args.rounds):
        log("concurrent: --rate=%d round %d/%d" % (rate, r + 1, args.rounds))
        alone.append(bench(args, port, work_args)["phases"][-1]["ops_per_sec"])
        done = threading.Event()
        state = {"dumps": 0, "proc": None, "failed": 0}

        def dump_loop():
            while not done.is_set():
                d = subprocess.Popen([args.bin("tools/tiercache-dump"), "-s",
                                      "127.0.0.1:%d" % port, "--rate=%d" % rate, "-o", f],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                state["proc"] = d
                rc = d.wait()
                if rc == 0:
                    state["dumps"] += 1
                elif not done.is_set():
                    state["failed"] += 1

        th = threading.Thread(target=dump_loop)
        th.start()
        time.sleep(0.5)  # the first dump is under way (its listing starts at once)
        beside.append(bench(args, port, work_args)["phases"][-1]["ops_per_sec"])
        done.set()
        if state["proc"] is not None and state["proc"].poll() is None:
            state["proc"].kill()
        th.join()
        if state["failed"]:
            raise RuntimeError("%d dumps failed during the run" % state["failed"])
        dumps += state["dumps"]
    a, b = statistics.median(alone), statistics.median(beside)
    out.append("| %s | %.0f | %.0f | **%.2f** | %s | %d |" % (
        "--rate=%d" % rate if rate else "as fast as it can", a, b,
        statistics.median(y / x for x, y in zip(alone, beside)),
        ", ".join("%.2f" % (y / x) for x, y in zip(alone, beside)), dumps))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--build", default="build")
    ap.add_argument("--items", type=int, default=1000000)
    ap.add_argument("--sizes", default="100,4096")
    ap.add_argument("--ram", type=int, default=1024, help="-m of the servers")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dump-rates", default="0,100000",
                    help="tiercache-dump --rate values for the traffic test (0: no limit)")
    args = ap.parse_args()
    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    args.bin = lambda name: os.path.join(build, name)
    for b in ("tiercached", "tools/tiercache-bench", "tools/tiercache-dump",
              "tools/tiercache-restore"):
        if not os.access(args.bin(b), os.X_OK):
            sys.exit("bench-dump: %s not built" % args.bin(b))
    work = tempfile.mkdtemp(prefix="tc-bench-dump.")
    out = ["## Dump and restore (tools/bench-dump.py, %s)\n" % time.strftime("%Y-%m-%d"),
           "Command: `tools/bench-dump.py %s`\n" % " ".join(sys.argv[1:]),
           "tiercached -m %d -t 2, %s items per size; rates count key + value bytes.\n" % (
               args.ram, "{:,}".format(args.items)),
           "| values | online dump | online restore | offline dump (--data-dir) | "
           "offline restore (--data-dir) | dump file |",
           "|---|---|---|---|---|---|"]
    try:
        for size in [int(x) for x in args.sizes.split(",") if x]:
            src = size_rows(args, work, size, out)
            shutil.rmtree(src, ignore_errors=True)
        during_dump(args, work, out)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(out))


if __name__ == "__main__":
    main()
