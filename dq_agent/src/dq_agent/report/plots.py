"""matplotlib figures for the report; each function writes one PNG and returns its path."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on lab controllers or CI
import matplotlib.pyplot as plt

POLICY_COLORS = {
    "none": "#7f7f7f",
    "auto-converge": "#d62728",
    "dirty-limit": "#ff7f0e",
    "dirty-quota": "#2ca02c",
}


def color(policy: str) -> str:
    return POLICY_COLORS.get(policy, "#1f77b4")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def policies_side_by_side(
    per_policy: Mapping[str, Sequence[Mapping[str, float]]], title: str, path: Path
) -> Path:
    """Bars = median of the repetitions, dots = each repetition."""
    panels = (
        ("total_time_s", "total time (s)"),
        ("downtime_ms", "downtime (ms)"),
        ("throughput_retained", "throughput retained (0-1)"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.2))
    names = list(per_policy)
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for x, pol in enumerate(names):
            vals = [m[metric] for m in per_policy[pol] if metric in m]
            if not vals:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8)
                continue
            ax.bar(x, statistics.median(vals), color=color(pol), alpha=0.6, width=0.6)
            ax.plot([x] * len(vals), vals, "k.", markersize=6)
        ax.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def migration_timeseries(runs: Mapping[str, Mapping[str, Any]], title: str, path: Path) -> Path:
    """One column per policy: remaining bytes + throughput, throttle/quota, guest per vCPU."""
    names = list(runs)
    fig, axes = plt.subplots(3, len(names), figsize=(4.2 * len(names), 7.5), squeeze=False)
    for col, pol in enumerate(names):
        run = runs[pol]
        prog = run.get("progress", [])
        t = [p.get("t", 0.0) for p in prog]
        ax = axes[0][col]
        ax.plot(t, [p.get("remaining_bytes", 0) / 2**20 for p in prog], color=color(pol))
        ax.set_ylabel("remaining (MiB)")
        ax.set_title(pol, fontsize=10)
        ax2 = ax.twinx()
        ax2.plot(t, [p.get("mbps", 0.0) for p in prog], color="#1f77b4", alpha=0.5, lw=1)
        rate = run.get("link", {}).get("rate_bps")
        if rate:
            ax2.axhline(rate / 1e6, color="#1f77b4", ls="--", lw=1)
        top = max([rate / 1e6 if rate else 0.0] + [p.get("mbps", 0.0) or 0.0 for p in prog])
        ax2.set_ylim(0, 1.1 * top if top > 0 else 1)  # from zero: shows how full the link is
        ax2.set_ylabel("Mbit/s (-- tc limit)", fontsize=8)
        # iteration markers: a thin line where the pass number changes
        last = None
        for p in prog:
            it = p.get("iteration")
            if last is not None and it != last:
                ax.axvline(p.get("t", 0.0), color="k", alpha=0.12, lw=0.8)
            last = it

        ax = axes[1][col]
        quota = _per_vcpu_progress(prog, "quota_pages")
        if quota:
            for vcpu, series in sorted(quota.items()):
                ax.plot(*zip(*series, strict=True), label=f"vCPU {vcpu} quota")
            ax.set_ylabel("quota (pages/interval)")
            ax.legend(fontsize=7)
        else:
            ax.plot(t, [p.get("throttle_pct", 0) or 0 for p in prog], color=color(pol))
            ax.set_ylabel("throttle (%)")
            ax.set_ylim(0, 100)

        ax = axes[2][col]
        by_vcpu: dict[int, list[tuple[float, float]]] = {}
        for s in run.get("guest_timeline", []):
            by_vcpu.setdefault(int(s["vcpu"]), []).append((s["t"], s.get("mb_per_s", 0.0)))
        for vcpu, series in sorted(by_vcpu.items()):
            ax.plot(*zip(*series, strict=True), label=f"vCPU {vcpu}")
        ax.set_ylabel("guest MB/s per vCPU")
        ax.set_xlabel("time (s)")
        if by_vcpu:
            ax.legend(fontsize=7)
        for row in axes:
            row[col].grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _per_vcpu_progress(prog: Sequence[Mapping[str, Any]], key: str) -> dict[int, list[Any]]:
    """Per-vCPU series when the harness records progress[].vcpus[] (dirty-quota runs)."""
    out: dict[int, list[Any]] = {}
    for p in prog:
        for v in p.get("vcpus", []) or []:
            if key in v:
                out.setdefault(int(v.get("vcpu", v.get("cpu-index", 0))), []).append(
                    (p.get("t", 0.0), v[key])
                )
    return out


def nightly_trends(
    trend: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], title: str, path: Path
) -> Path:
    """trend[metric][policy] = [(night, median), ...]."""
    metrics = list(trend)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.7 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for pol, series in sorted(trend[metric].items()):
            xs = [n[:10] for n, _ in series]
            ax.plot(xs, [v for _, v in series], "o-", color=color(pol), label=pol, ms=3)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
