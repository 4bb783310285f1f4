"""Throughput estimator: steady links, resets, duplicates, gaps, zero-length steps, stalls."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dq_agent.engine import ByteSample, ThroughputEstimator, estimate_throughput


def samples(*pairs: tuple[float, int]) -> list[ByteSample]:
    return [ByteSample(t, b) for t, b in pairs]


def test_steady_link() -> None:
    s = samples(*[(t * 0.5, int(t * 0.5 * 80e6)) for t in range(10)])
    assert estimate_throughput(s, 4) == pytest.approx(80e6)


def test_window_uses_only_last_n_intervals() -> None:
    s = samples((0, 0), (1, 100), (2, 200), (3, 1200), (4, 2200))
    assert estimate_throughput(s, 2) == pytest.approx(1000)
    assert estimate_throughput(s, 10) == pytest.approx(550)


def test_no_data_gives_none() -> None:
    assert estimate_throughput([], 3) is None
    assert estimate_throughput(samples((1, 5)), 3) is None
    assert estimate_throughput(samples((1, 5), (1, 9), (1, 9)), 3) is None


def test_duplicate_samples_are_ignored() -> None:
    s = samples((0, 0), (1, 1000), (1, 1000), (1, 1000), (2, 2000))
    assert estimate_throughput(s, 2) == pytest.approx(1000)


def test_zero_length_interval_keeps_newest_counter() -> None:
    # two reads at the same timestamp, the second saw more bytes
    s = samples((0, 0), (1, 1000), (1, 1500), (2, 2500))
    assert estimate_throughput(s, 2) == pytest.approx(1250)


def test_missing_samples_make_one_longer_interval() -> None:
    s = samples((0, 0), (1, 100), (5, 500), (6, 600))
    assert estimate_throughput(s, 2) == pytest.approx(100)


def test_counter_reset_does_not_go_negative() -> None:
    s = samples((0, 0), (1, 10_000), (2, 20_000), (3, 500), (4, 1500))
    rate = estimate_throughput(s, 2)
    assert rate == pytest.approx((500 + 1000) / 2)
    assert estimate_throughput(s, 1) == pytest.approx(1000)


def test_link_dropping_to_zero() -> None:
    s = samples((0, 0), (1, 1000), (2, 1000), (3, 1000), (4, 1000))
    assert estimate_throughput(s, 3) == 0.0
    assert estimate_throughput(s, 4) == pytest.approx(250)


def test_out_of_order_timestamp_is_skipped() -> None:
    s = samples((0, 0), (2, 2000), (1, 1000), (3, 3000))
    assert estimate_throughput(s, 5) == pytest.approx(1000)


def test_rolling_estimator_is_immutable_and_bounded() -> None:
    e0 = ThroughputEstimator(window_intervals=3)
    e = e0
    for k in range(100):
        e = e.push(k * 0.1, k * 1000)
    assert e0.samples == ()
    assert len(e.samples) <= 2 * 3 + 2
    assert e.bytes_per_s == pytest.approx(10_000)


def test_bad_window() -> None:
    with pytest.raises(ValueError):
        estimate_throughput(samples((0, 0), (1, 1)), 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e4, allow_nan=False), st.integers(0, 2**50)),
        min_size=0,
        max_size=40,
    ),
    st.integers(1, 10),
)
def test_any_samples_give_finite_nonnegative_or_none(
    raw: list[tuple[float, int]], window: int
) -> None:
    rate = estimate_throughput([ByteSample(t, b) for t, b in raw], window)
    assert rate is None or (math.isfinite(rate) and rate >= 0)


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 1e10), st.lists(st.floats(0.001, 10), min_size=2, max_size=30))
def test_constant_rate_is_recovered_from_irregular_samples(rate: float, gaps: list[float]) -> None:
    t = 0.0
    s = [ByteSample(0.0, 0)]
    for g in gaps:
        t += g
        s.append(ByteSample(t, int(t * rate)))
    est = estimate_throughput(s, 5)
    assert est is not None
    assert est == pytest.approx(rate, rel=1e-3, abs=1 / min(gaps[-5:]) + 1)
