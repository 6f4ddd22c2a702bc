#!/usr/bin/env bash
# Configures and builds one build tree. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [[ ! -f $dir/build.ninja ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
# ccache hits across clones of the repository (CI builds a fresh clone).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
# Two cores here: more jobs only thrash memory in the LibTorch translation units.
# shellcheck disable=SC2086
ninja -C "$dir" -j "${ALLOT_JOBS:-2}" ${ALLOT_TARGETS:-}
