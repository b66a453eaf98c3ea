#!/bin/bash
# gen-link-order.sh [STELE]: regenerate link-order.txt, the order in which lld
# places stele's functions (build.rs passes it to the link), from what
# container starts actually execute.  Then rebuild: `bash scripts/build.sh`.
#
# STELE (default: built now by scripts/build.sh) must be built from the
# current source with the current build configuration: the file names
# functions by their mangled symbol names, and lld ignores the names a later
# build no longer has (a stale file costs memory, never a failed build).
#
# How: scripts/fn-trace.c (compiled with cc) runs stele under ptrace with a
# breakpoint on every function and records, per process, the functions in
# the order they first run.  The scenarios, inside a private mount namespace
# with a cgroup2-only /sys/fs/cgroup and a bpffs (as scripts/bench.sh):
#   1. `run` of /bin/true in bench.sh's bundle: the functions the runtime
#      runs, first those the container init never runs, then those both run,
#      then the init's own.  The runtime's code and the init's are then each a
#      few contiguous 64 KiB fault-around windows (peak RSS of `run`: the
#      runtime's; docs/performance.md "Peak RSS").
#   2. the rest, in first-use order: create/state/list/start/kill/
#      delete -f of a sleeping container; two `run`s with stele's default
#      seccomp profile (compiled, then cached); --version.
# Needs root, cc, busybox, jq, unshare.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$repo/link-order.txt

[ "$(id -u)" = 0 ] || { echo "gen-link-order: must run as root" >&2; exit 1; }
for t in cc nm jq unshare busybox python3; do
    command -v "$t" >/dev/null || { echo "gen-link-order: $t is required" >&2; exit 1; }
done

if [ $# -ge 1 ]; then
    stele=$(readlink -f "$1")
else
    bash "$repo/scripts/build.sh" --quiet >&2
    stele=$(readlink -f "$repo/target/stele")
fi

work=$(mktemp -d /tmp/stele-linkorder.XXXXXX)
root=$work/state
ids=()
cleanup() {
    local id
    for id in "${ids[@]}"; do
        wrap "$stele" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
WRAP=(unshare -m --propagation private sh -c
    'umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup &&
     { mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; } && exec "$@"' wrap)
wrap() { "${WRAP[@]}" "$@"; }

cc -O2 -o "$work/fn-trace" "$here/fn-trace.c"
# functions (text symbols), link-time address and mangled name
nm --defined-only "$stele" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' >"$work/syms"

# bench.sh's bundle: busybox, read-only root, /bin/true, devices-only
# resources, cgroup namespace, no seccomp
b=$work/bundle
bash "$here/make-bundle.sh" "$b" /bin/true >/dev/null
jq --arg rootfs "$b/rootfs" '.root.path = $rootfs
  | .linux.namespaces += [{type: "cgroup"}]' "$b/config.json" >"$work/c.json"
mv "$work/c.json" "$b/config.json"
bl=$work/bundle-sleep
mkdir -p "$bl"
jq '.process.args = ["/bin/sleep", "60"]' "$b/config.json" >"$bl/config.json"
bs=$work/bundle-seccomp
mkdir -p "$bs"
"$stele" spec --bundle "$bs"
jq --slurpfile base "$b/config.json" '$base[0] + {linux: ($base[0].linux + {seccomp: .linux.seccomp})}' \
    "$bs/config.json" >"$work/c.json"
mv "$work/c.json" "$bs/config.json"

n=0
traced() {  # traced N NAME STELE-ARGS...: one traced stele command
    timeout 120 "${WRAP[@]}" "$work/fn-trace" "$work/syms" "$work/t$1.$2" "$stele" --root "$root" "${@:3}" >/dev/null 2>&1 </dev/null || {
        echo "gen-link-order: traced \`stele ${*:3}\` failed" >&2
        return 1
    }
}
trace() { n=$((n + 1)); traced "$n" "$@" || exit 1; }
mkdir -p "$root"
# warm-up (creates the bpffs pins and caches a normal start finds)
wrap "$stele" --root "$root" run -b "$b" lo-warm >/dev/null 2>&1 </dev/null
trace run run -b "$b" lo-run
ids+=(lo-c)
# create's tracer follows the init until it exec's, after start
n=$((n + 1))
traced "$n" rest create -b "$bl" lo-c &
tracer=$!
for _ in $(seq 100); do
    [ "$("$stele" --root "$root" state lo-c 2>/dev/null | jq -r .status)" = created ] && break
    sleep 0.1
done
trace rest state lo-c
trace rest list
trace rest start lo-c
wait "$tracer" || exit 1
trace rest kill lo-c KILL
trace rest delete -f lo-c
# the second seccomp run finds the compiled profile in the cache
trace rest run -b "$bs" lo-s
trace rest run -b "$bs" lo-s2
trace rest --version
ids=()

python3 - "$out" "$work" <<'EOF'
import glob, os, sys
out, work = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(work, "t*.*")), key=lambda p: int(os.path.basename(p)[1:].split(".")[0]))
order, seen = [], set()
def add(names):
    for n in names:
        if n not in seen:
            seen.add(n)
            order.append(n)
for path in files:
    per, first = {}, None
    for line in open(path):
        a, b = line.split()[:2]
        if a == "fork":
            continue
        if first is None:
            first = a
        per.setdefault(a, []).append(b)
    if first is None:
        continue
    runtime = per.pop(first)
    child = [n for names in per.values() for n in names]
    if path.endswith(".run"):
        cs = set(child)
        rs = set(runtime)
        add(n for n in runtime if n not in cs)
        add(n for n in runtime if n in cs)
        add(n for n in child if n not in rs)
    else:
        add(runtime)
        add(child)
with open(out, "w") as f:
    f.write("".join(n + "\n" for n in order))
print(f"gen-link-order: {len(order)} functions -> {out}", file=sys.stderr)
EOF
