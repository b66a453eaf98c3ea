#!/bin/bash
# containerd suite: a private containerd (own root/state/socket, CRI disabled), ctr driving
# containerd-shim-runc-v2 with `--runc-binary $STELE`.
# env: STELE (abs path), IMAGE_DIR (from make-image.sh), LOGDIR, COUNTS_FILE, TIMEOUT, ONLY
SUITE=containerd
. "$(dirname "$0")/../lib/common.sh"
STELE=${STELE:?}
IMG=$(cat "$IMAGE_DIR/IMAGE")
BASE=$(mktemp -d /tmp/stele-it-ctrd.XXXXXX)
SOCK=$BASE/c.sock
NS=stele-it-$$
CG=/stele-it-ctrd-$$
CTR=(ctr --address "$SOCK" --namespace "$NS")
RUNOPTS=(--runc-binary "$STELE" --runc-root "$BASE/runc-root" --fifo-dir "$BASE/fifo")
CTRD_PID=""
# work inside BASE: conmon (on OOM) and others drop files into their cwd
cd "$BASE" || exit 1
ALL=(run_output exit_code detached_exec_kill tty pause_resume ps_top stats memory_oom pids_limit update read_only writable_upper)

cleanup() {
  set +e
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do
      timeout 20 "${CTR[@]}" tasks kill -a -s SIGKILL "$c" >/dev/null 2>&1
      sleep 0.2
      timeout 20 "${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1
      timeout 20 "${CTR[@]}" containers delete "$c" >/dev/null 2>&1
    done
    "${CTR[@]}" images rm "$IMG" >/dev/null 2>&1
    kill -TERM "$CTRD_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
  fi
  # shims started for our socket (and their container processes), by PID
  kill_procs_mentioning "-address $SOCK "
  sleep 0.2
  umount_below "$BASE"
  rm_cgroup_tree "$CG"
  rm_cgroup_tree "/$NS"
  cp "$BASE/containerd.log" "$LOGDIR/containerd.daemon.log" 2>/dev/null
  rm -rf "$BASE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in containerd ctr containerd-shim-runc-v2 script; do
  command -v $t >/dev/null || { skip_suite "$t not installed (scripts/setup-engines.sh)" "${ALL[@]}"; finish; exit; }
done

cat > "$BASE/config.toml" <<TOML
version = 2
root = "$BASE/root"
state = "$BASE/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$BASE/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
TOML
containerd --config "$BASE/config.toml" > "$BASE/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 1 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
if ! "${CTR[@]}" version >/dev/null 2>&1; then
  echo "FAIL containerd/daemon: containerd did not start: $(tail -3 "$BASE/containerd.log")"
  FAIL=$((FAIL+1)); finish; exit 1
fi
if ! out=$(T "${CTR[@]}" images import "$IMAGE_DIR/busybox.oci.tar" 2>&1); then
  echo "FAIL containerd/image_import: $out"; FAIL=$((FAIL+1)); finish; exit 1
fi
note "containerd pid $CTRD_PID at $SOCK; runtime $STELE"

run() { T "${CTR[@]}" run "${RUNOPTS[@]}" --cgroup "$CG/$1" "${@:2}"; }  # run ID ARGS... (ID only names the cgroup)
status() { "${CTR[@]}" tasks ls 2>/dev/null | awk -v c="$1" '$1==c {print $3}'; }
tpid() { "${CTR[@]}" tasks ls 2>/dev/null | awk -v c="$1" '$1==c {print $2}'; }
wait_status() { local i; for i in $(seq 1 50); do [ "$(status "$1")" = "$2" ] && return 0; sleep 0.1; done; return 1; }
rmc() {
  T "${CTR[@]}" tasks kill -a -s SIGKILL "$1" >/dev/null 2>&1; sleep 0.1
  T "${CTR[@]}" tasks delete -f "$1" >/dev/null 2>&1; T "${CTR[@]}" containers delete "$1" >/dev/null 2>&1
}
xec() { local c=$1 e=$2; shift 2; T "${CTR[@]}" tasks exec --fifo-dir "$BASE/fifo" --exec-id "$e" "$c" "$@"; }
start_d() { # start_d ID [run opts] -- runs `sleep 600` detached
  local id=$1; shift
  run "$id" -d "$@" "$IMG" "$id" sleep 600 || { why "run -d $id failed"; return 1; }
  wait_status "$id" RUNNING || { why "$id not RUNNING: $(status "$id")"; rmc "$id"; return 1; }
}
# host-side cgroup v1 file of a task (ctr's default spec mounts no cgroupfs in the container)
cgf() { local rel; rel=$(awk -F: -v c="$2" '$2==c {print $3}' "/proc/$1/cgroup"); echo "/sys/fs/cgroup/$2$rel/$3"; }

s_run_output() {
  local out; out=$(run c-out --rm "$IMG" c-out sh -c 'echo hello-from-stele; echo to-stderr >&2' 2>&1)
  echo "$out"
  [[ "$out" == *hello-from-stele* && "$out" == *to-stderr* ]] || { why "output: $out"; return 1; }
}
s_exit_code() {
  run c-exit --rm "$IMG" c-exit sh -c 'exit 3'; local rc=$?
  [ $rc -eq 3 ] || { why "exit 3 gave $rc"; return 1; }
}
s_detached_exec_kill() {
  start_d c-det || return 1
  local out rc
  out=$(xec c-det e1 sh -c 'echo exec-ok; cat /proc/1/comm'); rc=$?; echo "exec rc=$rc: $out"
  [ $rc -eq 0 ] && [[ "$out" == *exec-ok*sleep* ]] || { why "exec rc=$rc '$out'"; rmc c-det; return 1; }
  xec c-det e2 sh -c 'exit 3'; rc=$?
  [ $rc -eq 3 ] || { why "exec exit 3 gave $rc"; rmc c-det; return 1; }
  T "${CTR[@]}" tasks kill -s SIGKILL c-det || { why "kill failed"; rmc c-det; return 1; }
  wait_status c-det STOPPED || { why "not STOPPED after kill: $(status c-det)"; rmc c-det; return 1; }
  out=$(T "${CTR[@]}" tasks delete c-det 2>&1); echo "$out"
  T "${CTR[@]}" containers delete c-det
  [[ "$out" == *"exit code 137"* ]] || { why "delete did not report 137: $out"; return 1; }
}
s_tty() {
  local out rc
  out=$(in_pty "$(q "${CTR[@]}" run "${RUNOPTS[@]}") -t --rm $IMG c-tty sh -c 'tty; echo tty-ok; exit 5'"); rc=$?
  out=$(tr -d '\r' <<<"$out"); echo "rc=$rc $out"
  [[ "$out" == */dev/pts/0*tty-ok* ]] || { why "no tty: $out"; return 1; }
  [ $rc -eq 5 ] || { why "tty exit code: expected 5 got $rc"; return 1; }
  start_d c-etty || return 1
  out=$(in_pty "$(q "${CTR[@]}") tasks exec -t --fifo-dir $(q "$BASE/fifo") --exec-id t1 c-etty sh -c 'tty; echo etty-ok'" | tr -d '\r')
  echo "exec -t: $out"; rmc c-etty
  [[ "$out" == */dev/pts/*etty-ok* ]] || { why "exec -t: $out"; return 1; }
}
s_pause_resume() {
  start_d c-pause || return 1
  local f; f=$(cgf "$(tpid c-pause)" freezer freezer.state)
  T "${CTR[@]}" tasks pause c-pause || { why "pause failed"; rmc c-pause; return 1; }
  wait_status c-pause PAUSED || { why "status after pause: $(status c-pause)"; rmc c-pause; return 1; }
  echo "freezer: $(cat "$f")"
  [ "$(cat "$f")" = FROZEN ] || { why "freezer.state=$(cat "$f")"; rmc c-pause; return 1; }
  T "${CTR[@]}" tasks resume c-pause || { why "resume failed"; rmc c-pause; return 1; }
  wait_status c-pause RUNNING || { why "status after resume: $(status c-pause)"; rmc c-pause; return 1; }
  xec c-pause e1 true || { why "exec after resume failed"; rmc c-pause; return 1; }
  rmc c-pause
}
s_ps_top() {
  start_d c-ps || return 1
  xec c-ps e1 true
  T "${CTR[@]}" tasks exec -d --fifo-dir "$BASE/fifo" --exec-id e2 c-ps sleep 60 || { why "exec -d"; rmc c-ps; return 1; }
  local out; out=$(T "${CTR[@]}" tasks ps c-ps); echo "$out"
  rmc c-ps
  local n; n=$(awk 'NR>1 && $1 ~ /^[0-9]+$/' <<<"$out" | wc -l)
  [ "$n" -ge 2 ] || { why "tasks ps (runtime ps --format json) listed $n pids: $out"; return 1; }
}
s_stats() {
  start_d c-stats --memory-limit 67108864 || return 1
  local out; out=$(T "${CTR[@]}" tasks metrics --format json c-stats); echo "$out" | head -c 3000
  rmc c-stats
  jq -e '.memory.usage.limit == 67108864 and (.pids.current >= 1)' <<<"$out" >/dev/null \
    || { why "metrics lack memory limit 64MiB / pids: $(head -c 300 <<<"$out")"; return 1; }
}
s_memory_oom() {
  local rc
  run c-mem-ok --rm --memory-limit 67108864 "$IMG" c-mem-ok sh -c 'dd if=/dev/zero of=/dev/null bs=8M count=1'; rc=$?
  [ $rc -eq 0 ] || { why "8 MiB under a 64 MiB limit failed: $rc"; return 1; }
  run c-oom --rm --memory-limit 16777216 "$IMG" c-oom sh -c "$OOM_CMD"; rc=$?
  [ $rc -eq 137 ] || { why "64 MiB past a 16 MiB limit: expected 137, got $rc"; return 1; }
}
s_pids_limit() {
  # ctr 1.6 has no pids flag: hand a full spec (ctr oci spec + pids.limit) with --config.
  # The rootfs is a plain directory, so it is handed over read-only (stele refuses a
  # writable non-overlay root unless annotated dev.stele.mutable-rootfs).
  local rf=$BASE/rootfs-pids
  mkdir -p "$rf"; tar -xf "$IMAGE_DIR/busybox.oci.tar" -C "$BASE" --one-top-level=oci-x
  local lay; lay=$(jq -r '.layers[0].digest' "$BASE/oci-x/blobs/sha256/$(jq -r '.manifests[0].digest' "$BASE/oci-x/index.json" | cut -d: -f2)" | cut -d: -f2)
  tar -xzf "$BASE/oci-x/blobs/sha256/$lay" -C "$rf"
  "${CTR[@]}" oci spec | jq --arg r "$rf" --arg cg "$CG/c-pids" --arg cmd "$FORK_BOMBLET" '
    .root = {path: $r, readonly: true} | .linux.cgroupsPath = $cg
    | .linux.resources.pids = {limit: 20}
    | .process.args = ["sh", "-c", "cat /proc/self/cgroup | grep pids; " + $cmd]
    | .process.env = ["PATH=/bin"]' > "$BASE/pids-spec.json"
  local out rc; out=$(T "${CTR[@]}" run "${RUNOPTS[@]}" --rm --config "$BASE/pids-spec.json" c-pids 2>&1); rc=$?
  echo "rc=$rc $out"
  [[ "$out" == *"Resource temporarily unavailable"* || "$out" == *"can't fork"* ]] && [[ "$out" != *spawned-40* ]] \
    || { why "fork past pids.limit 20 did not fail (rc=$rc): $(tail -2 <<<"$out")"; return 1; }
}
s_update() {
  skip_because "ctr 1.6 has no 'tasks update' (containerd calls runtime update only via CRI); covered by podman/docker"
}
s_read_only() {
  local out; out=$(run c-ro --rm --read-only "$IMG" c-ro sh -c 'touch /probe 2>&1; echo rc=$?' 2>&1); echo "$out"
  [[ "$out" == *"Read-only file system"* && "$out" == *rc=1* ]] || { why "write to read-only root: $out"; return 1; }
}
s_writable_upper() {
  start_d c-rw || return 1
  local mnt upper lower before after out
  mnt=$("${CTR[@]}" snapshots mounts /mnt/x c-rw); echo "$mnt"
  upper=$(sed -n 's/.*upperdir=\([^,]*\).*/\1/p' <<<"$mnt")
  lower=$(sed -n 's/.*lowerdir=\([^, ]*\).*/\1/p' <<<"$mnt")
  [ -d "$upper" ] && [ -n "$lower" ] || { why "no overlay upper/lower for c-rw: $mnt"; rmc c-rw; return 1; }
  before=$(dirs_sum "$lower")
  xec c-rw w1 sh -c 'echo new-data > /newfile && echo more >> /etc/stele-it-release && mkdir -p /var/x && echo ok' \
    || { why "write into writable root failed"; rmc c-rw; return 1; }
  out=$(xec c-rw w2 cat /newfile); [ "$out" = new-data ] || { why "read back: $out"; rmc c-rw; return 1; }
  after=$(dirs_sum "$lower")
  echo "upper: $(cd "$upper" && find . | sort | tr '\n' ' ')"
  echo "lower before: $before"; echo "lower after:  $after"
  [ "$(cat "$upper/newfile" 2>/dev/null)" = new-data ] || { why "newfile not in upper dir $upper"; rmc c-rw; return 1; }
  grep -q more "$upper/etc/stele-it-release" 2>/dev/null || { why "modified image file not copied up"; rmc c-rw; return 1; }
  local IFS=:; for d in $lower; do [ -e "$d/newfile" ] && { why "newfile leaked into image layer $d"; rmc c-rw; return 1; }; done; unset IFS
  rmc c-rw
  [ "$before" = "$after" ] || { why "image layer dirs changed"; return 1; }
}

for n in "${ALL[@]}"; do scenario "$n" "s_$n"; done
finish
