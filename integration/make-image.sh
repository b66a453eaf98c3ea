#!/bin/bash
# integration/make-image.sh OUTDIR
# Build a tiny, offline, reproducible busybox image from Debian's busybox-static.
# Writes:
#   OUTDIR/busybox.oci.tar     OCI image layout as a tar (ctr images import, podman load)
#   OUTDIR/busybox.docker.tar  docker-archive (manifest.json) for docker 20.10 `docker load`
#   OUTDIR/IMAGE               the image reference (localhost/stele-it/busybox:latest)
# Same busybox binary + same GNU tar/gzip => byte-identical archives (fixed mtimes, sorted
# entries, numeric owners, gzip -n, JSON from jq -c).
set -euo pipefail
OUT=${1:?usage: make-image.sh OUTDIR}
REF=${IMAGE_REF:-localhost/stele-it/busybox:latest}
BB=${BUSYBOX:-/bin/busybox}
EPOCH=${SOURCE_DATE_EPOCH:-0}
export LC_ALL=C TZ=UTC
umask 022
for t in jq tar gzip sha256sum; do command -v $t >/dev/null || { echo "make-image: $t missing" >&2; exit 2; }; done
[ -x "$BB" ] || { echo "make-image: $BB missing (apt-get install busybox-static)" >&2; exit 2; }
"$BB" --list >/dev/null 2>&1 || { echo "make-image: $BB is not a busybox" >&2; exit 2; }
if command -v file >/dev/null && ! file -L "$BB" | grep -q 'statically linked'; then
  echo "make-image: $BB is not static (need busybox-static)" >&2; exit 2
fi

mkdir -p "$OUT"
tmp=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rf=$tmp/rootfs
mkdir -p "$rf"
for d in bin sbin usr/bin usr/sbin etc root tmp var/tmp run proc sys dev dev/pts dev/shm dev/mqueue mnt; do
  mkdir -p "$rf/$d"
done
chmod 1777 "$rf/tmp" "$rf/var/tmp"; chmod 0700 "$rf/root"
cp "$BB" "$rf/bin/busybox"; chmod 0755 "$rf/bin/busybox"
# every applet as a symlink in /bin (sh, sleep, dd, top, ...)
"$BB" --list | sort -u | while read -r a; do
  [ "$a" = busybox ] || ln -sf busybox "$rf/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rf/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$rf/etc/group"
# targets that engines bind-mount over: present so nothing must be created in the rootfs
: > "$rf/etc/hosts"; : > "$rf/etc/hostname"; : > "$rf/etc/resolv.conf"
echo "stele integration image" > "$rf/etc/stele-it-release"

# ---- layer (uncompressed tar = diff_id; gzip -n = OCI blob) ----
(cd "$rf" && find . -mindepth 1 -printf '%P\n' | sort) > "$tmp/list"
tar -C "$rf" --no-recursion --format=gnu --numeric-owner --owner=0 --group=0 \
    --mtime="@$EPOCH" -cf "$tmp/layer.tar" -T "$tmp/list"
diffid=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$tmp/layer.tar" > "$tmp/layer.tar.gz"
lgz=$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1)
created=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)

jq -cnj --arg c "$created" --arg d "sha256:$diffid" '{
  architecture: "amd64", os: "linux", created: $c,
  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"], WorkingDir: "/"},
  rootfs: {type: "layers", diff_ids: [$d]},
  history: [{created: $c, created_by: "integration/make-image.sh"}]}' > "$tmp/config.json"
cfg=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)

# ---- OCI layout ----
lay=$tmp/oci; mkdir -p "$lay/blobs/sha256"
cp "$tmp/layer.tar.gz" "$lay/blobs/sha256/$lgz"
cp "$tmp/config.json" "$lay/blobs/sha256/$cfg"
jq -cnj --arg c "sha256:$cfg" --argjson cs "$(stat -c %s "$tmp/config.json")" \
        --arg l "sha256:$lgz" --argjson ls "$(stat -c %s "$tmp/layer.tar.gz")" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' > "$tmp/manifest.json"
man=$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1)
cp "$tmp/manifest.json" "$lay/blobs/sha256/$man"
jq -cnj --arg m "sha256:$man" --argjson ms "$(stat -c %s "$tmp/manifest.json")" --arg r "$REF" '{
  schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
  platform: {architecture: "amd64", os: "linux"},
  annotations: {"io.containerd.image.name": $r, "org.opencontainers.image.ref.name": $r}}]}' > "$lay/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$lay/oci-layout"

# ---- docker-archive ----
dk=$tmp/docker; mkdir -p "$dk/$diffid"
cp "$tmp/layer.tar" "$dk/$diffid/layer.tar"
cp "$tmp/config.json" "$dk/$cfg.json"
jq -cnj --arg c "$cfg.json" --arg r "$REF" --arg l "$diffid/layer.tar" \
  '[{Config: $c, RepoTags: [$r], Layers: [$l]}]' > "$dk/manifest.json"

mktar() { # DIR OUTFILE
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | sort) > "$tmp/l2"
  tar -C "$1" --no-recursion --format=gnu --numeric-owner --owner=0 --group=0 \
      --mtime="@$EPOCH" -cf "$2.part" -T "$tmp/l2"
  mv "$2.part" "$2"
}
mktar "$lay" "$OUT/busybox.oci.tar"
mktar "$dk" "$OUT/busybox.docker.tar"
echo "$REF" > "$OUT/IMAGE"
echo "sha256:$man" > "$OUT/DIGEST"
echo "$REF sha256:$man"
