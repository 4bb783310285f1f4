#!/usr/bin/env bash
# Build the dirty-quota kernel (patches/linux/series on the pinned Debian
# linux-source-6.12) with the minimal emulated-host config, plus the selftest
# initramfs. Cached by input hash (contracts.md §2):
#   $DQ_CACHE/kernel/<key>/{bzImage,initramfs.cpio.gz,headers/,build.json}
# Progress on stderr; the artifact directory is the last stdout line.
#   --print-path   print the artifact directory without building (exit 1 if absent)
#   --key          print the cache key and exit
#   --kernel-key   print the bzImage's cache key (pin + config + series + recipe)
# Layout under $DQ_CACHE/kernel: dl/ (pinned .deb), src/ (git repo: pristine
# commit tagged `pristine`, series applied on top), obj/ (persistent O= dir, so a
# one-patch change rebuilds in seconds), <key>/ (artifacts).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KVER=6.12.117
DEB_VERSION=6.12.117-1~deb12u1
DEB=linux-source-6.12_${DEB_VERSION}_all.deb
# sha256 of the .deb as published in bookworm-security (same upstream as trixie).
DEB_SHA256=e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703

root=$DQ_CACHE/kernel
src=$root/src
obj=$root/obj
series_dir=$DQ_REPO/patches/linux
fragment=$DQ_REPO/kernel/config.fragment

mapfile -t patches < <(grep -v '^\s*#' "$series_dir/series" | awk 'NF {print $1}')

# Inputs of the bzImage: source version, config fragment, the series, and how we build it.
kernel_key() {
  {
    echo "$KVER $DEB_SHA256"
    cat "$fragment"
    for p in "${patches[@]}"; do cat "$series_dir/$p"; done
    sed -n '/^ *# build-recipe-begin/,/^ *# build-recipe-end/p' "$0"
  } | sha256sum | cut -c1-16
}
# Inputs of the artifact directory: the bzImage plus the selftest and init sources.
artifact_key() {
  { kernel_key; cat "$DQ_REPO"/kernel/selftest/*.c "$DQ_REPO"/kernel/initramfs/*.c \
      "$DQ_REPO"/patches/uapi/dirty_quota.h; } | sha256sum | cut -c1-16
}

case "${1:-}" in
  --key) artifact_key; exit 0 ;;
  --kernel-key) kernel_key; exit 0 ;;
  --print-path)
    out=$root/$(artifact_key)
    [ -f "$out/bzImage" ] && [ -f "$out/initramfs.cpio.gz" ] || exit 1
    echo "$out"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--print-path|--key]" ;;
esac

kkey=$(kernel_key)
akey=$(artifact_key)
out=$root/$akey
if [ -f "$out/bzImage" ] && [ -f "$out/initramfs.cpio.gz" ]; then
  say "kernel $KVER + ${#patches[@]} patches: cached ($akey)"
  echo "$out"; exit 0
fi

mkdir -p "$root"
t0=$(date +%s)

# --- 1. pinned source -------------------------------------------------------
fetch_source() {
  mkdir -p "$root/dl"
  if [ ! -f "$root/dl/$DEB" ]; then
    say "downloading $DEB (apt-get download)"
    (cd "$root/dl" && apt-get download -q "linux-source-6.12=$DEB_VERSION" >&2)
  fi
  echo "$DEB_SHA256  $root/dl/$DEB" | sha256sum -c --quiet - >&2 \
    || die "$DEB: sha256 mismatch (pinned $DEB_SHA256)"
}

if ! git -C "$src" rev-parse -q --verify pristine >/dev/null 2>&1; then
  fetch_source
  say "unpacking linux-source $KVER into $src (about 1 min)"
  rm -rf "$src" "$root/unpack"
  mkdir -p "$root/unpack"
  dpkg-deb --fsys-tarfile "$root/dl/$DEB" | tar -x -C "$root/unpack" ./usr/src/linux-source-6.12.tar.xz
  tar -xJf "$root/unpack/usr/src/linux-source-6.12.tar.xz" -C "$root/unpack"
  mv "$root/unpack/linux-source-6.12" "$src"
  rm -rf "$root/unpack"
  say "recording the pristine tree as a git repo"
  git -C "$src" init -q
  git -C "$src" config user.name "dqlab build"
  git -C "$src" config user.email "dqlab@localhost"
  git -C "$src" config gc.auto 0
  git -C "$src" add -A -f  # Debian's .gitignore ignores the whole top level
  git -C "$src" commit -q -m "linux-source-6.12 $DEB_VERSION (pristine)"
  git -C "$src" tag pristine
fi

# --- 2. bzImage + patched uAPI headers, cached per kernel key ------------------
# Selftest-only changes reuse them without touching the tree or the build lock.
bz=$root/bz/$kkey
if [ ! -f "$bz/bzImage" ] || [ ! -f "$bz/headers/include/linux/kvm.h" ]; then
  # The compile is the heavy part: it alone waits for the shared build lock
  # (so does the tree update, so two builds never apply patches at once).
  exec 9>"$DQ_CACHE/build.lock"
  say "waiting for $DQ_CACHE/build.lock"
  flock 9
  say "got the build lock"

  # Apply the series only when it changed: unchanged files keep their mtimes.
  series_hash=$(for p in "${patches[@]}"; do cat "$series_dir/$p"; done | sha256sum | cut -c1-16)
  if [ "$(cat "$src/.git/dq-applied" 2>/dev/null)" != "$series_hash" ]; then
    say "applying ${#patches[@]} patches to pristine $KVER"
    git -C "$src" am --abort >/dev/null 2>&1 || true
    git -C "$src" checkout -q -f --detach pristine
    for p in "${patches[@]}"; do
      git -C "$src" am -q "$series_dir/$p" >&2 || die "patch $p does not apply to $KVER"
    done
    echo "$series_hash" >"$src/.git/dq-applied"
  fi

  # build-recipe-begin (changing these lines changes the cache key)
  mk() { nice -n 10 make -C "$src" O="$obj" -j"$(nproc)" "$@"; }
  cfg_hash=$(sha256sum "$fragment" | cut -c1-16)
  mkdir -p "$obj"
  if [ "$(cat "$obj/.dq-config" 2>/dev/null)" != "$cfg_hash" ] || [ ! -f "$obj/.config" ]; then
    say "config: tinyconfig + kernel/config.fragment"
    mk tinyconfig >/dev/null
    "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" >/dev/null
    mk olddefconfig >/dev/null
    # Every `=y` line of the fragment must have survived dependency resolution.
    while IFS= read -r line; do
      grep -qx "$line" "$obj/.config" || die "config: $line did not stick (missing dependency?)"
    done < <(grep '^CONFIG_.*=y$' "$fragment")
    echo "$cfg_hash" >"$obj/.dq-config"
  fi
  say "make bzImage (progress: one line per compiled file)"
  if command -v ccache >/dev/null; then
    export CCACHE_DIR=$DQ_CACHE/ccache
    mk CC="ccache gcc" bzImage >&2
  else
    mk bzImage >&2
  fi
  # build-recipe-end

  rm -rf "$bz.tmp"
  mkdir -p "$bz.tmp"
  cp "$obj/arch/x86/boot/bzImage" "$bz.tmp/bzImage"
  say "installing uAPI headers (the selftest compiles against the patched kvm.h)"
  make -C "$src" O="$obj" headers_install INSTALL_HDR_PATH="$bz.tmp/headers" >/dev/null
  rm -rf "$bz"
  mv "$bz.tmp" "$bz"
  flock -u 9
else
  say "bzImage for kernel key $kkey: cached"
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$bz/bzImage" "$out.tmp/bzImage"
cp -a "$bz/headers" "$out.tmp/headers"

# --- 3. selftest initramfs ---------------------------------------------------
say "building the selftest initramfs"
"$DQ_REPO/kernel/build-initramfs.sh" "$out.tmp/headers/include" "$out.tmp/initramfs.cpio.gz" >&2

printf '{"kernel":"%s","debian_version":"%s","patches":%d,"kernel_key":"%s","build_seconds":%d}\n' \
  "$KVER" "$DEB_VERSION" "${#patches[@]}" "$kkey" "$(( $(date +%s) - t0 ))" >"$out.tmp/build.json"
rm -rf "$out"
mv "$out.tmp" "$out"
say "done in $(( $(date +%s) - t0 ))s"
echo "$out"
