#!/bin/bash
# scripts/setup-engines.sh - install the Debian packages the integration suites need.
# Idempotent: installs only what is missing; never starts the system services (the suites start
# private daemons of their own). Debian 12 (bookworm), run as root.
set -euo pipefail
PKGS=(
  containerd        # containerd 1.6, ctr, containerd-shim-runc-v2
  podman conmon     # podman 4.3 + conmon
  docker.io         # dockerd 20.10 + docker client (uses containerd above)
  runc              # dependency of the engines' packages; the suites never call it
  busybox-static    # the test image's only binary (integration/make-image.sh)
  jq tar gzip coreutils findutils file
  bsdutils          # script(1): a terminal for -t runs
  util-linux mount procps
  uidmap            # podman wants newuidmap/newgidmap present
  fuse-overlayfs slirp4netns  # podman's usual companions (not used: root + --network none)
)
[ "$(id -u)" = 0 ] || { echo "setup-engines.sh: run as root" >&2; exit 1; }
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-engines: all packages present"; exit 0
fi
echo "setup-engines: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# no systemd here: keep package scripts from starting docker/containerd services
policy=/usr/sbin/policy-rc.d made_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; fi
trap '[ $made_policy = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
