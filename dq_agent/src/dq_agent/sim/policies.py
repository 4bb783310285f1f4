"""Throttling policies as plug-ins for the pre-copy model.

A policy sees the migration only where QEMU's would: at bitmap syncs (period figures,
gated to periods longer than 1 s as in migration_bitmap_sync) and, for the chunk of time
about to be simulated, each vCPU's dirtying rates. It answers with each vCPU's run fraction
(share of wall time the vCPU may run). The dirty-quota policy calls `dq_agent.engine`
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dq_agent.engine import (
    DEFAULT_CONVERGENCE_FACTOR,
    PAGE_SIZE,
    QuotaParams,
    ThroughputEstimator,
    TriggerState,
    budget_pages,
    plan_interval,
)

# QEMU defaults (migration/options.c, system/cpu-throttle.c, system/dirtylimit.c)
QEMU_THROTTLE_TRIGGER_PCT = 50
QEMU_THROTTLE_INITIAL = 20
QEMU_THROTTLE_INCREMENT = 10
QEMU_THROTTLE_MAX = 99
QEMU_THROTTLE_TIMESLICE_MS = 10
QEMU_DIRTY_SYNC_TIMER_S = 5.0  # cpu_throttle_dirty_sync_timer (QEMU >= 9.2)
QEMU_VCPU_DIRTY_LIMIT_MB = 1  # vcpu-dirty-limit, MB/s (1 MiB)
DIRTYLIMIT_THROTTLE_PCT_MAX = 99


class PolicyError(ValueError):
    """Bad policy name or parameter; the message names the field."""


@dataclass(frozen=True)
class RateView:
    """What a policy may look at when deciding the next chunk's run fractions.

    new_dirty_pps[i]: pages/s vCPU i would newly dirty (first write since the last sync)
    at full speed; ring_pps[i]: pages/s a 1 s dirty-ring harvest would count.
    """

    t: float
    throughput_bps: float | None
    new_dirty_pps: Sequence[float]
    ring_pps: Sequence[float]


class Policy(Protocol):
    name: str
    params: dict[str, Any]
    #: run fractions depend on the dirtying rates: the model must keep chunks short
    rate_sensitive: bool

    def on_period(self, t: float, dirty_bytes: int, transferred_bytes: int) -> None: ...

    def fractions(self, view: RateView) -> list[float]: ...

    def throttle_pct(self) -> float | None: ...

    def timer_due(self) -> float: ...

    def on_timer(self, t: float, sync_count: int) -> bool: ...

    def observe(self, t: float, transferred_bytes: int) -> None: ...


class _Base:
    name = "base"
    rate_sensitive = False

    def __init__(self, n_vcpus: int, params: dict[str, Any]) -> None:
        self.n = n_vcpus
        self.params = params

    def on_period(self, t: float, dirty_bytes: int, transferred_bytes: int) -> None:
        return None

    def fractions(self, view: RateView) -> list[float]:
        return [1.0] * self.n

    def throttle_pct(self) -> float | None:
        return None

    def timer_due(self) -> float:
        return math.inf

    def on_timer(self, t: float, sync_count: int) -> bool:
        return False

    def observe(self, t: float, transferred_bytes: int) -> None:
        return None


class NoPolicy(_Base):
    """Plain pre-copy: nobody is slowed down."""

    name = "none"


class AutoConverge(_Base):
    """QEMU's auto-converge (migration_trigger_throttle, mig_throttle_guest_down,
    cpu-throttle.c): every vCPU runs (100 - pct)% of the time, 10 ms slices.

    The high-dirty counter counts high periods and is reset only when it fires, so two
    high periods need not be consecutive; the throttle never goes down. With
    auto-converge on, QEMU >= 9.2 also forces a bitmap sync every 5 s when no iteration
    synced since the last tick, once the first period has been evaluated.
    """

    name = "auto-converge"

    def __init__(self, n_vcpus: int, params: dict[str, Any]) -> None:
        super().__init__(n_vcpus, params)
        self.trigger_pct = int(params["throttle_trigger_threshold"])
        self.initial = int(params["cpu_throttle_initial"])
        self.increment = int(params["cpu_throttle_increment"])
        self.max_pct = int(params["max_cpu_throttle"])
        self.sync_timer_s = float(params["dirty_sync_timer_s"])
        self.pct = 0
        self.high_cnt = 0
        self.timer_at = math.inf
        self.prev_sync_cnt = 2

    def on_period(self, t: float, dirty_bytes: int, transferred_bytes: int) -> None:
        if self.sync_timer_s > 0 and self.timer_at == math.inf:
            self.timer_at = t + self.sync_timer_s  # cpu_throttle_dirty_sync_timer(true)
        threshold = transferred_bytes * self.trigger_pct // 100
        if dirty_bytes > threshold:
            self.high_cnt += 1
            if self.high_cnt >= 2:
                self.high_cnt = 0
                if self.pct == 0:
                    self.pct = self.initial
                else:
                    self.pct = min(self.pct + self.increment, self.max_pct)
                self.pct = max(1, min(self.pct, 99))  # cpu_throttle_set clamps to 1..99

    def fractions(self, view: RateView) -> list[float]:
        return [1.0 - self.pct / 100.0] * self.n

    def throttle_pct(self) -> float | None:
        return float(self.pct)

    def timer_due(self) -> float:
        return self.timer_at

    def on_timer(self, t: float, sync_count: int) -> bool:
        """The 5 s tick: sync if no iteration synced since the previous tick."""
        want = sync_count > 1 and sync_count == self.prev_sync_cnt
        self.timer_at = t + self.sync_timer_s
        self.prev_sync_cnt = sync_count + (1 if want else 0)
        return want


class DirtyLimit(_Base):
    """QEMU's dirty-limit capability: on the same trigger as auto-converge, every vCPU's
    dirty-page rate is capped at `vcpu_dirty_limit` MB/s; vCPUs that dirty less are not
    touched. Modelled as the controller's steady state: run fraction = limit / rate,
    at least 1% (the throttle tops out at 99%)."""

    name = "dirty-limit"
    rate_sensitive = True

    def __init__(self, n_vcpus: int, params: dict[str, Any]) -> None:
        super().__init__(n_vcpus, params)
        self.trigger_pct = int(params["throttle_trigger_threshold"])
        self.limit_pps = float(params["vcpu_dirty_limit"]) * 2**20 / PAGE_SIZE
        self.high_cnt = 0
        self.active = False

    def on_period(self, t: float, dirty_bytes: int, transferred_bytes: int) -> None:
        if dirty_bytes > transferred_bytes * self.trigger_pct // 100:
            self.high_cnt += 1
            if self.high_cnt >= 2:
                self.high_cnt = 0
                self.active = True

    def fractions(self, view: RateView) -> list[float]:
        if not self.active:
            return [1.0] * self.n
        floor = 1 - DIRTYLIMIT_THROTTLE_PCT_MAX / 100
        return [
            1.0 if r <= self.limit_pps else max(floor, self.limit_pps / r) for r in view.ring_pps
        ]

    def throttle_pct(self) -> float | None:
        return None


class DirtyQuota(_Base):
    """This project's dirty quota, planned by `dq_agent.engine` unchanged.

    Each chunk of simulated time is a run of identical intervals (demands constant); the
    planner is iterated interval by interval until the pool reaches its fixed point and
    that interval's grants give each vCPU's run fraction (grant / demand).
    """

    name = "dirty-quota"
    rate_sensitive = True
    MAX_SETTLE_INTERVALS = 64

    def __init__(self, n_vcpus: int, params: dict[str, Any]) -> None:
        super().__init__(n_vcpus, params)
        self.interval_s = float(params["interval_ms"]) / 1000
        self.factor = float(params["convergence_factor"])
        self.weights = tuple(int(w) for w in params["weights"] or [1] * n_vcpus)
        if len(self.weights) != n_vcpus:
            raise PolicyError(
                f"dirty-quota.weights: need {n_vcpus} entries, got {len(self.weights)}"
            )
        self.trigger = TriggerState.initial(bool(params["start_immediately"]))
        self.hold_while_exhausted = bool(params["hold_while_exhausted"])
        self.exhausted_in_period = False
        self.estimator = ThroughputEstimator(int(params["window_intervals"]))
        self.pool = 0
        self._cache: dict[tuple[int, tuple[int, ...], int], tuple[list[float], int]] = {}
        self.last_budget = 0

    def on_period(self, t: float, dirty_bytes: int, transferred_bytes: int) -> None:
        was = self.trigger.active
        exhausted = self.hold_while_exhausted and self.exhausted_in_period
        self.trigger = self.trigger.on_sync(dirty_bytes, transferred_bytes, exhausted)
        self.exhausted_in_period = False
        if was and not self.trigger.active:
            self.pool = 0

    def observe(self, t: float, transferred_bytes: int) -> None:
        self.estimator = self.estimator.push(t, transferred_bytes)

    def fractions(self, view: RateView) -> list[float]:
        if not self.trigger.active:
            return [1.0] * self.n
        bps = self.estimator.bytes_per_s
        if bps is None:
            bps = view.throughput_bps or 0.0
        budget = budget_pages(bps, self.interval_s, self.factor)
        self.last_budget = budget
        demands = tuple(round(r * self.interval_s) for r in view.new_dirty_pps)
        key = (budget, demands, self.pool)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._settle(budget, demands)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit
        fractions, self.pool = hit
        if any(f < 1.0 for f in fractions):
            self.exhausted_in_period = True
        return fractions

    def _settle(self, budget: int, demands: tuple[int, ...]) -> tuple[list[float], int]:
        params = QuotaParams.for_budget(budget)
        pool = self.pool
        plan = plan_interval(budget, self.weights, demands, pool, params)
        for _ in range(self.MAX_SETTLE_INTERVALS):
            if plan.pool_after == pool:
                break
            pool = plan.pool_after
            plan = plan_interval(budget, self.weights, demands, pool, params)
        fr = [g / d if d > 0 else 1.0 for g, d in zip(plan.grants, demands, strict=True)]
        return fr, plan.pool_after

    def throttle_pct(self) -> float | None:
        return None


class Oracle(_Base):
    """Lower bound, not a policy: every page crosses the link exactly once and the guest
    is never slowed. No real policy can finish sooner (see docs/simulator.md)."""

    name = "oracle"


DEFAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "auto-converge": {
        "throttle_trigger_threshold": QEMU_THROTTLE_TRIGGER_PCT,
        "cpu_throttle_initial": QEMU_THROTTLE_INITIAL,
        "cpu_throttle_increment": QEMU_THROTTLE_INCREMENT,
        "max_cpu_throttle": QEMU_THROTTLE_MAX,
        "dirty_sync_timer_s": QEMU_DIRTY_SYNC_TIMER_S,
    },
    "dirty-limit": {
        "throttle_trigger_threshold": QEMU_THROTTLE_TRIGGER_PCT,
        "vcpu_dirty_limit": QEMU_VCPU_DIRTY_LIMIT_MB,
    },
    "dirty-quota": {
        "interval_ms": 10,
        "convergence_factor": DEFAULT_CONVERGENCE_FACTOR,
        "start_immediately": False,
        "hold_while_exhausted": True,
        "window_intervals": 5,
        "weights": None,
    },
    "oracle": {},
}

_FACTORIES: dict[str, Callable[[int, dict[str, Any]], Policy]] = {
    "none": NoPolicy,
    "auto-converge": AutoConverge,
    "dirty-limit": DirtyLimit,
    "dirty-quota": DirtyQuota,
    "oracle": Oracle,
}

POLICY_NAMES = tuple(_FACTORIES)

# (lowest, highest) for numeric parameters; bools and weights checked separately
_RANGES: dict[str, tuple[float, float]] = {
    "throttle_trigger_threshold": (1, 100),
    "cpu_throttle_initial": (1, 99),
    "cpu_throttle_increment": (1, 99),
    "max_cpu_throttle": (1, 99),
    "dirty_sync_timer_s": (0, 3600),
    "vcpu_dirty_limit": (1, 1e9),
    "interval_ms": (1, 1000),
    "convergence_factor": (0.01, 1),
    "window_intervals": (1, 1000),
}


def _check_param(policy: str, key: str, value: Any, default: Any) -> Any:
    field = f"{policy}.{key}"
    if key == "weights":
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 1000 for w in value
        ):
            raise PolicyError(f"{field}: must be a list of integers 1..1000")
        return list(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise PolicyError(f"{field}: must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{field}: must be a number")
    lo, hi = _RANGES[key]
    if not lo <= value <= hi:
        raise PolicyError(f"{field}: must be between {lo:g} and {hi:g}, got {value:g}")
    return value


def make_policy(name: str, n_vcpus: int, overrides: Mapping[str, Any] | None = None) -> Policy:
    """A fresh policy instance; unknown names or parameters raise PolicyError."""
    if name not in _FACTORIES:
        raise PolicyError(f"policy: unknown '{name}' (one of {', '.join(POLICY_NAMES)})")
    params = dict(DEFAULTS[name])
    for key, value in (overrides or {}).items():
        if key not in params:
            raise PolicyError(f"{name}.{key}: unknown parameter")
        params[key] = _check_param(name, key, value, DEFAULTS[name][key])
    return _FACTORIES[name](n_vcpus, params)
