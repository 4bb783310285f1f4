#!/usr/bin/env bash
# Build the guest appliance: Debian 13 cloud kernel (pinned .deb) + gzip initramfs with
# busybox-static, the static dq-stress and guest/init. Cached by a hash of every input.
# Last stdout line: $DQ_CACHE/appliance/<key> (holding vmlinuz, initrd.gz).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KERNEL_PKG=linux-image-6.12.117+deb13-cloud-amd64
KERNEL_VER=6.12.117-1
KERNEL_SHA256=e9893e5295d0549b8852611f12a4b8b5f6cc4b8128dcc2086b9847793b904ab7
BUSYBOX=/bin/busybox

inputs() {
  printf '%s\n' "$KERNEL_PKG=$KERNEL_VER $KERNEL_SHA256"
  sha256sum "$BUSYBOX" "$DQ_REPO/guest/dq-stress.c" "$DQ_REPO/guest/init" "$0" | awk '{print $1}'
  gcc --version | head -n1
}
[ -x "$BUSYBOX" ] || die "busybox-static missing ($BUSYBOX): run tools/setup-host.sh"
key=$(inputs | sha256sum | cut -c1-16)
out=$DQ_CACHE/appliance/$key

if [ "${1:-}" = "--print-path" ]; then
  [ -f "$out/initrd.gz" ] && [ -f "$out/vmlinuz" ] || exit 1
  echo "$out"; exit 0
fi
if [ -f "$out/initrd.gz" ] && [ -f "$out/vmlinuz" ]; then
  say "appliance cached: $out"; echo "$out"; exit 0
fi

# light build (a few seconds): no global build.lock, atomic rename instead
debs=$DQ_CACHE/appliance/debs
deb=$debs/${KERNEL_PKG}_${KERNEL_VER}_amd64.deb
mkdir -p "$debs"
if ! echo "$KERNEL_SHA256  $deb" | sha256sum -c --quiet 2>/dev/null; then
  say "downloading $KERNEL_PKG=$KERNEL_VER"
  conf=$(private_apt_config)
  apt-get -q -c "$conf" update >&2
  (cd "$debs" && apt-get -q -c "$conf" download "$KERNEL_PKG=$KERNEL_VER" >&2)
  echo "$KERNEL_SHA256  $deb" | sha256sum -c --quiet || die "kernel .deb sha256 mismatch: $deb"
fi

work=$(mktemp -d "$DQ_CACHE/appliance/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
say "unpacking kernel"
dpkg-deb -x "$deb" "$work/kpkg"
cfg=$(echo "$work"/kpkg/boot/config-*)
grep -qx 'CONFIG_RD_GZIP=y' "$cfg" || die "kernel config lacks CONFIG_RD_GZIP=y: cannot unpack a gzip initramfs"
grep -qx 'CONFIG_SERIAL_8250_CONSOLE=y' "$cfg" || die "kernel config lacks CONFIG_SERIAL_8250_CONSOLE=y"

say "building dq-stress (static)"
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
nice -n 10 gcc -O2 -Wall -Wextra -Werror -static -pthread -o "$root/bin/dq-stress" "$DQ_REPO/guest/dq-stress.c"
strip "$root/bin/dq-stress"
cp "$BUSYBOX" "$root/bin/busybox"
install -m 0755 "$DQ_REPO/guest/init" "$root/init"
# reproducible archive: sorted names, fixed mtimes and owners, gzip without timestamp
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
  cpio --null --reproducible -o -H newc -R 0:0 --quiet) | gzip -9n >"$work/initrd.gz"

mkdir -p "$work/out"
cp "$work"/kpkg/boot/vmlinuz-* "$work/out/vmlinuz"
cp "$work/initrd.gz" "$work/out/initrd.gz"
cp "$cfg" "$work/out/kernel.config"
rm -rf "$out"
mv "$work/out" "$out"
say "appliance built: $out ($(du -h "$out/initrd.gz" | cut -f1) initrd)"
echo "$out"
