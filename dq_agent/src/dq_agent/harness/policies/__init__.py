"""Migration policies as plug-ins: one module per policy, discovered by name.

A module defines `NAME` and `make(params) -> Policy`. Adding a policy = adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Protocol

from dq_agent.harness.errors import ScenarioError


class MigrationContext(Protocol):
    """What a policy sees of the run (implemented by harness.run.Run)."""

    async def src_cmd(self, name: str, **args: Any) -> Any: ...

    def elapsed(self) -> float: ...


class Policy:
    """Base: the `none` behaviour. Hooks are awaited by the harness in this order:
    check -> prepare (before `migrate`) -> on_poll (every progress record) -> finish."""

    name = "none"

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    async def check(self, ctx: MigrationContext) -> None:
        """Raise PolicyUnavailable(reason) when it cannot work here."""

    async def prepare(self, ctx: MigrationContext) -> None:
        """Set capabilities/parameters on the source before `migrate`."""

    async def on_poll(self, ctx: MigrationContext, record: dict[str, Any]) -> None:
        """Called once per progress record; may add fields to it."""

    async def finish(self, ctx: MigrationContext) -> None:
        """After the migration ended (completed, failed or cancelled)."""


def _module_name(name: str) -> str:
    return name.replace("-", "_")


def available() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.ispkg)


def make_policy(name: str, params: dict[str, Any] | None = None) -> Policy:
    """Instantiate a policy; unknown names or bad params raise ScenarioError."""
    if name not in available():
        raise ScenarioError(f"policy: unknown {name!r} (known: {', '.join(available())})")
    mod = importlib.import_module(f"{__name__}.{_module_name(name)}")
    policy: Policy = mod.make(dict(params or {}))
    return policy


def int_param(params: dict[str, Any], key: str, lo: int, hi: int, default: int) -> int:
    v = params.get(key, default)
    if isinstance(v, str) and v.lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ScenarioError(f"policy.params.{key}: must be an integer in [{lo}, {hi}]")
    return int(v)


def float_param(params: dict[str, Any], key: str, lo: float, hi: float, default: float) -> float:
    v = params.get(key, default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ScenarioError(f"policy.params.{key}: must be a number") from None
    if not lo <= f <= hi:
        raise ScenarioError(f"policy.params.{key}: must be in [{lo:g}, {hi:g}]")
    return f


def no_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    for k in params:
        if k not in allowed:
            raise ScenarioError(f"policy.params.{k}: unknown parameter")
