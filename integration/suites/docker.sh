#!/bin/bash
# docker suite: a private dockerd (own --data-root/--exec-root/--pidfile/socket, no bridge, no
# iptables, own cgroup parent) with its own managed containerd; stele is registered through a
# daemon.json "runtimes" entry exactly as docs/engines.md says, used with `docker run --runtime stele`.
# env: STELE (abs path), IMAGE_DIR, LOGDIR, COUNTS_FILE, TIMEOUT, ONLY
SUITE=docker
. "$(dirname "$0")/../lib/common.sh"
STELE=${STELE:?}
IMG=$(cat "$IMAGE_DIR/IMAGE")
BASE=$(mktemp -d /tmp/stele-it-dk.XXXXXX)   # short: unix socket paths below it must fit 108 bytes
CG=/stele-it-docker-$$
ALL=(run_output exit_code detached_exec_kill tty pause_resume ps_top stats memory_oom pids_limit update read_only writable_upper)
SOCK=$BASE/docker.sock
DOCKERD_PID=""
# work inside BASE: conmon (on OOM) and others drop files into their cwd
cd "$BASE" || exit 1
# dockerd 20.10 always writes its trust key to /etc/docker/key.json: remove it again if we made it
KEY_EXISTED=0; [ -e /etc/docker/key.json ] && KEY_EXISTED=1
# the client from the docker.io package matches the daemon; any other one negotiates the API
DOCKER_BIN=/usr/bin/docker; [ -x "$DOCKER_BIN" ] || DOCKER_BIN=$(command -v docker 2>/dev/null)
D=("$DOCKER_BIN" -H "unix://$SOCK")
R=(--runtime stele --network none)

cleanup() {
  set +e
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    local ids; ids=$("${D[@]}" ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 "${D[@]}" rm -f $ids >/dev/null 2>&1
    timeout 30 "${D[@]}" rmi -f "$IMG" >/dev/null 2>&1
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 1 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
  fi
  # its containerd, shims and container processes all carry $BASE in their command line
  kill_procs_mentioning "$BASE/"
  sleep 0.2
  umount_below "$BASE"
  rm_cgroup_tree "$CG"
  [ $KEY_EXISTED = 0 ] && rm -f /etc/docker/key.json && rmdir /etc/docker 2>/dev/null
  cp "$BASE/dockerd.log" "$LOGDIR/docker.daemon.log" 2>/dev/null
  rm -rf "$BASE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in dockerd containerd containerd-shim-runc-v2 script; do
  command -v $t >/dev/null || { skip_suite "$t not installed (scripts/setup-engines.sh installs docker.io)" "${ALL[@]}"; finish; exit 0; }
done
[ -n "$DOCKER_BIN" ] || { skip_suite "no docker client" "${ALL[@]}"; finish; exit 0; }

cat > "$BASE/daemon.json" <<JSON
{
  "runtimes": { "stele": { "path": "$STELE" } }
}
JSON
dockerd --config-file "$BASE/daemon.json" --data-root "$BASE/data" --exec-root "$BASE/exec" \
  --pidfile "$BASE/docker.pid" -H "unix://$SOCK" --bridge=none --iptables=false --ip-masq=false \
  --storage-driver overlay2 --cgroup-parent "$CG" > "$BASE/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 150); do "${D[@]}" version >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
if ! "${D[@]}" info >/dev/null 2>&1; then
  reason="dockerd did not start: $(grep -iE 'level=(error|fatal)|failed' "$BASE/dockerd.log" | tail -1 | cut -c1-200)"
  skip_suite "$reason" "${ALL[@]}"; finish; exit 0
fi
"${D[@]}" info --format '{{json .Runtimes}}' | grep -q '"stele"' || { echo "FAIL docker/runtime_config: stele not in docker info Runtimes"; FAIL=$((FAIL+1)); }
if ! out=$(T "${D[@]}" load -i "$IMAGE_DIR/busybox.docker.tar" 2>&1); then
  echo "FAIL docker/image_load: $out"; FAIL=$((FAIL+1)); finish; exit 1
fi
note "dockerd $("${D[@]}" version --format '{{.Server.Version}}') pid $DOCKERD_PID at $SOCK; runtime $STELE"

dk() { T "${D[@]}" "$@"; }
rmc() { dk rm -f "$1" >/dev/null 2>&1; }
start_d() { local n=$1; shift; dk run -d --name "$n" "${R[@]}" "$@" "$IMG" sleep 600 >/dev/null || { why "run -d $n failed"; return 1; }; }
state() { "${D[@]}" inspect -f '{{.State.Status}}' "$1" 2>&1; }

s_run_output() {
  local out; out=$(dk run --rm "${R[@]}" "$IMG" sh -c 'echo hello-from-stele; echo to-stderr >&2' 2>&1); echo "$out"
  [[ "$out" == *hello-from-stele* && "$out" == *to-stderr* ]] || { why "output: $out"; return 1; }
}
s_exit_code() {
  dk run --rm "${R[@]}" "$IMG" sh -c 'exit 3'; local rc=$?
  [ $rc -eq 3 ] || { why "exit 3 gave $rc"; return 1; }
}
s_detached_exec_kill() {
  start_d d-det || return 1
  local out rc
  out=$(dk exec d-det sh -c 'echo exec-ok; cat /proc/1/comm'); rc=$?; echo "exec rc=$rc $out"
  [ $rc -eq 0 ] && [[ "$out" == *exec-ok*sleep* ]] || { why "exec rc=$rc '$out'"; rmc d-det; return 1; }
  dk exec d-det sh -c 'exit 3'; rc=$?
  [ $rc -eq 3 ] || { why "exec exit 3 gave $rc"; rmc d-det; return 1; }
  dk kill d-det >/dev/null || { why "kill failed"; rmc d-det; return 1; }
  out=$(dk wait d-det); echo "wait: $out"
  rmc d-det
  [ "$out" = 137 ] || { why "exit code after kill: $out"; return 1; }
}
s_tty() {
  local out rc
  out=$(in_pty "$(q "${D[@]}") run --rm -t $(q "${R[@]}") $IMG sh -c 'tty; echo tty-ok; exit 5'"); rc=$?
  out=$(tr -d '\r' <<<"$out"); echo "rc=$rc $out"
  [[ "$out" == */dev/pts/0*tty-ok* ]] || { why "no tty: $out"; return 1; }
  [ $rc -eq 5 ] || { why "tty exit code: expected 5 got $rc"; return 1; }
  start_d d-etty || return 1
  out=$(in_pty "$(q "${D[@]}") exec -t d-etty sh -c 'tty; echo etty-ok'" | tr -d '\r'); echo "exec -t: $out"
  rmc d-etty
  [[ "$out" == */dev/pts/*etty-ok* ]] || { why "exec -t: $out"; return 1; }
}
s_pause_resume() {
  start_d d-pause || return 1
  dk pause d-pause >/dev/null || { why "pause failed"; rmc d-pause; return 1; }
  local s fr; s=$(state d-pause)
  fr=$(cat "/sys/fs/cgroup/freezer$CG/$("${D[@]}" inspect -f '{{.Id}}' d-pause)/freezer.state" 2>&1)
  echo "after pause: $s / $fr"
  [ "$s" = paused ] && [ "$fr" = FROZEN ] || { why "after pause: $s / $fr"; rmc d-pause; return 1; }
  dk unpause d-pause >/dev/null || { why "unpause failed"; rmc d-pause; return 1; }
  s=$(state d-pause); echo "after unpause: $s"
  dk exec d-pause true || { why "exec after unpause"; rmc d-pause; return 1; }
  rmc d-pause
  [ "$s" = running ] || { why "after unpause: $s"; return 1; }
}
s_ps_top() {
  start_d d-top || return 1
  dk exec -d d-top sleep 60
  # docker top asks containerd for the task's pids; the shim gets them from `stele ps --format json`
  local out; out=$(dk top d-top); echo "$out"
  rmc d-top
  [[ "$out" == *"sleep 600"* ]] && [ "$(grep -c 'sleep 60$' <<<"$out")" -eq 1 ] \
    || { why "top did not list init and exec'd process: $out"; return 1; }
}
s_stats() {
  start_d d-stats -m 64m || return 1
  local out; out=$(dk stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' d-stats); echo "$out"
  rmc d-stats
  [[ "$out" == "d-stats "*" / 64MiB "[1-9]* ]] || { why "stats: $out"; return 1; }
}
s_memory_oom() {
  local out rc
  out=$(dk run --rm "${R[@]}" -m 64m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo small-ok'); echo "$out"
  [[ "$out" == *67108864*small-ok* ]] || { why "64m limit/small alloc: $out"; return 1; }
  dk run --rm "${R[@]}" -m 16m --memory-swap 16m "$IMG" sh -c "$OOM_CMD"; rc=$?
  [ $rc -eq 137 ] || { why "64 MiB past a 16 MiB limit: expected 137, got $rc"; return 1; }
}
s_pids_limit() {
  local out; out=$(dk run --rm "${R[@]}" --pids-limit 20 "$IMG" sh -c "exec 2>&1; cat /sys/fs/cgroup/pids/pids.max; $FORK_BOMBLET" 2>&1); echo "$out"
  [[ "$out" == 20* ]] || { why "pids.max: $out"; return 1; }
  [[ "$out" == *"can't fork"* || "$out" == *"Resource temporarily unavailable"* ]] && [[ "$out" != *spawned-40* ]] \
    || { why "fork past pids.max 20 did not fail: $out"; return 1; }
}
s_update() {
  start_d d-upd -m 64m || return 1
  # docker -> containerd -> shim -> `stele update --resources - <id>` (LinuxResources JSON on stdin)
  dk update -m 128m --memory-swap 256m d-upd || { why "docker update failed"; rmc d-upd; return 1; }
  local out; out=$(dk exec d-upd cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>&1 | tr '\n' ' '); echo "after update: $out"
  local s; s=$(state d-upd)
  rmc d-upd
  [[ "$out" == "134217728 "* && "$s" = running ]] || { why "limit after update: $out ($s)"; return 1; }
  [[ "$out" == *" 268435456 "* ]] || { why "swap limit after update: $out"; return 1; }
}
s_read_only() {
  local out; out=$(dk run --rm "${R[@]}" --read-only "$IMG" sh -c 'touch /probe 2>&1; echo rc=$?' 2>&1); echo "$out"
  [[ "$out" == *"Read-only file system"*rc=1* ]] || { why "read-only root: $out"; return 1; }
}
s_writable_upper() {
  start_d d-rw || return 1
  local upper lower before after out
  upper=$("${D[@]}" inspect -f '{{.GraphDriver.Data.UpperDir}}' d-rw)
  lower=$("${D[@]}" inspect -f '{{.GraphDriver.Data.LowerDir}}' d-rw)
  echo "upper=$upper lower=$lower"
  [ -d "$upper" ] && [ -n "$lower" ] || { why "no upper/lower dir in inspect"; rmc d-rw; return 1; }
  before=$(dirs_sum "$lower")
  dk exec d-rw sh -c 'echo new-data > /newfile && echo more >> /etc/stele-it-release' || { why "write failed"; rmc d-rw; return 1; }
  out=$(dk exec d-rw cat /newfile); [ "$out" = new-data ] || { why "read back: $out"; rmc d-rw; return 1; }
  after=$(dirs_sum "$lower")
  echo "upper: $(cd "$upper" && find . | sort | tr '\n' ' ')"; echo "before: $before"; echo "after:  $after"
  [ "$(cat "$upper/newfile" 2>/dev/null)" = new-data ] || { why "newfile not in upper $upper"; rmc d-rw; return 1; }
  grep -q more "$upper/etc/stele-it-release" 2>/dev/null || { why "modified image file not copied up"; rmc d-rw; return 1; }
  rmc d-rw
  [ "$before" = "$after" ] || { why "image layer dirs changed"; return 1; }
}

for n in "${ALL[@]}"; do scenario "$n" "s_$n"; done
finish
