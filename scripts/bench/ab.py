#!/usr/bin/env python3
"""A/B of stele builds: `AB="BIN1 BIN2 ..." scripts/bench.sh` runs this inside
bench.sh's wrapper, on its bundle, instead of the runtime comparison.

Every round runs `run -b BUNDLE` once per build, in an order shuffled anew
each round (a fixed order biases the after-idle row by several percent:
page-cache and cgroup-name effects of whoever runs first), with an id of its
own per run. Two phases: back-to-back, and after a pause of IDLE_MS before
each run. Give the baseline twice (`AB="old old-copy new"`, a copy under
another name) to see the noise next to the difference.

Env: AB (the builds), N_AB (300 rounds per phase), IDLE_MS (50), SEED (7),
and bench.sh's BENCH_WORK, BENCH_BUNDLE, BENCH_PREFIX.
"""
import os
import random
import statistics
import sys
import time

WORK = os.environ["BENCH_WORK"]
BUNDLE = os.environ["BENCH_BUNDLE"]
PREFIX = os.environ["BENCH_PREFIX"]
BINS = os.environ["AB"].split()
N = int(os.environ.get("N_AB", "300"))
IDLE = int(os.environ.get("IDLE_MS", "50")) / 1000.0
rng = random.Random(int(os.environ.get("SEED", "7")))


def run_once(i, b, tag):
    root = os.path.join(WORK, f"state-ab{i}")
    argv = [b, "--root", root, "run", "-b", BUNDLE, f"{PREFIX}-{tag}"]
    fa = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    dt = (time.perf_counter() - t) * 1e6
    if status != 0:
        sys.exit(f"ab: {b} run failed (wait status {status:#x})")
    return dt


def phase(idle, name):
    walls = [[] for _ in BINS]
    for r in range(N):
        order = list(range(len(BINS)))
        rng.shuffle(order)
        for i in order:
            if idle:
                time.sleep(idle)
            walls[i].append(run_once(i, BINS[i], f"{name}{r}-{i}"))
    base = statistics.median(walls[0])
    print(f"\n{name}: {N} rounds, shuffled order" + (f", {idle * 1000:.0f} ms idle before each run" if idle else ""))
    print(f"{'build':44s} {'median us':>10s} {'p25 us':>8s} {'vs first':>9s}")
    for b, w in zip(BINS, walls):
        m = statistics.median(w)
        print(f"{b[-44:]:44s} {m:10.0f} {sorted(w)[len(w) // 4]:8.0f} {m / base:9.3f}")


for b in BINS:
    run_once(BINS.index(b), b, f"warm-{BINS.index(b)}")
phase(0, "back-to-back")
phase(IDLE, "after-idle")
