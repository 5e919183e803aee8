#!/usr/bin/env bash
# Installs the Debian bookworm packages Partita needs to build and test.
# Idempotent: packages already installed are left alone and apt is not touched
# when nothing is missing. Runs as root, or through sudo when available.
set -euo pipefail

PACKAGES=(
    # toolchain
    build-essential cmake ninja-build ccache pkg-config git
    # GUI (Qt 6 Widgets, Charts, Test, SVG export); Charts needs the OpenGL and xkb dev files on bookworm
    qt6-base-dev qt6-charts-dev qt6-svg-dev libqt6opengl6-dev libxkbcommon-dev libvulkan-dev libgl-dev
    # libraries
    nlohmann-json3-dev libcli11-dev libsqlite3-dev zlib1g-dev libzstd-dev libsimdjson-dev libtomlplusplus-dev libyaml-cpp-dev
    # ONNX import and its real test inputs
    libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
    # networks exported by PyTorch for the ONNX tests
    python3 python3-torch python3-torchvision
    # CPU backend (MPI launcher, BLAS); the ssh launcher and its test (a throwaway sshd on 127.0.0.1)
    libopenmpi-dev openmpi-bin libopenblas-dev openssh-client openssh-server
    # the Slurm launcher's tests: a throwaway single-node cluster (tests/slurm/slurm-cluster.sh)
    slurm-wlm slurm-client munge
    # fuzzers (libFuzzer ships with clang's runtime)
    clang libclang-rt-dev
    # headless GUI checks and screenshots
    xvfb xauth
    # the Debian package and its checks: dependencies from the binaries, icons, manual pages from
    # the programs' help, bash completion, desktop/AppStream/MIME validation, lintian, an installed
    # package's MIME type and manual (xdg-mime, man)
    dpkg-dev librsvg2-bin help2man bash-completion desktop-file-utils appstream lintian
    shared-mime-info xdg-utils libfile-mimeinfo-perl man-db
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} Debian packages are installed"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps: missing packages and not root (and no sudo): ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${#missing[@]} Debian package(s): ${missing[*]}"
"${SUDO[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
