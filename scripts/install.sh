#!/usr/bin/env bash
# Install muse into the active Python environment, the one way CI (.ci/run), the Docker image
# and the README do it: torch first, pinned (an unpinned torch drags in GBs of CUDA wheels),
# then the project with its dependencies.
#
#   scripts/install.sh [--device cpu|cuda] [--editable] [--extras LIST] [--dry-run]
#
#   --device    where torch comes from: unset, pip's configured indexes (PyPI, or a local
#               wheel where the machine has one); cpu or cuda, PyTorch's own wheel index for
#               that build (what the Docker image uses)
#   --editable  install the working tree in development mode (pip install -e)
#   --extras    optional dependency groups of pyproject.toml, comma-separated (e.g. dev)
#   --dry-run   print the pip commands instead of running them
set -euo pipefail

TORCH_VERSION="2.13.0"  # the pin of pyproject.toml
# PyTorch's wheel indexes: the CPU build and the CUDA build muse's image is made with.
CPU_INDEX="https://download.pytorch.org/whl/cpu"
CUDA_INDEX="https://download.pytorch.org/whl/cu128"

device=""
editable=0
extras=""
dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="${2:?--device needs cpu or cuda}"; shift 2 ;;
        --editable) editable=1; shift ;;
        --extras) extras="${2:?--extras needs a list such as dev}"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        *) echo "scripts/install.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done

torch=(python -m pip install "torch==${TORCH_VERSION}")
case "$device" in
    "") ;;
    cpu) torch+=(--index-url "$CPU_INDEX") ;;
    cuda) torch+=(--index-url "$CUDA_INDEX") ;;
    *) echo "scripts/install.sh: --device must be cpu or cuda, not '$device'" >&2; exit 2 ;;
esac

project="."
[ -n "$extras" ] && project=".[${extras}]"
muse=(python -m pip install)
[ "$editable" = 1 ] && muse+=(-e)
muse+=("$project")

run() {
    if [ "$dry_run" = 1 ]; then
        echo "$*"
    else
        "$@"
    fi
}

cd "$(dirname "$0")/.."
run "${torch[@]}"
run "${muse[@]}"
