"""Scenario: the guest workload per vCPU, the link and the run's time bounds.

Validated strictly; every error names its field (`vcpus[1].phases[0].rate_mbps: ...`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dq_agent.harness.errors import ScenarioError

KINDS = ("dirty", "compute", "idle")
PATTERNS = ("seq", "rand")


@dataclass(frozen=True)
class Phase:
    kind: str = "dirty"
    rate_mbps: float = 0.0  # page accesses in MB/s; 0 = unbounded (CPU-bound)
    ws_mib: int = 16
    write_pct: int = 100
    pattern: str = "seq"
    dur_s: float = 0.0  # 0 = until the end (only the last phase)

    def token(self) -> str:
        """dq-stress phase spec (guest/dq-stress.c)."""
        if self.kind != "dirty":
            base = self.kind
        else:
            base = (
                f"dirty,rate={self.rate_mbps:g},ws={self.ws_mib},w={self.write_pct},"
                f"pat={self.pattern}"
            )
        return base + (f",dur={self.dur_s:g}" if self.dur_s else "")


@dataclass(frozen=True)
class Scenario:
    name: str
    vcpus: tuple[tuple[Phase, ...], ...]
    memory_mib: int = 256
    link_mbit: float = 100.0
    baseline_s: float = 4.0  # guest throughput measured before the migration starts
    timeout_s: float = 60.0  # migration cancelled after this
    downtime_limit_ms: int = 300
    report_ms: int = 250
    extra: dict[str, Any] = field(default_factory=dict)

    def kernel_args(self) -> list[str]:
        args = [f"dq.t{i}={'/'.join(p.token() for p in ph)}" for i, ph in enumerate(self.vcpus)]
        return [*args, f"dq.report_ms={self.report_ms}"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "memory_mib": self.memory_mib,
            "link_mbit": self.link_mbit,
            "baseline_s": self.baseline_s,
            "timeout_s": self.timeout_s,
            "downtime_limit_ms": self.downtime_limit_ms,
            "report_ms": self.report_ms,
            "vcpus": [{"phases": [vars(p) for p in ph]} for ph in self.vcpus],
        }


def _num(d: dict[str, Any], key: str, where: str, lo: float, hi: float, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise ScenarioError(f"{where}{key}: must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _int(d: dict[str, Any], key: str, where: str, lo: int, hi: int, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ScenarioError(f"{where}{key}: must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _known(d: dict[str, Any], allowed: set[str], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise ScenarioError(f"{where}{k}: unknown field")


def _phase(d: Any, where: str) -> Phase:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where.rstrip('.')}: must be an object")
    _known(d, {"kind", "rate_mbps", "ws_mib", "write_pct", "pattern", "dur_s"}, where)
    kind = d.get("kind", "dirty")
    if kind not in KINDS:
        raise ScenarioError(f"{where}kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    pattern = d.get("pattern", "seq")
    if pattern not in PATTERNS:
        raise ScenarioError(f"{where}pattern: must be seq or rand, got {pattern!r}")
    return Phase(
        kind=kind,
        rate_mbps=_num(d, "rate_mbps", where, 0, 100000, 0),
        ws_mib=_int(d, "ws_mib", where, 0, 65536, 16),
        write_pct=_int(d, "write_pct", where, 0, 100, 100),
        pattern=pattern,
        dur_s=_num(d, "dur_s", where, 0, 86400, 0),
    )


def parse_scenario(d: Any) -> Scenario:
    """Validate a scenario dict; ScenarioError names the first bad field."""
    if not isinstance(d, dict):
        raise ScenarioError("scenario: must be a JSON object")
    keys = {"name", "vcpus", "memory_mib", "link_mbit", "baseline_s", "timeout_s"}
    keys |= {"downtime_limit_ms", "report_ms", "description"}
    _known(d, keys, "")
    name = d.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ScenarioError("name: must be a non-empty string (<= 64 chars)")
    vcpus = d.get("vcpus")
    if not isinstance(vcpus, list) or not 1 <= len(vcpus) <= 16:
        raise ScenarioError("vcpus: must be a list of 1..16 vCPU workloads")
    loads = []
    for i, v in enumerate(vcpus):
        if not isinstance(v, dict) or set(v) - {"phases"}:
            raise ScenarioError(f"vcpus[{i}]: must be an object with only 'phases'")
        phases = v.get("phases")
        if not isinstance(phases, list) or not 1 <= len(phases) <= 16:
            raise ScenarioError(f"vcpus[{i}].phases: must be a list of 1..16 phases")
        loads.append(tuple(_phase(p, f"vcpus[{i}].phases[{k}].") for k, p in enumerate(phases)))
    mem = _int(d, "memory_mib", "", 128, 8192, 256)
    owned = sum(max((p.ws_mib for p in ph if p.kind == "dirty"), default=0) for ph in loads)
    if owned * 2 > mem - 64:
        raise ScenarioError(f"memory_mib: {mem} too small for {owned} MiB of working sets")
    return Scenario(
        name=name,
        vcpus=tuple(loads),
        memory_mib=mem,
        link_mbit=_num(d, "link_mbit", "", 1, 10000, 100),
        baseline_s=_num(d, "baseline_s", "", 1, 600, 4),
        timeout_s=_num(d, "timeout_s", "", 5, 3600, 60),
        downtime_limit_ms=_int(d, "downtime_limit_ms", "", 10, 60000, 300),
        report_ms=_int(d, "report_ms", "", 50, 10000, 250),
    )


def builtin_names() -> list[str]:
    files = resources.files("dq_agent.harness").joinpath("scenarios").iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def load_scenario(ref: str | Path | dict[str, Any], **overrides: Any) -> Scenario:
    """A built-in name ('uniform', 'skewed'), a JSON file path or a dict; overrides win."""
    if isinstance(ref, dict):
        data = dict(ref)
    else:
        path = Path(ref)
        if not path.exists() and str(ref) in builtin_names():
            text = (
                resources.files("dq_agent.harness").joinpath("scenarios", f"{ref}.json").read_text()
            )
        elif path.exists():
            text = path.read_text()
        else:
            raise ScenarioError(f"scenario: no file or built-in named {str(ref)!r}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioError(f"scenario: invalid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(data, dict):
        raise ScenarioError("scenario: must be a JSON object")
    data.update(overrides)
    return parse_scenario(data)
