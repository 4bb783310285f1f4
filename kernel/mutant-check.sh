#!/usr/bin/env bash
# Prove the selftest can fail: build the series plus a deliberately broken change
# (kernel/mutants/*.diff: no free on vCPU destroy, pvclock/steal-time writes charged),
# boot it, and require that exactly the checks that guard those properties fail.
# Not part of CI (it rebuilds two KVM files under the build lock); run by hand.
#   usage: kernel/mutant-check.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tools/lib.sh"
art=$("$repo/tools/build-kernel.sh" --print-path) || die "kernel not built: run tools/build-kernel.sh"
src=$DQ_CACHE/kernel/src obj=$DQ_CACHE/kernel/obj
mutant=$repo/kernel/mutants/no-free-and-charge-hv-writes.diff
expect_fail="hv_writes_not_charged no_leak"
work=$(mktemp -d)
trap 'git -C "$src" checkout -q -- virt/kvm/kvm_main.c arch/x86/kvm/x86.c; rm -rf "$work"' EXIT

exec 9>"$DQ_CACHE/build.lock"
say "waiting for $DQ_CACHE/build.lock"
flock 9
git -C "$src" apply "$mutant" || die "mutant does not apply to the patched tree"
say "building the mutant kernel (incremental)"
nice -n 10 make -C "$src" O="$obj" -j"$(nproc)" CC="ccache gcc" bzImage >&2
cp "$obj/arch/x86/boot/bzImage" "$work/bzImage"
git -C "$src" checkout -q -- virt/kvm/kvm_main.c arch/x86/kvm/x86.c
flock -u 9
cp "$art/initramfs.cpio.gz" "$work/"

say "booting the mutant (its selftest is expected to fail: $expect_fail)"
"$repo/kernel/boot-selftest.sh" "$work" 150 >"$work/console.log" 2>&1 || true
grep '^DQTEST' "$work/console.log"
failed=$(awk '$1=="DQTEST" && $3=="FAIL" {print $2}' "$work/console.log" | sort | xargs)
want=$(echo "$expect_fail" | tr ' ' '\n' | sort | xargs)
if [ "$failed" = "$want" ]; then
  echo "mutant-check: OK - the mutant failed exactly: $failed"
else
  echo "mutant-check: FAILED - expected failures [$want], got [$failed]"; exit 1
fi
