#!/bin/bash
# test.sh: install dependencies, build, and run the whole test suite.
# Environment:
#   STELE_TEST_RUNTIME  runtime binary to test (default: the freshly built stele)
#   TEST_THREADS        parallel test threads (default: 2 x CPUs, at least 4)
# Integration tests run real containers and need root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the integration tests need root" >&2
    exit 1
fi

# Containers are mostly waiting on the kernel, so oversubscribe the CPUs a bit.
threads=${TEST_THREADS:-$(( $(nproc) * 2 ))}
[ "$threads" -ge 4 ] || threads=4

echo "test.sh: building"
bash scripts/build.sh --all-targets

echo "test.sh: running tests (runtime: ${STELE_TEST_RUNTIME:-stele}, threads: $threads)"
status=0
cargo test --release --no-fail-fast -- --test-threads="$threads" || status=$?

if [ "$status" -ne 0 ]; then
    echo "test.sh: TESTS FAILED (cargo exit $status)" >&2
    exit "$status"
fi
echo "test.sh: cargo tests passed"

# The engines suites: containerd, podman and Docker driving this stele.
if [ "${SKIP_ENGINES:-0}" = 1 ]; then
    echo "test.sh: SKIP_ENGINES=1: not running the containerd/podman/Docker suites"
    exit 0
fi
bash scripts/setup-engines.sh
STELE="$PWD/target/stele" bash integration/run.sh all
