#!/usr/bin/env bash
# Cached Debian 13 (trixie) base image for the nspawn local lab (contracts §2).
# debootstrap at its default mirror, minbase + what a lab host needs to boot and be
# managed: systemd as PID 1, dbus, sshd, iproute2, python3. Keyed by this script's hash.
# Last stdout line: the rootfs path. --print-path: that path without building (exit 1 if absent).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

suite=trixie
include=systemd,systemd-sysv,dbus,openssh-server,iproute2,python3,ca-certificates
# Key: what goes into the image (bump `recipe` when the steps below change).
recipe=1
key=$(printf '%s\n' "$suite" "$include" "$recipe" | sha256sum | cut -c1-12)
out=$DQ_CACHE/rootfs/$suite-$key

if [ "${1:-}" = --print-path ]; then
  [ -f "$out/.complete" ] || exit 1
  echo "$out"; exit 0
fi
if [ -f "$out/.complete" ]; then
  say "rootfs: cached $out"
  echo "$out"; exit 0
fi
command -v debootstrap >/dev/null || die "rootfs: debootstrap missing (run ./dqlab setup)"

mkdir -p "$DQ_CACHE/rootfs"
# debootstrap is network/IO-bound, so it takes its own lock, not the shared CPU build lock.
exec 9>"$DQ_CACHE/rootfs/.lock"
flock 9
[ -f "$out/.complete" ] && { echo "$out"; exit 0; }
tmp=$out.tmp
rm -rf "$tmp"
say "rootfs: debootstrap --variant=minbase $suite (about 3 min)"
t0=$(date +%s)
nice -n 10 debootstrap --variant=minbase --include="$include" "$suite" "$tmp" >"$DQ_CACHE/rootfs/debootstrap-$key.log" 2>&1 \
  || { tail -20 "$DQ_CACHE/rootfs/debootstrap-$key.log" >&2; die "rootfs: debootstrap failed (log above)"; }
# Clones get their own identity at bring-up; the image carries none.
: >"$tmp/etc/machine-id"
rm -f "$tmp"/etc/ssh/ssh_host_*
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
touch "$tmp/.complete"
mv "$tmp" "$out"
say "rootfs: built $out in $(( $(date +%s) - t0 ))s ($(du -sh "$out" | cut -f1))"
echo "$out"
