#!/bin/bash
# build.sh [CARGO ARGS...]: build stele in release mode and link the binary
# at target/stele.
#
# stele is a static musl binary (.cargo/config.toml sets the target): in a VM
# glibc's start-up alone (CPU feature probing by cpuid, which traps to the
# hypervisor; relocations) costs ~0.5 ms of every exec, a fifth of a container
# start (docs/performance.md). A fresh machine lacks two pieces, installed
# here: rustup's musl target and musl-gcc (Debian's musl-tools; zstd is C).
set -euo pipefail
cd "$(dirname "$0")/.."
triple=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    echo "build.sh: rustup target add $triple" >&2
    rustup target add "$triple"
fi
if ! command -v musl-gcc >/dev/null; then
    echo "build.sh: installing musl-tools" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends musl-tools >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends musl-tools >/dev/null; }
fi
cargo build --release "$@"
ln -sfn "$triple/release/stele" target/stele
