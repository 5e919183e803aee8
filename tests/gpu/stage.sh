#!/usr/bin/env bash
# Stages what tests/gpu/gpu-check.sh needs on a GPU machine that has the CUDA
# libraries but not this project's build or its Debian libraries: the release
# build's partita-cli, partita-worker and libpartita_cuda.so (debug info
# stripped) and every library they load that is neither glibc, GCC's runtime
# nor CUDA's, in one archive: .gpu/partita-gpu.tar.xz (.gpu is ignored by git).
# There: PARTITA_GPU_BUNDLE=.gpu/partita-gpu.tar.xz tests/gpu/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset release >/dev/null
cmake --build build/release --target partita-cli partita-worker partita_cuda
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for f in partita-cli partita-worker libpartita_cuda.so; do
    cp build/release/bin/$f "$stage/bin/"
    strip --strip-debug "$stage/bin/$f"
done
ldd "$stage"/bin/* | awk '/=> \//{print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | libutil.so.* | ld-linux* | libstdc++.so.* | \
        libgcc_s.so.* | libcuda*.so* | libcublas*.so* | libcupti.so* | libnccl.so* | libnvidia*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
    esac
done
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
tar -C "$stage" -cJf .gpu/partita-gpu.tar.xz bin lib
ls -la .gpu/partita-gpu.tar.xz
tar -tJvf .gpu/partita-gpu.tar.xz
