#!/usr/bin/env python3
"""Summarise `strace -f -ttt -T -o FILE` output of one runtime invocation.

Prints: wall time covered, per-process time spans, the slowest individual
syscalls (with their offset from the first event), and the total time spent
per syscall name. Stdlib only.
"""
import collections
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^(?:<\.\.\. )?(\w+)")
DUR = re.compile(r"<(\d+\.\d+)>\s*$")


def main(path, top=25):
    events = []
    pending = {}
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (ts, rest)
                continue
            d = DUR.search(rest)
            if rest.startswith("<... "):
                start, first = pending.pop(pid, (ts, rest))
                text = first.replace(" <unfinished ...>", "") + " ... " + rest
            else:
                start, text = ts, rest
            c = CALL.match(rest)
            name = c.group(1) if c else "?"
            if rest.startswith("+++") or rest.startswith("---"):
                name = "(event)"
            events.append((start, pid, name, float(d.group(1)) if d else 0.0, text))
    if not events:
        print("no events parsed")
        return
    t0 = min(e[0] for e in events)
    t1 = max(e[0] + e[3] for e in events)
    print(f"wall time covered by the trace: {(t1 - t0) * 1e3:.2f} ms "
          f"(strace inflates every syscall; use for relative cost only)\n")
    spans = collections.OrderedDict()
    for s, pid, name, d, _ in events:
        a, b, n = spans.get(pid, (s, s + d, 0))
        spans[pid] = (min(a, s), max(b, s + d), n + 1)
    print("per process:  pid   start_ms   end_ms  syscalls  first call")
    firsts = {}
    for s, pid, name, d, text in events:
        firsts.setdefault(pid, name)
    for pid, (a, b, n) in spans.items():
        print(f"          {pid:>7} {(a - t0) * 1e3:>9.2f} {(b - t0) * 1e3:>8.2f} {n:>9}  {firsts[pid]}")
    print(f"\nslowest {top} syscalls (ms from start, duration ms, pid, call):")
    for s, pid, name, d, text in sorted(events, key=lambda e: -e[3])[:top]:
        print(f"  {(s - t0) * 1e3:>8.2f}  {d * 1e3:>7.3f}  {pid:>7}  {text[:110]}")
    agg = collections.defaultdict(lambda: [0, 0.0])
    for _, _, name, d, _ in events:
        agg[name][0] += 1
        agg[name][1] += d
    print("\ntime per syscall name (ms, calls), top 20; wait4/waitid/poll include blocked time:")
    for name, (n, d) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:20]:
        print(f"  {name:<20} {d * 1e3:>8.3f} {n:>6}")


if __name__ == "__main__":
    main(sys.argv[1])
