"""Appendable run history: one JSON line per finished run (JSONL).

Why JSONL and not SQLite: a night adds tens of records, the verdict reads them all anyway,
and a line-per-run text file can be appended atomically (one write() with O_APPEND), read
with grep/jq, copied between labs with cat, and kept in a results directory next to the raw
result files it points to. SQLite would add a schema migration story for no query we need.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dq_agent.schema import problems as schema_problems

FORMAT = "dqlab-history/1"

# Environment fields that define "the same machine and software": a change in any of them
# starts a new baseline. The git commit is deliberately NOT one of them: catching
# regressions between commits is the whole point.
ENV_KEY_FIELDS = ("host", "qemu_version", "kernel_version", "accel", "cpu_model", "cpus")


class InputError(Exception):
    """Bad input: one line that names the field; the CLI maps it to exit code 2."""

    def __init__(self, where: str, field_name: str, why: str) -> None:
        super().__init__(f"{where}: field '{field_name}': {why}")
        self.field = field_name


@dataclass(frozen=True)
class HistoryRecord:
    night: str
    run_id: str
    scenario: str
    bandwidth: str
    policy: str
    kind: str
    metrics: dict[str, float]
    environment: dict[str, Any]
    env_key: str
    result_file: str
    created: str = ""
    # Why the run did not happen (kind "unavailable": the policy cannot work here).
    note: str = ""
    format: str = field(default=FORMAT)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def host_facts() -> dict[str, Any]:
    """Facts about the machine that ran the job (recorded; cpu_model/cpus feed env_key)."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "node": platform.node(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count() or 0,
        "mem_total_bytes": mem_kib * 1024,
        "os_kernel": platform.release(),
        "python": platform.python_version(),
    }


def env_key(environment: Mapping[str, Any]) -> str:
    picked = {k: environment.get(k) for k in ENV_KEY_FIELDS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:12]


def bandwidth_label(rate_bps: float) -> str:
    """100000000 -> '100mbit' (the tc spelling people use for scenarios)."""
    if rate_bps >= 1e9 and rate_bps % 1e9 == 0:
        return f"{rate_bps / 1e9:g}gbit"
    return f"{rate_bps / 1e6:g}mbit"


def scenario_name(scenario: Mapping[str, Any]) -> str:
    for key in ("name", "workload", "id"):
        value = scenario.get(key)
        if isinstance(value, str) and value:
            return value
    return "unnamed"


def _need(obj: Mapping[str, Any], key: str, where: str, path: str) -> Any:
    if key not in obj:
        raise InputError(where, path, "missing")
    return obj[key]


def _number(value: Any, where: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(where, path, f"expected a number, got {value!r}")
    return float(value)


def metrics_of(summary: Mapping[str, Any], where: str) -> dict[str, float]:
    """The per-run numbers the verdict judges (schema §6 summary)."""
    converged = _need(summary, "converged", where, "summary.converged")
    if not isinstance(converged, bool):
        raise InputError(where, "summary.converged", f"expected true/false, got {converged!r}")
    vcpus = _need(summary, "vcpus", where, "summary.vcpus")
    if not isinstance(vcpus, list):
        raise InputError(where, "summary.vcpus", "expected a list")
    # null = not measured for that vCPU (schema allows it): left out, not counted as 0
    retained = [
        _number(v["throughput_retained"], where, f"summary.vcpus[{i}].throughput_retained")
        for i, v in enumerate(vcpus)
        if v.get("throughput_retained") is not None
    ]
    out = {
        "converged": 1.0 if converged else 0.0,
        "total_time_s": _number(
            _need(summary, "total_time_s", where, "summary.total_time_s"),
            where,
            "summary.total_time_s",
        ),
        "bytes_sent": _number(
            _need(summary, "bytes_sent", where, "summary.bytes_sent"), where, "summary.bytes_sent"
        ),
    }
    # Downtime only exists for a converged run; a cancelled one has none to judge.
    downtime = summary.get("downtime_ms")
    if converged and downtime is not None:
        out["downtime_ms"] = _number(downtime, where, "summary.downtime_ms")
    if retained:
        out["throughput_retained"] = sum(retained) / len(retained)
        out["throughput_retained_min"] = min(retained)
    return out


def record_from_result(
    result: Mapping[str, Any],
    result_file: str,
    night: str,
    facts: Mapping[str, Any] | None = None,
) -> HistoryRecord:
    """Turn one run-result JSON (contracts §6) into a history record."""
    where = result_file
    found = schema_problems(result)
    if found:  # the engine's validator names the field: "summary.vcpus[0].vcpu: reason"
        path, _, why = found[0].partition(": ")
        missing = re.fullmatch(r"'(\w+)' is a required property", why)
        if missing:  # name the missing field itself, not its parent
            path = missing.group(1) if path == "(document)" else f"{path}.{missing.group(1)}"
            why = "missing"
        raise InputError(where, path, why)
    scenario = _need(result, "scenario", where, "scenario")
    policy = _need(result, "policy", where, "policy")
    link = _need(result, "link", where, "link")
    summary = _need(result, "summary", where, "summary")
    env = dict(_need(result, "environment", where, "environment"))
    rate = _number(_need(link, "rate_bps", where, "link.rate_bps"), where, "link.rate_bps")
    policy_name = _need(policy, "name", where, "policy.name")
    if not isinstance(policy_name, str) or not policy_name:
        raise InputError(where, "policy.name", "expected a non-empty string")
    # The harness writes a result even when the policy cannot run here (e.g. dirty-quota on
    # a stock QEMU): kept as kind "unavailable", never judged, pushed or plotted as a run.
    unavailable = str(summary.get("unavailable") or "")
    merged_facts = dict(facts or {})
    # Host facts fill in what the result itself does not say (never override it).
    for key in ("cpu_model", "cpus"):
        if key not in env and key in merged_facts:
            env[key] = merged_facts[key]
    env["host_facts"] = merged_facts
    return HistoryRecord(
        night=night,
        run_id=str(_need(result, "run_id", where, "run_id")),
        scenario=scenario_name(scenario),
        bandwidth=bandwidth_label(rate),
        policy=policy_name,
        kind="unavailable" if unavailable else str(result.get("kind", "real")),
        metrics={} if unavailable else metrics_of(summary, where),
        environment=env,
        env_key=env_key(env),
        result_file=result_file,
        created=str(result.get("created", "")),
        note=unavailable,
    )


def append(path: Path, records: Iterable[HistoryRecord]) -> int:
    """Append records; each line goes out in one write so a crash never leaves half a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for rec in records:
            os.write(fd, (rec.to_json() + "\n").encode())
            n += 1
    finally:
        os.close(fd)
    return n


def load(path: Path) -> list[HistoryRecord]:
    if not path.exists():
        return []
    out: list[HistoryRecord] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(where, "<line>", f"not JSON ({exc.msg})") from None
        if raw.get("format") != FORMAT:
            raise InputError(where, "format", f"expected {FORMAT!r}, got {raw.get('format')!r}")
        try:
            out.append(HistoryRecord(**raw))
        except TypeError as exc:
            raise InputError(where, "<record>", str(exc)) from None
    return out
