"""Network throughput from cumulative transferred-bytes samples (query-migrate, jobStats).

Robust to what real counters do: duplicate samples, gaps, out-of-order or equal timestamps,
counter resets (a new migration job restarts at 0) and a link that stalls at zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_WINDOW_INTERVALS = 5


@dataclass(frozen=True, slots=True)
class ByteSample:
    """Cumulative bytes transferred as seen at time `t_s` (any monotonic clock, seconds)."""

    t_s: float
    total_bytes: int


def _intervals(samples: Iterable[ByteSample]) -> list[tuple[float, int]]:
    """(duration, bytes) of each usable step between consecutive samples."""
    steps: list[tuple[float, int]] = []
    prev: ByteSample | None = None
    for s in samples:
        if prev is None:
            prev = s
            continue
        dt = s.t_s - prev.t_s
        if dt <= 0:
            # Same or earlier timestamp: a duplicate or a clock hiccup. A zero-length
            # interval has no rate; bytes it adds belong to the interval that ended here.
            if s.total_bytes > prev.total_bytes:
                if steps:
                    last_dt, last_bytes = steps[-1]
                    steps[-1] = (last_dt, last_bytes + s.total_bytes - prev.total_bytes)
                prev = ByteSample(prev.t_s, s.total_bytes)
            continue
        delta = s.total_bytes - prev.total_bytes
        if delta < 0:
            # Counter reset: the new value counts bytes since the restart, which
            # happened inside this interval, so it is a (slight) under-estimate.
            delta = max(s.total_bytes, 0)
        steps.append((dt, delta))
        prev = s
    return steps


def estimate_throughput(
    samples: Iterable[ByteSample], window_intervals: int = DEFAULT_WINDOW_INTERVALS
) -> float | None:
    """Bytes/s over the last `window_intervals` usable intervals; None without one.

    Time-weighted (total bytes / total time), so a missing sample simply makes one
    longer interval and a stalled link yields 0.0.
    """
    if window_intervals < 1:
        raise ValueError("window_intervals must be >= 1")
    steps = _intervals(samples)[-window_intervals:]
    if not steps:
        return None
    seconds = sum(dt for dt, _ in steps)
    return sum(b for _, b in steps) / seconds


@dataclass(frozen=True, slots=True)
class ThroughputEstimator:
    """Immutable rolling estimator: `push` returns a new one keeping enough history."""

    window_intervals: int = DEFAULT_WINDOW_INTERVALS
    samples: tuple[ByteSample, ...] = ()

    def push(self, t_s: float, total_bytes: int) -> ThroughputEstimator:
        # Keep a margin beyond the window so duplicates do not eat into it.
        keep = 2 * self.window_intervals + 2
        kept = (*self.samples, ByteSample(t_s, total_bytes))[-keep:]
        return ThroughputEstimator(self.window_intervals, kept)

    @property
    def bytes_per_s(self) -> float | None:
        return estimate_throughput(self.samples, self.window_intervals)
