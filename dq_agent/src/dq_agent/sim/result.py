"""A simulated run as a run-result document (schema `dqlab-run-result`, kind "simulated")."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from dq_agent.schema import SCHEMA_NAME, SCHEMA_VERSION
from dq_agent.sim.model import SimOutcome
from dq_agent.sim.policies import Policy
from dq_agent.sim.scenario import Scenario


@cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def run_result(sc: Scenario, policy: Policy, out: SimOutcome) -> dict[str, Any]:
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    vcpus = [
        {"vcpu": i, "throughput_retained": r, "runtime_pct": min(100.0, r * 100)}
        for i, r in enumerate(out.retained)
    ]
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "kind": "simulated",
        "run_id": f"sim-{sc.name}-{policy.name}-{uuid.uuid4().hex[:8]}",
        "created": created,
        "scenario": sc.as_dict(),
        "policy": {"name": policy.name, "params": dict(policy.params)},
        "environment": {
            "git_commit": _git_commit(),
            "host": None,
            "qemu_version": None,
            "kernel_version": None,
            "accel": "sim",
            "simulator": "dq-sim",
            "sim_steps": out.steps,
        },
        "link": {"rate_bps": sc.link_rate_bps * 8, "rate_Bps": sc.link_rate_bps},
        "progress": out.progress,
        "guest_timeline": out.timeline,
        "summary": {
            "converged": out.converged,
            "total_time_s": out.total_time_s,
            "downtime_ms": out.downtime_ms,
            "setup_time_ms": 0.0,
            "bytes_sent": out.bytes_sent,
            "iterations": out.iterations,
            "vcpus": vcpus,
            "integrity": {"checked": False, "bad_pages": None, "verdict": "not-checked"},
            "alive_on": "destination" if out.converged else "source",
        },
    }
