#!/bin/bash
# setup.sh: install the Debian packages the tests and benchmarks need.
# Skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
    busybox-static  # the test rootfs
    jq              # make-bundle.sh, scripts
    runc            # reference runtime (comparison tests, benchmarks)
    crun            # second peer for benchmarks
    strace          # debugging and syscall counting in benchmarks
    iproute2        # `ip netns` for namespace-path tests
    util-linux      # unshare, nsenter, mount
    procps          # ps, pgrep
    diffutils       # cmp in make-bundle.sh
    ca-certificates
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup.sh: all packages present"
    exit 0
fi

echo "setup.sh: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: must run as root to install packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
