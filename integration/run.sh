#!/bin/bash
# integration/run.sh [containerd|podman|docker|all ...] - run stele under real engines.
#   STELE=path     stele binary (default: target/stele of this repo, made by scripts/build.sh)
#   TIMEOUT=secs   per engine command (default 60)
#   ONLY="a b"     run only these scenario names
#   KEEP_LOGS=dir  keep per-scenario logs there (default: a temp dir, removed unless a test failed)
# Each suite starts and cleans up its own private daemon(s). Prints PASS/FAIL/SKIP per scenario
# and ends with "N passed, N failed[, N skipped]"; exits non-zero if anything failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STELE=${STELE:-$REPO/target/stele}
case "$STELE" in /*) ;; *) STELE=$PWD/$STELE ;; esac
# close inherited fds > 2 so they do not leak through daemons into containers
for f in /proc/$$/fd/*; do n=${f##*/}; case $n in 0|1|2|255) ;; *) eval "exec $n>&-" 2>/dev/null ;; esac; done

[ $# -eq 0 ] && set -- all
SUITES=()
for a in "$@"; do
  case "$a" in
    all) SUITES+=(containerd podman docker) ;;
    containerd|podman|docker) SUITES+=("$a") ;;
    *) echo "usage: $0 [containerd|podman|docker|all]..." >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "integration suites need root"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$STELE" ] || { echo "stele binary not found: $STELE (bash scripts/build.sh, or STELE=...)"; echo "0 passed, 1 failed"; exit 1; }

WORK=$(mktemp -d /tmp/stele-it.XXXXXX)
LOGDIR=${KEEP_LOGS:-$WORK/logs}
mkdir -p "$LOGDIR"
TP=0 TF=0 TS=0
done_cleanup() { [ -z "${KEEP_LOGS:-}" ] && [ "$TF" -eq 0 ] && rm -rf "$WORK"; [ -d "$WORK" ] && rm -rf "$WORK/image"; }
trap done_cleanup EXIT
trap 'exit 130' INT TERM

if ! "$HERE/make-image.sh" "$WORK/image" > "$LOGDIR/make-image.log" 2>&1; then
  cat "$LOGDIR/make-image.log"; echo "FAIL image: make-image.sh failed"; echo "0 passed, 1 failed"; exit 1
fi
echo "# stele $STELE ($("$STELE" --version 2>/dev/null | head -1)); image $(cat "$WORK/image/IMAGE") $(cat "$WORK/image/DIGEST"); logs $LOGDIR"

cd "$WORK" || exit 1
for s in "${SUITES[@]}"; do
  cf=$WORK/counts.$s
  STELE=$STELE IMAGE_DIR=$WORK/image LOGDIR=$LOGDIR COUNTS_FILE=$cf bash "$HERE/suites/$s.sh"
  rc=$?
  if [ -s "$cf" ]; then
    read -r p f sk < "$cf"
  else
    p=0 f=1 sk=0; echo "FAIL $s: suite aborted (exit $rc) before reporting"
  fi
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && { f=1; echo "FAIL $s: suite exited $rc"; }
  TP=$((TP+p)) TF=$((TF+f)) TS=$((TS+sk))
done
[ "$TF" -gt 0 ] && echo "# logs kept in $LOGDIR"
line="$TP passed, $TF failed"
[ "$TS" -gt 0 ] && line+=", $TS skipped"
echo "$line"
[ "$TF" -eq 0 ]
