#!/usr/bin/env bash
# Start-up benchmark: stele vs crun vs runc, interleaved, behind one wrapper.
#
#   scripts/bench.sh               full run (~2-4 min on a 2-core VM)
#   QUICK=1 scripts/bench.sh       smoke test (~30 s)
#   STRACE=1 scripts/bench.sh      `strace -f -c` of one `stele run` (syscall summary)
#   STRACE=2 scripts/bench.sh      `strace -f -ttt -T` of one `stele run`: slowest calls, per process
#   (also: --strace / --per-phase as first argument, same as STRACE=1 / STRACE=2)
#
# Knobs (environment): N (run back-to-back, 200), N_IDLE (run after idle, 100),
# IDLE_MS (50), N_CSD (create/start/delete, 100), N_EXEC (100), PAR (20),
# PAR_REPS (10), WARMUP (5), RUNTIMES ("stele crun runc"), BENCH_JSON (file for
# raw samples), NO_BUILD=1 (use the existing target/stele),
# STELE=/path/to/stele (benchmark another build; implies NO_BUILD=1).
#   AB="BIN1 BIN2 ..." scripts/bench.sh   A/B of stele builds instead (same
#   wrapper and bundle; order shuffled every round; N_AB, IDLE_MS, SEED):
#   scripts/bench/ab.py.  Give the baseline twice to see the noise.
#
# The wrapper: every runtime runs inside ONE private mount namespace (set up
# once for the whole benchmark, not per run) in which /sys/fs/cgroup is a
# cgroup2-only mount.  crun 1.8.1 refuses this host's hybrid v1 layout, and
# runtimes must be compared behind the same wrapper.  Inside it stele and runc
# use their cgroup v2 drivers (a leaf cgroup per container plus the device
# eBPF program); crun runs with --cgroup-manager=disabled (its cgroupfs driver
# fails here: it cannot raise RLIMIT_MEMLOCK).  The wrapper also mounts a
# bpffs at /sys/fs/bpf when the host has none, as systemd does at boot on
# every systemd host: stele keeps its verified device programs there
# (runc loads one per container either way).  See docs/performance.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

case "${1:-}" in
  --strace) STRACE=1 ;;
  --per-phase) STRACE=2 ;;
  -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
  "") ;;
  *) echo "bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac
STRACE=${STRACE:-0}

[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in unshare jq python3 busybox /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: $t is required" >&2; exit 1; }
done
want_runtimes=${RUNTIMES:-stele crun runc}
for r in $want_runtimes; do
  [ "$r" = stele ] && continue
  command -v "$r" >/dev/null || { echo "bench: $r not installed (apt-get install $r)" >&2; exit 1; }
done
[ "$STRACE" = 0 ] || command -v strace >/dev/null || { echo "bench: strace is required" >&2; exit 1; }

# ---------------------------------------------------------------- build
if [ -n "${STELE:-}" ]; then
  STELE=$(readlink -f "$STELE")
elif [ "${NO_BUILD:-0}" = 0 ]; then
  echo "bench: scripts/build.sh" >&2
  bash "$repo/scripts/build.sh" --quiet >&2
fi
STELE=${STELE:-$repo/target/stele}
[ -x "$STELE" ] || { echo "bench: $STELE missing" >&2; exit 1; }

# ---------------------------------------------------------------- temp + cleanup
WORK=$(mktemp -d /tmp/stele-bench.XXXXXX)
PREFIX="sb$$"
# The wrapper: "${WRAP[@]}" CMD... runs CMD inside a fresh private mount ns with a
# cgroup2-only /sys/fs/cgroup (unshare and sh exec into CMD: same pid).
WRAP=(unshare -m --propagation private sh -c
  'umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup &&
   { mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; } && exec "$@"' wrap)
wrap() { "${WRAP[@]}" "$@"; }
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Containers the driver could not delete (it deletes its own on any error).
  local r bin extra ids
  for r in stele crun runc; do
    [ -d "$WORK/state-$r" ] || continue
    case $r in
      stele) bin=$STELE extra= ;;
      crun) bin=crun extra=--cgroup-manager=disabled ;;
      runc) bin=runc extra= ;;
    esac
    ids=$("$bin" --root "$WORK/state-$r" $extra list -q 2>/dev/null || true)
    for id in $ids; do
      wrap "$bin" --root "$WORK/state-$r" $extra delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  # The A/B runs' roots (any stele reads any build's records).
  local d
  for d in "$WORK"/state-ab*; do
    [ -d "$d" ] || continue
    for id in $("$STELE" --root "$d" list -q 2>/dev/null || true); do
      wrap "$STELE" --root "$d" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  # Leaf cgroups left in the unified hierarchy (the same hierarchy the wrapper mounts).
  local cg
  for cg in /sys/fs/cgroup/unified/"$PREFIX"-*; do
    [ -d "$cg" ] || continue
    [ -w "$cg/cgroup.kill" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
    rmdir "$cg" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit $rc
}
child=
stop() {  # forward to the driver (it deletes its containers), then clean up
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  exit "$1"
}
trap cleanup EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

# ---------------------------------------------------------------- bundle
# busybox rootfs, read-only root, args /bin/true, `runc spec` defaults
# (namespaces pid, network, ipc, uts, mount + cgroup; the default devices rule only).
B="$WORK/bundle"
# the mountpoints of runc spec exist in the image (stele never creates them)
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev" "$B/rootfs/tmp"
cp "$(readlink -f "$(command -v busybox)")" "$B/rootfs/bin/busybox"
for a in $("$B/rootfs/bin/busybox" --list); do
  [ "$a" = busybox ] || ln -s busybox "$B/rootfs/bin/$a"
done
if command -v runc >/dev/null; then
  (cd "$B" && runc spec)
else
  (cd "$B" && "$STELE" spec)
fi
jq --arg rootfs "$B/rootfs" '
    .process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = true
  | .root.path = $rootfs
  | .linux.resources = {devices: [{allow: false, access: "rwm"}]}
  | del(.linux.seccomp)
  | if any(.linux.namespaces[]; .type == "cgroup") then .
    else .linux.namespaces += [{type: "cgroup"}] end' \
  "$B/config.json" >"$B/config.json.new"
mv "$B/config.json.new" "$B/config.json"
# Second bundle, same rootfs, long-running init for the exec measurement.
BS="$WORK/bundle-sleep"
mkdir -p "$BS"
jq '.process.args = ["/bin/sleep", "3600"]' "$B/config.json" >"$BS/config.json"

export BENCH_WORK=$WORK BENCH_BUNDLE=$B BENCH_BUNDLE_SLEEP=$BS BENCH_PREFIX=$PREFIX BENCH_STELE=$STELE
export RUNTIMES=$want_runtimes

# ---------------------------------------------------------------- strace modes
if [ "$STRACE" != 0 ]; then
  out="$WORK/strace.out"
  # one warm-up run so the numbers are not the cold-cache first start
  wrap "$STELE" --root "$WORK/state-stele" run -b "$B" "$PREFIX-warm" >/dev/null
  if [ "$STRACE" = 1 ]; then
    echo "== strace -f -c: one \`stele run\` of /bin/true (inside the wrapper) =="
    wrap strace -f -c -o "$out" "$STELE" --root "$WORK/state-stele" run -b "$B" "$PREFIX-st"
    cat "$out"
  else
    echo "== strace -f -ttt -T: one \`stele run\` of /bin/true (inside the wrapper) =="
    wrap strace -f -ttt -T -o "$out" "$STELE" --root "$WORK/state-stele" run -b "$B" "$PREFIX-st"
    python3 "$here/bench/strace_top.py" "$out"
  fi
  exit 0
fi

# ---------------------------------------------------------------- A/B of builds
if [ -n "${AB:-}" ]; then
  for b in $AB; do [ -x "$b" ] || { echo "bench: AB: $b is not an executable" >&2; exit 1; }; done
  echo "bench: A/B of $AB (scripts/bench/ab.py), inside the wrapper" >&2
  "${WRAP[@]}" python3 "$here/bench/ab.py" &
  child=$!
  wait "$child"
  exit $?
fi

# ---------------------------------------------------------------- the benchmark
echo "bench: $("$STELE" --version | head -1); $(crun --version 2>/dev/null | head -1); $(runc --version 2>/dev/null | head -1); kernel $(uname -r); $(nproc) cpus" >&2
echo "bench: wrapper = one private mount ns, cgroup2-only /sys/fs/cgroup, bpffs at /sys/fs/bpf (crun --cgroup-manager=disabled)" >&2
# Not through the wrap function: a backgrounded function runs in a subshell,
# and $child must be the driver itself so that stop() can signal it.
"${WRAP[@]}" python3 "$here/bench/bench.py" &
child=$!
wait "$child"
