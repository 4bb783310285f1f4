"""One progress record per query-migrate poll (guestperf-level detail, contracts §6)."""

from __future__ import annotations

from typing import Any


def progress_record(t: float, q: dict[str, Any]) -> dict[str, Any]:
    ram = q.get("ram", {})
    rec: dict[str, Any] = {
        "t": round(max(t, 0.0), 4),
        "status": str(q.get("status", "unknown")),
        "transferred_bytes": int(ram.get("transferred", 0)),
        "remaining_bytes": int(ram.get("remaining", 0)),
        "dirty_pages_rate": float(ram.get("dirty-pages-rate", 0)),
        "mbps": float(ram.get("mbps", 0.0)),
        "iteration": int(ram.get("dirty-sync-count", 0)),
        "expected_downtime_ms": q.get("expected-downtime"),
        "throttle_pct": q.get("cpu-throttle-percentage", 0),
        "total_time_ms": q.get("total-time"),
    }
    for src, dst in (
        ("dirty-limit-throttle-time-per-round", "dirty_limit_throttle_time_per_round_us"),
        ("dirty-limit-ring-full-time", "dirty_limit_ring_full_time_us"),
    ):
        if src in q:
            rec[dst] = q[src]
    return rec
