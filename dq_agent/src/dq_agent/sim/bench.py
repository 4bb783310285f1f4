"""`python -m dq_agent.sim.bench`: the two speed figures of issue 2 (reported, not asserted).

1. The four v10 scenarios x 5 policies, simulated one after another on one core.
2. Planning one interval for 64 VMs x 32 vCPUs sharing one link (`plan_shared_link`).
"""

from __future__ import annotations

import random
import statistics
import time

from dq_agent.engine import VmInterval, plan_shared_link
from dq_agent.sim.model import simulate
from dq_agent.sim.policies import POLICY_NAMES, make_policy
from dq_agent.sim.scenario import load_scenario

V10 = ("v10-8g-2t", "v10-48g-8t", "v10-512g-32t", "v10-32g-6t")


def bench_v10(repeats: int = 3) -> float:
    """Best of `repeats` wall times for all 20 runs (loading included)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for name in V10:
            sc = load_scenario(name)
            for p in POLICY_NAMES:
                simulate(sc, make_policy(p, len(sc.vcpus), sc.policy_params.get(p, {})))
        best = min(best, time.perf_counter() - t0)
    return best


def bench_plan(vms: int = 64, vcpus: int = 32, repeats: int = 300) -> tuple[float, float]:
    """(median, p95) seconds to plan one interval for every VM on a 10 GB/s link."""
    rng = random.Random(1)
    inputs = [
        VmInterval(
            weights=tuple(1 for _ in range(vcpus)),
            demands=tuple(rng.choice((0, 0, 5, 40, 400)) for _ in range(vcpus)),
            pool=rng.randrange(0, 200),
        )
        for _ in range(vms)
    ]
    weights = [rng.randrange(1, 4) for _ in range(vms)]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan_shared_link(10e9, inputs, weights)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times)) - 1]


def main() -> int:
    total = bench_v10()
    med, p95 = bench_plan()
    print(f"v10 cases x {len(POLICY_NAMES)} policies (20 runs, one core): {total:.3f} s")
    print(
        f"plan one interval, 64 VMs x 32 vCPUs: median {med * 1e3:.3f} ms, p95 {p95 * 1e3:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
