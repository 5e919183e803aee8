#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
# the QTest units under CTest, then each libFuzzer target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")"

./packaging/install-deps.sh

echo "== configure and build (build/dev)"
cmake --preset dev
cmake --build build/dev

echo "== unit tests"
ctest --preset dev -j 2

echo "== fuzzers (build/fuzz, ${PARTITA_FUZZ_SECONDS:-20} s each)"
./tests/fuzz/run-fuzzers.sh "${PARTITA_FUZZ_SECONDS:-20}"
