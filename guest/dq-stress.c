/*
 * dq-stress: per-vCPU memory-dirtying / compute workload with page-integrity stamps.
 *
 * One thread per configured vCPU, pinned to it. Each thread runs a list of phases:
 *   dirty   - touch pages of its working set: `rate` MB/s of page accesses (0 = unbounded,
 *             CPU-bound), `w` percent of them writes (each write re-stamps the page), the
 *             rest reads; pattern `seq` or `rand`.
 *   compute - dirties nothing, counts arithmetic ops (measures CPU share / selectivity).
 *   idle    - sleeps.
 * Configuration comes from argv or, with --cmdline, from /proc/cmdline tokens:
 *   dq.t<i>=PHASE[/PHASE...]   PHASE = KIND[,rate=MBps][,ws=MiB][,w=pct][,pat=seq|rand][,dur=s]
 *   dq.report_ms=N             throughput report cadence (default 500)
 * The last phase runs forever; earlier phases last `dur` seconds.
 *
 * Output (one line each, on stdout):
 *   DQ READY cpus=N pages=P
 *   DQ TP cpu=C phase=K ops=<ops/s> mbps=<MB written/s> gt=<guest ms>
 *   DQ VERIFY id=I pages=P bad=B
 *   DQ BAD cpu=C page=X want=S got=S           (first few bad pages only)
 *   DQ PFN cpu=C page=X pfn=N                  (guest-physical frame of an owned page, so
 *                                               the host can corrupt it deliberately)
 * Commands (one line each, on stdin):  verify <id> | pfn <cpu> <page>
 *
 * Integrity: every owned page carries {tag, seq, body derived from (tag, seq)}; the
 * thread keeps the seq it last wrote in a separate table. A page that is stale (an older
 * but self-consistent version, as when migration loses a dirty page), torn or corrupted
 * fails the check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8u)
#define MAX_CPUS 64
#define MAX_PHASES 16
#define SLOT_NS 5000000ull /* pacing slot: 5 ms */
#define MAX_BAD_LINES 8

enum kind { K_DIRTY, K_COMPUTE, K_IDLE };

struct phase {
	enum kind kind;
	double rate_mbps; /* page accesses, MB/s; 0 = unbounded */
	uint64_t ws_mib;
	unsigned write_pct;
	int random;
	double dur_s; /* 0 = forever */
};

struct worker {
	int cpu;
	int nphases;
	struct phase ph[MAX_PHASES];
	uint64_t npages;   /* allocated: max ws over phases */
	uint64_t *mem;     /* npages * WORDS */
	uint64_t *seqtab;  /* expected seq per page */
	_Atomic uint64_t ops, bytes_written;
	_Atomic int phase_now;
	_Atomic int parked;
	pthread_t th;
};

static struct worker workers[MAX_CPUS];
static int nworkers;
static unsigned report_ms = 500;
static _Atomic int pause_req;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void fatal(const char *what, const char *val)
{
	fprintf(stderr, "dq-stress: bad %s: %s\n", what, val);
	printf("DQ ERROR field=%s\n", what);
	fflush(stdout);
	exit(2);
}

/* ---- page stamps ---- */

static inline uint64_t tag_of(int cpu, uint64_t idx)
{
	return 0xD0D0000000000000ull ^ ((uint64_t)cpu << 40) ^ idx;
}

static inline uint64_t body_word(uint64_t tag, uint64_t seq, unsigned w)
{
	return (seq * 0x9E3779B97F4A7C15ull) ^ tag ^ ((uint64_t)w << 32);
}

static void stamp(struct worker *wk, uint64_t idx)
{
	uint64_t *p = wk->mem + idx * WORDS;
	uint64_t seq = wk->seqtab[idx] + 1, tag = tag_of(wk->cpu, idx);
	for (unsigned w = 2; w < WORDS; w++)
		p[w] = body_word(tag, seq, w);
	p[0] = tag;
	p[1] = seq;
	wk->seqtab[idx] = seq;
}

static int page_ok(const struct worker *wk, uint64_t idx, uint64_t *got)
{
	const uint64_t *p = wk->mem + idx * WORDS;
	uint64_t seq = wk->seqtab[idx], tag = tag_of(wk->cpu, idx);
	*got = p[1];
	if (p[0] != tag || p[1] != seq)
		return 0;
	for (unsigned w = 2; w < WORDS; w++)
		if (p[w] != body_word(tag, seq, w))
			return 0;
	return 1;
}

/* ---- workload ---- */

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void park_if_asked(struct worker *wk)
{
	if (!atomic_load(&pause_req))
		return;
	atomic_store(&wk->parked, 1);
	while (atomic_load(&pause_req))
		usleep(1000);
	atomic_store(&wk->parked, 0);
}

static void sleep_until(uint64_t t)
{
	uint64_t n = now_ns();
	if (t <= n)
		return;
	struct timespec ts = {(time_t)((t - n) / 1000000000ull), (long)((t - n) % 1000000000ull)};
	nanosleep(&ts, NULL);
}

static void *run(void *arg)
{
	struct worker *wk = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(wk->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort: fewer vCPUs than threads is legal */

	uint64_t rng = 0x2545F4914F6CDD1Dull ^ (uint64_t)(wk->cpu + 1) * 0x100000001B3ull;
	uint64_t seq_idx = 0;
	volatile uint64_t sink = 0;
	for (int k = 0;; k = k + 1 < wk->nphases ? k + 1 : k) {
		const struct phase *ph = &wk->ph[k];
		atomic_store(&wk->phase_now, k);
		uint64_t start = now_ns();
		uint64_t end = (ph->dur_s > 0 && k + 1 < wk->nphases) ? start + (uint64_t)(ph->dur_s * 1e9) : UINT64_MAX;
		uint64_t ws = ph->ws_mib * 1024 * 1024 / PAGE;
		if (ws > wk->npages)
			ws = wk->npages;
		double pages_per_slot = ph->rate_mbps * 1e6 / PAGE * (double)SLOT_NS / 1e9;
		double credit = 0;
		uint64_t wacc = 0, slot_end = now_ns();
		while (now_ns() < end) {
			/* absolute slot grid keeps the paced rate exact; resync after a long stall */
			slot_end += SLOT_NS;
			if (now_ns() > slot_end + 20 * SLOT_NS)
				slot_end = now_ns() + SLOT_NS;
			park_if_asked(wk);
			if (ph->kind == K_IDLE) {
				sleep_until(slot_end);
				continue;
			}
			if (ph->kind == K_COMPUTE) {
				/* one op = 256 dependent integer steps; no stores to memory */
				while (now_ns() < slot_end) {
					uint64_t x = rng;
					for (int i = 0; i < 256; i++)
						x = x * 6364136223846793005ull + 1442695040888963407ull;
					rng = x;
					atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
				}
				continue;
			}
			if (ws == 0) {
				sleep_until(slot_end);
				continue;
			}
			uint64_t n = UINT64_MAX;
			if (ph->rate_mbps > 0) {
				credit += pages_per_slot;
				n = (uint64_t)credit;
				credit -= (double)n;
			}
			for (uint64_t i = 0; i < n; i++) {
				if (n == UINT64_MAX && (i & 15) == 0 && now_ns() >= slot_end)
					break;
				uint64_t idx = ph->random ? xorshift(&rng) % ws : (seq_idx++ % ws);
				wacc += ph->write_pct;
				if (wacc >= 100) {
					wacc -= 100;
					stamp(wk, idx);
					atomic_fetch_add_explicit(&wk->bytes_written, PAGE, memory_order_relaxed);
				} else {
					const uint64_t *p = wk->mem + idx * WORDS;
					for (unsigned w = 0; w < WORDS; w += 8)
						sink += p[w];
				}
				atomic_fetch_add_explicit(&wk->ops, 1, memory_order_relaxed);
			}
			if (ph->rate_mbps > 0)
				sleep_until(slot_end);
		}
	}
	return NULL;
}

/* ---- verification (all workers parked) ---- */

static void verify(long id)
{
	atomic_store(&pause_req, 1);
	for (int i = 0; i < nworkers; i++)
		for (int spins = 0; !atomic_load(&workers[i].parked) && spins < 20000; spins++)
			usleep(500);
	uint64_t pages = 0, bad = 0;
	for (int i = 0; i < nworkers; i++) {
		struct worker *wk = &workers[i];
		for (uint64_t p = 0; p < wk->npages; p++) {
			uint64_t got;
			pages++;
			if (!page_ok(wk, p, &got)) {
				if (bad < MAX_BAD_LINES)
					out("DQ BAD cpu=%d page=%llu want=%llu got=%llu\n", wk->cpu,
					    (unsigned long long)p, (unsigned long long)wk->seqtab[p],
					    (unsigned long long)got);
				bad++;
			}
		}
	}
	out("DQ VERIFY id=%ld pages=%llu bad=%llu\n", id, (unsigned long long)pages,
	    (unsigned long long)bad);
	atomic_store(&pause_req, 0);
}

/* Physical frame of page `page` of cpu's working set, 0 if unknown (pagemap needs root). */
static uint64_t pfn_of(int cpu, uint64_t page)
{
	if (cpu < 0 || cpu >= nworkers || page >= workers[cpu].npages)
		return 0;
	uintptr_t va = (uintptr_t)(workers[cpu].mem + page * WORDS);
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof ent, (off_t)(va / PAGE * 8)) != (ssize_t)sizeof ent)
		ent = 0;
	close(fd);
	return (ent >> 63) ? (ent & ((1ull << 55) - 1)) : 0;
}

static void *commands(void *arg)
{
	(void)arg;
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		char *end;
		if (strncmp(line, "verify ", 7) == 0) {
			long id = strtol(line + 7, &end, 10);
			if (end != line + 7 && id >= 0)
				verify(id);
		} else if (strncmp(line, "pfn ", 4) == 0) {
			long cpu = strtol(line + 4, &end, 10);
			unsigned long long page = strtoull(end, NULL, 10);
			out("DQ PFN cpu=%ld page=%llu pfn=%llu\n", cpu, page,
			    (unsigned long long)pfn_of((int)cpu, page));
		}
	}
	return NULL;
}

/* ---- configuration ---- */

static double num(const char *field, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		fatal(field, s);
	return v;
}

static void parse_phase(struct phase *ph, char *spec)
{
	char *save, *tok = strtok_r(spec, ",", &save);
	*ph = (struct phase){.kind = K_DIRTY, .rate_mbps = 0, .ws_mib = 16, .write_pct = 100};
	if (!tok)
		fatal("phase", "(empty)");
	if (!strcmp(tok, "dirty"))
		ph->kind = K_DIRTY;
	else if (!strcmp(tok, "compute"))
		ph->kind = K_COMPUTE;
	else if (!strcmp(tok, "idle"))
		ph->kind = K_IDLE;
	else
		fatal("kind", tok);
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq)
			fatal("phase-field", tok);
		*eq++ = 0;
		if (!strcmp(tok, "rate"))
			ph->rate_mbps = num("rate", eq, 0, 100000);
		else if (!strcmp(tok, "ws"))
			ph->ws_mib = (uint64_t)num("ws", eq, 0, 65536);
		else if (!strcmp(tok, "w"))
			ph->write_pct = (unsigned)num("w", eq, 0, 100);
		else if (!strcmp(tok, "pat")) {
			if (!strcmp(eq, "seq"))
				ph->random = 0;
			else if (!strcmp(eq, "rand"))
				ph->random = 1;
			else
				fatal("pat", eq);
		} else if (!strcmp(tok, "dur"))
			ph->dur_s = num("dur", eq, 0, 86400);
		else
			fatal("phase-field", tok);
	}
}

static void parse_thread(int cpu, char *spec)
{
	if (cpu < 0 || cpu >= MAX_CPUS)
		fatal("cpu", spec);
	struct worker *wk = &workers[cpu];
	if (wk->nphases)
		fatal("cpu(duplicate)", spec);
	wk->cpu = cpu;
	char *save, *tok;
	for (tok = strtok_r(spec, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (wk->nphases == MAX_PHASES)
			fatal("phases(too many)", tok);
		parse_phase(&wk->ph[wk->nphases++], tok);
	}
	if (!wk->nphases)
		fatal("phases", "(none)");
}

/* token "t<i>=SPEC" or "report_ms=N" (the "dq." prefix already stripped) */
static void parse_token(char *tok)
{
	char *eq = strchr(tok, '=');
	if (!eq)
		fatal("option", tok);
	*eq++ = 0;
	if (tok[0] == 't' && tok[1] >= '0' && tok[1] <= '9')
		parse_thread((int)num("cpu", tok + 1, 0, MAX_CPUS - 1), eq);
	else if (!strcmp(tok, "report_ms"))
		report_ms = (unsigned)num("report_ms", eq, 50, 60000);
	else
		fatal("option", tok);
}

static void parse_cmdline(void)
{
	static char buf[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	if (!f || !fgets(buf, sizeof buf, f))
		fatal("cmdline", "/proc/cmdline unreadable");
	fclose(f);
	char *save, *tok;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strncmp(tok, "dq.", 3))
			parse_token(tok + 3);
}

int main(int argc, char **argv)
{
	int i;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cmdline"))
			parse_cmdline();
		else if (!strncmp(argv[i], "dq.", 3))
			parse_token(argv[i] + 3);
		else
			fatal("argument", argv[i]);
	}
	/* threads must be dense from t0 */
	for (nworkers = 0; nworkers < MAX_CPUS && workers[nworkers].nphases; nworkers++)
		;
	for (i = nworkers; i < MAX_CPUS; i++)
		if (workers[i].nphases)
			fatal("cpu(gap)", "threads must be t0..tN-1");
	if (!nworkers)
		fatal("threads", "(none: give dq.t0=...)");

	uint64_t total = 0;
	for (i = 0; i < nworkers; i++) {
		struct worker *wk = &workers[i];
		for (int k = 0; k < wk->nphases; k++) {
			uint64_t p = wk->ph[k].kind == K_DIRTY ? wk->ph[k].ws_mib * 1024 * 1024 / PAGE : 0;
			if (p > wk->npages)
				wk->npages = p;
		}
		if (wk->npages) {
			wk->mem = mmap(NULL, wk->npages * PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			wk->seqtab = calloc(wk->npages, sizeof(uint64_t));
			if (wk->mem == MAP_FAILED || !wk->seqtab)
				fatal("ws", "out of memory");
			/* keep frames fixed (PFN reports stay true): no THP collapse, no reclaim */
			madvise(wk->mem, wk->npages * PAGE, MADV_NOHUGEPAGE);
			mlock(wk->mem, wk->npages * PAGE);
			for (uint64_t p = 0; p < wk->npages; p++)
				stamp(wk, p);
		}
		total += wk->npages;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	out("DQ READY cpus=%d pages=%llu\n", nworkers, (unsigned long long)total);
	for (i = 0; i < nworkers; i++)
		pthread_create(&workers[i].th, NULL, run, &workers[i]);
	pthread_t cmd;
	pthread_create(&cmd, NULL, commands, NULL);

	uint64_t last_ops[MAX_CPUS] = {0}, last_b[MAX_CPUS] = {0}, last = now_ns();
	for (;;) {
		sleep_until(last + (uint64_t)report_ms * 1000000ull);
		uint64_t t = now_ns();
		double dt = (double)(t - last) / 1e9;
		last = t;
		for (i = 0; i < nworkers; i++) {
			uint64_t o = atomic_load(&workers[i].ops), b = atomic_load(&workers[i].bytes_written);
			out("DQ TP cpu=%d phase=%d ops=%.1f mbps=%.3f gt=%llu\n", i,
			    atomic_load(&workers[i].phase_now), (double)(o - last_ops[i]) / dt,
			    (double)(b - last_b[i]) / dt / 1e6, (unsigned long long)(t / 1000000ull));
			last_ops[i] = o;
			last_b[i] = b;
		}
	}
}
