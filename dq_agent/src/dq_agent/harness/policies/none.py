"""Policy `none`: plain pre-copy, nothing slows the guest."""

from __future__ import annotations

from typing import Any

from dq_agent.harness.policies import Policy, no_unknown

NAME = "none"


def make(params: dict[str, Any]) -> Policy:
    no_unknown(params, set())
    return Policy(params)
