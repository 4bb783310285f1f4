"""Parsing a domain's declared migration policy from libvirt metadata (docs/contracts.md §5)."""

from __future__ import annotations

import pytest

from dq_agent.agent.declared import (
    MAX_XML_CHARS,
    metric_label,
    parse_declared_policy,
    throttle_allowed,
)

NS = "urn:dqlab:migration:1"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # What virDomainGetMetadata(ELEMENT) returns: namespace stripped (libvirt 9).
        ('<migration policy="none"/>', "none"),
        (f'<dq:migration xmlns:dq="{NS}" policy="none"/>', "none"),
        (f'<migration xmlns="{NS}" policy="auto-converge"/>', "auto-converge"),
        (f'<dq:migration xmlns:dq="{NS}" policy="dirty-quota"></dq:migration>', "dirty-quota"),
        (None, None),
        ("", None),
        ("<dq:migration", None),  # malformed
        (f'<dq:migration xmlns:dq="{NS}"/>', None),  # no policy attribute
        (f'<dq:migration xmlns:dq="{NS}" policy="No Way"/>', None),  # not a token
        (f'<other xmlns="{NS}" policy="none"/>', None),  # wrong element
        ('<migration xmlns="urn:other" policy="none"/>', None),  # wrong namespace
        (f'<m xmlns="{NS}" policy="none"/>' + " " * MAX_XML_CHARS, None),  # oversized
    ],
)
def test_parse(text: str | None, want: str | None) -> None:
    assert parse_declared_policy(text) == want


def test_entities_are_refused_not_expanded() -> None:
    bomb = (
        '<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f'<migration xmlns="{NS}" policy="&b;"/>'
    )
    assert parse_declared_policy(bomb) is None


def test_only_dirty_quota_or_nothing_may_be_throttled() -> None:
    assert throttle_allowed(None) and throttle_allowed("dirty-quota")
    assert not throttle_allowed("none") and not throttle_allowed("auto-converge")


def test_metric_label_is_bounded() -> None:
    assert [metric_label(p) for p in (None, "none", "dirty-quota", "zzz")] == [
        "",
        "none",
        "dirty-quota",
        "other",
    ]


def test_real_libvirt_returns_what_the_parser_reads() -> None:
    """libvirt's own test driver (in-process, no daemon): set with virsh's key, read back."""
    libvirt = pytest.importorskip("libvirt")
    from dq_agent.agent.hypervisor import LibvirtHypervisor

    conn = libvirt.open("test:///default")  # private in-process state, gone on close
    try:
        dom = conn.lookupByName("test")
        hv = LibvirtHypervisor("test:///default", lambda _ev: None)
        hv._conn = conn  # the test driver has no keepalive, so skip connect()
        assert hv.declared_policy("test") is None  # nothing declared
        for policy in ("none", "dirty-quota"):
            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                f'<migration policy="{policy}"/>',
                "dq",
                NS,
                libvirt.VIR_DOMAIN_AFFECT_LIVE,
            )
            assert hv.declared_policy("test") == policy
    finally:
        conn.close()
