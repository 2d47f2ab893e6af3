#!/usr/bin/env python3
"""tools/bench-calcify.py: slab calcification, measured: does the hit ratio
recover when item sizes shift under a small, full RAM budget?

The workload, against one server:

  phase A  set small values (--small bytes, keys "cs:N") until the values
           sent add up to --fill-factor times the memory limit: every slab
           page ends up in the small values' class. Then the server is left
           idle until it has been up --min-uptime seconds (default 31), so
           that memcached's automove window (30 one-second samples, filled
           once before its first decision) does not count against it: the
           scene is a server that has run for a while.
  phase B  --seconds of reads of large values (sizes uniform in --large,
           fixed per key, keys "cb:N") over a key set whose values add up
           to --keyset times the memory limit, uniform popularity (see
           below), set on a miss. --conns connections each keep --depth
           gets in flight; the sets for a round's misses follow. The hit
           ratio (hits / gets, as this client sees them) is counted per
           --interval seconds.

Reported per run: the hit ratio per interval, the final hit ratio (mean of
the last --final seconds), the recovery time (end of the first interval
whose hit ratio is at least 90 % of the final one), gets/s, wrong values,
the server's slabs_moved and evictions when its `stats` has them, and how
many phase-A keys are still readable after phase B (a flash tier keeps
them).

Why uniform popularity: in steady state the hit ratio of uniform reads over
a key set is the fraction of the set that RAM holds, so the per-second
ratio traces how many pages the large classes have got back. With a Zipf
mix the hot head fits in the pages the large classes start with, hiding
the calcification; a cyclic scan is LRU's worst case (zero hits until the
whole set fits), a step rather than a curve. --pattern chooses another.

Every value is self-verifying: its bytes start with "<key>|<length>|" and
continue with a payload derived from the key, so a value of another key, a
truncated or a flipped one is a wrong value, never a hit (exit status 1).

Two modes:

  tools/bench-calcify.py -s 127.0.0.1:11211 --mem=16     one server, one run
  tools/bench-calcify.py --compare                       servers side by side

--compare starts each server fresh for every run, alternating (memcached,
tiercached RAM only, tiercached with flash, [tiercached without page
moves], memcached, ...) for --rounds rounds, and prints a Markdown report
on stdout (progress on stderr, per-interval figures in --results as
tab-separated lines). The rows:

  memcached         memcached -u root -l 127.0.0.1 -p PORT -U 0 -m MEM
  tiercached        tiercached -p PORT -m MEM --flash-size=0
  tiercached-flash  tiercached -p PORT -m MEM --data-dir=DIR --flash-size=1g
  tiercached-nomove tiercached -p PORT -m MEM --flash-size=0 -o slab_automove=0
                    (skipped, and said so, if the server refuses the option)

Ports are found by binding port 0; every server this script starts is
stopped by its pid.
"""
import argparse
import bisect
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024


def log(msg):
    print("bench-calcify: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_range(text):
    """'10000-20000', '10k-20k' or '16k' -> (lo, hi) in bytes."""
    def num(t):
        t = t.strip().lower()
        mult = 1
        if t.endswith("k"):
            mult, t = 1024, t[:-1]
        return int(t) * mult
    if "-" in text:
        lo, hi = text.split("-", 1)
        return num(lo), num(hi)
    return num(text), num(text)


class ServerGone(Exception):
    pass


class Conn:
    """A client connection with a read buffer; every read is bounded."""

    def __init__(self, host, port, timeout=10.0):
        self.s = socket.create_connection((host, port), timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(timeout)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        try:
            d = self.s.recv(1 << 20)
        except socket.timeout:
            raise ServerGone("no reply for %.0f s" % self.s.gettimeout())
        if not d:
            raise ServerGone("connection closed")
        self.buf += d

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                ln = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return ln
            self._more()

    def block(self, n):
        """n bytes and the "\\r\\n" after them (a memoryview-free copy)."""
        while len(self.buf) - self.pos < n + 2:
            self._more()
        b = self.buf[self.pos:self.pos + n]
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ServerGone("value block not followed by \\r\\n")
        self.pos += n + 2
        return b


def request(host, port, line):
    """One command on a fresh connection: its reply lines up to END."""
    c = Conn(host, port, 5.0)
    try:
        c.send(line.encode() + b"\r\n")
        out = []
        while True:
            ln = c.line().decode(errors="replace")
            if ln == "END" or ln.startswith(("ERROR", "CLIENT_ERROR", "SERVER_ERROR")):
                return out
            out.append(ln)
    finally:
        c.close()


def stats(host, port, sub=""):
    out = {}
    for ln in request(host, port, ("stats " + sub).strip()):
        p = ln.split(" ", 2)
        if len(p) == 3 and p[0] == "STAT":
            out[p[1]] = p[2]
    return out


# ----------------------------------------------------------------- values

def small_value(key, n):
    return ((key + b"|") * (n // (len(key) + 1) + 1))[:n]


class BigKeys:
    """The large keys of phase B: key, size, value and commands, made once."""

    def __init__(self, count, lo, hi, seed):
        rng = random.Random(seed)
        pool = bytes(rng.getrandbits(8) for _ in range(4096))
        pool = pool * (hi // len(pool) + 2)
        self.keys, self.values, self.gets, self.sets = [], [], [], []
        for i in range(count):
            k = b"cb:%d" % i
            h = (i * 2654435761 + seed) & 0xFFFFFFFF
            n = lo + h % (hi - lo + 1)
            head = b"%s|%d|" % (k, n)
            off = (h >> 8) % 4096
            v = head + pool[off:off + n - len(head)]
            assert len(v) == n
            self.keys.append(k)
            self.values.append(v)
            self.gets.append(b"get %s\r\n" % k)
            self.sets.append(b"set %s 0 0 %d\r\n%s\r\n" % (k, n, v))
        self.total = sum(len(v) for v in self.values)


# ----------------------------------------------------------------- phases

def phase_a(conns, mem_mb, small, fill_factor, batch=500):
    """Set small values until fill_factor x the memory limit was sent.
    Returns (keys set, seconds, error replies)."""
    target = int(fill_factor * mem_mb * MIB / small)
    t0 = time.monotonic()
    n = errors = 0
    while n < target:
        sent = []
        for c in conns:
            m = min(batch, target - n)
            if m <= 0:
                break
            cmds = []
            for i in range(n, n + m):
                k = b"cs:%d" % i
                cmds.append(b"set %s 0 0 %d\r\n%s\r\n" % (k, small, small_value(k, small)))
            c.send(b"".join(cmds))
            sent.append((c, m))
            n += m
        for c, m in sent:
            for _ in range(m):
                if c.line() != b"STORED":
                    errors += 1
    return n, time.monotonic() - t0, errors


def slab_pages(host, port):
    """{class id: total_pages} and total_malloced from `stats slabs`."""
    pages, malloced = {}, None
    for name, v in stats(host, port, "slabs").items():
        if name.endswith(":total_pages"):
            pages[int(name.split(":")[0])] = int(v)
        elif name == "total_malloced":
            malloced = int(v)
    return pages, malloced


def phase_b(conns, big, seconds, interval, depth, pattern, seed, rate=0, watch=None):
    """Reads with set on a miss; per-interval [gets, hits] and totals.
    watch=(host, port, class id): also that class's pages and total_malloced
    at the end of each interval."""
    nb = len(big.keys)
    rngs = [random.Random(seed * 1000 + i) for i in range(len(conns))]
    cursor = [i * nb // len(conns) for i in range(len(conns))]
    zipf_cdf = None
    if pattern == "zipf":
        w = [1.0 / (r + 1) ** 0.99 for r in range(nb)]
        s = sum(w)
        acc, zipf_cdf = 0.0, []
        for x in w:
            acc += x / s
            zipf_cdf.append(acc)
        perm = list(range(nb))
        random.Random(seed).shuffle(perm)
    nint = int(seconds / interval + 0.5)
    per = [[0, 0] for _ in range(nint)]
    wrong = set_errors = 0
    wrong_examples = []
    t0 = time.monotonic()
    end = t0 + seconds
    per_round = len(conns) * depth
    rounds = 0
    trace = []
    while True:
        now = time.monotonic()
        if watch and len(trace) < nint and now - t0 >= (len(trace) + 1) * interval:
            pages, malloced = slab_pages(watch[0], watch[1])
            trace.append((pages.get(watch[2], 0), malloced))
        if now >= end:
            break
        if rate > 0:
            due = t0 + rounds * per_round / rate
            if due > now:
                time.sleep(due - now)
        rounds += 1
        picks = []
        for ci, c in enumerate(conns):
            ks = []
            for _ in range(depth):
                if pattern == "uniform":
                    ks.append(rngs[ci].randrange(nb))
                elif pattern == "cyclic":
                    ks.append(cursor[ci] % nb)
                    cursor[ci] += 1
                else:
                    ks.append(perm[min(bisect.bisect_left(zipf_cdf, rngs[ci].random()), nb - 1)])
            c.send(b"".join(big.gets[k] for k in ks))
            picks.append(ks)
        misses = []
        for c, ks in zip(conns, picks):
            miss = []
            for k in ks:
                ln = c.line()
                if ln == b"END":
                    miss.append(k)
                    continue
                p = ln.split()
                if len(p) < 4 or p[0] != b"VALUE":
                    raise ServerGone("unexpected reply to a get: %r" % ln[:80])
                v = c.block(int(p[3]))
                if c.line() != b"END":
                    raise ServerGone("no END after a value")
                if p[1] != big.keys[k] or v != big.values[k]:
                    wrong += 1
                    if len(wrong_examples) < 3:
                        wrong_examples.append("%s: got %d bytes starting %r" %
                                              (big.keys[k].decode(), len(v), bytes(v[:40])))
                    miss.append(k)  # a wrong value is not a hit; store it again
            misses.append(miss)
        # The round's gets and hits go to the interval in which its last
        # reply arrived.
        i = int((time.monotonic() - t0) / interval)
        if i < nint:
            asked = sum(len(ks) for ks in picks)
            per[i][0] += asked
            per[i][1] += asked - sum(len(m) for m in misses)
        for c, miss in zip(conns, misses):
            if miss:
                c.send(b"".join(big.sets[k] for k in miss))
        for c, miss in zip(conns, misses):
            for _ in miss:
                if c.line() != b"STORED":
                    set_errors += 1
    elapsed = time.monotonic() - t0
    gets = sum(g for g, _ in per)
    return {"per": per, "gets": gets, "elapsed": elapsed, "wrong": wrong, "trace": trace,
            "wrong_examples": wrong_examples, "set_errors": set_errors}


def readable_small(conns, nkeys, small, batch=100):
    """How many phase-A keys are readable (and intact) now."""
    c = conns[0]
    ok = wrong = 0
    for start in range(0, nkeys, batch):
        ks = [b"cs:%d" % i for i in range(start, min(nkeys, start + batch))]
        c.send(b"get " + b" ".join(ks) + b"\r\n")
        while True:
            ln = c.line()
            if ln == b"END":
                break
            p = ln.split()
            v = c.block(int(p[3]))
            if v == small_value(p[1], small):
                ok += 1
            else:
                wrong += 1
    return ok, wrong


def summarize(per, interval, final_secs):
    ratios = [(h / g if g else 0.0) for g, h in per]
    nfin = max(1, int(final_secs / interval + 0.5))
    tail = per[-nfin:]
    g = sum(x[0] for x in tail)
    final = sum(x[1] for x in tail) / g if g else 0.0
    recover = None
    for i, r in enumerate(ratios):
        if per[i][0] > 0 and r >= 0.9 * final:
            recover = (i + 1) * interval
            break
    return ratios, final, recover


def run_one(host, port, args, big):
    """Phase A, the pause, phase B, the read-back. A dict of results."""
    conns = [Conn(host, port) for _ in range(args.conns)]
    try:
        nsmall, secs_a, err_a = phase_a(conns, args.mem, args.small, args.fill_factor)
        log("phase A: %d small values in %.1f s (%d errors)" % (nsmall, secs_a, err_a))
        if args.started is not None:
            wait = args.started + args.min_uptime - time.monotonic()
            if wait > 0:
                log("idle %.1f s (server up %g s before phase B)" % (wait, args.min_uptime))
                time.sleep(wait)
        elif args.pause > 0:
            log("idle %g s before phase B" % args.pause)
            time.sleep(args.pause)
        s0 = stats(host, port)
        pages, _ = slab_pages(host, port)
        small_class = max(pages, key=pages.get) if pages else 0
        res = phase_b(conns, big, args.seconds, args.interval, args.depth, args.pattern,
                      args.seed, args.rate, (host, port, small_class))
        s1 = stats(host, port)
        ratios, final, recover = summarize(res["per"], args.interval, args.final)
        out = {
            "phase_a_keys": nsmall, "phase_a_seconds": secs_a, "phase_a_errors": err_a,
            "ratios": ratios, "final": final, "recover": recover,
            "small_class": small_class, "small_pages_a": pages.get(small_class, 0),
            "trace": res["trace"],
            "gets_per_sec": res["gets"] / res["elapsed"], "wrong": res["wrong"],
            "wrong_examples": res["wrong_examples"], "set_errors": res["set_errors"],
            "slabs_moved": (int(s1["slabs_moved"]) - int(s0.get("slabs_moved", 0))
                            if "slabs_moved" in s1 else None),
            "evictions": (int(s1["evictions"]) - int(s0["evictions"])
                          if "evictions" in s1 and "evictions" in s0 else None),
        }
        if args.readback:
            ok, bad = readable_small(conns, nsmall, args.small)
            out["small_readable"] = ok
            out["small_wrong"] = bad
            out["wrong"] += bad
        return out
    finally:
        for c in conns:
            c.close()


# ----------------------------------------------------------------- servers

class Server:
    def __init__(self, name, argv, logpath, data_dir=None):
        self.name, self.argv, self.logpath, self.data_dir = name, argv, logpath, data_dir
        self.proc = None

    def start(self, port, timeout=30.0):
        with open(self.logpath, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=logf)
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            try:
                request("127.0.0.1", port, "stats settings")
                return started
            except (OSError, ServerGone):
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("%s did not answer within %.0f s" % (self.name, timeout))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def server_argv(kind, args, port, work):
    m = str(args.mem)
    if kind == "memcached":
        user = ["-u", "root"] if os.geteuid() == 0 else []
        return [args.memcached] + user + ["-l", "127.0.0.1", "-p", str(port), "-U", "0",
                                          "-m", m], None
    base = [args.tiercached, "-p", str(port), "-m", m]
    if kind == "tiercached":
        return base + ["--flash-size=0"], None
    if kind == "tiercached-flash":
        d = tempfile.mkdtemp(prefix="calcify-flash.", dir=work)
        return base + ["--data-dir=" + d, "--flash-size=" + args.flash_size], d
    if kind == "tiercached-nomove":
        return base + ["--flash-size=0", "-o", "slab_automove=0"], None
    raise ValueError(kind)


def shown_argv(kind, args):
    """The command as the report shows it (PORT and DIR for the variable parts)."""
    argv, _ = server_argv(kind, args, 0, "/tmp")
    out = []
    for a in argv:
        if a.startswith("--data-dir="):
            a = "--data-dir=DIR"
        out.append(a)
    s = " ".join(out).replace("-p 0 ", "-p PORT ")
    return s.replace(args.tiercached, os.path.relpath(args.tiercached, ROOT))


def fmt(x, spec="%.3f"):
    return "n/a" if x is None else spec % x


def compare(args):
    work = tempfile.mkdtemp(prefix="bench-calcify.")
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    results = {k: [] for k in kinds}
    skipped = {}
    resf = open(args.results, "w") if args.results else None
    notes = ["load average at the start: %.1f %.1f %.1f" % os.getloadavg()]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        notes.append("source tree: commit %s%s" % (head, " with uncommitted changes" if dirty else ""))
    except OSError:
        pass
    try:
        for rnd in range(1, args.rounds + 1):
            for kind in kinds:
                if kind in skipped:
                    continue
                port = free_port()
                argv, ddir = server_argv(kind, args, port, work)
                srv = Server(kind, argv, os.path.join(work, "%s.%d.log" % (kind, rnd)), ddir)
                log("round %d: %s (%s)" % (rnd, kind, " ".join(argv)))
                try:
                    started = srv.start(port)
                    if started is None:
                        with open(srv.logpath, errors="replace") as f:
                            why = f.read().strip().splitlines()
                        skipped[kind] = why[-1] if why else "exit %d" % srv.proc.returncode
                        log("%s refused to start: %s; row skipped" % (kind, skipped[kind]))
                        continue
                    if rnd == 1:
                        st = stats("127.0.0.1", port, "settings")
                        notes.append("%s: stats settings slab_reassign %s, slab_automove %s" %
                                     (kind, st.get("slab_reassign", "absent"),
                                      st.get("slab_automove", "absent")))
                    args.started = started
                    big = BigKeys(args.nbig, args.large[0], args.large[1], args.seed)
                    r = run_one("127.0.0.1", port, args, big)
                finally:
                    srv.stop()
                r["round"] = rnd
                results[kind].append(r)
                log("round %d %s: final %.3f, recovered (90%% of final) at %s s, %.0f gets/s, "
                    "slabs_moved %s, wrong %d, phase-A keys readable %s" %
                    (rnd, kind, r["final"], fmt(r["recover"], "%.0f"), r["gets_per_sec"],
                     fmt(r["slabs_moved"], "%d"), r["wrong"], r.get("small_readable", "n/a")))
                log("  per interval: " + " ".join("%.2f" % x for x in r["ratios"]))
                log("  class %d pages (%d after phase A) / total_malloced MB per interval: %s" %
                    (r["small_class"], r["small_pages_a"],
                     " ".join("%d/%s" % (pg, "?" if m is None else "%.0f" % (m / MIB))
                              for pg, m in r["trace"])))
                if resf:
                    resf.write("\t".join([str(rnd), kind, "%.4f" % r["final"],
                                          fmt(r["recover"], "%.0f"), "%.0f" % r["gets_per_sec"],
                                          fmt(r["slabs_moved"], "%d"), str(r["wrong"])] +
                                         ["%.4f" % x for x in r["ratios"]]) + "\n")
                    resf.flush()
    finally:
        if resf:
            resf.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    notes.append("load average at the end: %.1f %.1f %.1f" % os.getloadavg())
    report(args, kinds, results, skipped, notes)
    return 0 if all(r["wrong"] == 0 for rs in results.values() for r in rs) else 1


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report(args, kinds, results, skipped, notes):
    p = print
    p("Slab calcification: -m %d, phase A %.1fx the memory limit in %d B values, phase B "
      "%d s of %s gets over %d keys of %d-%d B (%.1f MB, %.2fx the limit), set on a miss, "
      "%d connections x %d in flight, %d rounds.\n" %
      (args.mem, args.fill_factor, args.small, args.seconds, args.pattern, args.nbig,
       args.large[0], args.large[1], args.big_total / MIB, args.big_total / (args.mem * MIB),
       args.conns, args.depth, args.rounds))
    for k in kinds:
        p("    %s" % shown_argv(k, args))
    p("")
    base = results.get("memcached") or []
    base_final = med([r["final"] for r in base])
    base_rec = med([r["recover"] for r in base])
    p("| server | final hit ratio | vs memcached | recovery (s to 90 % of final) | "
      "vs memcached | per round (final / recovery s) | mean over phase B | slabs_moved | "
      "gets/s | phase-A keys readable after | wrong values |")
    p("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for k in kinds:
        rs = results[k]
        if not rs:
            p("| %s | skipped: %s | | | | | | | | | |" % (k, skipped.get(k, "no run")))
            continue
        mean = med([statistics.mean(r["ratios"]) for r in rs])
        fin = med([r["final"] for r in rs])
        rec = med([r["recover"] for r in rs])
        rel_f = fin / base_final if base_final else None
        rel_r = rec / base_rec if (rec is not None and base_rec) else None
        per_round = ", ".join("%.3f / %s" % (r["final"], fmt(r["recover"], "%.0f")) for r in rs)
        sm = med([r["slabs_moved"] for r in rs])
        rd = med([r.get("small_readable") for r in rs])
        p("| %s | %.3f | %s | %s | %s | %s | %.3f | %s | %.0f | %s of %d | %d |" %
          (k, fin, fmt(rel_f, "%.2fx"), fmt(rec, "%.0f"), fmt(rel_r, "%.2fx"), per_round, mean,
           fmt(sm, "%d") if sm is not None else "not in stats", med([r["gets_per_sec"] for r in rs]),
           fmt(rd, "%d"), rs[0]["phase_a_keys"], sum(r["wrong"] for r in rs)))
    p("")
    marks = [m for m in (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120) if m <= args.seconds]
    p("Median hit ratio per %g-s interval (the interval ending at t):\n" % args.interval)
    p("| server | " + " | ".join("t=%d s" % m for m in marks) + " |")
    p("|---|" + "---:|" * len(marks))
    for k in kinds:
        rs = results[k]
        if not rs:
            continue
        cells = []
        for m in marks:
            i = int(m / args.interval) - 1
            cells.append("%.2f" % med([r["ratios"][i] for r in rs if i < len(r["ratios"])]))
        p("| %s | %s |" % (k, " | ".join(cells)))
    p("")
    for n in notes:
        p("- " + n)
    for k, why in skipped.items():
        p("- %s skipped: the server refused to start (%s)" % (k, why))
    for k in kinds:
        for r in results[k]:
            for e in r["wrong_examples"]:
                p("- %s round %d wrong value: %s" % (k, r["round"], e))
            if r["set_errors"] or r["phase_a_errors"]:
                p("- %s round %d: %d error replies to phase-B sets, %d in phase A" %
                  (k, r["round"], r["set_errors"], r["phase_a_errors"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("-s", "--server", help="HOST:PORT of a running server (one run)")
    ap.add_argument("--compare", action="store_true", help="start servers side by side")
    ap.add_argument("--mem", type=int, default=16, help="-m of the servers, MB [16]")
    ap.add_argument("--small", type=int, default=100, help="phase-A value bytes [100]")
    ap.add_argument("--fill-factor", type=float, default=2.0,
                    help="phase-A values sent, in memory limits [2]")
    ap.add_argument("--min-uptime", type=float, default=31.0,
                    help="--compare: phase B starts once the server is up this long [31]")
    ap.add_argument("--pause", type=float, default=0,
                    help="-s: idle seconds between phase A and phase B [0]")
    ap.add_argument("--large", default="10000-20000", help="phase-B value bytes, LO-HI [10000-20000]")
    ap.add_argument("--keyset", type=float, default=0.5,
                    help="phase-B values, in memory limits [0.5]")
    ap.add_argument("--pattern", choices=["uniform", "zipf", "cyclic"], default="uniform")
    ap.add_argument("--seconds", type=int, default=60, help="phase-B length [60]")
    ap.add_argument("--interval", type=float, default=1.0, help="hit ratio per this many s [1]")
    ap.add_argument("--final", type=float, default=10.0,
                    help="the final hit ratio is that of the last this many s [10]")
    ap.add_argument("--conns", type=int, default=4, help="client connections [4]")
    ap.add_argument("--depth", type=int, default=4, help="gets in flight per connection [4]")
    ap.add_argument("--rate", type=float, default=0,
                    help="gets/s in all (0: as fast as the server answers) [0]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-readback", dest="readback", action="store_false",
                    help="skip reading the phase-A keys back after phase B")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default="memcached,tiercached,tiercached-flash,tiercached-nomove")
    ap.add_argument("--flash-size", default="1g")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--tiercached", help="the server binary [BUILD/tiercached]")
    ap.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached")
    ap.add_argument("--results", help="--compare: one tab-separated line per run to this file: "
                    "round, server, final hit ratio, recovery s, gets/s, slabs_moved, wrong "
                    "values, then the hit ratio of every interval")
    ap.add_argument("--json", action="store_true", help="-s: one JSON object on stdout")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = ap.parse_args()
    if args.tiercached is None:
        args.tiercached = os.path.join(args.build, "tiercached")
    args.large = parse_range(args.large)
    mean = (args.large[0] + args.large[1]) / 2
    args.nbig = max(1, int(args.keyset * args.mem * MIB / mean))
    args.big_total = BigKeys(args.nbig, args.large[0], args.large[1], args.seed).total
    args.started = None
    if args.compare == bool(args.server):
        ap.error("give either -s HOST:PORT or --compare")
    if args.compare:
        return compare(args)
    host, port = args.server.rsplit(":", 1)
    big = BigKeys(args.nbig, args.large[0], args.large[1], args.seed)
    r = run_one(host, int(port), args, big)
    if args.json:
        print(json.dumps(r))
    else:
        for i, x in enumerate(r["ratios"]):
            pg, m = r["trace"][i] if i < len(r["trace"]) else (None, None)
            print("%6.1f s  hit ratio %.3f  class %d pages %s  total_malloced %s" %
                  ((i + 1) * args.interval, x, r["small_class"], fmt(pg, "%d"),
                   fmt(m, "%d")))
        print("final hit ratio %.3f (last %g s), 90 %% of it reached at %s s, %.0f gets/s, "
              "slabs_moved %s, evictions %s, wrong values %d, phase-A keys readable %s of %d" %
              (r["final"], args.final, fmt(r["recover"], "%.0f"), r["gets_per_sec"],
               fmt(r["slabs_moved"], "%d"), fmt(r["evictions"], "%d"), r["wrong"],
               r.get("small_readable", "n/a"), r["phase_a_keys"]))
    return 0 if r["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
