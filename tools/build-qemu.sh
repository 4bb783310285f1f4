#!/usr/bin/env bash
# Build the patched QEMU: Debian 13's QEMU 10.0 source (pinned, checksummed) plus the
# series in patches/qemu/, x86_64-softmmu with KVM and TCG, into /opt/dq-qemu; package
# it as a .deb. Cached by a hash of the source pin, the series, this script and the
# configure flags.
#
# A persistent source tree (a local git repo with one "pristine" commit) and build dir
# live under $DQ_CACHE/qemu/, so a rebuild after changing a patch recompiles only what
# the series touches. Progress on stderr; the last stdout line is the .deb path.
#   tools/build-qemu.sh               build if needed, print the .deb path
#   tools/build-qemu.sh --print-path  print the .deb path, exit 1 if not built
#   tools/build-qemu.sh --tree        print the unpacked tree (<key>/opt/dq-qemu) instead
set -euo pipefail
. "$(dirname "$0")/lib.sh"

QEMU_SRC_VERSION=1:10.0.13+ds-0+deb13u1
DSC=qemu_10.0.13+ds-0+deb13u1.dsc
DSC_SHA256=a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad
ORIG=qemu_10.0.13+ds.orig.tar.xz
ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
DEBTAR=qemu_10.0.13+ds-0+deb13u1.debian.tar.xz
DEBTAR_SHA256=da73c092f5684c551b0334d675eb16a3dec91e1edea94759cfb1102fa4a0364e
MESON_MIN=1.5.0 # QEMU 10.0's floor; the +ds tarball drops the bundled wheel

CONFIGURE_FLAGS=(
  --target-list=x86_64-softmmu --without-default-features
  --enable-kvm --enable-tcg --enable-fdt=system
  --disable-docs --disable-werror --disable-download --disable-install-blobs
  --prefix=/opt/dq-qemu
)
# The .deb's runtime dependencies (what `ldd` shows the binary links, plus the firmware
# it loads): alternatives cover Debian 12 and 13 (t64 renames); any qemu-system-data
# (Debian 12's 7.2 one too) has the option ROMs and keymaps an x86 guest needs.
DEB_DEPENDS="libc6 (>= 2.34), libglib2.0-0t64 (>= 2.74) | libglib2.0-0 (>= 2.74), \
libfdt1 (>= 1.6), zlib1g (>= 1:1.2.11), seabios, ipxe-qemu, qemu-system-data"

root=$DQ_CACHE/qemu
series_dir=$DQ_REPO/patches/qemu
tree=$root/tree
mode=build
case "${1:-}" in
  --print-path) mode=print ;;
  --tree) mode=tree ;;
  "") ;;
  *) die "usage: $0 [--print-path|--tree]" ;;
esac

[ -f "$series_dir/series" ] || die "patches/qemu/series is missing"
mapfile -t patches < <(grep -v '^\s*#' "$series_dir/series" | awk 'NF {print $1}')
inputs() {
  printf '%s\n' "$QEMU_SRC_VERSION $DSC_SHA256 $ORIG_SHA256 $DEBTAR_SHA256" "${CONFIGURE_FLAGS[*]}"
  printf '%s\n' "${patches[@]}"
  (cd "$series_dir" && sha256sum "${patches[@]}") | awk '{print $1}'
  sha256sum "$0" | awk '{print $1}'
}
key=$(inputs | sha256sum | cut -c1-16)
debver="10.0.13+ds-0+deb13u1+dq.$key"
deb=$root/dq-qemu_${debver}_amd64.deb
inst=$root/$key/opt/dq-qemu
built() { [ -f "$deb" ] && [ -x "$inst/bin/qemu-system-x86_64" ]; }
show() { if [ "$mode" = tree ]; then echo "$inst"; else echo "$deb"; fi; }

if [ "$mode" = print ]; then built || exit 1; show; exit 0; fi
if built; then say "qemu cached: $deb"; show; exit 0; fi
[ "$mode" = tree ] && mode=tree-after-build

# ---- build dependencies (Debian packages: tools/deps/apt-qemu.txt) ----
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
meson_ver=$(meson --version 2>/dev/null || echo 0)
if ! ver_ge "$meson_ver" "$MESON_MIN"; then
  codename=$(. /etc/os-release; echo "${VERSION_CODENAME:-}")
  [ "$codename" = bookworm ] || die "meson $meson_ver < $MESON_MIN and no known Debian source for a newer one"
  say "meson $meson_ver < $MESON_MIN: installing meson from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports meson >&2
fi
for tool in ninja pkg-config dpkg-source dpkg-deb git; do
  command -v "$tool" >/dev/null || die "$tool missing: run tools/setup-host.sh (tools/deps/apt-qemu.txt)"
done
for pc in glib-2.0 pixman-1 zlib; do
  pkg-config --exists "$pc" || die "pkg-config $pc missing: run tools/setup-host.sh (tools/deps/apt-qemu.txt)"
done
[ -f /usr/include/libfdt.h ] || die "libfdt-dev missing: run tools/setup-host.sh (tools/deps/apt-qemu.txt)"

mkdir -p "$root"
exec 9>"$DQ_CACHE/build.lock"
say "waiting for $DQ_CACHE/build.lock"
flock 9
start=$(date +%s)

# ---- pinned source (Debian's patches applied by dpkg-source) ----
dl=$root/src-dl
verify() {
  (cd "$dl" && printf '%s  %s\n' "$DSC_SHA256" "$DSC" "$ORIG_SHA256" "$ORIG" \
    "$DEBTAR_SHA256" "$DEBTAR" | sha256sum -c --quiet --strict 2>/dev/null)
}
if ! verify; then
  say "fetching qemu=$QEMU_SRC_VERSION source (deb-src via the host's Debian mirror)"
  mkdir -p "$dl"
  conf=$(private_apt_config)
  apt-get -q -c "$conf" update >&2
  (cd "$dl" && apt-get -q -c "$conf" source --download-only "qemu=$QEMU_SRC_VERSION" >&2)
  verify || die "qemu source checksum mismatch in $dl (expected the pinned sha256)"
fi
if [ "$(cat "$root/tree.version" 2>/dev/null)" != "$QEMU_SRC_VERSION" ]; then
  say "unpacking the source into a pristine git tree: $tree"
  rm -rf "$tree" "$root/tree.version" "$root/.unpack"
  mkdir -p "$root/.unpack"
  dpkg-source --no-check -x "$dl/$DSC" "$root/.unpack/src" >&2
  mv "$root/.unpack/src" "$tree"
  rm -rf "$root/.unpack" "$tree/.pc"
  git -C "$tree" init -q
  git -C "$tree" add -A -f .
  git -C "$tree" -c user.name=dqlab -c user.email=build@dqlab.invalid \
    commit -q -m "pristine qemu $QEMU_SRC_VERSION (Debian patches applied)"
  git -C "$tree" tag -f pristine >/dev/null
  echo "$QEMU_SRC_VERSION" >"$root/tree.version"
fi

# ---- apply the series on the pristine commit ----
# The series is applied in a scratch index (no checkout), then the work tree is moved to
# the result with `reset --hard`: files whose content does not change keep their mtimes,
# so after editing one patch ninja recompiles only what that edit touched.
say "applying ${#patches[@]} patches"
idx=$root/.series-index
rm -f "$idx"
GIT_INDEX_FILE=$idx git -C "$tree" read-tree pristine
for p in "${patches[@]}"; do
  GIT_INDEX_FILE=$idx git -C "$tree" apply --cached "$series_dir/$p" >&2 ||
    die "patch does not apply to the pinned source: patches/qemu/$p"
done
treeobj=$(GIT_INDEX_FILE=$idx git -C "$tree" write-tree)
rm -f "$idx"
commit=$(git -C "$tree" -c user.name=dqlab -c user.email=build@dqlab.invalid \
  commit-tree "$treeobj" -p pristine -m "pristine + patches/qemu ($key)")
git -C "$tree" checkout -q --detach 2>/dev/null || true  # never move a branch
git -C "$tree" reset -q --hard "$commit"
git -C "$tree" clean -q -fdx -e build/

# ---- configure (once per flag set) and build ----
build=$tree/build
flags_sig=$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" | sha256sum | cut -c1-16)
# configure rejects pyenv shims' python with the system meson: plain Debian PATH
cleanpath=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v pyenv | paste -sd:)
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.dq-flags" 2>/dev/null)" != "$flags_sig" ]; then
  say "configure: ${CONFIGURE_FLAGS[*]}"
  rm -rf "$build"; mkdir -p "$build"
  (cd "$build" && PATH=$cleanpath nice -n 10 ../configure --python=/usr/bin/python3 \
    "${CONFIGURE_FLAGS[@]}" >&2)
  echo "$flags_sig" >"$build/.dq-flags"
fi
say "ninja (progress [done/total] below)"
PATH=$cleanpath nice -n 10 ninja -C "$build" -j"$(nproc)" qemu-system-x86_64 >&2

# ---- install into the cache (runnable without installing the .deb) and package ----
stage=$root/.stage-$key
rm -rf "$stage" "$root/$key"
mkdir -p "$stage/opt/dq-qemu/bin" "$stage/opt/dq-qemu/share" "$stage/DEBIAN"
install -m 0755 "$build/qemu-system-x86_64" "$stage/opt/dq-qemu/bin/"
strip "$stage/opt/dq-qemu/bin/qemu-system-x86_64"
# Firmware and keymaps come from Debian's packages (qemu-system-data, seabios,
# ipxe-qemu). Debian's own build finds them through --firmwarepath; here the datadir
# links to them instead, which needs no reconfigure (= no full rebuild).
mkdir -p "$stage/opt/dq-qemu/share/qemu"
for dir in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
  [ -d "$dir" ] || die "firmware directory $dir missing: run tools/setup-host.sh (tools/deps/apt-qemu.txt)"
  for f in "$dir"/*; do
    [ -e "$stage/opt/dq-qemu/share/qemu/${f##*/}" ] || ln -s "$f" "$stage/opt/dq-qemu/share/qemu/"
  done
done
mkdir -p "$stage/opt/dq-qemu/share/doc/dq-qemu"
(cd "$series_dir" && cat series "${patches[@]}") | gzip -9n \
  >"$stage/opt/dq-qemu/share/doc/dq-qemu/patches.gz"
cat >"$stage/DEBIAN/control" <<CTL
Package: dq-qemu
Version: $debver
Architecture: amd64
Maintainer: dqlab <dqlab@dqlab.invalid>
Section: misc
Priority: optional
Depends: $DEB_DEPENDS
Description: QEMU 10.0 x86_64 system emulator with per-vCPU dirty quota
 Debian's QEMU $QEMU_SRC_VERSION plus the dqlab dirty-quota series
 (QMP set-dirty-quota, cancel-dirty-quota, query-dirty-quota), built for
 x86_64-softmmu with KVM and TCG, installed under /opt/dq-qemu so it never
 collides with the distribution's QEMU.
CTL
mkdir -p "$root/$key"
cp -a "$stage/opt" "$root/$key/"
dpkg-deb --root-owner-group -Zxz -b "$stage" "$deb.tmp" >&2
mv "$deb.tmp" "$deb"
rm -rf "$stage"
say "built $deb in $(( $(date +%s) - start ))s"
"$inst/bin/qemu-system-x86_64" --version | head -n1 >&2
if [ "$mode" = tree-after-build ]; then echo "$inst"; else echo "$deb"; fi
