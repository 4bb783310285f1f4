"""Synthetic run results and histories for the verdict/report tests (schema §6 shape).

Only the verdict arithmetic and the report layout are tested with these; the end-to-end
test feeds real harness results.
"""

from __future__ import annotations

import random
from typing import Any

from dq_agent.nightly.history import HistoryRecord, env_key

BASE_ENV = {
    "git_commit": "abc1234",
    "host": "lab-src",
    "qemu_version": "10.0.2",
    "kernel_version": "6.12.95",
    "accel": "tcg",
    "cpu_model": "test cpu",
    "cpus": 2,
}


def result(
    policy: str,
    *,
    scenario: str = "skewed",
    rate_bps: float = 100e6,
    total_time_s: float = 20.0,
    downtime_ms: float = 300.0,
    converged: bool = True,
    retained: tuple[float, ...] = (0.9, 0.5),
    run_id: str = "r1",
    env: dict[str, Any] | None = None,
    kind: str = "real",
) -> dict[str, Any]:
    n = 40
    total = 512 * 2**20
    progress = []
    for i in range(n):
        t = total_time_s * i / (n - 1)
        progress.append(
            {
                "t": t,
                "status": "active" if i < n - 1 else "completed",
                "transferred_bytes": int(total * i / n),
                "remaining_bytes": int(total * (1 - i / n)),
                "dirty_pages_rate": 2000,
                "mbps": rate_bps / 1e6 * 0.95,
                "iteration": i // 5,
                "expected_downtime_ms": 300,
                "throttle_pct": min(99, 10 * (i // 5)),
            }
        )
    timeline = [
        {"t": total_time_s * i / 19, "vcpu": v, "ops_per_s": 1000.0, "mb_per_s": 20.0 * r}
        for i in range(20)
        for v, r in enumerate(retained)
    ]
    return {
        "schema": "dqlab-run-result",
        "schema_version": 1,
        "kind": kind,
        "run_id": run_id,
        "created": "2026-11-30T02:00:00Z",
        "scenario": {"name": scenario},
        "policy": {"name": policy, "params": {}},
        "environment": dict(env or BASE_ENV),
        "link": {"rate_bps": rate_bps},
        "progress": progress,
        "guest_timeline": timeline,
        "summary": {
            "converged": converged,
            "total_time_s": total_time_s,
            "downtime_ms": downtime_ms if converged else None,
            "setup_time_ms": 5,
            "bytes_sent": 300 * 2**20,
            "iterations": 8,
            "vcpus": [
                {"vcpu": v, "throughput_retained": r, "runtime_pct": 100 * r}
                for v, r in enumerate(retained)
            ],
            "integrity": {"checked": True, "bad_pages": 0, "verdict": "ok"},
            "alive_on": "destination" if converged else "source",
        },
    }


def history(
    nights: int,
    *,
    reps: int = 2,
    noise: float = 0.08,
    seed: int = 1,
    policies: tuple[str, ...] = ("auto-converge", "dirty-quota"),
    env: dict[str, Any] | None = None,
) -> list[HistoryRecord]:
    """`nights` healthy nights with multiplicative gaussian noise on every metric."""
    rnd = random.Random(seed)
    env = dict(env or BASE_ENV)
    base = {"auto-converge": (40.0, 400.0, 0.45), "dirty-quota": (25.0, 250.0, 0.8)}
    out = []
    for night in range(nights):
        for pol in policies:
            tt, dt, tr = base.get(pol, (30.0, 300.0, 0.6))
            for rep in range(reps):

                def j(x: float) -> float:
                    return x * (1 + rnd.gauss(0, noise))

                out.append(
                    HistoryRecord(
                        night=f"2026-11-{night + 1:02d}T02:00Z",
                        run_id=f"n{night}-{pol}-{rep}",
                        scenario="skewed",
                        bandwidth="100mbit",
                        policy=pol,
                        kind="real",
                        metrics={
                            "converged": 1.0,
                            "total_time_s": j(tt),
                            "downtime_ms": j(dt),
                            "bytes_sent": j(300 * 2**20),
                            "throughput_retained": min(1.0, j(tr)),
                        },
                        environment=env,
                        env_key=env_key(env),
                        result_file=f"r/{night}-{pol}-{rep}.json",
                    )
                )
    return out
