#!/usr/bin/env bash
# Boot the dirty-quota kernel under QEMU TCG as an emulated KVM host and run the
# selftest from its initramfs. The serial console goes to stdout; the exit code is
# 0 only if the selftest reported "DQTEST summary ... fail=0" and init finished.
#   usage: boot-selftest.sh [ARTIFACT_DIR] [TIMEOUT_S]
# ARTIFACT_DIR defaults to `tools/build-kernel.sh --print-path`.
# Facts (docs/kernel.md): AMD CPU model, because TCG emulates nested SVM but not
# VMX; tsc_early_khz, because the tiny config has no HPET/ACPI PM timer to
# calibrate the TSC against and KVM's clock update would retry forever.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$("$repo/tools/build-kernel.sh" --print-path)} || { echo "kernel not built: run tools/build-kernel.sh" >&2; exit 2; }
limit=${2:-150}
qemu=${DQ_QEMU:-/usr/bin/qemu-system-x86_64}
cpu=${DQ_KERNEL_CPU:-EPYC}
[ -f "$dir/bzImage" ] && [ -f "$dir/initramfs.cpio.gz" ] || { echo "no bzImage/initramfs in $dir" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# boot: $qemu -accel tcg -cpu $cpu, kernel $dir/bzImage, limit ${limit}s" >&2
set +e
timeout --kill-after=5 "$limit" "$qemu" -accel tcg -cpu "$cpu" -m 512 -smp 1 \
  -nodefaults -display none -no-reboot -serial stdio -monitor none \
  -kernel "$dir/bzImage" -initrd "$dir/initramfs.cpio.gz" \
  -append "console=ttyS0 tsc_early_khz=2000000 panic=-1 loglevel=4" </dev/null | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 124 ] || [ "$rc" = 137 ] && { echo "# boot: timed out after ${limit}s" >&2; exit 3; }
grep -q '^DQINIT done' "$log" || { echo "# boot: init did not finish (qemu rc=$rc)" >&2; exit 1; }
grep -Eq '^DQTEST summary pass=[0-9]+ fail=0 ' "$log" || { echo "# boot: selftest failed" >&2; exit 1; }
exit 0
