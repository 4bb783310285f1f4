"""Regression verdict: real regressions named, noise and environment changes tolerated."""

from __future__ import annotations

import dataclasses

from monitoring_synth import BASE_ENV, history

from dq_agent.nightly.history import env_key
from dq_agent.nightly.verdict import judge, regressions

LAST = "2026-11-08T02:00Z"  # night index 7 of an 8-night history


def _scaled(recs, night, policy, metric, factor):
    out = []
    for r in recs:
        if r.night == night and r.policy == policy and metric in r.metrics:
            m = dict(r.metrics)
            m[metric] *= factor
            r = dataclasses.replace(r, metrics=m)
        out.append(r)
    return out


def test_noisy_but_healthy_histories_never_flag() -> None:
    # 30 independent 8-night histories with 8 % noise per repetition: no false alarm.
    for seed in range(30):
        verdicts = judge(history(8, noise=0.08, seed=seed), LAST)
        assert verdicts, "every group must be judged"
        assert not regressions(verdicts), [v.line() for v in regressions(verdicts)]
        assert {v.status for v in verdicts} <= {"ok", "improvement"}


def test_seeded_regression_is_named() -> None:
    recs = _scaled(history(8, seed=3), LAST, "dirty-quota", "total_time_s", 1.6)
    bad = regressions(judge(recs, LAST))
    assert [(v.policy, v.metric) for v in bad] == [("dirty-quota", "total_time_s")]
    assert "total_time_s" in bad[0].line() and bad[0].tonight > bad[0].baseline + bad[0].margin


def test_lower_retained_throughput_is_a_regression_higher_is_not() -> None:
    worse = _scaled(history(8, seed=4), LAST, "dirty-quota", "throughput_retained", 0.6)
    assert [v.metric for v in regressions(judge(worse, LAST))] == ["throughput_retained"]
    better = _scaled(history(8, seed=4), LAST, "auto-converge", "total_time_s", 0.5)
    vs = judge(better, LAST)
    assert not regressions(vs)
    assert any(v.status == "improvement" and v.metric == "total_time_s" for v in vs)


def test_new_qemu_starts_a_new_baseline_not_an_alarm() -> None:
    recs = history(8, seed=5)
    new_env = dict(BASE_ENV, qemu_version="10.1.0")
    # Tonight runs on a new QEMU and is much slower: a different machine, not a regression.
    recs = [
        dataclasses.replace(
            r,
            environment=new_env,
            env_key=env_key(new_env),
            metrics={**r.metrics, "total_time_s": r.metrics["total_time_s"] * 2},
        )
        if r.night == LAST
        else r
        for r in recs
    ]
    vs = judge(recs, LAST)
    assert not regressions(vs)
    assert {v.status for v in vs} == {"new-baseline"}
    assert "environment changed" in vs[0].reason


def test_wider_noise_widens_the_margin() -> None:
    quiet = judge(history(8, noise=0.02, seed=6), LAST)
    loud = judge(history(8, noise=0.15, seed=6), LAST)

    def margin(vs):
        return next(
            v.margin for v in vs if v.metric == "total_time_s" and v.policy == "dirty-quota"
        )

    assert margin(loud) > 2 * margin(quiet)
