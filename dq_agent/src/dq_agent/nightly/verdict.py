"""Regression verdict: tonight's median against a rolling baseline, with a measured noise margin.

For every (scenario, bandwidth, policy) and metric:
- tonight = median of tonight's repetitions;
- baseline = median of the nightly medians of the last K earlier nights that ran in the
  *same environment* (history.env_key: host, QEMU, kernel, accel, CPU). A new QEMU or kernel
  therefore has no baseline yet and starts one ("new-baseline"), it never raises an alarm;
- margin = max(k * sigma_rep, k * sigma_night, rel_floor * |baseline|, abs_floor), where
  sigma_rep is the robust (MAD) spread of repetitions around their night's median, pooled
  over the baseline nights and tonight, and sigma_night is the MAD spread of the baseline's
  nightly medians. The floors stop a suspiciously quiet history from flagging trivia.
- regression when tonight is worse than the baseline by more than the margin.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from dq_agent.nightly.history import HistoryRecord

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution -> its standard deviation


@dataclass(frozen=True)
class MetricRule:
    name: str
    higher_is_better: bool
    unit: str
    rel_floor: float
    abs_floor: float


# converged is judged as a rate (mean of 0/1 over the repetitions).
RULES: tuple[MetricRule, ...] = (
    MetricRule("converged", True, "ratio", 0.0, 0.34),
    MetricRule("total_time_s", False, "s", 0.10, 0.5),
    MetricRule("downtime_ms", False, "ms", 0.25, 20.0),
    MetricRule("bytes_sent", False, "B", 0.10, 4 * 2**20),
    MetricRule("throughput_retained", True, "ratio", 0.05, 0.03),
)


@dataclass(frozen=True)
class Verdict:
    scenario: str
    bandwidth: str
    policy: str
    metric: str
    status: str  # ok | regression | improvement | new-baseline | no-data
    tonight: float | None
    baseline: float | None
    margin: float | None
    nights: int
    unit: str
    reason: str = ""

    @property
    def group(self) -> str:
        return f"{self.scenario}/{self.bandwidth}/{self.policy}"

    def line(self) -> str:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.4g}"

        head = f"{self.status.upper():12} {self.group} {self.metric}"
        body = (
            f"tonight {fmt(self.tonight)} {self.unit} vs baseline {fmt(self.baseline)} "
            f"{self.unit} (margin {fmt(self.margin)}, {self.nights} nights)"
        )
        return f"{head}: {body}" + (f" — {self.reason}" if self.reason else "")


def _mad_sigma(values: Sequence[float], center: float) -> float:
    if not values:
        return 0.0
    return MAD_TO_SIGMA * statistics.median(abs(v - center) for v in values)


def _rep_deviations(values: Sequence[float]) -> list[float]:
    if len(values) < 2:
        return []
    m = statistics.median(values)
    return [v - m for v in values]


def _values(recs: Sequence[HistoryRecord], metric: str, env: str) -> list[float]:
    return [r.metrics[metric] for r in recs if r.env_key == env and metric in r.metrics]


def judge(
    history: Sequence[HistoryRecord],
    night: str,
    *,
    window: int = 7,
    min_nights: int = 3,
    k: float = 3.0,
    rules: Sequence[MetricRule] = RULES,
) -> list[Verdict]:
    """Verdicts for every group that ran on `night` (real runs only)."""
    # group -> night -> records
    by_group: dict[tuple[str, str, str], dict[str, list[HistoryRecord]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for rec in history:
        if rec.kind != "real":
            continue
        by_group[(rec.scenario, rec.bandwidth, rec.policy)][rec.night].append(rec)

    verdicts: list[Verdict] = []
    for (scenario, bandwidth, policy), nights in sorted(by_group.items()):
        tonight_recs = nights.get(night)
        if not tonight_recs:
            continue
        env = statistics.mode(r.env_key for r in tonight_recs)
        earlier = sorted(n for n in nights if n < night)
        same_env = [n for n in earlier if any(r.env_key == env for r in nights[n])][-window:]
        env_changed = bool(earlier) and not any(r.env_key == env for r in nights[earlier[-1]])
        for rule in rules:
            tv = _values(tonight_recs, rule.name, env)
            base_nights = [_values(nights[n], rule.name, env) for n in same_env]
            base_nights = [v for v in base_nights if v]
            common = dict(
                scenario=scenario,
                bandwidth=bandwidth,
                policy=policy,
                metric=rule.name,
                unit=rule.unit,
            )
            if not tv:
                verdicts.append(
                    Verdict(
                        **common,
                        status="no-data",
                        tonight=None,
                        baseline=None,
                        margin=None,
                        nights=len(base_nights),
                    )
                )
                continue
            agg = statistics.fmean if rule.name == "converged" else statistics.median
            tonight = agg(tv)
            if len(base_nights) < min_nights:
                why = (
                    "environment changed (QEMU, kernel, host or accel): new baseline"
                    if env_changed
                    else f"only {len(base_nights)} earlier nights (need {min_nights})"
                )
                verdicts.append(
                    Verdict(
                        **common,
                        status="new-baseline",
                        tonight=tonight,
                        baseline=None,
                        margin=None,
                        nights=len(base_nights),
                        reason=why,
                    )
                )
                continue
            medians = [agg(v) for v in base_nights]
            baseline = statistics.median(medians)
            devs = [d for v in [*base_nights, tv] for d in _rep_deviations(v)]
            sigma_rep = _mad_sigma(devs, 0.0)
            sigma_night = _mad_sigma(medians, baseline)
            margin = max(
                k * sigma_rep, k * sigma_night, rule.rel_floor * abs(baseline), rule.abs_floor
            )
            worse = (baseline - tonight) if rule.higher_is_better else (tonight - baseline)
            status = "regression" if worse > margin else "improvement" if -worse > margin else "ok"
            verdicts.append(
                Verdict(
                    **common,
                    status=status,
                    tonight=tonight,
                    baseline=baseline,
                    margin=margin,
                    nights=len(base_nights),
                )
            )
    return verdicts


def regressions(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.status == "regression"]
