#!/usr/bin/env bash
# Copies the shared libraries that BINARY... load (their ldd closure) under DEST, for the
# Dockerfile's runtime stage to copy onto a bare debian:12-slim (the Dockerfile says why).
#
#   scripts/stage-runtime-libs.sh [--skip SUMS] DEST BINARY...
#
# Each library lands where the loader finds it: in the directory ldd names, through realpath
# (Debian 12 merges /usr, /lib -> usr/lib: /lib/x86_64-linux-gnu/X is staged as
# DEST/usr/lib/x86_64-linux-gnu/X, so nothing under DEST can replace the /lib symlink), as a
# regular file (cp -L: libblas.so.3, an alternatives symlink chain to OpenBLAS, becomes a copy of
# OpenBLAS's libblas.so.3). SUMS holds `sha256sum` lines of the base image's libraries, taken
# before apt-get install: a library the base already has, identical at the same path, is skipped.
# Fails when ldd cannot resolve a library. Libraries loaded with dlopen are not in ldd's closure;
# the binaries load none (LD_DEBUG=files), and the image check (deploy/checks/image.sh) serves and
# trains from the image.
set -euo pipefail
skip=/dev/null
if [[ ${1:-} == --skip ]]; then
  skip=$2
  shift 2
fi
if [[ $# -lt 2 ]]; then
  echo "usage: $0 [--skip SUMS] DEST BINARY..." >&2
  exit 2
fi
dest=$1
shift

deps=$(ldd "$@")
if grep 'not found' <<< "$deps" >&2; then
  echo "stage-runtime-libs: ldd cannot resolve the libraries above" >&2
  exit 1
fi
# "libX.so.1 => /path (0x...)" and the interpreter's "/lib64/ld-linux-x86-64.so.2 (0x...)".
mapfile -t libs < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' \
  <<< "$deps" | sort -u)
staged=0
skipped=0
for lib in "${libs[@]}"; do
  dir=$(realpath "$(dirname "$lib")")
  path=$dir/$(basename "$lib")
  if grep -qxF "$(sha256sum < "$lib" | cut -d' ' -f1)  $path" "$skip"; then
    skipped=$((skipped + 1))
    continue
  fi
  mkdir -p "$dest$dir"
  cp -L --preserve=mode,timestamps "$lib" "$dest$path"
  staged=$((staged + 1))
done
echo "stage-runtime-libs: ${#libs[@]} libraries: $staged staged in $dest" \
  "($(du -sh "$dest" | cut -f1)), $skipped identical in the base; the largest:"
find "$dest" -type f -printf '%s %P\n' | sort -rn | sed -n 1,5p | numfmt --field=1 --to=iec
