/*
 * Replays quota-engine intervals through QEMU's own dirty-quota planner.
 *
 * Built against migration/dirty-quota-engine.c exactly as the patch series
 * adds it to QEMU (tests/qemu/test_engine_drift.py extracts it from the
 * series and compiles it with -DDQ_ENGINE_STANDALONE), so a drift between
 * the Python engine's vectors and the C runtime's arithmetic fails a test.
 *
 * stdin, one interval per line (all integers):
 *   n budget pool pool_cap burst  w[0..n)  d[0..n)  order[0..n)
 * stdout, one line per interval:
 *   shares[0..n) | draws[0..n) | grants[0..n) | throttled[0..n) | pool_after
 * Exit 2 with one error line on malformed input.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "migration/dirty-quota-engine.h"

#define MAX_VCPUS 1024

static int read_u64(uint64_t *v)
{
    return scanf("%" SCNu64, v) == 1;
}

static void print_row(const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%" PRIu64 " ", v[i]);
    }
    printf("| ");
}

int main(void)
{
    static uint32_t weights[MAX_VCPUS], order[MAX_VCPUS];
    static uint64_t demands[MAX_VCPUS], shares[MAX_VCPUS], draws[MAX_VCPUS],
        grants[MAX_VCPUS];
    static bool throttled[MAX_VCPUS];
    uint64_t n, budget, pool, cap, burst, v;
    unsigned line = 0;

    while (read_u64(&n)) {
        line++;
        if (n == 0 || n > MAX_VCPUS || !read_u64(&budget) || !read_u64(&pool) ||
            !read_u64(&cap) || !read_u64(&burst)) {
            fprintf(stderr, "dq-engine-replay: line %u: bad header\n", line);
            return 2;
        }
        for (size_t i = 0; i < n; i++) {
            if (!read_u64(&v) || v == 0 || v > DQ_ENGINE_MAX_WEIGHT) {
                fprintf(stderr, "dq-engine-replay: line %u: bad weight %zu\n",
                        line, i);
                return 2;
            }
            weights[i] = (uint32_t)v;
        }
        for (size_t i = 0; i < n; i++) {
            if (!read_u64(&demands[i])) {
                fprintf(stderr, "dq-engine-replay: line %u: bad demand %zu\n",
                        line, i);
                return 2;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (!read_u64(&v) || v >= n) {
                fprintf(stderr, "dq-engine-replay: line %u: bad order %zu\n",
                        line, i);
                return 2;
            }
            order[i] = (uint32_t)v;
        }
        DirtyQuotaInterval in = {
            .budget = budget, .n = n, .weights = weights, .demands = demands,
            .order = order, .pool = pool, .pool_cap = cap, .burst = burst,
        };
        DirtyQuotaPlan out = {
            .shares = shares, .draws = draws, .grants = grants,
            .throttled = throttled,
        };
        dq_engine_plan_interval(&in, &out);
        print_row(shares, n);
        print_row(draws, n);
        print_row(grants, n);
        for (size_t i = 0; i < n; i++) {
            printf("%d ", throttled[i] ? 1 : 0);
        }
        printf("| %" PRIu64 "\n", out.pool_after);
    }
    if (!feof(stdin)) {
        fprintf(stderr, "dq-engine-replay: line %u: not a number\n", line + 1);
        return 2;
    }
    return 0;
}
