#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the QTest units
# under CTest, the Debian package built, installed, used and purged (as root,
# tests/package/install-check.sh), then each libFuzzer target for a bounded time.
#
# A clone stands alone: where third-party material lies beside the checkout
# (../shared, as on the project's CI), the suite first runs with that folder
# hidden in a private mount namespace, as a clone without it sees the world
# (units' third-party parts skip, everything else must pass), then the
# third-party checks run with it.
set -euo pipefail
cd "$(dirname "$0")"

./packaging/install-deps.sh

echo "== configure and build (build/dev)"
cmake --preset dev
cmake --build build/dev

# What the last CTest run skipped, and why (QTest's SKIP lines in its log).
skipped() {
    grep -h '^SKIP   :' build/dev/Testing/Temporary/LastTest.log 2>/dev/null | sed 's/^SKIP   : /  skipped: /' | sort -u || true
}

shared="$(cd .. && pwd)/shared"
if [ -d "$shared" ] && unshare --mount true 2>/dev/null; then
    echo "== unit tests, with $shared hidden (a clone without it)"
    unshare --mount sh -c 'mount -t tmpfs -o ro,size=4k partita-hidden "$1" && [ -z "$(ls -A "$1")" ] && exec ctest --preset dev -j 2' \
        hide "$shared"
    skipped
    echo "== third-party checks, with $shared"
    ctest --preset dev -j 2 -L third_party
    skipped
elif [ -d "$shared" ]; then
    echo "== unit tests (cannot hide $shared without a mount namespace: the clone check did not run)"
    ctest --preset dev -j 2
    skipped
else
    echo "== unit tests (no ../shared beside the checkout: third-party parts are skipped)"
    ctest --preset dev -j 2
    skipped
fi

echo "== Debian package: build, lintian, install, use, purge"
./tests/package/install-check.sh

echo "== fuzzers (build/fuzz, ${PARTITA_FUZZ_SECONDS:-20} s each)"
./tests/fuzz/run-fuzzers.sh "${PARTITA_FUZZ_SECONDS:-20}"
