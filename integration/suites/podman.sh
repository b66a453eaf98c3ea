#!/bin/bash
# podman suite: podman + conmon with private storage, run root, tmp dir and config
# (CONTAINERS_CONF etc. in a temp dir). The runtime is registered by name exactly as
# docs/engines.md says: [engine.runtimes] stele = [...] and "stele" in runtime_supports_json.
# env: STELE (abs path), IMAGE_DIR, LOGDIR, COUNTS_FILE, TIMEOUT, ONLY
SUITE=podman
. "$(dirname "$0")/../lib/common.sh"
STELE=${STELE:?}
IMG=$(cat "$IMAGE_DIR/IMAGE")
BASE=$(mktemp -d /tmp/stele-it-podman.XXXXXX)
CG=/stele-it-podman-$$
ALL=(run_output exit_code detached_exec_kill tty pause_resume ps_top stats memory_oom pids_limit update read_only writable_upper)
mkdir -p "$BASE"/{root,runroot,tmp,net}
# work inside BASE: conmon (on OOM) and others drop files into their cwd
cd "$BASE" || exit 1
P=(podman --root "$BASE/root" --runroot "$BASE/runroot" --tmpdir "$BASE/tmp" --cgroup-manager cgroupfs
   --events-backend file --storage-driver overlay --network-config-dir "$BASE/net" --runtime stele)
R=(--network none --cgroup-parent "$CG")

cleanup() {
  set +e
  local ids; ids=$("${P[@]}" ps -aq --no-trunc 2>/dev/null)
  timeout 60 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  timeout 60 "${P[@]}" rmi -af >/dev/null 2>&1
  kill_procs_mentioning "$BASE/"
  sleep 0.2
  umount_below "$BASE"
  for id in $ids; do [ -d "/run/stele/$id" ] && "$STELE" delete --force "$id" >/dev/null 2>&1; done
  rm_cgroup_tree "$CG"
  rm -rf "$BASE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in podman conmon script; do
  command -v $t >/dev/null || { skip_suite "$t not installed (scripts/setup-engines.sh)" "${ALL[@]}"; finish; exit; }
done

# Without CAP_SYS_RESOURCE a runtime cannot raise hard rlimits above what it inherits; podman
# (root) asks for nofile=1048576 and nproc=pid_max by default. Pin both to what its children get.
# (podman lowers its own nproc to pid_max before starting conmon, so take the smaller one.)
NOFILE=$(ulimit -Hn); NPROC=$(cat /proc/sys/kernel/pid_max); HU=$(ulimit -Hu)
[ "$HU" != unlimited ] && [ "$HU" -lt "$NPROC" ] && NPROC=$HU
cat > "$BASE/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$BASE/events.log"
tmp_dir = "$BASE/tmp"
static_dir = "$BASE/root/libpod"
volume_path = "$BASE/root/volumes"
runtime = "stele"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "stele"]
[engine.runtimes]
stele = ["$STELE"]
[network]
network_config_dir = "$BASE/net"
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$BASE/root" "$BASE/runroot" > "$BASE/storage.conf"
: > "$BASE/registries.conf"
export CONTAINERS_CONF=$BASE/containers.conf CONTAINERS_STORAGE_CONF=$BASE/storage.conf
export CONTAINERS_REGISTRIES_CONF=$BASE/registries.conf

pm() { T "${P[@]}" "$@"; }
if ! out=$(pm load -i "$IMAGE_DIR/busybox.oci.tar" 2>&1) || ! "${P[@]}" image exists "$IMG"; then
  echo "FAIL podman/image_load: $out"; FAIL=$((FAIL+1)); finish; exit 1
fi
rt=$("${P[@]}" info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}' 2>&1)
[ "$rt" = "stele $STELE" ] || { echo "FAIL podman/runtime_config: podman info says runtime '$rt'"; FAIL=$((FAIL+1)); }
note "podman $(podman --version | awk '{print $3}'); runtime $rt; base $BASE"

rmc() { pm rm -f -t 0 "$1" >/dev/null 2>&1; }
start_d() { local n=$1; shift; pm run -d --name "$n" "${R[@]}" "$@" "$IMG" sleep 600 >/dev/null || { why "run -d $n failed"; return 1; }; }
state() { "${P[@]}" inspect -f '{{.State.Status}}' "$1" 2>&1; }

s_run_output() {
  local out; out=$(pm run --rm "${R[@]}" "$IMG" sh -c 'echo hello-from-stele; echo to-stderr >&2' 2>&1); echo "$out"
  [[ "$out" == *hello-from-stele* && "$out" == *to-stderr* ]] || { why "output: $out"; return 1; }
}
s_exit_code() {
  pm run --rm "${R[@]}" "$IMG" sh -c 'exit 3'; local rc=$?
  [ $rc -eq 3 ] || { why "exit 3 gave $rc"; return 1; }
}
s_detached_exec_kill() {
  start_d p-det || return 1
  local out rc
  out=$(pm exec p-det sh -c 'echo exec-ok; cat /proc/1/comm'); rc=$?; echo "exec rc=$rc $out"
  [ $rc -eq 0 ] && [[ "$out" == *exec-ok*sleep* ]] || { why "exec rc=$rc '$out'"; rmc p-det; return 1; }
  pm exec p-det sh -c 'exit 3'; rc=$?
  [ $rc -eq 3 ] || { why "exec exit 3 gave $rc"; rmc p-det; return 1; }
  pm kill p-det >/dev/null || { why "kill failed"; rmc p-det; return 1; }
  out=$(pm wait p-det); echo "wait: $out"
  rmc p-det
  [ "$out" = 137 ] || { why "exit code after kill: $out"; return 1; }
}
s_tty() {
  local out rc
  out=$(in_pty "$(q "${P[@]}") run --rm -t $(q "${R[@]}") $IMG sh -c 'tty; echo tty-ok; exit 5'"); rc=$?
  out=$(tr -d '\r' <<<"$out"); echo "rc=$rc $out"
  [[ "$out" == */dev/pts/0*tty-ok* ]] || { why "no tty: $out"; return 1; }
  [ $rc -eq 5 ] || { why "tty exit code: expected 5 got $rc"; return 1; }
  start_d p-etty || return 1
  out=$(in_pty "$(q "${P[@]}") exec -t p-etty sh -c 'tty; echo etty-ok'" | tr -d '\r'); echo "exec -t: $out"
  rmc p-etty
  [[ "$out" == */dev/pts/*etty-ok* ]] || { why "exec -t: $out"; return 1; }
}
s_pause_resume() {
  start_d p-pause || return 1
  pm pause p-pause >/dev/null || { why "pause failed"; rmc p-pause; return 1; }
  local s; s=$(state p-pause); echo "after pause: $s"
  local fr; fr=$(cat "/sys/fs/cgroup/freezer$CG/libpod-$("${P[@]}" inspect -f '{{.Id}}' p-pause)/freezer.state" 2>&1); echo "freezer: $fr"
  [ "$s" = paused ] && [ "$fr" = FROZEN ] || { why "after pause: $s / $fr"; rmc p-pause; return 1; }
  pm unpause p-pause >/dev/null || { why "unpause failed"; rmc p-pause; return 1; }
  s=$(state p-pause); echo "after unpause: $s"
  pm exec p-pause true || { why "exec after unpause"; rmc p-pause; return 1; }
  rmc p-pause
  [ "$s" = running ] || { why "after unpause: $s"; return 1; }
}
s_ps_top() {
  start_d p-top || return 1
  local out; out=$(pm top p-top); echo "$out"
  [[ "$out" == *"sleep 600"* ]] || { why "top: $out"; rmc p-top; return 1; }
  out=$(pm ps --filter name=p-top --format '{{.Names}} {{.State}}'); echo "ps: $out"
  rmc p-top
  [[ "$out" == "p-top running" || "$out" == "p-top Up"* ]] || { why "ps: $out"; return 1; }
}
s_stats() {
  start_d p-stats -m 64m || return 1
  local out; out=$(pm stats --no-stream --format json p-stats); echo "$out"
  rmc p-stats
  jq -e '.[0].mem_usage | test("64(\\.0+)?MB|64MiB|67.1")' <<<"$out" >/dev/null \
    || { why "stats lack the 64m limit: $out"; return 1; }
}
s_memory_oom() {
  local out rc
  out=$(pm run --rm "${R[@]}" -m 64m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo small-ok'); echo "$out"
  [[ "$out" == *67108864*small-ok* ]] || { why "64m limit/small alloc: $out"; return 1; }
  pm run --rm "${R[@]}" -m 16m --memory-swap 16m "$IMG" sh -c "$OOM_CMD"; rc=$?
  [ $rc -eq 137 ] || { why "64 MiB past a 16 MiB limit: expected 137, got $rc"; return 1; }
}
s_pids_limit() {
  local out; out=$(pm run --rm "${R[@]}" --pids-limit 20 "$IMG" sh -c "exec 2>&1; cat /sys/fs/cgroup/pids/pids.max; $FORK_BOMBLET" 2>&1); echo "$out"
  [[ "$out" == 20* ]] || { why "pids.max: $out"; return 1; }
  [[ "$out" == *"can't fork"* || "$out" == *"Resource temporarily unavailable"* ]] && [[ "$out" != *spawned-40* ]] \
    || { why "fork past pids.max 20 did not fail: $out"; return 1; }
}
s_update() {
  start_d p-upd -m 64m || return 1
  pm update -m 128m p-upd || { why "podman update failed"; rmc p-upd; return 1; }
  local out; out=$(pm exec p-upd cat /sys/fs/cgroup/memory/memory.limit_in_bytes); echo "after update: $out"
  local s; s=$(state p-upd)
  rmc p-upd
  [ "$out" = 134217728 ] && [ "$s" = running ] || { why "limit after update: $out ($s)"; return 1; }
}
s_read_only() {
  local out; out=$(pm run --rm "${R[@]}" --read-only "$IMG" sh -c 'touch /probe 2>&1; echo rc=$?; touch /tmp/t && echo tmp-ok' 2>&1); echo "$out"
  [[ "$out" == *"Read-only file system"*rc=1*tmp-ok* ]] || { why "read-only root: $out"; return 1; }
}
s_writable_upper() {
  start_d p-rw || return 1
  local upper lower before after out
  upper=$("${P[@]}" inspect -f '{{.GraphDriver.Data.UpperDir}}' p-rw)
  lower=$("${P[@]}" inspect -f '{{.GraphDriver.Data.LowerDir}}' p-rw)
  echo "upper=$upper lower=$lower"
  [ -d "$upper" ] && [ -n "$lower" ] || { why "no upper/lower dir in inspect"; rmc p-rw; return 1; }
  before=$(dirs_sum "$lower")
  pm exec p-rw sh -c 'echo new-data > /newfile && echo more >> /etc/stele-it-release' || { why "write failed"; rmc p-rw; return 1; }
  out=$(pm exec p-rw cat /newfile); [ "$out" = new-data ] || { why "read back: $out"; rmc p-rw; return 1; }
  after=$(dirs_sum "$lower")
  echo "upper: $(cd "$upper" && find . | sort | tr '\n' ' ')"; echo "before: $before"; echo "after:  $after"
  [ "$(cat "$upper/newfile" 2>/dev/null)" = new-data ] || { why "newfile not in upper $upper"; rmc p-rw; return 1; }
  grep -q more "$upper/etc/stele-it-release" 2>/dev/null || { why "modified image file not copied up"; rmc p-rw; return 1; }
  rmc p-rw
  [ "$before" = "$after" ] || { why "image layer dirs changed"; return 1; }
}

for n in "${ALL[@]}"; do scenario "$n" "s_$n"; done
finish
