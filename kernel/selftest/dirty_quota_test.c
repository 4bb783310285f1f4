// SPDX-License-Identifier: GPL-2.0
/*
 * dirty_quota_test - selftest for KVM_CAP_DIRTY_QUOTA_MIGRATION.
 *
 * Same shape as tools/testing/selftests/kvm tests (VM + vCPUs + memslots +
 * guest code, one function per property), but standalone so that it builds
 * as a single static binary for the emulated-host initramfs.
 *
 * The guest runs in 32-bit protected mode without paging and writes one
 * dword into each of N consecutive 4 KiB pages of a memslot with dirty
 * logging (one page per loop iteration), then halts.
 *
 * Output: one machine-readable line per check on stdout,
 *   DQTEST <name> PASS|FAIL|SKIP key=value ...
 * and a final "DQTEST summary pass=P fail=F skip=S". Exit status 0 iff F == 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>		/* the patched kernel's headers_install */
#include "dirty_quota.h"	/* patches/uapi: the excerpt QEMU uses */

/* The excerpt's offsets must describe the patched kernel's struct kvm_run. */
_Static_assert(offsetof(struct kvm_run, dirty_quota) == KVM_RUN_DIRTY_QUOTA_OFFSET,
	       "dirty_quota offset differs from patches/uapi/dirty_quota.h");
_Static_assert(offsetof(struct kvm_run, dirty_count) == KVM_RUN_DIRTY_COUNT_OFFSET,
	       "dirty_count offset differs from patches/uapi/dirty_quota.h");
_Static_assert(offsetof(struct kvm_run, dirty_quota_exit) == KVM_RUN_EXIT_UNION_OFFSET,
	       "exit union offset differs from patches/uapi/dirty_quota.h");

#define PAGE		4096UL
#define CODE_GPA	0x0UL
#define CODE_SIZE	0x10000UL
#define WRITER_GPA	0x1000UL	/* guest: write N pages from esi, hlt */
#define PVMSR_GPA	0x1100UL	/* guest: enable pvclock + steal time, hlt */
#define DATA_GPA	0x100000UL
#define MAX_VCPUS	4
#define NO_QUOTA	UINT64_MAX

/* Overshoot allowed by the documented bound (Intel PML log size). */
static uint64_t slack = KVM_DIRTY_QUOTA_MAX_OVERSHOOT;

static int kvm_fd;
static long run_size;
static int n_pass, n_fail, n_skip;

struct vcpu {
	int fd;
	struct kvm_run *run;
};

struct vm {
	int fd;
	uint8_t *code;
	uint8_t *data;
	size_t data_pages;
	int nvcpus;
	struct vcpu v[MAX_VCPUS];
};

static void result(const char *name, const char *verdict, const char *fmt, ...)
{
	va_list ap;

	printf("DQTEST %s %s", name, verdict);
	if (fmt && *fmt) {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
	if (!strcmp(verdict, "PASS"))
		n_pass++;
	else if (!strcmp(verdict, "SKIP"))
		n_skip++;
	else
		n_fail++;
}

/* Record one check; returns cond so callers can stop a scenario early. */
#define CHECK(name, cond, fmt, ...)					\
	({ bool __c = (cond);						\
	   result(name, __c ? "PASS" : "FAIL", fmt, ##__VA_ARGS__);	\
	   __c; })

static void fatal(const char *what)
{
	printf("DQTEST setup FAIL what=\"%s\" errno=%d (%s)\n", what, errno, strerror(errno));
	printf("DQTEST summary pass=%d fail=%d skip=%d\n", n_pass, n_fail + 1, n_skip);
	fflush(stdout);
	exit(1);
}

static const uint8_t writer_code[] = {
	0x89, 0x36,				/* 1: mov [esi], esi      */
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,	/*    add esi, 0x1000     */
	0x49,					/*    dec ecx             */
	0x75, 0xf5,				/*    jnz 1b              */
	0xf4,					/* 2: hlt                 */
	0xeb, 0xfd,				/*    jmp 2b              */
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void vm_set_region(struct vm *vm, uint32_t slot, uint64_t gpa, void *mem,
			  size_t size, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)mem,
	};

	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r))
		fatal("KVM_SET_USER_MEMORY_REGION");
}

static void vcpu_setup(struct vm *vm, int i)
{
	struct vcpu *v = &vm->v[i];
	struct kvm_sregs sregs;
	struct kvm_segment seg = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 11,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};

	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, i);
	if (v->fd < 0)
		fatal("KVM_CREATE_VCPU");
	v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED)
		fatal("mmap kvm_run");
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
		fatal("KVM_GET_SREGS");
	sregs.cs = seg;
	seg.type = 3;
	seg.selector = 0x10;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	sregs.cr0 |= 1;		/* protected mode, no paging */
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
		fatal("KVM_SET_SREGS");
}

/* Point vCPU i at guest code @rip; esi/ecx are the writer's arguments. */
static void vcpu_start(struct vm *vm, int i, uint64_t rip, uint64_t first_page,
		       uint64_t npages)
{
	struct kvm_regs regs = { 0 };

	regs.rip = rip;
	regs.rflags = 2;
	regs.rsi = DATA_GPA + first_page * PAGE;
	regs.rcx = npages;
	if (ioctl(vm->v[i].fd, KVM_SET_REGS, &regs))
		fatal("KVM_SET_REGS");
}

static void vm_create(struct vm *vm, size_t data_pages, int nvcpus)
{
	memset(vm, 0, sizeof(*vm));
	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		fatal("KVM_CREATE_VM");
	vm->code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm->data_pages = data_pages;
	vm->data = mmap(NULL, data_pages * PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->code == MAP_FAILED || vm->data == MAP_FAILED)
		fatal("mmap guest memory");

	memcpy(vm->code + WRITER_GPA, writer_code, sizeof(writer_code));
	/* mov ecx, MSR; mov eax, gpa|1; xor edx, edx; wrmsr  (x2), hlt; jmp hlt */
	uint8_t *p = vm->code + PVMSR_GPA;
	*p++ = 0xb9; put32(p, 0x4b564d01); p += 4;		/* MSR_KVM_SYSTEM_TIME_NEW */
	*p++ = 0xb8; put32(p, DATA_GPA | 1); p += 4;
	*p++ = 0x31; *p++ = 0xd2;
	*p++ = 0x0f; *p++ = 0x30;
	*p++ = 0xb9; put32(p, 0x4b564d03); p += 4;		/* MSR_KVM_STEAL_TIME */
	*p++ = 0xb8; put32(p, (DATA_GPA + PAGE) | 1); p += 4;
	*p++ = 0x0f; *p++ = 0x30;
	*p++ = 0xf4; *p++ = 0xeb; *p++ = 0xfd;

	vm_set_region(vm, 0, CODE_GPA, vm->code, CODE_SIZE, 0);
	vm_set_region(vm, 1, DATA_GPA, vm->data, data_pages * PAGE,
		      KVM_MEM_LOG_DIRTY_PAGES);
	vm->nvcpus = nvcpus;
	for (int i = 0; i < nvcpus; i++)
		vcpu_setup(vm, i);
}

static void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->nvcpus; i++) {
		munmap(vm->v[i].run, run_size);
		close(vm->v[i].fd);
	}
	close(vm->fd);
	munmap(vm->code, CODE_SIZE);
	munmap(vm->data, vm->data_pages * PAGE);
}

static int enable_cap(struct vm *vm, uint64_t on, uint64_t arg1, uint32_t flags)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_DIRTY_QUOTA_MIGRATION, .flags = flags,
		.args = { on, arg1 },
	};

	return ioctl(vm->fd, KVM_ENABLE_CAP, &cap) ? -errno : 0;
}

static void enable_or_die(struct vm *vm, uint64_t on)
{
	errno = -enable_cap(vm, on, 0, 0);
	if (errno)
		fatal("KVM_ENABLE_CAP(KVM_CAP_DIRTY_QUOTA_MIGRATION)");
}

/* One KVM_RUN; returns the exit reason. */
static uint32_t vcpu_run(struct vm *vm, int i)
{
	while (ioctl(vm->v[i].fd, KVM_RUN, 0)) {
		if (errno != EINTR && errno != EAGAIN)
			fatal("KVM_RUN");
	}
	return vm->v[i].run->exit_reason;
}

/* Pages the writer has finished: esi advanced past them. */
static uint64_t guest_pages_done(struct vm *vm, int i, uint64_t first_page)
{
	struct kvm_regs regs;

	if (ioctl(vm->v[i].fd, KVM_GET_REGS, &regs))
		fatal("KVM_GET_REGS");
	return (regs.rsi - DATA_GPA) / PAGE - first_page;
}

/* Pages of the data slot dirty since the last call (KVM_GET_DIRTY_LOG). */
static uint64_t dirty_log_pages(struct vm *vm, uint64_t *bitmap_out)
{
	size_t words = (vm->data_pages + 63) / 64;
	uint64_t *bm = calloc(words, 8), n = 0;
	struct kvm_dirty_log log = { .slot = 1, .dirty_bitmap = bm };

	if (!bm || ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log))
		fatal("KVM_GET_DIRTY_LOG");
	for (size_t w = 0; w < words; w++)
		n += __builtin_popcountll(bm[w]);
	if (bitmap_out)
		*bitmap_out = bm[0];
	free(bm);
	return n;
}

static const char *exit_name(uint32_t r)
{
	static char buf[32];

	switch (r) {
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_DIRTY_QUOTA_FULL: return "DIRTY_QUOTA_FULL";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	}
	snprintf(buf, sizeof(buf), "%u", r);
	return buf;
}

static void test_capability(void)
{
	struct vm vm;
	int sys = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_QUOTA_MIGRATION);

	vm_create(&vm, 16, 1);
	int onvm = ioctl(vm.fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_QUOTA_MIGRATION);

	CHECK("cap_reported", sys == 1 && onvm == 1, "system=%d vm=%d", sys, onvm);
	int bad_arg = enable_cap(&vm, 2, 0, 0), bad_arg1 = enable_cap(&vm, 1, 1, 0);
	int bad_flags = enable_cap(&vm, 1, 0, 1), ok = enable_cap(&vm, 1, 0, 0);

	CHECK("enable_cap_args",
	      bad_arg == -EINVAL && bad_arg1 == -EINVAL && bad_flags == -EINVAL && ok == 0,
	      "arg0_2=%d arg1_1=%d flags_1=%d ok=%d", bad_arg, bad_arg1, bad_flags, ok);
	vm_destroy(&vm);
}

/*
 * One vCPU, quota Q: exits within Q..Q+slack, the count matches the dirty
 * log, a raised quota lets it continue, re-entering without raising exits
 * again at the next page, and the final count is exact.
 */
static void test_quota_single_vcpu(void)
{
	const uint64_t n = 1024, q = 100, grant = 200;
	struct vm vm;
	struct kvm_run *run;
	uint32_t r;

	vm_create(&vm, n, 1);
	run = vm.v[0].run;
	enable_or_die(&vm, 1);
	vcpu_start(&vm, 0, WRITER_GPA, 0, n);
	run->dirty_quota = q;

	r = vcpu_run(&vm, 0);
	uint64_t c1 = run->dirty_count, done = guest_pages_done(&vm, 0, 0);
	uint64_t logged = dirty_log_pages(&vm, NULL);

	if (!CHECK("exit_within_quota",
		   r == KVM_EXIT_DIRTY_QUOTA_FULL && c1 >= q && c1 <= q + slack &&
		   run->dirty_quota_exit.count == c1 && run->dirty_quota_exit.quota == q,
		   "exit=%s quota=%" PRIu64 " count=%" PRIu64 " overshoot=%" PRId64
		   " exit_count=%llu exit_quota=%llu slack=%" PRIu64,
		   exit_name(r), q, c1, (int64_t)(c1 - q),
		   run->dirty_quota_exit.count, run->dirty_quota_exit.quota, slack))
		goto out;
	CHECK("count_matches_dirty_log",
	      logged == c1 && (done == c1 || done + 1 == c1),
	      "count=%" PRIu64 " dirty_log=%" PRIu64 " guest_done=%" PRIu64, c1, logged, done);

	run->dirty_quota = c1 + grant;
	r = vcpu_run(&vm, 0);
	uint64_t c2 = run->dirty_count;

	CHECK("raised_quota_continues",
	      r == KVM_EXIT_DIRTY_QUOTA_FULL && c2 >= c1 + grant && c2 <= c1 + grant + slack,
	      "exit=%s quota=%" PRIu64 " count=%" PRIu64, exit_name(r), c1 + grant, c2);

	/* Re-enter without raising the quota: runs until the next page. */
	r = vcpu_run(&vm, 0);
	uint64_t c3 = run->dirty_count;

	CHECK("reenter_exits_at_next_page",
	      r == KVM_EXIT_DIRTY_QUOTA_FULL && c3 > c2 && c3 <= c2 + 1 + slack,
	      "exit=%s before=%" PRIu64 " count=%" PRIu64, exit_name(r), c2, c3);

	run->dirty_quota = NO_QUOTA;
	r = vcpu_run(&vm, 0);
	uint64_t final = run->dirty_count;
	uint64_t total_logged = logged + dirty_log_pages(&vm, NULL);
	/*
	 * At the first exit the quota-reaching page was mapped but the guest's
	 * write to it not yet retired (done == c1 - 1); the dirty-log sync in
	 * between write-protected it again, so the retried write dirties it a
	 * second time, as migration must see it.  The count follows the log.
	 */
	uint64_t redirtied = c1 - done;

	CHECK("count_exact_at_stop",
	      r == KVM_EXIT_HLT && final == n + redirtied && total_logged == final &&
	      guest_pages_done(&vm, 0, 0) == n,
	      "exit=%s pages=%" PRIu64 " redirtied_after_sync=%" PRIu64 " count=%" PRIu64
	      " dirty_log=%" PRIu64, exit_name(r), n, redirtied, final, total_logged);
out:
	vm_destroy(&vm);
}

/* Without the capability (never enabled, or disabled again) nothing exits. */
static void test_cap_disabled(void)
{
	const uint64_t n = 256;
	struct vm vm;
	uint32_t r;

	vm_create(&vm, n, 1);
	vcpu_start(&vm, 0, WRITER_GPA, 0, n);
	vm.v[0].run->dirty_quota = 1;
	r = vcpu_run(&vm, 0);
	uint64_t logged = dirty_log_pages(&vm, NULL);

	CHECK("disabled_no_exit",
	      r == KVM_EXIT_HLT && vm.v[0].run->dirty_count == 0 && logged == n,
	      "exit=%s count=%llu dirty_log=%" PRIu64, exit_name(r),
	      vm.v[0].run->dirty_count, logged);
	vm_destroy(&vm);

	vm_create(&vm, n, 1);
	enable_or_die(&vm, 1);
	vcpu_start(&vm, 0, WRITER_GPA, 0, n);
	vm.v[0].run->dirty_quota = 50;
	r = vcpu_run(&vm, 0);
	uint64_t c1 = vm.v[0].run->dirty_count;

	enable_or_die(&vm, 0);
	uint32_t r2 = vcpu_run(&vm, 0);
	uint64_t c2 = vm.v[0].run->dirty_count;

	CHECK("disable_stops_counting",
	      r == KVM_EXIT_DIRTY_QUOTA_FULL && r2 == KVM_EXIT_HLT && c2 == c1,
	      "first=%s count=%" PRIu64 " after_disable=%s count=%" PRIu64,
	      exit_name(r), c1, exit_name(r2), c2);
	vm_destroy(&vm);
}

struct runner {
	struct vm *vm;
	int i;
	uint32_t exit;
};

static void *run_thread(void *arg)
{
	struct runner *rn = arg;

	rn->exit = vcpu_run(rn->vm, rn->i);
	return NULL;
}

/* Several vCPUs, each with its own quota and region, counted independently. */
static void test_vcpus_independent(void)
{
	enum { NV = 3 };
	const uint64_t per = 256, quota[NV] = { 40, 80, NO_QUOTA };
	struct vm vm;
	uint32_t r[NV];
	uint64_t c[NV];
	bool ok = true;

	vm_create(&vm, per * NV, NV);
	enable_or_die(&vm, 1);
	for (int i = 0; i < NV; i++) {
		vcpu_start(&vm, i, WRITER_GPA, i * per, per);
		vm.v[i].run->dirty_quota = quota[i];
	}
	/* One after another: each one's exit depends only on its own pages. */
	for (int i = 0; i < NV; i++)
		r[i] = vcpu_run(&vm, i);
	for (int i = 0; i < NV; i++) {
		c[i] = vm.v[i].run->dirty_count;
		uint64_t want = quota[i] == NO_QUOTA ? per : quota[i];
		uint32_t want_exit = quota[i] == NO_QUOTA ? KVM_EXIT_HLT : KVM_EXIT_DIRTY_QUOTA_FULL;

		ok &= r[i] == want_exit && c[i] >= want && c[i] <= want + slack;
	}
	CHECK("vcpus_independent", ok,
	      "exits=%s,%s,%s counts=%" PRIu64 ",%" PRIu64 ",%" PRIu64 " quotas=40,80,none",
	      exit_name(r[0]), exit_name(r[1]), exit_name(r[2]), c[0], c[1], c[2]);

	/* Then all at once, in threads: each finishes with an exact count. */
	struct runner rn[NV];
	pthread_t t[NV];
	uint64_t sum = 0;

	for (int i = 0; i < NV; i++) {
		vm.v[i].run->dirty_quota = NO_QUOTA;
		rn[i] = (struct runner){ .vm = &vm, .i = i };
		if (pthread_create(&t[i], NULL, run_thread, &rn[i]))
			fatal("pthread_create");
	}
	ok = true;
	for (int i = 0; i < NV; i++) {
		pthread_join(t[i], NULL);
		c[i] = vm.v[i].run->dirty_count;
		sum += c[i];
		ok &= rn[i].exit == KVM_EXIT_HLT && c[i] == per;
	}
	uint64_t logged = dirty_log_pages(&vm, NULL);

	CHECK("vcpus_concurrent_exact", ok && logged == per * NV,
	      "counts=%" PRIu64 ",%" PRIu64 ",%" PRIu64 " sum=%" PRIu64 " dirty_log=%" PRIu64,
	      c[0], c[1], c[2], sum, logged);
	vm_destroy(&vm);
}

/* KVM's own writes (pvclock, steal time) are logged dirty but not charged. */
static void test_hv_writes_not_charged(void)
{
	struct vm vm;
	uint64_t bm0 = 0;
	uint32_t r;

	vm_create(&vm, 16, 1);
	enable_or_die(&vm, 1);
	vcpu_start(&vm, 0, PVMSR_GPA, 0, 0);
	vm.v[0].run->dirty_quota = 1;	/* any charged page would exit */
	r = vcpu_run(&vm, 0);
	uint64_t logged = dirty_log_pages(&vm, &bm0);

	CHECK("hv_writes_not_charged",
	      r == KVM_EXIT_HLT && (bm0 & 3) == 3 && vm.v[0].run->dirty_count == 0,
	      "exit=%s dirty_log=%" PRIu64 " pvclock_page=%d steal_page=%d count=%llu",
	      exit_name(r), logged, (int)(bm0 & 1), (int)((bm0 >> 1) & 1),
	      vm.v[0].run->dirty_count);
	vm_destroy(&vm);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Create and destroy VMs and vCPUs, then ask kmemleak for unreferenced objects. */
static void test_no_leak(void)
{
	const char *km = "/sys/kernel/debug/kmemleak";
	const int rounds = 10;
	struct timespec age = { .tv_sec = 6 };	/* kmemleak ignores objects < 5 s old */

	if (access(km, R_OK)) {
		result("no_leak", "SKIP", "reason=no_kmemleak");
		return;
	}
	if (write_str(km, "clear")) {
		result("no_leak", "FAIL", "reason=kmemleak_clear_failed");
		return;
	}
	for (int k = 0; k < rounds; k++) {
		struct vm vm;

		vm_create(&vm, 64, 2);
		enable_or_die(&vm, 1);
		for (int i = 0; i < 2; i++) {
			vcpu_start(&vm, i, WRITER_GPA, i * 32, 32);
			vm.v[i].run->dirty_quota = 8;
			vcpu_run(&vm, i);
		}
		vm_destroy(&vm);
	}
	nanosleep(&age, NULL);
	if (write_str(km, "scan") || write_str(km, "scan")) {
		result("no_leak", "FAIL", "reason=kmemleak_scan_failed");
		return;
	}

	FILE *f = fopen(km, "r");
	char line[512];
	int objects = 0, kvm_objects = 0;
	bool in_kvm = false;

	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "unreferenced object")) {
			objects++;
			in_kvm = false;
		} else if (!in_kvm && strstr(line, "kvm")) {
			in_kvm = true;
			kvm_objects++;
		}
		if (kvm_objects && kvm_objects <= 2)
			printf("# kmemleak: %s", line);
	}
	if (f)
		fclose(f);
	CHECK("no_leak", kvm_objects == 0,
	      "rounds=%d vcpus_per_vm=2 kmemleak_objects=%d kvm_objects=%d",
	      rounds, objects, kvm_objects);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		slack = strtoull(argv[1], NULL, 0);

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		fatal("open /dev/kvm");
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (long)sizeof(struct kvm_run))
		fatal("KVM_GET_VCPU_MMAP_SIZE");
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_QUOTA_MIGRATION) != 1) {
		result("cap_reported", "FAIL", "reason=KVM_CHECK_EXTENSION_not_1");
		printf("DQTEST summary pass=%d fail=%d skip=%d\n", n_pass, n_fail, n_skip);
		return 1;
	}

	test_capability();
	test_quota_single_vcpu();
	test_cap_disabled();
	test_vcpus_independent();
	test_hv_writes_not_charged();
	test_no_leak();

	printf("DQTEST summary pass=%d fail=%d skip=%d\n", n_pass, n_fail, n_skip);
	fflush(stdout);
	return n_fail ? 1 : 0;
}
