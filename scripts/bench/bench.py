#!/usr/bin/env python3
"""Interleaved start-up benchmark of stele, crun and runc (driver for scripts/bench.sh).

Runs INSIDE the wrapper set up by bench.sh (one private mount namespace with a
cgroup2-only /sys/fs/cgroup, shared by all three runtimes). Every timed
runtime invocation is spawned with posix_spawn and reaped with wait4 (wall time
by perf_counter around both). Peak RSS is sampled separately through
`/usr/bin/time -f %M` (max RSS of the runtime and every descendant it reaped).
We are a child subreaper, so detached container inits are reaped here.

Python stdlib only. Configuration comes from the environment (see bench.sh).
"""
import ctypes
import json
import os
import select
import signal
import statistics
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


QUICK = os.environ.get("QUICK", "") not in ("", "0")
N_RUN = env_int("N", 30 if QUICK else 200)          # run, back-to-back
N_IDLE = env_int("N_IDLE", 10 if QUICK else 100)    # run after IDLE_MS idle
IDLE_MS = env_int("IDLE_MS", 50)
N_CSD = env_int("N_CSD", 10 if QUICK else 100)      # create / start / delete
N_EXEC = env_int("N_EXEC", 10 if QUICK else 100)    # exec into a running container
N_RSS = env_int("N_RSS", 3 if QUICK else 10)        # peak-RSS samples (run, create)
TIME = "/usr/bin/time"
PAR = env_int("PAR", 20)                            # containers started at once
PAR_REPS = env_int("PAR_REPS", 3 if QUICK else 10)
WARMUP = env_int("WARMUP", 3 if QUICK else 5)

WORK = os.environ["BENCH_WORK"]          # temp dir owned by bench.sh
BUNDLE = os.environ["BENCH_BUNDLE"]      # /bin/true bundle
BUNDLE_SLEEP = os.environ["BENCH_BUNDLE_SLEEP"]  # same rootfs, args sleep
PREFIX = os.environ["BENCH_PREFIX"]      # unique container-id prefix
STELE = os.environ["BENCH_STELE"]
ONLY = [r for r in os.environ.get("RUNTIMES", "stele crun runc").split() if r]

DEVNULL = os.open(os.devnull, os.O_RDWR)
BASE = []  # harness floor samples (ms)


def which(prog):
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = os.path.join(d, prog)
        if os.access(p, os.X_OK):
            return p
    raise SystemExit(f"bench: {prog} not found in PATH")


class Runtime:
    def __init__(self, name, argv0, extra):
        self.name = name
        self.root = os.path.join(WORK, f"state-{name}")
        os.makedirs(self.root, exist_ok=True)
        self.base = [argv0, "--root", self.root] + extra
        self.errlog = os.path.join(WORK, f"{name}.stderr")
        self.errfd = os.open(self.errlog, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.seq = 0
        self.live = set()   # container ids that may still exist
        self.has_exec = True

    def cid(self, tag):
        self.seq += 1
        return f"{PREFIX}-{self.name}-{tag}{self.seq}"

    def spawn(self, args, quiet_err=False):
        argv = self.base + args
        fa = [(os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1),
              (os.POSIX_SPAWN_DUP2, DEVNULL if quiet_err else self.errfd, 2)]
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)

    def call(self, args, check=True, quiet_err=False):
        """Run the runtime once; return (seconds, maxrss KiB, exit status)."""
        t0 = time.perf_counter()
        pid = self.spawn(args, quiet_err)
        _, status, ru = os.wait4(pid, 0)
        dt = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        if check and rc != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)} exited {rc}; "
                               f"stderr tail:\n{tail(self.errlog)}")
        return dt, ru.ru_maxrss, rc


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def reap_strays():
    """We are a child subreaper: orphaned container inits land on us."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_exit(pid, timeout=10.0):
    """Wait until process pid has exited (reap it if it is our child)."""
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def rotate(lst, i):
    k = i % len(lst)
    return lst[k:] + lst[:k]


def pct(data, q):
    s = sorted(data)
    if not s:
        return float("nan")
    # linear interpolation between closest ranks
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# --------------------------------------------------------------------------- phases

def phase_run(rts, res, n, idle, key):
    for i in range(n):
        for rt in rotate(rts, i):
            if idle:
                time.sleep(idle)
            cid = rt.cid("r")
            rt.live.add(cid)
            dt, rss, _ = rt.call(["run", "-b", BUNDLE, cid])
            rt.live.discard(cid)
            res[rt.name].setdefault(key, []).append(dt * 1e3)
        if not idle:  # harness floor: posix_spawn + wait4 of /bin/true
            t0 = time.perf_counter()
            pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
            os.wait4(pid, 0)
            BASE.append((time.perf_counter() - t0) * 1e3)
        reap_strays()


def phase_csd(rts, res, n):
    for i in range(n):
        for rt in rotate(rts, i):
            cid = rt.cid("c")
            pidfile = os.path.join(WORK, f"{cid}.pid")
            rt.live.add(cid)
            dc, _, _ = rt.call(["create", "-b", BUNDLE, "--pid-file", pidfile, cid])
            pid = read_pid(pidfile)
            ds, _, _ = rt.call(["start", cid])
            wait_exit(pid)          # untimed: /bin/true exits, we reap it
            dd, _, _ = rt.call(["delete", cid])
            rt.live.discard(cid)
            os.unlink(pidfile)
            r = res[rt.name]
            r.setdefault("create", []).append(dc * 1e3)
            r.setdefault("start", []).append(ds * 1e3)
            r.setdefault("delete", []).append(dd * 1e3)
            r.setdefault("csd", []).append((dc + ds + dd) * 1e3)
        reap_strays()


def timed_rss(rt, args):
    """Peak RSS (KiB) of one invocation, via `/usr/bin/time -f %M`.

    Not wait4 from this process: a child of python inherits python's RSS
    high-water mark across exec (vfork/fork + exec keeps the old mm's
    hiwater in signal->maxrss), so every sample would read ~14 MiB.
    /usr/bin/time's own floor is ~1 MiB (its forked child before exec).
    """
    out = os.path.join(WORK, "rss.out")
    argv = [TIME, "-f", "%M", "-o", out] + rt.base + args
    fa = [(os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1),
          (os.POSIX_SPAWN_DUP2, rt.errfd, 2)]
    pid = os.posix_spawn(TIME, argv, os.environ, file_actions=fa)
    _, st, _ = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(st) != 0:
        raise RuntimeError(f"{rt.name} {' '.join(args)} failed under {TIME}:\n{tail(rt.errlog)}")
    with open(out) as f:
        return int(f.read().split()[-1])


def phase_rss(rts, res, n):
    for i in range(n):
        for rt in rotate(rts, i):
            cid = rt.cid("m")
            rt.live.add(cid)
            res[rt.name].setdefault("rss_run", []).append(
                timed_rss(rt, ["run", "-b", BUNDLE, cid]) / 1024.0)
            rt.live.discard(cid)
            cid = rt.cid("m")
            pidfile = os.path.join(WORK, f"{cid}.pid")
            rt.live.add(cid)
            res[rt.name].setdefault("rss_create", []).append(
                timed_rss(rt, ["create", "-b", BUNDLE, "--pid-file", pidfile, cid]) / 1024.0)
            pid = read_pid(pidfile)
            rt.call(["start", cid])
            wait_exit(pid)
            rt.call(["delete", cid])
            rt.live.discard(cid)
            os.unlink(pidfile)
        reap_strays()


def phase_parallel(rts, res, p, reps):
    for i in range(reps):
        for rt in rotate(rts, i):
            ids = [rt.cid("p") for _ in range(p)]
            rt.live.update(ids)
            t0 = time.perf_counter()
            pids = [rt.spawn(["run", "-b", BUNDLE, c]) for c in ids]
            bad = 0
            for pid in pids:
                _, st, _ = os.wait4(pid, 0)
                bad += os.waitstatus_to_exitcode(st) != 0
            dt = time.perf_counter() - t0
            rt.live.difference_update(ids)
            if bad:
                raise RuntimeError(f"{rt.name}: {bad}/{p} parallel runs failed; stderr tail:\n"
                                   f"{tail(rt.errlog)}")
            res[rt.name].setdefault("par", []).append(dt * 1e3)
            reap_strays()


def probe_exec(rt):
    _, _, rc = rt.call(["exec", "--help"], check=False, quiet_err=True)
    return rc == 0


def phase_exec(rts, res, n):
    ready = []
    for rt in rts:
        if not probe_exec(rt):
            rt.has_exec = False
            print(f"bench: exec: not supported by this {rt.name} build (`{rt.name} exec --help` failed);"
                  " skipping the exec measurement", file=sys.stderr)
            continue
        cid = rt.cid("x")
        pidfile = os.path.join(WORK, f"{cid}.pid")
        rt.live.add(cid)
        rt.call(["create", "-b", BUNDLE_SLEEP, "--pid-file", pidfile, cid])
        rt.call(["start", cid])
        ready.append((rt, cid, read_pid(pidfile)))
    try:
        live = [x[0] for x in ready]
        tgt = {x[0].name: x[1] for x in ready}
        for rt in live:            # warm-up
            rt.call(["exec", tgt[rt.name], "/bin/true"])
        for i in range(n):
            for rt in rotate(live, i):
                dt, _, _ = rt.call(["exec", tgt[rt.name], "/bin/true"])
                res[rt.name].setdefault("exec", []).append(dt * 1e3)
            reap_strays()
    finally:
        for rt, cid, pid in ready:
            rt.call(["kill", cid, "KILL"], check=False)
            wait_exit(pid, 5)
            rt.call(["delete", "-f", cid], check=False)
            rt.live.discard(cid)
        reap_strays()


def cleanup(rts):
    for rt in rts:
        for cid in sorted(rt.live):
            rt.call(["delete", "-f", cid], check=False, quiet_err=True)
        rt.live.clear()
    reap_strays()


# --------------------------------------------------------------------------- report

ROWS = [
    ("run", "run, back-to-back", "ms"),
    ("run_idle", f"run, after {IDLE_MS} ms idle", "ms"),
    ("create", "create", "ms"),
    ("start", "start", "ms"),
    ("delete", "delete", "ms"),
    ("csd", "create+start+delete", "ms"),
    ("exec", "exec /bin/true", "ms"),
    ("par", f"{PAR} x run in parallel (total)", "ms"),
    ("rss_run", "peak RSS, run", "MiB"),
    ("rss_create", "peak RSS, create", "MiB"),
]


def report(rts, res, meta):
    names = [rt.name for rt in rts]
    w0 = 32
    hdr = f"{'metric (median / p90)':<{w0}}" + "".join(f"{n:>17}" for n in names)
    ratios = [o for o in ("crun", "runc") if "stele" in names and o in names]
    hdr += "".join(f"{'stele/' + o:>12}" for o in ratios)
    lines = [hdr, "-" * len(hdr)]
    summary = {}
    for key, label, unit in ROWS:
        if not any(res[n].get(key) for n in names):
            continue
        row = f"{label + ' [' + unit + ']':<{w0}}"
        med = {}
        for n in names:
            d = res[n].get(key)
            if d:
                med[n] = statistics.median(d)
                p90 = pct(d, 0.9)
                fmt = "{:.1f}" if unit == "MiB" else "{:.2f}"
                cell = fmt.format(med[n]) + " / " + fmt.format(p90)
                summary.setdefault(n, {})[key] = {"median": med[n], "p90": p90, "n": len(d)}
            else:
                cell = "n/a"
            row += f"{cell:>17}"
        for o in ratios:
            if "stele" in med and o in med and med[o] > 0:
                row += f"{med['stele'] / med[o]:>12.2f}"
            else:
                row += f"{'n/a':>12}"
        lines.append(row)
    print("\n".join(lines))
    out = os.environ.get("BENCH_JSON")
    if out:
        with open(out, "w") as f:
            json.dump({"meta": meta, "results": summary, "raw": res}, f, indent=1)
        print(f"\n(raw samples written to {out})")


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("bench: prctl(PR_SET_CHILD_SUBREAPER) failed")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    all_rts = {
        "stele": lambda: Runtime("stele", STELE, []),
        "crun": lambda: Runtime("crun", which("crun"), ["--cgroup-manager=disabled"]),
        "runc": lambda: Runtime("runc", which("runc"), []),
    }
    rts = [all_rts[n]() for n in ONLY]
    res = {rt.name: {} for rt in rts}
    meta = {"N": N_RUN, "N_IDLE": N_IDLE, "IDLE_MS": IDLE_MS, "N_CSD": N_CSD,
            "N_EXEC": N_EXEC, "N_RSS": N_RSS, "PAR": PAR, "PAR_REPS": PAR_REPS, "uname": os.uname().release}
    print(f"bench: N={N_RUN} N_IDLE={N_IDLE}x{IDLE_MS}ms N_CSD={N_CSD} N_EXEC={N_EXEC} "
          f"PAR={PAR}x{PAR_REPS} warmup={WARMUP} order=rotating interleave of {' '.join(ONLY)}",
          file=sys.stderr)
    t_start = time.time()
    try:
        # sanity + warm-up (page cache, dentries, first-use allocations)
        for rt in rts:
            for _ in range(WARMUP):
                cid = rt.cid("w")
                rt.live.add(cid)
                rt.call(["run", "-b", BUNDLE, cid])
                rt.live.discard(cid)
        reap_strays()
        steps = [
            ("run back-to-back", lambda: phase_run(rts, res, N_RUN, 0, "run")),
            ("run after idle", lambda: phase_run(rts, res, N_IDLE, IDLE_MS / 1e3, "run_idle")),
            ("create/start/delete", lambda: phase_csd(rts, res, N_CSD)),
            ("peak RSS", lambda: phase_rss(rts, res, N_RSS)),
            ("parallel", lambda: phase_parallel(rts, res, PAR, PAR_REPS)),
            ("exec", lambda: phase_exec(rts, res, N_EXEC)),
        ]
        for name, fn in steps:
            t0 = time.time()
            fn()
            print(f"bench: {name}: {time.time() - t0:.1f}s", file=sys.stderr)
    finally:
        cleanup(rts)
    meta["seconds"] = round(time.time() - t_start, 1)
    print()
    report(rts, res, meta)
    if BASE:
        print(f"\nharness floor (posix_spawn+wait4 of /bin/true, same loop): median "
              f"{statistics.median(BASE):.2f} ms, p90 {pct(BASE, 0.9):.2f} ms; included in every time above")
    print(f"(total {meta['seconds']} s; ratios are of medians; lower is better; "
          f"RSS via {TIME} -f %M, floor ~1 MiB)")


if __name__ == "__main__":
    main()
