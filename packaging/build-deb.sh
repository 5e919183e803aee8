#!/usr/bin/env bash
# Builds the Debian package partita_<version>_amd64.deb into build/package
# (Release, installed under /usr, without the CUDA backend), then runs
# lintian on it and prints what it says.
# Usage: packaging/build-deb.sh       (after packaging/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset package >/dev/null
cmake --build build/package
rm -f build/package/partita_*.deb
(cd build/package && cpack -G DEB >/dev/null)
deb=$(ls build/package/partita_*_*.deb)
echo "build-deb: $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
if command -v lintian >/dev/null; then
    echo "== lintian"
    # As root, lintian says so and goes on; errors fail the build, warnings are printed.
    lintian --fail-on error --allow-root "$deb"
fi
