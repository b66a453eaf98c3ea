#!/usr/bin/env bash
# Start overhead of `stele run --image host -- true` next to bwrap with the
# same isolation (read-only bind of /, new pid/net/ipc/uts/mount namespaces,
# /proc, /dev, a tmpfs /tmp), runs interleaved, medians and ratio.
#
#   scripts/bench-sandbox.sh [RUNS] [STELE]      (as root; default 200 runs, target/stele)
#
# Also times stele variants that drop one feature at a time, to show where
# its time goes (seccomp filter, cgroup, --writable overlay).
set -euo pipefail
RUNS=${1:-200}
STELE=${2:-$(dirname "$0")/../target/stele}
ROOT=$(mktemp -d /tmp/stele-bench.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

declare -A CMDS
CMDS[stele]="$STELE --root $ROOT run --image host -- true"
CMDS[stele-unconfined]="$STELE --root $ROOT run --image host --seccomp unconfined -- true"
CMDS[stele-writable]="$STELE --root $ROOT run --image host --writable -- true"
CMDS[bwrap]="bwrap --ro-bind / / --unshare-pid --unshare-net --unshare-ipc --unshare-uts --proc /proc --dev /dev --tmpfs /tmp --die-with-parent -- true"
ORDER=(stele bwrap stele-unconfined stele-writable)

for n in "${ORDER[@]}"; do  # warm up, and fail early if one does not work
    ${CMDS[$n]} >/dev/null || { echo "failed: ${CMDS[$n]}" >&2; exit 1; }
done

declare -A T
for ((i = 0; i < RUNS; i++)); do
    for n in "${ORDER[@]}"; do
        s=$EPOCHREALTIME
        ${CMDS[$n]} >/dev/null
        e=$EPOCHREALTIME
        T[$n]+="$(( (${e/./} - ${s/./}) )) "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
p90() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.9)] / 1000}'; }

printf '%-18s %10s %10s\n' "command" "median ms" "p90 ms"
declare -A M
for n in "${ORDER[@]}"; do
    M[$n]=$(echo "${T[$n]}" | median)
    printf '%-18s %10s %10s\n' "$n" "${M[$n]}" "$(echo "${T[$n]}" | p90)"
done
echo "runs: $RUNS interleaved; kernel $(uname -r); $(nproc) cpus"
awk -v s="${M[stele]}" -v b="${M[bwrap]}" 'BEGIN {printf "ratio stele/bwrap (medians): %.2f\n", s / b}'
