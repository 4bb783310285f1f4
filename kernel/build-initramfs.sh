#!/usr/bin/env bash
# Build the selftest initramfs: static /init + /dirty_quota_test, gzip'd newc cpio.
# usage: build-initramfs.sh <patched headers include dir> <out.cpio.gz>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hdr=${1:?headers include dir}
out=${2:?output path}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,tmp}
cflags=(-static -O2 -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11)
gcc "${cflags[@]}" -o "$stage/init" "$here/initramfs/init.c"
gcc "${cflags[@]}" -pthread -isystem "$hdr" -I "$here/../patches/uapi" \
  -o "$stage/dirty_quota_test" "$here/selftest/dirty_quota_test.c"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out"
echo "initramfs: $out ($(stat -c %s "$out") bytes)" >&2
