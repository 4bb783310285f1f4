"""QMP replies that are errors, truncated, mistyped: the agent sees QmpError, nothing else.

The agent's controller catches QmpError (and HypervisorError) around every QMP call; any
other exception would escape the control loop and stop the agent mid-migration. So every
unusable reply must surface as QmpError.
"""

from __future__ import annotations

from typing import Any

import pytest

from dq_agent.agent.backends.dirty_quota import DirtyQuotaBackend
from dq_agent.agent.qmp import QmpError, unwrap

BAD_REPLY_TEXTS = [
    "",
    '{"return": {}',  # truncated
    '{"retu',
    "[]",
    "null",
    '"return"',
    '{"event": "STOP"}',
    '{"error": "boom"}',  # error that is not an object
    '{"error": null}',
    '{"error": []}',
    '{"error": {"class": "GenericError"}}',
    "\x00\x01\x02",
    '{"return": {}}' * 3,
]


@pytest.mark.parametrize("text", BAD_REPLY_TEXTS)
def test_unwrap_bad_reply_is_qmp_error(text: str) -> None:
    with pytest.raises(QmpError) as ei:
        unwrap("query-dirty-quota", text)
    assert ei.value.command == "query-dirty-quota"
    assert len(str(ei.value)) < 400  # bounded: a huge reply is not echoed whole


def test_unwrap_good_reply() -> None:
    assert unwrap("q", '{"return": {"enabled": false}}') == {"enabled": False}


def test_unwrap_huge_reply_is_bounded() -> None:
    with pytest.raises(QmpError) as ei:
        unwrap("q", "x" * 1_000_000)
    assert len(str(ei.value)) < 400


# `return` values that are well-formed JSON but not what contracts.md §5 promises.
BAD_QUERY_RETURNS: list[Any] = [
    [],
    "enabled",
    None,
    {"enabled": True, "vcpus": "all"},
    {"enabled": True, "vcpus": [{}]},  # no cpu-index
    {"enabled": True, "vcpus": [{"cpu-index": "zero"}]},
    {"enabled": True, "vcpus": [None]},
    {"enabled": True, "pool-pages": "lots", "vcpus": []},
    {"enabled": True, "vcpus": [{"cpu-index": 0, "dirty-pages": [1]}]},
]


@pytest.mark.parametrize("ret", BAD_QUERY_RETURNS, ids=[repr(r)[:40] for r in BAD_QUERY_RETURNS])
def test_dirty_quota_read_bad_return_is_qmp_error(ret: Any) -> None:
    def qmp(command: str, arguments: dict[str, Any] | None) -> Any:
        return ret

    with pytest.raises(QmpError):
        DirtyQuotaBackend().read(qmp)


@pytest.mark.parametrize("ret", [[], None, "x", 5])
def test_dirty_quota_probe_bad_return_is_unavailable_or_qmp_error(ret: Any) -> None:
    def qmp(command: str, arguments: dict[str, Any] | None) -> Any:
        return ret

    try:
        avail = DirtyQuotaBackend().probe(qmp)
    except QmpError:
        return
    assert not avail.available
