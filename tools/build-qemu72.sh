#!/usr/bin/env bash
# Positive-control QEMU: Debian 12's QEMU 7.2, which loses dirty pages under TCG
# (fixed upstream in 9.0). Only extracted (dpkg-deb -x), never installed; the harness
# runs it with --allow-old-qemu to prove the integrity check catches lost pages.
# Last stdout line: $DQ_CACHE/qemu72 (binary usr/bin/qemu-system-x86_64).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VER=1:7.2+dfsg-7+deb12u18+b3
# qemu-system-x86: the binary; qemu-system-common: its modules (the TCG accelerator is one)
declare -A SHA256=(
  [qemu-system-x86]=faf17e2cc7323acbb36bbd6329b61080e7ead0ebb92d33155f41b17d8db6fe15
  [qemu-system-common]=cc6bbe2d5e0b9ed6306f054008967b0564dc06b2558ea5142590f522ccca9b2b
)
out=$DQ_CACHE/qemu72
stamp=$out/.stamp-$(printf '%s\n' "${SHA256[@]}" "$VER" | sha256sum | cut -c1-16)

if [ "${1:-}" = "--print-path" ]; then
  [ -f "$stamp" ] || exit 1
  echo "$out"; exit 0
fi
if [ -f "$stamp" ]; then say "qemu 7.2 cached: $out"; echo "$out"; exit 0; fi

debs=$DQ_CACHE/qemu72-debs
mkdir -p "$debs"
tmp=$(mktemp -d "$DQ_CACHE/.qemu72-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for pkg in "${!SHA256[@]}"; do
  deb=$debs/${pkg}_${VER/:/%3a}_amd64.deb
  if ! echo "${SHA256[$pkg]}  $deb" | sha256sum -c --quiet 2>/dev/null; then
    say "downloading $pkg=$VER (the host's own Debian 12 sources)"
    (cd "$debs" && apt-get -q download "$pkg=$VER" >&2)
    echo "${SHA256[$pkg]}  $deb" | sha256sum -c --quiet || die "sha256 mismatch: $deb"
  fi
  dpkg-deb -x "$deb" "$tmp"
done
"$tmp/usr/bin/qemu-system-x86_64" --version >&2 || die "extracted qemu 7.2 does not run (missing libraries?)"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
touch "$stamp"
say "qemu 7.2 extracted: $out"
echo "$out"
