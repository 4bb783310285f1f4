"""Run-result schema v1: validator and CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dq_agent.schema import SCHEMA_VERSION, RunResultError, problems, schema, validate


def minimal() -> dict[str, Any]:
    return {
        "schema": "dqlab-run-result",
        "schema_version": SCHEMA_VERSION,
        "kind": "real",
        "run_id": "r1",
        "created": "2026-11-30T16:00:00Z",
        "scenario": {"name": "s"},
        "policy": {"name": "none", "params": {}},
        "summary": {
            "converged": False,
            "total_time_s": 12.5,
            "downtime_ms": None,
            "bytes_sent": 10,
            "iterations": 3,
            "vcpus": [{"vcpu": 0, "throughput_retained": 0.5, "runtime_pct": 50.0}],
        },
    }


def test_schema_file_is_versioned_draft_2020_12() -> None:
    s = schema()
    assert s["$schema"].endswith("2020-12/schema")
    assert s["properties"]["schema_version"]["maximum"] == SCHEMA_VERSION == 1


def test_minimal_document_is_valid_and_extra_fields_are_allowed() -> None:
    doc = minimal()
    validate(doc)
    doc["harness_extra"] = {"anything": 1}
    doc["summary"]["vcpus"][0]["sleep_ns"] = 5
    doc["progress"] = [{"t": 0.5, "status": "active", "mystery": True}]
    assert problems(doc) == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("run_id"), "run_id"),
        (lambda d: d.update(kind="guess"), "kind"),
        (lambda d: d.update(schema_version=99), "schema_version"),
        (lambda d: d.update(created="yesterday"), "created"),
        (lambda d: d["summary"].pop("converged"), "converged"),
        (lambda d: d["summary"].update(bytes_sent=-1), "summary.bytes_sent"),
        (
            lambda d: d["summary"]["vcpus"][0].update(runtime_pct=101),
            "summary.vcpus[0].runtime_pct",
        ),
        (lambda d: d["policy"].pop("params"), "params"),
        (lambda d: d.update(progress=[{"t": -1, "status": "x"}]), "progress[0].t"),
    ],
)
def test_errors_name_the_field(mutate: Any, field: str) -> None:
    doc = copy.deepcopy(minimal())
    mutate(doc)
    with pytest.raises(RunResultError, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate(doc)


def test_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(minimal()))
    bad_doc = minimal()
    bad_doc["kind"] = "nope"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_doc))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dq_agent.schema", *map(str, files)],
            capture_output=True,
            text=True,
        )

    ok = run(good)
    assert ok.returncode == 0 and "ok" in ok.stdout
    no = run(good, bad)
    assert no.returncode == 1 and "kind" in no.stdout
    broken = run(junk)
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr and len(broken.stderr.strip().splitlines()) == 1
    missing = run(tmp_path / "absent.json")
    assert missing.returncode == 2 and "absent.json" in missing.stderr
