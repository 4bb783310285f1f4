#!/usr/bin/env bash
# Developer helper: turn the commits on top of `pristine` in the cached QEMU tree into
# patches/qemu/*.patch + series. Workflow: edit in $DQ_CACHE/qemu/tree (branch master),
# `git checkout master`, `git commit --fixup=<patch commit>` + `git rebase -i --autosquash pristine`, run this,
# then tools/build-qemu.sh. Never used by the build itself.
set -euo pipefail
. "$(dirname "$0")/../tools/lib.sh"
tree=$DQ_CACHE/qemu/tree
out=$DQ_REPO/patches/qemu
git -C "$tree" rev-parse -q --verify pristine >/dev/null || die "no pristine tag in $tree"
rm -f "$out"/*.patch
git -C "$tree" -c core.abbrev=12 format-patch -q --no-signature --zero-commit \
  --no-numbered pristine..master -o "$out"
{
  echo "# dqlab dirty-quota series for Debian's qemu 1:10.0.13+ds-0+deb13u1 (apply in order)"
  (cd "$out" && ls -- *.patch)
} >"$out/series"
say "exported $(grep -vc '^#' "$out/series") patches to $out"
