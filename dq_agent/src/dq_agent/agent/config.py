"""The agent's TOML configuration: parsed once at start-up, every field validated.

A bad value raises ConfigError naming the dotted field; the CLI prints that one line and
exits 2. Unknown keys are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("auto", "dirty-quota", "dirty-limit", "observe")
LOG_LEVELS = ("debug", "info", "warning", "error")
_LIBVIRT_URI = re.compile(r"^[a-z][a-z0-9+]*://[^\s]*$")
_DOMAIN_NAME = re.compile(r"^[A-Za-z0-9_.+:-]{1,200}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_.-]{0,253}$")


class ConfigError(ValueError):
    """A config problem, with the dotted name of the offending field."""

    def __init__(self, fieldname: str, problem: str) -> None:
        super().__init__(f"{fieldname}: {problem}")
        self.field = fieldname


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """Per-domain settings: link-share weight, per-vCPU weights, or opt-out."""

    enabled: bool = True
    weight: int = 1
    vcpu_weights: tuple[int, ...] = ()
    link: str = "default"


@dataclass(frozen=True, slots=True)
class Config:
    libvirt_uri: str = "qemu:///system"
    listen_address: str = "127.0.0.1"
    port: int = 9177
    host_label: str = ""
    backend: str = "auto"
    tick_ms: int = 200
    interval_ms: int = 10
    deadline_ms: int = 3000
    window: int = 5
    convergence_factor: float = 0.5
    pool_cap_budgets: int = 4
    start_immediately: bool = True
    log_level: str = "info"
    domains: dict[str, DomainPolicy] = field(default_factory=dict)

    def policy_for(self, domain: str) -> DomainPolicy:
        return self.domains.get(domain, DomainPolicy())


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be an integer {lo}..{hi}, got {value}")
    return int(value)


def _float(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number in ({lo}, {hi}], got {value!r}")
    if not lo < float(value) <= hi:
        raise ConfigError(name, f"must be a number in ({lo}, {hi}], got {value}")
    return float(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, f"must be true or false, got {value!r}")
    return value


def _table(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return dict(value)


def _no_leftovers(table: dict[str, Any], prefix: str) -> None:
    for key in table:
        raise ConfigError(f"{prefix}{key}", "unknown setting")


def _domain(name: str, raw: Any) -> DomainPolicy:
    where = f"domains.{name}"
    if not _DOMAIN_NAME.match(name):
        raise ConfigError(where, "domain name has characters libvirt does not allow")
    t = _table(raw, where)
    enabled = _bool(t.pop("enabled", True), f"{where}.enabled")
    weight = _int(t.pop("weight", 1), f"{where}.weight", 1, 1000)
    vw_raw = t.pop("vcpu_weights", [])
    if not isinstance(vw_raw, list):
        raise ConfigError(f"{where}.vcpu_weights", "must be a list of integers 1..1000")
    vcpu_weights = tuple(
        _int(w, f"{where}.vcpu_weights[{i}]", 1, 1000) for i, w in enumerate(vw_raw)
    )
    link = _str(t.pop("link", "default"), f"{where}.link")
    if not _HOST_LABEL.match(link) or not link:
        raise ConfigError(f"{where}.link", "must be a short name of letters, digits, . _ -")
    _no_leftovers(t, f"{where}.")
    return DomainPolicy(enabled, weight, vcpu_weights, link)


def parse(doc: dict[str, Any]) -> Config:
    """Validate a parsed TOML document into a Config (raises ConfigError)."""
    doc = dict(doc)
    d = Config()
    lv = _table(doc.pop("libvirt", {}), "libvirt")
    uri = _str(lv.pop("uri", d.libvirt_uri), "libvirt.uri")
    if not _LIBVIRT_URI.match(uri):
        raise ConfigError("libvirt.uri", f"not a libvirt URI: {uri!r}")
    _no_leftovers(lv, "libvirt.")

    mt = _table(doc.pop("metrics", {}), "metrics")
    addr = _str(mt.pop("listen_address", d.listen_address), "metrics.listen_address")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise ConfigError("metrics.listen_address", f"not an IP address: {addr!r}") from None
    port = _int(mt.pop("port", d.port), "metrics.port", 1, 65535)
    host_label = _str(mt.pop("host_label", d.host_label), "metrics.host_label")
    if not _HOST_LABEL.match(host_label):
        raise ConfigError("metrics.host_label", "must be letters, digits, . _ - (or empty)")
    _no_leftovers(mt, "metrics.")

    ct = _table(doc.pop("control", {}), "control")
    backend = _str(ct.pop("backend", d.backend), "control.backend")
    if backend not in BACKENDS:
        raise ConfigError("control.backend", f"must be one of {', '.join(BACKENDS)}")
    tick_ms = _int(ct.pop("tick_ms", d.tick_ms), "control.tick_ms", 50, 5000)
    interval_ms = _int(ct.pop("interval_ms", d.interval_ms), "control.interval_ms", 1, 1000)
    deadline_ms = _int(ct.pop("deadline_ms", d.deadline_ms), "control.deadline_ms", 100, 600000)
    if deadline_ms < 2 * tick_ms:
        raise ConfigError("control.deadline_ms", "must be at least 2 x control.tick_ms")
    window = _int(ct.pop("window", d.window), "control.window", 1, 100)
    factor = _float(
        ct.pop("convergence_factor", d.convergence_factor), "control.convergence_factor", 0, 1
    )
    pool_cap = _int(
        ct.pop("pool_cap_budgets", d.pool_cap_budgets), "control.pool_cap_budgets", 0, 100
    )
    start_now = _bool(ct.pop("start_immediately", d.start_immediately), "control.start_immediately")
    _no_leftovers(ct, "control.")

    lg = _table(doc.pop("log", {}), "log")
    level = _str(lg.pop("level", d.log_level), "log.level")
    if level not in LOG_LEVELS:
        raise ConfigError("log.level", f"must be one of {', '.join(LOG_LEVELS)}")
    _no_leftovers(lg, "log.")

    dt = _table(doc.pop("domains", {}), "domains")
    domains = {name: _domain(name, raw) for name, raw in dt.items()}
    _no_leftovers(doc, "")
    return Config(
        libvirt_uri=uri,
        listen_address=addr,
        port=port,
        host_label=host_label,
        backend=backend,
        tick_ms=tick_ms,
        interval_ms=interval_ms,
        deadline_ms=deadline_ms,
        window=window,
        convergence_factor=factor,
        pool_cap_budgets=pool_cap,
        start_immediately=start_now,
        log_level=level,
        domains=domains,
    )


def load(path: Path) -> Config:
    """Read and validate a config file; every problem is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("file", f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("file", f"{path} is not UTF-8") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("file", f"TOML syntax: {e}") from None
    return parse(doc)
