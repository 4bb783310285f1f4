"""Bounded fuzzing of the config and scenario parsers (hypothesis; whole file < 60 s).

Property: any document is either accepted or refused with the parser's own error type,
whose message starts with a field path. Never another exception (that would be a
traceback at the CLI).
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dq_agent.agent.config import ConfigError, load, parse

FUZZ = settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# Leaves that probe every type check and bound: edge ints, non-finite floats, odd strings.
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 49, 50, 5000, 5001, 65535, 65536, 2**40, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "qemu:///system",
            "dirty-quota",
            "info",
            "4 GiB",
            "100 Mbit/s",
            "1e999 GiB",
            "sequential",
            "random",
            "",
        ]
    ),
)


def doc_with(keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested tables whose keys are mostly real field names (so fuzzing gets past the top)."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=6)
        ),
        max_leaves=25,
    )


AGENT_KEYS = [
    "libvirt",
    "uri",
    "metrics",
    "listen_address",
    "port",
    "host_label",
    "control",
    "backend",
    "tick_ms",
    "interval_ms",
    "deadline_ms",
    "window",
    "convergence_factor",
    "pool_cap_budgets",
    "start_immediately",
    "log",
    "level",
    "domains",
    "enabled",
    "weight",
    "vcpu_weights",
    "link",
    "web",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(AGENT_KEYS), doc_with(AGENT_KEYS), max_size=6))
def test_agent_config_parse_never_crashes(doc: dict[str, Any]) -> None:
    try:
        parse(doc)
    except ConfigError as e:
        assert e.field and str(e).startswith(e.field + ":")


@FUZZ
@given(st.text(max_size=300))
def test_agent_config_text_never_crashes(tmp_path_factory: Any, text: str) -> None:
    p: Path = tmp_path_factory.mktemp("cfg") / "agent.toml"
    p.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        load(p)


SCENARIO_KEYS = [
    "name",
    "description",
    "ram",
    "link",
    "rate",
    "changes",
    "at_s",
    "vcpus",
    "count",
    "write_share",
    "working_set",
    "pattern",
    "ops_per_s",
    "phases",
    "downtime_limit_ms",
    "timeout_s",
    "bitmap_sync_ms_per_gib",
    "policies",
]


def _scenario_api() -> tuple[Any, Any, Any]:
    from conftest import require

    try:
        from dq_agent.sim.scenario import ScenarioError, load_scenario, scenario_from_mapping
    except ImportError as e:  # the simulator is another part; CI must have it
        require(False, f"dq_agent.sim.scenario not importable: {e}")
        raise
    return ScenarioError, load_scenario, scenario_from_mapping


VALID_SCENARIO = {
    "name": "fuzz-base",
    "ram": "64 MiB",
    "link": {"rate": "100 Mbit/s"},
    "vcpus": [{"rate": "20 MB/s", "working_set": "8 MiB"}, {"rate": "2 MB/s"}],
}


@FUZZ
@given(
    st.dictionaries(st.sampled_from(SCENARIO_KEYS), doc_with(SCENARIO_KEYS), max_size=6),
    st.booleans(),
)
def test_scenario_mapping_never_crashes(patch: dict[str, Any], on_valid_base: bool) -> None:
    err, _, from_mapping = _scenario_api()
    doc = {**VALID_SCENARIO, **patch} if on_valid_base else patch
    try:
        from_mapping(doc)
    except err as e:
        assert str(e).split(":", 1)[0] != "", str(e)


@FUZZ
@given(st.text(max_size=300), st.sampled_from([".toml", ".json"]))
def test_scenario_text_never_crashes(tmp_path_factory: Any, text: str, suffix: str) -> None:
    err, load_scenario, _ = _scenario_api()
    p: Path = tmp_path_factory.mktemp("scn") / f"s{suffix}"
    p.write_text(text, encoding="utf-8")
    with contextlib.suppress(err):
        load_scenario(p)


# Inputs that JSON or TOML accept but Python's float/int conversions do not: found by
# reading the parsers, kept here as fixed regressions next to the fuzzing.
HUGE_INT_JSON = (
    '{"name": "x", "ram": 1' + "0" * 400 + ', "link": {"rate": 1}, "vcpus": [{"rate": 1}]}'
)
MANY_DIGITS_JSON = '{"name": "x", "ram": ' + "1" * 5000 + "}"


def test_scenario_huge_json_int_is_refused(tmp_path: Path) -> None:
    err, load_scenario, _ = _scenario_api()
    for i, text in enumerate([HUGE_INT_JSON, MANY_DIGITS_JSON]):
        p = tmp_path / f"huge{i}.json"
        p.write_text(text)
        try:
            load_scenario(p)
        except err as e:
            assert "ram" in str(e) or "not valid" in str(e), str(e)
        else:
            raise AssertionError("a 400-digit ram was accepted")


def test_agent_config_roundtrip_sanity() -> None:
    """The fuzz strategy reaches real fields: a sampled valid doc parses."""
    cfg = parse(tomllib.loads('[control]\nbackend = "observe"\n'))
    assert cfg.backend == "observe"
    assert json.dumps(VALID_SCENARIO)


HARNESS_KEYS = [
    "name", "memory_mib", "link_mbit", "baseline_s", "timeout_s", "downtime_limit_ms",
    "report_ms", "vcpus", "phases", "kind", "rate_mbps", "ws_mib", "write_pct", "pattern",
    "dur_s",
]  # fmt: skip
VALID_HARNESS = {"name": "fuzz", "vcpus": [{"phases": [{"kind": "dirty", "ws_mib": 8}]}]}


@FUZZ
@given(
    st.dictionaries(st.sampled_from(HARNESS_KEYS), doc_with(HARNESS_KEYS), max_size=6),
    st.booleans(),
)
def test_harness_scenario_never_crashes(patch: dict[str, Any], on_valid_base: bool) -> None:
    from dq_agent.harness.errors import ScenarioError as HarnessScenarioError
    from dq_agent.harness.scenario import parse_scenario

    doc = {**VALID_HARNESS, **patch} if on_valid_base else patch
    with contextlib.suppress(HarnessScenarioError):
        parse_scenario(doc)
