"""Walk the versioned dashboards: panels, queries, variables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"

# What Grafana substitutes at query time; "All" selections become the allValue ".*".
SUBSTITUTIONS = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "1h",
}


def files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])  # collapsed rows


def concrete(expr: str, dash: dict[str, Any]) -> str:
    for k, v in SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            expr = re.sub(r"\$\{?" + var["name"] + r"\}?\b", ".*", expr)
    return expr


def queries(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, concrete PromQL) for every panel target and annotation query."""
    for p in panels(dash):
        for t in p.get("targets", []):
            yield (
                f"{dash['uid']} panel {p['id']} '{p['title']}' {t['refId']}",
                concrete(t["expr"], dash),
            )
    for a in dash["annotations"]["list"]:
        if "expr" in a:
            yield f"{dash['uid']} annotation '{a['name']}'", concrete(a["expr"], dash)


def variable_queries(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """label_values(metric, label) -> a PromQL query that lists that label's values."""
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
        assert m, f"{dash['uid']} variable {var['name']}: unsupported query {q}"
        yield (
            f"{dash['uid']} variable {var['name']}",
            concrete(f"group by ({m.group(2)}) ({m.group(1)})", dash),
        )
