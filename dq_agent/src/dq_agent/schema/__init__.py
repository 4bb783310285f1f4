"""The run-result JSON schema (contracts §6) and its validator.

`validate(doc)` raises `RunResultError` naming the first bad field; `problems(doc)` lists
them all. Simulated (dq-sim) and real (harness, runner) runs write the same schema.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_NAME = "dqlab-run-result"
SCHEMA_VERSION = 1
SCHEMA_FILE = "run-result.schema.json"


class RunResultError(ValueError):
    """A run-result document does not match the schema."""


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) shipped in this package."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


def problems(doc: Any) -> list[str]:
    """Every schema violation as 'field.path: reason', sorted by path; [] when valid."""
    from jsonschema import Draft202012Validator  # dev/report dependency, imported lazily

    validator = Draft202012Validator(schema())
    errs = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errs]


def validate(doc: Any) -> None:
    """Raise RunResultError with the first problem (field path and reason)."""
    found = problems(doc)
    if found:
        raise RunResultError(found[0])
