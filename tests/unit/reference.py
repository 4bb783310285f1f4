"""A line-by-line transcription of the contracts §3 pseudo-code, kept naive on purpose.

The engine is optimised (early exits, one pass); this copy is not, so the property tests
can check the two against each other.
"""

from __future__ import annotations


def reference_plan(
    budget: int,
    weights: list[int],
    demands: list[int],
    order: list[int],
    pool: int,
    pool_cap_pages: int,
    burst_pages: int,
) -> dict[str, object]:
    n = len(weights)
    total_w = sum(weights)
    shares = [budget * weights[i] // total_w for i in range(n)]
    rem = budget - sum(shares)
    remainders = [(budget * weights[i]) % total_w for i in range(n)]
    # largest remainder first, ties -> lower index (selection, not sort: independent code)
    chosen: set[int] = set()
    for _ in range(rem):
        best = -1
        for i in range(n):
            if i in chosen:
                continue
            if best < 0 or remainders[i] > remainders[best]:
                best = i
        chosen.add(best)
        shares[best] += 1
    pool_work = pool
    draws = [0] * n
    grants = [0] * n
    throttled = [False] * n
    for i in order:
        own = min(demands[i], shares[i])
        draws[i] = min(demands[i] - own, pool_work, burst_pages)
        pool_work -= draws[i]
        grants[i] = own + draws[i]
        throttled[i] = demands[i] > grants[i]
    unused = sum(shares[i] - min(demands[i], shares[i]) for i in range(n))
    pool_after = min(pool_cap_pages, pool_work + unused)
    return {
        "shares": shares,
        "draws": draws,
        "grants": grants,
        "throttled": throttled,
        "pool_after": pool_after,
    }
