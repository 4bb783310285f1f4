"""A domain's own migration-policy declaration, read from its libvirt metadata.

    <metadata><dq:migration xmlns:dq="urn:dqlab:migration:1" policy="dirty-quota"/></metadata>

libvirt returns just the `migration` element (virDomainGetMetadata, ELEMENT type), with
the namespace stripped (`<migration policy="none"/>`, checked against libvirt 9). The
text comes from whoever can edit the domain, so it is bounded and parsed without DTDs or
entities; anything unreadable counts as "declared nothing" (current behaviour holds).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

NAMESPACE = "urn:dqlab:migration:1"
ENFORCED = "dirty-quota"
MAX_XML_CHARS = 4096
# A policy is a short token (none, auto-converge, dirty-quota, future names).
_POLICY = re.compile(r"[a-z][a-z0-9-]{0,31}")


def parse_declared_policy(text: str | None) -> str | None:
    """The declared policy, or None when absent, oversized or malformed."""
    if not text or len(text) > MAX_XML_CHARS or "<!" in text:
        return None  # "<!": DOCTYPE/ENTITY would let a small text expand
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag not in ("migration", f"{{{NAMESPACE}}}migration"):
        return None
    policy = root.get("policy", "").strip()
    return policy if _POLICY.fullmatch(policy) else None


KNOWN = ("none", "auto-converge", "dirty-quota")


def metric_label(declared: str | None) -> str:
    """Bounded label value: a known policy, `other`, or `` when nothing is declared."""
    if declared is None:
        return ""
    return declared if declared in KNOWN else "other"


def throttle_allowed(declared: str | None) -> bool:
    """Only a domain declaring dirty-quota, or declaring nothing, may be throttled."""
    return declared is None or declared == ENFORCED
