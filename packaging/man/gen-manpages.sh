#!/usr/bin/env bash
# Manual pages made from the programs' own --help and --version by help2man,
# so they cannot drift from the programs: partita(1), partita-cli(1) with a
# section per subcommand (every level, each its own --help), partita-worker(1).
# Usage: packaging/man/gen-manpages.sh BIN_DIR OUT_DIR
set -euo pipefail
bin="$1"
out="$2"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v help2man >/dev/null || { echo "gen-manpages: help2man is not installed" >&2; exit 1; }

# Subcommand names listed under "Subcommands:" in a CLI11 help text.
subcommands() { sed -n '/^Subcommands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'; }

# roff-safe verbatim block of a help text, program path shown as its name.
verbatim() { sed -e "s|$bin/||g" -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'; }

# One ".SS partita-cli A B" section per (sub)command, depth first.
describe() { # describe WORDS...
    local text
    text=$("$bin/partita-cli" "$@" --help)
    if [ $# -gt 0 ]; then
        printf '.SS "partita-cli %s"\n.nf\n' "$*"
        printf '%s\n' "$text" | verbatim
        printf '.fi\n'
    fi
    local sub
    for sub in $(printf '%s\n' "$text" | subcommands); do
        describe "$@" "$sub"
    done
}
{
    echo "[SUBCOMMANDS]"
    echo "Each subcommand's own \\fB\\-\\-help\\fR, as the program prints it:"
    describe
    cat "$here/partita-cli.h2m"
} > "$work/cli.h2m"

h2m() { # h2m NAME DESCRIPTION INCLUDE PROGRAM
    help2man --no-info --no-discard-stderr --section 1 --name "$2" --include "$3" --output "$work/$1.1" "$4"
    gzip -9n -c "$work/$1.1" > "$out/$1.1.gz"
}
h2m partita-cli "design, predict, run and profile distributed-training strategies from the command line" \
    "$work/cli.h2m" "$bin/partita-cli"
h2m partita-worker "run one rank of a Partita execution plan and trace it" "$here/partita-worker.h2m" "$bin/partita-worker"
# The workbench parses its command line before it opens a window; no display needed.
QT_QPA_PLATFORM=offscreen h2m partita "workbench for distributed-training strategies" "$here/partita.h2m" "$bin/partita"
echo "gen-manpages: $(ls "$out" | tr '\n' ' ')in $out"
