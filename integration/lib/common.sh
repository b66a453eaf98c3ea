# integration/lib/common.sh - shared helpers for the engine suites (sourced, bash).
# A suite defines scenario functions s_NAME, registers them with `scenario NAME s_NAME`,
# and calls `finish` at the end. Each scenario's output goes to $LOGDIR/<suite>.<name>.log.
# Return 0 = PASS, 77 = SKIP (reason via skip_because), anything else = FAIL (reason via why).
set -u
PASS=0 FAIL=0 SKIP=0
WHY=""
SUITE=${SUITE:?}
LOGDIR=${LOGDIR:?}
TIMEOUT=${TIMEOUT:-60}
ONLY=${ONLY:-}
mkdir -p "$LOGDIR"

note() { echo "# [$SUITE] $*" >&2; }
why() { WHY="$*"; echo "WHY: $*"; }
skip_because() { WHY="$*"; echo "SKIP: $*"; return 77; }
T() { timeout -k 5 "$TIMEOUT" "$@"; }
q() { printf '%q ' "$@"; }
# run a shell command line under a pseudo-terminal (engines need a tty on stdin for -t)
in_pty() { T script -qefc "$*" /dev/null < /dev/null; }

scenario() { # scenario NAME FUNC
  local name=$1 fn=$2 rc t0 ms
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  WHY=""
  t0=$EPOCHREALTIME
  # the function runs in this shell (not a subshell) so WHY survives; only its output is redirected
  "$fn" > "$LOGDIR/$SUITE.$name.log" 2>&1
  rc=$?
  WHY=$(sed -n 's/^\(WHY\|SKIP\): //p' "$LOGDIR/$SUITE.$name.log" | tail -1)
  ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%d", (b-a)*1000}')
  if [ $rc -eq 0 ]; then
    echo "PASS $SUITE/$name (${ms}ms)"; PASS=$((PASS+1))
  elif [ $rc -eq 77 ]; then
    echo "SKIP $SUITE/$name: $WHY"; SKIP=$((SKIP+1))
  else
    echo "FAIL $SUITE/$name: ${WHY:-exit status $rc} (log: $LOGDIR/$SUITE.$name.log)"; FAIL=$((FAIL+1))
  fi
}

# whole-suite skip (engine unusable on this host): counts every listed scenario as skipped
skip_suite() { # skip_suite REASON NAME...
  local reason=$1; shift
  local n
  for n in "$@"; do echo "SKIP $SUITE/$n: $reason"; SKIP=$((SKIP+1)); done
}

finish() {
  [ -n "${COUNTS_FILE:-}" ] && echo "$PASS $FAIL $SKIP" > "$COUNTS_FILE"
  local line="$PASS passed, $FAIL failed"
  [ "$SKIP" -gt 0 ] && line+=", $SKIP skipped"
  echo "$SUITE: $line"
  [ "$FAIL" -eq 0 ]
}

# checksum of a directory tree: names, modes, owners, sizes, link targets and file contents
tree_sum() {
  local d=$1
  [ -d "$d" ] || { echo "missing:$d"; return; }
  ( cd "$d" && {
      find . -printf '%p %y %m %U:%G %s %l\n' | LC_ALL=C sort
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    } ) | sha256sum | cut -d' ' -f1
}
# tree_sum of several colon-separated dirs
dirs_sum() {
  local IFS=: d out=""
  for d in $1; do out+="$d=$(tree_sum "$d");"; done
  echo "$out"
}

# lazily unmount everything at or below $1, deepest first
umount_below() {
  local b=$1 m
  awk -v b="$b" 'index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# kill every process whose command line mentions $1 (our private paths) and its children:
# used after the daemon is stopped, for shims/conmons that outlived it. By PID only.
kill_procs_mentioning() {
  local needle=$1 p pid c
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    [ "$pid" = "$BASHPID" ] && continue
    if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -qF -- "$needle"; then
      for c in /proc/[0-9]*; do
        [ "$(awk '/^PPid:/{print $2}' "$c/status" 2>/dev/null)" = "$pid" ] && kill -KILL "${c#/proc/}" 2>/dev/null
      done
      note "killing leftover pid $pid ($(cat "$p/comm" 2>/dev/null))"
      kill -KILL "$pid" 2>/dev/null
    fi
  done
}

# remove a cgroup subtree (all v1 hierarchies, or the v2 tree), deepest first
rm_cgroup_tree() { # rm_cgroup_tree /relative/path
  local rel=${1#/} h
  [ -n "$rel" ] || return 0
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$h$rel" ] && find "$h$rel" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# common scenario bodies --------------------------------------------------------------
# shell snippet run inside a container to try forking past a pids limit
FORK_BOMBLET='i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo spawned-$i'
# allocate 64 MiB in one buffer (dd's block buffer); past a 16 MiB limit this is OOM-killed
OOM_CMD='dd if=/dev/zero of=/dev/null bs=64M count=1'
