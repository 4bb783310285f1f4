// SPDX-License-Identifier: GPL-2.0
/*
 * Tiny /init for the emulated-host selftest initramfs: mount the pseudo
 * filesystems, run /dirty_quota_test with a time limit, report, reboot
 * (QEMU runs with -no-reboot, so rebooting ends the run; the minimal kernel
 * has no ACPI to power off with).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SELFTEST "/dirty_quota_test"
#define LIMIT_S 120

static void mnt(const char *src, const char *dst, const char *type)
{
	if (mount(src, dst, type, 0, NULL) && errno != EBUSY)
		printf("DQINIT mount %s failed: %s\n", dst, strerror(errno));
}

int main(void)
{
	struct utsname u;
	struct timespec t0, t1, tick = { .tv_nsec = 50 * 1000 * 1000 };
	int status = 0, fd;
	pid_t pid;

	mnt("devtmpfs", "/dev", "devtmpfs");
	fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	mnt("proc", "/proc", "proc");
	mnt("sysfs", "/sys", "sysfs");
	mnt("debugfs", "/sys/kernel/debug", "debugfs");
	uname(&u);
	printf("DQINIT kernel=%s machine=%s\n", u.release, u.machine);
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid == 0) {
		execl(SELFTEST, SELFTEST, (char *)NULL);
		printf("DQINIT exec %s failed: %s\n", SELFTEST, strerror(errno));
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (w == pid)
			break;
		if (t1.tv_sec - t0.tv_sec > LIMIT_S) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("DQINIT selftest timeout after %ds\n", LIMIT_S);
			break;
		}
		nanosleep(&tick, NULL);
	}
	printf("DQINIT selftest_status=%d selftest_seconds=%ld\n",
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       (long)(t1.tv_sec - t0.tv_sec));
	printf("DQINIT done\n");
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
