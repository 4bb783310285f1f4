"""Static checks of the versioned Grafana dashboards (no Grafana needed)."""

from __future__ import annotations

import json

from dashboards_lib import files, load, panels, queries

EXPECTED = {"dqlab-runs-overview", "dqlab-migration", "dqlab-agent-health"}


def test_three_dashboards_well_formed_with_unique_uids() -> None:
    uids = []
    for f in files():
        json.loads(f.read_text())  # well-formed
        d = load(f)
        assert d["schemaVersion"] >= 36 and d["title"].startswith("dqlab / ")
        uids.append(d["uid"])
    assert sorted(uids) == sorted(EXPECTED)


def test_panel_ids_unique_and_every_panel_has_unit_and_query() -> None:
    for f in files():
        d = load(f)
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), f"{f.name}: duplicate panel ids {ids}"
        for p in panels(d):
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
            assert unit, f"{f.name}: panel '{p['title']}' has no unit"
            assert p.get("targets"), f"{f.name}: panel '{p['title']}' has no query"
            assert p.get("gridPos"), f"{f.name}: panel '{p['title']}' has no position"


def test_datasources_are_variables() -> None:
    for f in files():
        d = load(f)
        ds_vars = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
        assert [v["name"] for v in ds_vars] == ["datasource"], f.name
        users = [
            *panels(d),
            *(t for p in panels(d) for t in p["targets"]),
            *(a for a in d["annotations"]["list"] if "expr" in a),
            *(v for v in d["templating"]["list"] if v["type"] == "query"),
        ]
        for u in users:
            assert u["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (f.name, u)


def test_rates_use_rate_interval() -> None:
    for f in files():
        d = load(f)
        for p in panels(d):
            for t in p["targets"]:
                if "rate(" in t["expr"] or "increase(" in t["expr"]:
                    assert "[$__rate_interval]" in t["expr"], (f.name, p["title"], t["expr"])
    # and every dashboard query parses into something concrete
    assert all(q for f in files() for _, q in queries(load(f)))
