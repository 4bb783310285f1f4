/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dqlab dirty-quota uAPI excerpt (docs/contracts.md section 4).
 *
 * This is the part of include/uapi/linux/kvm.h that patches/linux/ adds to
 * linux-source-6.12 (6.12.117). The QEMU series copies it so that QEMU can
 * build against any kernel headers, and detects the feature at run time with
 * KVM_CHECK_EXTENSION(KVM_CAP_DIRTY_QUOTA_MIGRATION) on the /dev/kvm or VM fd.
 *
 * Numbers: 1000 is far above 6.12's last capability number and last exit
 * reason (both below 250), so neither can collide with a stock 6.12 value,
 * nor with the next years of upstream additions.
 *
 * Layout: struct kvm_run gains two __u64 fields immediately after the
 * `s` union (the synchronized-register area: 2048 bytes at offset 304 on
 * x86-64). Nothing before them moves, so stock userspace keeps working;
 * struct kvm_run still fits in the first page of the vCPU mmap.
 *
 * Semantics:
 *   - KVM_ENABLE_CAP on the VM fd, cap = KVM_CAP_DIRTY_QUOTA_MIGRATION,
 *     args[0] = 1 enables, 0 disables (other args must be 0). Allowed at any
 *     time; it takes effect on each vCPU's next guest entry.
 *   - While enabled, KVM increments run->dirty_count once for every page that
 *     the running vCPU itself marks dirty in a memslot with dirty logging
 *     (mark_page_dirty_in_slot()). Writes KVM makes on its own behalf (pv clock,
 *     steal time, ...) are not charged. The count is monotonic and never reset
 *     by KVM; userspace may read it at any exit.
 *   - When a charged page brings dirty_count to >= dirty_quota, KVM raises a
 *     request; before the next guest entry it exits to userspace with
 *     exit_reason = KVM_EXIT_DIRTY_QUOTA_FULL and run->dirty_quota_exit =
 *     {count, quota} (if userspace has not raised the quota meanwhile).
 *     Userspace raises dirty_quota (= count + grant) and re-enters KVM_RUN;
 *     KVM never writes dirty_quota. Re-entering without raising it runs the
 *     guest until its next charged page, which exits again.
 *   - Best effort: the check runs before guest entry, so a vCPU may overshoot
 *     the quota by the pages it dirties between two exits to KVM. With Intel
 *     PML the CPU logs up to 512 GPAs before KVM sees them, so at the exit
 *     dirty_count <= dirty_quota + 511 (KVM_DIRTY_QUOTA_MAX_OVERSHOOT below
 *     rounds up to 512). Where every first write to a page faults (AMD NPT,
 *     EPT without PML, shadow paging) the exit comes at dirty_count ==
 *     dirty_quota exactly.
 */
#ifndef DQLAB_DIRTY_QUOTA_H
#define DQLAB_DIRTY_QUOTA_H

#include <linux/types.h>

#ifndef KVM_CAP_DIRTY_QUOTA_MIGRATION
#define KVM_CAP_DIRTY_QUOTA_MIGRATION 1000
#endif

#ifndef KVM_EXIT_DIRTY_QUOTA_FULL
#define KVM_EXIT_DIRTY_QUOTA_FULL 1000
#endif

/* Overshoot bound documented in api.rst (the PML log size). */
#define KVM_DIRTY_QUOTA_MAX_OVERSHOOT 512

/*
 * struct kvm_run additions (kernel side, for reference):
 *
 *	union { struct kvm_sync_regs regs; char padding[SYNC_REGS_SIZE_BYTES]; } s;
 *	__u64 dirty_quota;	// in:  exit once dirty_count >= dirty_quota (0 = off)
 *	__u64 dirty_count;	// out: pages this vCPU dirtied while the cap was on
 *
 * and in the exit union:
 *
 *	// KVM_EXIT_DIRTY_QUOTA_FULL
 *	struct { __u64 count; __u64 quota; } dirty_quota_exit;
 */
struct kvm_dirty_quota_exit {
	__u64 count;
	__u64 quota;
};

/*
 * Offsets in the mmap'd struct kvm_run on x86-64 (6.12), for userspace that
 * compiles against stock headers: the exit union starts at 32, `s` at 304
 * (0x130) after kvm_valid_regs/kvm_dirty_regs, and is 2048 bytes.
 */
#define KVM_RUN_EXIT_UNION_OFFSET	32
#define KVM_RUN_DIRTY_QUOTA_OFFSET	(304 + 2048)
#define KVM_RUN_DIRTY_COUNT_OFFSET	(304 + 2048 + 8)

#endif /* DQLAB_DIRTY_QUOTA_H */
