"""Shared quota test vectors (format `dqlab-quota-vectors/1`, docs/contracts.md §3).

The cases below are the inputs; the expectations come from `plan_interval`. The committed
JSON files are this module's output (`python -m dq_agent.engine.vectors --check`), and the
QEMU C unit test replays the same files, so the two implementations cannot drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dq_agent.engine.planner import QuotaParams, plan_interval

FORMAT = "dqlab-quota-vectors/1"
VECTOR_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Step:
    """Inputs of one interval; the cap/burst overrides apply to this interval only."""

    budget: int
    weights: tuple[int, ...]
    demands: tuple[int, ...]
    order: tuple[int, ...] | None = None
    pool_cap_pages: int | None = None
    burst_pages: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    pool_cap_pages: int
    burst_pages: int
    initial_pool: int
    steps: tuple[Step, ...]


def _eq(n: int) -> tuple[int, ...]:
    return (1,) * n


CASES: tuple[Case, ...] = (
    Case(
        "equal-split",
        "Four equal vCPUs, budget 100: shares 25 each; over- and under-demand; unused quota "
        "reaches the pool only for later intervals.",
        400,
        100,
        0,
        (
            Step(100, _eq(4), (25, 25, 25, 25)),
            Step(100, _eq(4), (40, 10, 25, 0)),
            Step(100, _eq(4), (40, 40, 40, 40)),
            Step(100, _eq(4), (0, 0, 0, 0)),
            Step(100, _eq(4), (100, 100, 100, 100)),
        ),
    ),
    Case(
        "skewed-two-vcpu",
        "One heavy dirtier, one compute-only vCPU (the contract's example, continued): the "
        "idle share feeds the pool, the heavy vCPU draws it FCFS up to the burst limit.",
        400,
        100,
        0,
        (
            Step(100, _eq(2), (300, 0)),
            Step(100, _eq(2), (300, 0)),
            Step(100, _eq(2), (300, 0)),
            Step(100, _eq(2), (300, 0)),
            Step(100, _eq(2), (60, 0)),
            Step(100, _eq(2), (300, 0)),
        ),
    ),
    Case(
        "weights-remainders",
        "Largest-remainder shares with unequal weights and ties broken toward the lower index.",
        40,
        10,
        0,
        (
            Step(10, (3, 2, 2), (10, 10, 10)),
            Step(10, (1, 1, 1), (10, 10, 10)),
            Step(7, (1, 1, 1, 1), (7, 7, 7, 7)),
            Step(100, (5, 3, 1), (0, 0, 0)),
            Step(1, (1, 1, 1), (1, 1, 1)),
            Step(11, (2, 2, 3, 4), (11, 0, 11, 0)),
            Step(1000003, (7, 11, 13), (0, 1000003, 1)),
        ),
    ),
    Case(
        "pool-accumulation-cap",
        "Idle intervals fill the pool up to its cap (4 x budget); the surplus is dropped; "
        "a later burst drains it at most burst_pages per vCPU per interval.",
        200,
        50,
        0,
        (
            Step(50, _eq(2), (0, 0)),
            Step(50, _eq(2), (0, 0)),
            Step(50, _eq(2), (0, 0)),
            Step(50, _eq(2), (0, 0)),
            Step(50, _eq(2), (0, 0)),
            Step(50, _eq(2), (500, 500)),
            Step(50, _eq(2), (500, 500)),
            Step(50, _eq(2), (500, 500)),
            Step(50, _eq(2), (500, 500)),
        ),
    ),
    Case(
        "burst-limit",
        "A full pool but a small burst limit: a vCPU never draws more than burst_pages in one "
        "interval, so the others still find quota; per-interval overrides of burst and cap.",
        1000,
        20,
        1000,
        (
            Step(40, _eq(4), (200, 200, 0, 0)),
            Step(40, _eq(4), (200, 200, 200, 200)),
            Step(40, _eq(4), (200, 0, 0, 0), burst_pages=500),
            Step(40, _eq(4), (0, 0, 0, 0), pool_cap_pages=100),
            Step(40, _eq(4), (200, 200, 200, 200), burst_pages=0),
        ),
    ),
    Case(
        "fcfs-order",
        "The same demands in different draw orders: whoever comes first drains the pool.",
        300,
        100,
        150,
        (
            Step(60, _eq(3), (120, 120, 120), order=(0, 1, 2)),
            Step(60, _eq(3), (20, 20, 20), order=(0, 1, 2)),
            Step(60, _eq(3), (120, 120, 120), order=(2, 1, 0)),
            Step(60, _eq(3), (0, 0, 0), order=(1, 2, 0)),
            Step(60, _eq(3), (120, 120, 120), order=(1, 2, 0)),
        ),
    ),
    Case(
        "idle-vcpu",
        "A vCPU that dirties nothing is never throttled, whatever the others do or the pool holds.",
        64,
        16,
        0,
        (
            Step(16, _eq(4), (100, 0, 100, 3)),
            Step(16, _eq(4), (100, 0, 100, 4)),
            Step(16, _eq(4), (0, 0, 0, 0)),
            Step(16, _eq(4), (100, 0, 100, 100)),
            Step(0, _eq(4), (100, 0, 100, 100)),
        ),
    ),
    Case(
        "zero-budget",
        "The link stalls (budget 0): every share is 0, the pool drains, vCPUs with demand "
        "are throttled once it is empty, vCPUs without demand are not.",
        400,
        100,
        150,
        (
            Step(0, _eq(2), (80, 0)),
            Step(0, _eq(2), (80, 80)),
            Step(0, _eq(2), (80, 0)),
            Step(0, _eq(2), (0, 0)),
            Step(100, _eq(2), (80, 0)),
        ),
    ),
)


def case_document(case: Case) -> dict[str, Any]:
    """The JSON document for one case, expectations computed by the engine."""
    pool = case.initial_pool
    intervals = []
    for step in case.steps:
        params = QuotaParams(
            case.pool_cap_pages if step.pool_cap_pages is None else step.pool_cap_pages,
            case.burst_pages if step.burst_pages is None else step.burst_pages,
        )
        order = step.order if step.order is not None else tuple(range(len(step.weights)))
        plan = plan_interval(step.budget, step.weights, step.demands, pool, params, order)
        entry: dict[str, Any] = {
            "budget_pages": step.budget,
            "weights": list(step.weights),
            "demands": list(step.demands),
            "order": list(order),
        }
        if step.pool_cap_pages is not None:
            entry["pool_cap_pages"] = step.pool_cap_pages
        if step.burst_pages is not None:
            entry["burst_pages"] = step.burst_pages
        entry["expect"] = {
            "shares": list(plan.shares),
            "draws": list(plan.draws),
            "grants": list(plan.grants),
            "throttled": list(plan.throttled),
            "pool_after": plan.pool_after,
        }
        intervals.append(entry)
        pool = plan.pool_after
    return {
        "format": FORMAT,
        "name": case.name,
        "description": case.description,
        "params": {"pool_cap_pages": case.pool_cap_pages, "burst_pages": case.burst_pages},
        "initial_pool_pages": case.initial_pool,
        "intervals": intervals,
    }


def render(doc: dict[str, Any]) -> str:
    """Stable text: one interval per line so diffs and C readers stay simple."""
    head = {k: v for k, v in doc.items() if k != "intervals"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "intervals": [')
    body = [f"    {json.dumps(iv)}" for iv in doc["intervals"]]
    lines.append(",\n".join(body))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> exact text the generator produces."""
    return {f"{c.name}.json": render(case_document(c)) for c in CASES}


def replay(doc: dict[str, Any]) -> list[str]:
    """Run a vector document through the engine; return mismatches (empty = all match)."""
    if doc.get("format") != FORMAT:
        return [f"format: expected {FORMAT}, got {doc.get('format')!r}"]
    base = doc["params"]
    pool = int(doc["initial_pool_pages"])
    problems: list[str] = []
    for k, iv in enumerate(doc["intervals"]):
        params = QuotaParams(
            int(iv.get("pool_cap_pages", base["pool_cap_pages"])),
            int(iv.get("burst_pages", base["burst_pages"])),
        )
        plan = plan_interval(
            int(iv["budget_pages"]), iv["weights"], iv["demands"], pool, params, iv["order"]
        )
        got = {
            "shares": list(plan.shares),
            "draws": list(plan.draws),
            "grants": list(plan.grants),
            "throttled": list(plan.throttled),
            "pool_after": plan.pool_after,
        }
        for field, want in iv["expect"].items():
            if got[field] != want:
                problems.append(
                    f"{doc['name']} interval {k} {field}: want {want}, got {got[field]}"
                )
        pool = plan.pool_after
    return problems
