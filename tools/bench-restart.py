#!/usr/bin/env python3
"""tools/bench-restart.py: what a restart costs, measured on real binaries.

Three measurements (choose with --parts, default all):

  first-hit  For each item count of --items (default 1M and 10M values of
             --value-size bytes): fill a tiercached (-m --ram, a flash tier
             on a scratch data dir), stop it with SIGTERM (timed), then
             --repeat times: start it again and time process start -> first
             served hit (a `get` of a key that lives on flash, retried every
             millisecond until a VALUE comes back). Then the same after a
             crash: SIGKILL, start, time to first hit (the filter snapshot is
             not trusted after a crash: lookups fall through to LMDB while it
             is rebuilt). For context, memcached's start -> first reply
             (of an empty cache) is timed the same way.
  shutdown   A tiercached with -m --shutdown-ram (default 1024) filled with
             1 KB values until RAM is full; SIGTERM; the time to exit and the
             log's "N items written to flash in T ms".
  hitratio   Zipf --zipf-alpha over a key space 8x -m --ram, 90 % get /
             10 % set: 60 s of hit ratio before a restart and the first 60 s
             after it (in 10 s steps), for tiercached (warm restart on its
             data dir) and memcached with extstore (the same RAM and flash
             budgets; it starts empty).

Prints a Markdown report on stdout (progress on stderr).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print("bench-restart: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, line, timeout=5.0):
    """Send one command line; the reply up to END/VERSION (or one line)."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        buf = b""
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            buf += d
            if buf.endswith(b"END\r\n") or (buf.startswith(b"VERSION") and buf.endswith(b"\r\n")):
                break
            if buf.startswith((b"ERROR", b"SERVER_ERROR", b"CLIENT_ERROR")) and buf.endswith(b"\r\n"):
                break
    return buf.decode(errors="replace")


def stats(port, sub=""):
    out = {}
    for line in request(port, ("stats " + sub).strip()).split("\r\n"):
        p = line.split()
        if len(p) == 3 and p[0] == "STAT":
            out[p[1]] = p[2]
    return out


SERVERS = []  # every Server made, killed on the way out


class Server:
    """A server process: started, timed to its first reply or hit, stopped."""

    def __init__(self, argv, logpath):
        SERVERS.append(self)
        self.argv = argv
        self.logpath = logpath
        self.proc = None
        self.t0 = 0.0

    def start(self):
        logf = open(self.logpath, "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=logf)
        logf.close()

    def until(self, port, line, want, timeout=120.0):
        """Seconds from start until `line` gets a reply starting with want."""
        deadline = self.t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited (%d); log %s" % (self.argv[0], self.proc.returncode,
                                                              self.logpath))
            try:
                with socket.create_connection(("127.0.0.1", port), 1.0) as s:
                    s.sendall(line.encode() + b"\r\n")
                    buf = b""
                    while not buf.endswith(b"\r\n"):
                        d = s.recv(4096)
                        if not d:
                            break
                        buf += d
                    if buf.startswith(want.encode()):
                        return time.monotonic() - self.t0
            except OSError:
                pass
            time.sleep(0.001)
        raise RuntimeError("no %r to %r within %.0f s; log %s" % (want, line, timeout,
                                                                  self.logpath))

    def stop(self, sig=signal.SIGTERM, timeout=600.0):
        """Send sig; seconds until the process exited, and its status."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        return time.monotonic() - t, rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def bench(args, port, extra):
    """Run tiercache-bench; its JSON object. Wrong values make it exit 1
    with its JSON line printed all the same: the caller counts them."""
    argv = [args.bench, "-s", "127.0.0.1:%d" % port, "-t", "2", "-c", "4", "--json", "-q"] + extra
    res = subprocess.run(argv, stdout=subprocess.PIPE)
    lines = res.stdout.decode().strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError("tiercache-bench failed (exit %d): %s" % (res.returncode, " ".join(argv)))
    return json.loads(lines[-1])


def run_phase(result):
    for ph in result["phases"]:
        if ph["phase"] == "run":
            return ph
    raise RuntimeError("no run phase in %r" % result)


def fill(args, port, prefix, n, size):
    t = time.monotonic()
    bench(args, port, ["--key-prefix=" + prefix, "-k", str(n), "--value-size=" + str(size),
                       "--fill", "--key-pattern=sequential", "-r", "0:1", "-n", "1"])
    return time.monotonic() - t


def wait_writer(port, timeout=600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stats(port, "tiers").get("writer_queue_ops", "0") == "0":
            return
        time.sleep(0.1)
    raise RuntimeError("the flash writer did not drain")


def fmt_ms(s):
    return "%.1f" % (s * 1000)


def tiercached_argv(args, port, ram, data, flash):
    return [args.tiercached, "-v", "-l", "127.0.0.1", "-p", str(port), "-m", str(ram), "-t", "2",
            "--data-dir=" + data, "--flash-size=" + flash]


def memcached_argv(args, port, ram, extra=()):
    user = ["-u", "root"] if os.geteuid() == 0 else []
    return ([args.memcached] + user + ["-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m",
                                       str(ram), "-t", "2"] + list(extra))


# ------------------------------------------------------------------ first hit

def part_first_hit(args, work, out):
    out.append("### Time from process start to first served hit\n")
    out.append("tiercached -m %d, values of %d B, a flash-resident key asked every 1 ms from "
               "the moment the process is started; %d starts each, median (min-max).\n" %
               (args.ram, args.value_size, args.repeat))
    out.append("| items | fill | SIGTERM stop | first hit after a clean stop | "
               "first hit after SIGKILL | data on disk |")
    out.append("|---|---|---|---|---|---|")
    for n in args.items:
        data = os.path.join(work, "fh-data")
        shutil.rmtree(data, ignore_errors=True)
        port = free_port()
        flash = "%dm" % max(1024, n * (args.value_size + 80) * 2 // 1048576)
        srv = Server(tiercached_argv(args, port, args.ram, data, flash),
                     os.path.join(work, "fh-%d.log" % n))
        srv.start()
        srv.until(port, "version", "VERSION")
        log("first-hit: filling %d items" % n)
        t_fill = fill(args, port, "fh:", n, args.value_size)
        wait_writer(port)
        t_stop, rc = srv.stop()
        if rc != 0:
            raise RuntimeError("SIGTERM: exit %d" % rc)
        key = "fh:%d" % (n // 3)  # RAM starts empty: every hit is a flash hit
        clean, crash = [], []
        for i in range(args.repeat):
            srv.start()
            clean.append(srv.until(port, "get " + key, "VALUE"))
            if i == 0:
                flash_items = int(stats(port, "tiers").get("flash_items", "0"))
                if flash_items != n:
                    raise RuntimeError("%d of %d items on flash after the stop" % (flash_items, n))
            srv.stop()
        for _ in range(args.repeat):
            srv.start()
            srv.until(port, "version", "VERSION")
            srv.stop(signal.SIGKILL)
            srv.start()
            crash.append(srv.until(port, "get " + key, "VALUE"))
            srv.stop(signal.SIGKILL)
        # blocks, not lengths: the data file is sparse, as long as the map
        disk = sum(os.stat(os.path.join(data, f)).st_blocks * 512 for f in os.listdir(data))
        out.append("| %s | %.0f s | %.2f s | %s ms (%s-%s) | %s ms (%s-%s) | %.2f GB |" % (
            "{:,}".format(n), t_fill, t_stop, fmt_ms(statistics.median(clean)), fmt_ms(min(clean)),
            fmt_ms(max(clean)), fmt_ms(statistics.median(crash)), fmt_ms(min(crash)),
            fmt_ms(max(crash)), disk / 1e9))
        shutil.rmtree(data, ignore_errors=True)
    # memcached, for scale: start -> first reply of an empty cache
    port = free_port()
    mc = Server(memcached_argv(args, port, args.ram), os.path.join(work, "mc-first.log"))
    times = []
    for _ in range(args.repeat):
        mc.start()
        times.append(mc.until(port, "version", "VERSION"))
        mc.stop()
    out.append("\nFor scale, memcached -m %d from process start to its first reply (an empty "
               "cache, `version`): %s ms median.\n" % (args.ram, fmt_ms(statistics.median(times))))


# ------------------------------------------------------------------ shutdown

def part_shutdown(args, work, out):
    ram = args.shutdown_ram
    data = os.path.join(work, "sd-data")
    shutil.rmtree(data, ignore_errors=True)
    port = free_port()
    logpath = os.path.join(work, "sd.log")
    srv = Server(tiercached_argv(args, port, ram, data, "%dm" % (ram * 3)), logpath)
    srv.start()
    srv.until(port, "version", "VERSION")
    n = ram * 1048576 // 1000  # more than RAM holds in 1 KB values
    log("shutdown: filling %d items of 1000 B into -m %d" % (n, ram))
    fill(args, port, "sd:", n, 1000)
    wait_writer(port)
    st = stats(port)
    ts = stats(port, "tiers")
    ram_items = int(ts.get("ram_items", st.get("curr_items", "0")))
    ram_bytes = int(st.get("bytes", "0"))
    t_stop, rc = srv.stop()
    text = open(logpath, errors="replace").read()
    m = re.search(r"stopping: (\d+) items written to flash in (\d+) ms", text)
    written, ms = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    out.append("### Shutdown time with a full RAM tier\n")
    out.append("tiercached -m %d filled with %s values of 1000 B (RAM full, the rest on flash): "
               "%s items, %.0f MB in RAM at SIGTERM.\n" % (ram, "{:,}".format(n),
                                                           "{:,}".format(ram_items), ram_bytes / 1e6))
    out.append("| SIGTERM to exit | exit status | items written at stop (log) | their write time |"
               " rate |")
    out.append("|---|---|---|---|---|")
    rate = "%.0f items/s, %.0f MB/s" % (written / (ms / 1000), written * 1000 / 1e6 / (ms / 1000)) \
        if ms > 0 else "-"
    out.append("| %.2f s | %d | %s | %d ms | %s |\n" % (t_stop, rc, "{:,}".format(written), ms,
                                                         rate))
    shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------------ hit ratio

def hit_series(args, port, keys, steps):
    """Hit ratio per step, over the window, and wrong values seen."""
    series, hits, gets, wrong = [], 0, 0, 0
    for _ in range(steps):
        ph = run_phase(bench(args, port, ["--key-prefix=hr:", "-k", str(keys), "--value-size=" +
                                          str(args.hr_value_size), "--key-pattern=zipf",
                                          "--zipf-alpha=%g" % args.zipf_alpha, "-r", "9:1", "-d",
                                          str(args.step), "--seed=%d" % (len(series) + 7)]))
        if ph["errors"]:
            raise RuntimeError("error replies: %r" % ph)
        series.append(ph["hit_ratio"])
        hits += ph["hits"]
        gets += ph["keys_requested"]
        wrong += ph["wrong_values"]
    return series, hits / gets if gets else 0.0, wrong


def part_hit_ratio(args, work, out):
    keys = 8 * args.ram * 1048576 // args.hr_value_size
    steps = max(1, int(args.window // args.step))
    rows = []
    for name in ("tiercached", "memcached-ext"):
        port = free_port()
        if name == "tiercached":
            data = os.path.join(work, "hr-data")
            shutil.rmtree(data, ignore_errors=True)
            argv = tiercached_argv(args, port, args.ram, data, "%dm" % args.flash)
        else:
            ext = os.path.join(work, "hr-extstore")
            argv = memcached_argv(args, port, args.ram,
                                  ["-o", "ext_path=%s:%dm,slab_automove=2" % (ext, args.flash)])
        srv = Server(argv, os.path.join(work, "hr-%s.log" % name))
        srv.start()
        srv.until(port, "version", "VERSION")
        log("hit ratio: %s: filling %d keys, settling %d s" % (name, keys, args.settle))
        fill(args, port, "hr:", keys, args.hr_value_size)
        bench(args, port, ["--key-prefix=hr:", "-k", str(keys), "--value-size=" +
                           str(args.hr_value_size), "--zipf-alpha=%g" % args.zipf_alpha, "-r",
                           "9:1", "-d", str(args.settle)])
        before, b_all, b_wrong = hit_series(args, port, keys, steps)
        t_stop, rc = srv.stop()
        srv.start()
        t_up = srv.until(port, "version", "VERSION")
        after, a_all, a_wrong = hit_series(args, port, keys, steps)
        srv.stop()
        rows.append((name, before, b_all, after, a_all, t_stop, t_up, b_wrong + a_wrong))
    out.append("### Hit ratio before and after a restart\n")
    out.append("-m %d, flash %d MB, %s keys (8x RAM) of %d B, Zipf %g, 90 %% get / 10 %% set, "
               "tiercache-bench -t 2 -c 4; after the fill and %d s of the workload, %d s measured "
               "before a SIGTERM restart and the first %d s after it, in %d s steps.\n" % (
                   args.ram, args.flash, "{:,}".format(keys), args.hr_value_size, args.zipf_alpha,
                   args.settle, steps * args.step, steps * args.step, args.step))
    hdr = " | ".join("%d-%d s" % (i * args.step, (i + 1) * args.step) for i in range(steps))
    out.append("| server | when | whole window | %s |" % hdr)
    out.append("|---|---|---|%s" % ("---|" * steps))
    for name, before, b_all, after, a_all, t_stop, t_up, wrong in rows:
        out.append("| %s | before | %.3f | %s |" % (name, b_all, " | ".join("%.3f" % x for x in before)))
        out.append("| %s | after | %.3f | %s |" % (name, a_all, " | ".join("%.3f" % x for x in after)))
    out.append("")
    for name, before, b_all, after, a_all, t_stop, t_up, wrong in rows:
        out.append("- %s: after/before hit ratio %.2f (stop %.2f s, up again in %.0f ms); "
                   "wrong values: %d" % (name, a_all / b_all if b_all else 0.0, t_stop,
                                         t_up * 1000, wrong))
    out.append("")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--build", default="build")
    ap.add_argument("--parts", default="first-hit,shutdown,hitratio")
    ap.add_argument("--items", default="1000000,10000000",
                    help="item counts for first-hit, comma-separated")
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--ram", type=int, default=64, help="-m for first-hit and hitratio")
    ap.add_argument("--flash", type=int, default=1024, help="flash MB for hitratio")
    ap.add_argument("--shutdown-ram", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hr-value-size", type=int, default=1000)
    ap.add_argument("--zipf-alpha", type=float, default=0.99)
    ap.add_argument("--settle", type=int, default=30)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--memcached", default=shutil.which("memcached") or "memcached")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    args.items = [int(x) for x in args.items.split(",") if x]
    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    args.tiercached = os.path.join(build, "tiercached")
    args.bench = os.path.join(build, "tools", "tiercache-bench")
    for f in (args.tiercached, args.bench):
        if not os.access(f, os.X_OK):
            sys.exit("bench-restart: %s not built" % f)
    parts = args.parts.split(",")
    work = tempfile.mkdtemp(prefix="tc-bench-restart.")
    out = ["## Restart figures (tools/bench-restart.py, %s)\n" % time.strftime("%Y-%m-%d"),
           "Command: `tools/bench-restart.py %s`\n" % " ".join(sys.argv[1:])]
    def flush():
        print("\n".join(out), flush=True)
        out.clear()

    try:
        flush()
        if "first-hit" in parts:
            part_first_hit(args, work, out)
            flush()
        if "shutdown" in parts:
            part_shutdown(args, work, out)
            flush()
        if "hitratio" in parts:
            part_hit_ratio(args, work, out)
            flush()
    finally:
        for srv in SERVERS:
            srv.kill()
        if args.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
