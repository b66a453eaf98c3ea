#!/bin/bash
# scripts/bench-unpack.sh: time a large layer's unpack, side by side,
# interleaved: `stele image import` (full verification: blob digest,
# diff_id, tree digest, fsync) vs `umoci raw unpack` vs `tar -xzf`.
#
# Env: ROUNDS (5), SIZE_MB (1100, uncompressed), FILES (40000), SEED (42),
#      SETTLE (1: drop clean caches between runs, see run_one; 0: don't),
#      WORK (/var/tmp/stele-bench-unpack; the generated image is kept and
#      reused while SIZE_MB/FILES/SEED are unchanged), STELE (release binary),
#      KEEP_GOING=1 to skip a tool that is missing.
# Prints each run, then medians and ratios (stele / other).
set -euo pipefail
export LC_ALL=C TZ=UTC
ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-1100}
FILES=${FILES:-40000}
SEED=${SEED:-42}
WORK=${WORK:-/var/tmp/stele-bench-unpack}
here=$(cd "$(dirname "$0")/.." && pwd)
STELE=${STELE:-$here/target/stele}
[ -x "$STELE" ] || { echo "bench-unpack: build first: bash scripts/build.sh" >&2; exit 2; }
for t in python3 gzip umoci tar sha256sum; do
  command -v $t >/dev/null || { echo "bench-unpack: $t missing" >&2; exit 2; }
done
mkdir -p "$WORK"
IMG=$WORK/img-$SIZE_MB-$FILES-$SEED

# ---- 1. the image: deterministic files, one gzip layer, an OCI layout ----
if [ ! -f "$IMG/done" ]; then
  rm -rf "$IMG"; mkdir -p "$IMG/oci/blobs/sha256"
  echo "generating ${SIZE_MB} MB in ${FILES} files (seed $SEED)..." >&2
  python3 - "$IMG/layer.tar" "$SIZE_MB" "$FILES" "$SEED" <<'EOF'
import io, random, sys, tarfile
out, size_mb, nfiles, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
total = size_mb << 20
# Sizes: mostly small files (like /usr), a few large ones carrying the bulk.
small = [rng.choice([rng.randint(0, 4096), rng.randint(4096, 65536)]) for _ in range(nfiles - nfiles // 200)]
left = max(total - sum(small), 0)
nbig = nfiles - len(small)
big = [left // nbig] * nbig
sizes = small + big
rng.shuffle(sizes)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12))) for _ in range(4000)]
text = b" ".join(rng.choice(words) for _ in range(400000))  # ~3 MB of text to slice from
def content(n):
    # Half text (compresses ~3x), half random bytes (does not): a typical layer ratio.
    if n == 0:
        return b""
    k = n // 2
    off = rng.randrange(0, len(text) - min(k, len(text) - 1))
    t = (text[off:off + k] * (k // max(len(text) - off, 1) + 1))[:k]
    return t + rng.randbytes(n - k)
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
    def add(name, data=None, mode=0o755, kind=tarfile.REGTYPE, link=""):
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode, ti.type = 1_000_000, 0, 0, "", "", mode, kind
        ti.linkname = link
        if kind == tarfile.REGTYPE:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        else:
            tf.addfile(ti)
    dirs = []
    add("usr", kind=tarfile.DIRTYPE)
    for a in range(40):
        add(f"usr/d{a:02}", kind=tarfile.DIRTYPE)
        for b in range(25):
            d = f"usr/d{a:02}/s{b:02}"
            add(d, kind=tarfile.DIRTYPE)
            dirs.append(d)
    for i, n in enumerate(sizes):
        d = dirs[i % len(dirs)]
        add(f"{d}/f{i:06}", content(n), mode=rng.choice([0o644, 0o755, 0o600]))
        if i % 500 == 0:
            add(f"{d}/l{i:06}", kind=tarfile.SYMTYPE, link=f"f{i:06}", mode=0o777)
EOF
  echo "compressing..." >&2
  gzip -n -6 -c "$IMG/layer.tar" > "$IMG/layer.tar.gz"
  diffid=$(sha256sum "$IMG/layer.tar" | cut -d' ' -f1)
  lgz=$(sha256sum "$IMG/layer.tar.gz" | cut -d' ' -f1)
  lsize=$(stat -c %s "$IMG/layer.tar.gz")
  cp "$IMG/layer.tar.gz" "$IMG/oci/blobs/sha256/$lgz"
  python3 - "$IMG/oci" "$diffid" "$lgz" "$lsize" <<'EOF'
import hashlib, json, os, sys
oci, diffid, lgz, lsize = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def blob(obj):
    b = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(oci, "blobs/sha256", d), "wb").write(b)
    return d, len(b)
cd, cs = blob({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diffid]}})
md, ms = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + lgz, "size": lsize}]})
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
          open(os.path.join(oci, "index.json"), "w"))
open(os.path.join(oci, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
  rm -f "$IMG/layer.tar"
  touch "$IMG/done"
fi
echo "image: $IMG/oci ($(du -sm "$IMG/layer.tar.gz" | cut -f1) MB compressed, ${SIZE_MB} MB / ${FILES} files uncompressed)" >&2

# ---- 2. interleaved rounds ----
OUT=$WORK/out
cleanup() { rm -rf "$OUT"; }
trap cleanup EXIT
now() { date +%s.%N; }
run_one() { # tool -> seconds on stdout
  rm -rf "$OUT"; mkdir -p "$OUT"; sync
  if [ "${SETTLE:-1}" = 1 ]; then
    # On a journal-less ext4 (this VM's root) a new inode skips every inode of
    # its group freed in the last minute whose inode-table block is still in
    # the buffer cache, one lookup each: the 40,000 files of the previous
    # tool's run, deleted just above, cost whoever runs next ~2-3 CPU-s.
    # Dropping the clean caches (after the sync) forgets them; the input is
    # then read back into the page cache, outside the timed part.
    echo 1 > /proc/sys/vm/drop_caches
    cat "$IMG"/oci/blobs/sha256/* "$IMG/layer.tar.gz" > /dev/null
  fi
  local t0 t1
  t0=$(now)
  case $1 in
    stele) "$STELE" --store "$OUT/store" image import "oci:$IMG/oci:latest" --name bench >/dev/null ;;
    umoci) umoci raw unpack --image "$IMG/oci:latest" "$OUT/rootfs" >/dev/null 2>&1 ;;
    tar)   mkdir "$OUT/rootfs" && tar -xzf "$IMG/layer.tar.gz" -C "$OUT/rootfs" ;;
  esac
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
tools=(stele umoci tar)
declare -A times
for r in $(seq 1 "$ROUNDS"); do
  # rotate the order each round so no tool always runs first or last
  for k in 0 1 2; do
    t=${tools[$(( (k + r) % 3 ))]}
    s=$(run_one "$t")
    times[$t]="${times[$t]:-} $s"
    printf 'round %d %-6s %7.2f s\n' "$r" "$t" "$s"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms=$(echo "${times[stele]}" | median); mu=$(echo "${times[umoci]}" | median); mt=$(echo "${times[tar]}" | median)
echo
echo "median of $ROUNDS rounds ($(nproc) cores, $(uname -r)):"
printf '| %-36s | %8s | %14s |\n' tool "median s" "stele / tool"
printf '| %-36s | %8.2f | %14s |\n' "stele image import (verified)" "$ms" "1.00"
printf '| %-36s | %8.2f | %14.2f |\n' "umoci raw unpack" "$mu" "$(echo "$ms / $mu" | bc -l)"
printf '| %-36s | %8.2f | %14.2f |\n' "tar -xzf (no verification)" "$mt" "$(echo "$ms / $mt" | bc -l)"
