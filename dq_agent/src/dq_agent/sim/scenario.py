"""Scenario files (TOML or JSON): the guest, its per-vCPU dirty profiles and the link.

Every problem is reported as a ScenarioError whose message names the field, e.g.
`vcpus[1].working_set: must be > 0`.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dq_agent.sim.units import parse_rate, parse_size

PATTERNS = ("sequential", "random")


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message starts with the field path."""


@dataclass(frozen=True)
class Phase:
    """From `at_s` on, these fields replace the vCPU's profile (None = unchanged)."""

    at_s: float
    rate_bps: float | None = None
    write_share: float | None = None
    working_set_bytes: float | None = None


@dataclass(frozen=True)
class VcpuProfile:
    """One vCPU: memory bandwidth while running, share of it that writes, working set."""

    rate_bps: float
    write_share: float
    working_set_bytes: float
    pattern: str
    ops_per_s: float
    phases: tuple[Phase, ...] = ()

    def at(self, t: float) -> tuple[float, float, float]:
        """(rate, write_share, working_set) in force at time t."""
        rate, share, ws = self.rate_bps, self.write_share, self.working_set_bytes
        for ph in self.phases:
            if ph.at_s > t:
                break
            rate = rate if ph.rate_bps is None else ph.rate_bps
            share = share if ph.write_share is None else ph.write_share
            ws = ws if ph.working_set_bytes is None else ph.working_set_bytes
        return rate, share, ws


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    ram_bytes: float
    link_rate_bps: float
    link_changes: tuple[tuple[float, float], ...]
    vcpus: tuple[VcpuProfile, ...]
    downtime_limit_ms: float
    timeout_s: float
    bitmap_sync_ms_per_gib: float
    policy_params: Mapping[str, Mapping[str, Any]]
    source: str = ""
    # published total times per policy, for orientation only (never used by the model)
    reference_total_s: Mapping[str, float] = field(default_factory=dict)
    reference_source: str = ""

    def link_at(self, t: float) -> float:
        rate = self.link_rate_bps
        for at, r in self.link_changes:
            if at > t:
                break
            rate = r
        return rate

    def as_dict(self) -> dict[str, Any]:
        """Scenario echo for the run result (plain numbers, bytes and seconds)."""
        return {
            "name": self.name,
            "description": self.description,
            "ram_bytes": self.ram_bytes,
            "link_rate_Bps": self.link_rate_bps,
            "link_changes": [{"at_s": a, "rate_Bps": r} for a, r in self.link_changes],
            "downtime_limit_ms": self.downtime_limit_ms,
            "timeout_s": self.timeout_s,
            "vcpus": [
                {
                    "rate_Bps": v.rate_bps,
                    "write_share": v.write_share,
                    "working_set_bytes": v.working_set_bytes,
                    "pattern": v.pattern,
                    "phases": [p.__dict__ for p in v.phases],
                }
                for v in self.vcpus
            ],
            "source": self.source,
            "reference": {"source": self.reference_source, "total_s": dict(self.reference_total_s)},
        }


# --- parsing -------------------------------------------------------------------------

_TOP = {
    "name",
    "description",
    "ram",
    "link",
    "vcpus",
    "downtime_limit_ms",
    "timeout_s",
    "bitmap_sync_ms_per_gib",
    "policies",
    "reference",
}
_REFERENCE = {"source", "total_s"}
_VCPU = {"rate", "write_share", "working_set", "pattern", "count", "ops_per_s", "phases"}
_PHASE = {"at_s", "rate", "write_share", "working_set"}
_LINK = {"rate", "changes"}
_CHANGE = {"at_s", "rate"}


def _fail(field: str, why: str) -> ScenarioError:
    return ScenarioError(f"{field or '(top level)'}: {why}")


def _table(raw: Any, field: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be a table/object")
    for key in raw:
        if key not in allowed:
            raise _fail(f"{field}.{key}" if field else str(key), "unknown field")
    return raw


def _number(raw: Any, field: str, lo: float, hi: float = math.inf, lo_open: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _fail(field, "must be a number")
    if raw < lo or (lo_open and raw == lo) or raw > hi:
        op = ">" if lo_open else ">="
        bound = f"{op} {lo:g}" + (f" and <= {hi:g}" if hi != math.inf else "")
        raise _fail(field, f"must be {bound}, got {raw:g}")
    return float(raw)


def _size(raw: Any, field: str, positive: bool) -> float:
    try:
        v = parse_size(raw)
    except ValueError as e:
        raise _fail(field, str(e)) from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise _fail(field, "must be > 0" if positive else "must be >= 0")
    return v


def _rate(raw: Any, field: str, positive: bool) -> float:
    try:
        v = parse_rate(raw)
    except ValueError as e:
        raise _fail(field, str(e)) from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise _fail(field, "must be > 0" if positive else "must be >= 0")
    return v


def _require(raw: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in raw:
        raise _fail(f"{field}.{key}" if field else key, "missing")
    return raw[key]


def _phases(raw: Any, field: str) -> tuple[Phase, ...]:
    if not isinstance(raw, list):
        raise _fail(field, "must be a list")
    out: list[Phase] = []
    for k, item in enumerate(raw):
        f = f"{field}[{k}]"
        ph = _table(item, f, _PHASE)
        at = _number(_require(ph, "at_s", f), f"{f}.at_s", 0)
        if out and at <= out[-1].at_s:
            raise _fail(f"{f}.at_s", "phases must be in increasing at_s order")
        out.append(
            Phase(
                at_s=at,
                rate_bps=_rate(ph["rate"], f"{f}.rate", False) if "rate" in ph else None,
                write_share=(
                    _number(ph["write_share"], f"{f}.write_share", 0, 1)
                    if "write_share" in ph
                    else None
                ),
                working_set_bytes=(
                    _size(ph["working_set"], f"{f}.working_set", True)
                    if "working_set" in ph
                    else None
                ),
            )
        )
    return tuple(out)


def _vcpus(raw: Any, ram: float) -> tuple[VcpuProfile, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("vcpus", "must be a non-empty list")
    out: list[VcpuProfile] = []
    for k, item in enumerate(raw):
        f = f"vcpus[{k}]"
        v = _table(item, f, _VCPU)
        count = v.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4096:
            raise _fail(f"{f}.count", "must be an integer 1..4096")
        rate = _rate(_require(v, "rate", f), f"{f}.rate", False)
        share = _number(v.get("write_share", 1.0), f"{f}.write_share", 0, 1)
        ws = _size(v.get("working_set", ram), f"{f}.working_set", True)
        if ws > ram:
            raise _fail(f"{f}.working_set", "larger than ram")
        pattern = v.get("pattern", "sequential")
        if pattern not in PATTERNS:
            raise _fail(f"{f}.pattern", f"must be one of {', '.join(PATTERNS)}")
        ops = _number(v.get("ops_per_s", 1e6), f"{f}.ops_per_s", 0)
        phases = _phases(v.get("phases", []), f"{f}.phases")
        for p_idx, ph in enumerate(phases):
            if ph.working_set_bytes is not None and ph.working_set_bytes > ram:
                raise _fail(f"{f}.phases[{p_idx}].working_set", "larger than ram")
        out.extend(VcpuProfile(rate, share, ws, pattern, ops, phases) for _ in range(count))
    if len(out) > 4096:
        raise _fail("vcpus", "more than 4096 vCPUs")
    return tuple(out)


def _policies(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise _fail("policies", "must be a table/object")
    out: dict[str, dict[str, Any]] = {}
    for name, params in raw.items():
        if not isinstance(params, Mapping):
            raise _fail(f"policies.{name}", "must be a table/object")
        out[str(name)] = dict(params)
    return out


def _reference(raw: Any) -> tuple[dict[str, float], str]:
    ref = _table(raw, "reference", _REFERENCE)
    src = ref.get("source", "")
    if not isinstance(src, str):
        raise _fail("reference.source", "must be a string")
    totals = _table(ref.get("total_s", {}), "reference.total_s", set(ref.get("total_s", {})))
    out = {str(k): _number(v, f"reference.total_s.{k}", 0, lo_open=True) for k, v in totals.items()}
    return out, src


def scenario_from_mapping(raw: Any, source: str = "") -> Scenario:
    """Validate a parsed TOML/JSON document into a Scenario (ScenarioError on problems)."""
    top = _table(raw, "", _TOP)
    name = _require(top, "name", "")
    if not isinstance(name, str) or not name.strip():
        raise _fail("name", "must be a non-empty string")
    desc = top.get("description", "")
    if not isinstance(desc, str):
        raise _fail("description", "must be a string")
    ram = _size(_require(top, "ram", ""), "ram", True)
    if ram < 4096:
        raise _fail("ram", "must be at least one page (4096 B)")
    link = _table(_require(top, "link", ""), "link", _LINK)
    link_rate = _rate(_require(link, "rate", "link"), "link.rate", True)
    changes: list[tuple[float, float]] = []
    raw_changes = link.get("changes", [])
    if not isinstance(raw_changes, list):
        raise _fail("link.changes", "must be a list")
    for k, ch in enumerate(raw_changes):
        f = f"link.changes[{k}]"
        c = _table(ch, f, _CHANGE)
        at = _number(_require(c, "at_s", f), f"{f}.at_s", 0)
        if changes and at <= changes[-1][0]:
            raise _fail(f"{f}.at_s", "changes must be in increasing at_s order")
        changes.append((at, _rate(_require(c, "rate", f), f"{f}.rate", False)))
    vcpus = _vcpus(_require(top, "vcpus", ""), ram)
    downtime = _number(top.get("downtime_limit_ms", 300), "downtime_limit_ms", 0, 600_000, True)
    timeout = _number(top.get("timeout_s", 600), "timeout_s", 0, 1e6, True)
    sync_cost = _number(top.get("bitmap_sync_ms_per_gib", 0.25), "bitmap_sync_ms_per_gib", 0, 1e4)
    policies = _policies(top.get("policies", {}))
    ref_totals, ref_source = _reference(top.get("reference", {}))
    return Scenario(
        name=name,
        description=desc,
        ram_bytes=ram,
        link_rate_bps=link_rate,
        link_changes=tuple(changes),
        vcpus=vcpus,
        downtime_limit_ms=downtime,
        timeout_s=timeout,
        bitmap_sync_ms_per_gib=sync_cost,
        policy_params=policies,
        source=source,
        reference_total_s=ref_totals,
        reference_source=ref_source,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read a .toml or .json scenario file; a shipped scenario may be given by name."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and str(path) in shipped_names():
        p = shipped_dir() / f"{path}.toml"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    try:
        raw = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except ValueError as e:  # decode errors, and ints past Python's digit limit
        raise ScenarioError(f"{path}: not valid {p.suffix.lstrip('.') or 'TOML'}: {e}") from None
    try:
        return scenario_from_mapping(raw, str(p))
    except ScenarioError as e:
        raise ScenarioError(f"{p.name}: {e}") from None


def shipped_dir() -> Path:
    return Path(str(resources.files("dq_agent.sim").joinpath("scenarios")))


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.toml"))
