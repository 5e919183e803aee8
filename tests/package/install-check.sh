#!/usr/bin/env bash
# The Debian package as a user gets it: built (packaging/build-deb.sh, lintian
# errors fail), installed with apt-get so that its dependencies resolve, used
# (--version of each program, inspect of a preset and of the installed demo,
# a project's MIME type, the manual, the desktop files, bash completion, the
# workbench under Xvfb), then purged, leaving nothing behind.
# Needs root (it installs a package); ./test.sh runs it as CI does.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
    echo "install-check: SKIP: not root (installing a package needs it)"
    exit 0
fi
marker=/var/lib/partita-install-check
if dpkg-query -W -f='${Status}' partita 2>/dev/null | grep -q "install ok installed"; then
    if [ ! -e "$marker" ]; then
        echo "install-check: SKIP: a partita package this check did not install is on this machine; it is left alone"
        exit 0
    fi
    apt-get purge -y -q partita >/dev/null # left by an interrupted check
fi
packaging/build-deb.sh
deb=$(ls "$(pwd)"/build/package/partita_*_amd64.deb)
version=$(dpkg-deb -f "$deb" Version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() { # check WHAT COMMAND...: runs it, says ok or FAILED
    local what=$1; shift
    if out=$("$@" 2>&1); then
        echo "  ok      $what"
    else
        echo "  FAILED  $what: $out" | head -5
        failures=$((failures + 1))
    fi
}
expect() { # expect WHAT PATTERN COMMAND...: its output must match PATTERN
    local what=$1 pattern=$2; shift 2
    local out
    out=$("$@" 2>&1) || true
    if grep -qE -- "$pattern" <<<"$out"; then
        echo "  ok      $what"
    else
        echo "  FAILED  $what: expected /$pattern/, got: $(head -3 <<<"$out")"
        failures=$((failures + 1))
    fi
}

echo "== install $deb"
touch "$marker"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb" >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log"; exit 1; }
expect "partita-cli --version" "^partita-cli $version" /usr/bin/partita-cli --version
expect "partita-worker --version" "^partita-worker $version" /usr/bin/partita-worker --version
expect "partita --version under Xvfb" "^Partita $version" xvfb-run -a /usr/bin/partita --version
if dpkg-deb -c "$deb" | grep "/partita/libpartita_cuda.so$" >/dev/null; then
    # Found where it was installed: it loads and asks the driver, or says which CUDA library is missing.
    expect "the installed CUDA plugin is found" "note: (no GPU: the CUDA runtime says|GPUs are not detected: .*cannot load the CUDA backend)|\\[gpu\\]" \
        /usr/bin/partita-cli inspect local
fi
expect "inspect a cluster preset" "Cluster" /usr/bin/partita-cli inspect dgx-h100:2
expect "inspect the installed demo model" "Parameters|parameters" /usr/bin/partita-cli inspect /usr/share/partita/demo/model.json
check "simulate the demo into a project" /usr/bin/partita-cli simulate --model /usr/share/partita/demo/model.json \
    --cluster /usr/share/partita/demo/cluster.json --preset ddp --global-batch 128 --micro-batch 8 --project "$work/demo.partita"
expect "xdg-mime: a project's type" "^application/x-partita-project$" xdg-mime query filetype "$work/demo.partita"
cp "$work/demo.partita" "$work/renamed.sqlite"
expect "shared-mime-info magic: a renamed project" "^application/x-partita-project$" mimetype -b -M "$work/renamed.sqlite"
expect "xdg-mime: what opens a project" "^io.partita.Partita.desktop$" xdg-mime query default application/x-partita-project
expect "man -w partita-cli" "^/usr/share/man/man1/partita-cli.1.gz$" man -w partita-cli
expect "man partita-cli names every subcommand" "partita-cli trace import" man -P cat partita-cli
check "desktop-file-validate" desktop-file-validate /usr/share/applications/io.partita.Partita.desktop
check "appstreamcli validate --no-net" appstreamcli validate --no-net /usr/share/metainfo/io.partita.Partita.metainfo.xml
expect "bash completion" "^import export stats diff" bash -c 'source /usr/share/bash-completion/bash_completion
    source /usr/share/bash-completion/completions/partita-cli
    COMP_WORDS=(partita-cli trace ""); COMP_CWORD=2; COMP_LINE="partita-cli trace "; COMP_POINT=${#COMP_LINE}
    _partita_cli; echo "${COMPREPLY[*]}"'

echo "== purge"
files=$(dpkg-query -L partita | sort)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q partita >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
rm -f "$marker"
left=""
for f in $files; do
    [ -f "$f" ] && left="$left $f"
done
for d in /usr/share/partita /usr/share/doc/partita; do
    [ -e "$d" ] && left="$left $d"
done
check "nothing left behind" test -z "$left"
expect "the MIME type is gone with it" "^application/vnd.sqlite3$" xdg-mime query filetype "$work/demo.partita"
if [ $failures -ne 0 ]; then
    echo "install-check: $failures check(s) failed${left:+; left behind:$left}"
    exit 1
fi
echo "install-check: the package installs, works and purges cleanly"
