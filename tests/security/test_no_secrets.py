"""Nothing secret and no registry hostname is committed.

Scans every tracked file. Patterns are assembled from pieces so this file never matches
itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from conftest import REPO

DASHES = "-" * 5
SECRET_PATTERNS = {
    "private key": re.compile(DASHES + r"BEGIN [A-Z ]*PRIVATE KEY" + DASHES),
    "AWS access key": re.compile(r"\b" + "AK" + r"IA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]" + "_" + r"[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]" + "-" + r"[A-Za-z0-9-]{10,}"),
    "Vault ciphertext outside a vault file": re.compile(r"\$ANSIBLE_" + r"VAULT;"),
}
# `password: something-literal` in config-like files. Jinja, env lookups, empty values
# and obvious placeholders are fine: the value must come from Vault or the environment.
ASSIGNED_SECRET = re.compile(
    r"""(?ix)^\s*[\w.-]*(password|passwd|secret|token|api[_-]?key)[\w.-]*\s*[:=]\s*
        (?P<v>["']?[^\s"'#]{4,}["']?)\s*$"""
)
CONFIG_SUFFIXES = {".yml", ".yaml", ".toml", ".ini", ".cfg", ".env", ".j2", ".conf", ".json"}
PLACEHOLDER = re.compile(r"\{\{|\$\{?|lookup\(|vault_|^[\"']?(changeme|CHANGEME|xxx+)[\"']?$")


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [REPO / p for p in out.stdout.split("\0") if p]


def _text(p: Path) -> str | None:
    try:
        if p.stat().st_size > 2_000_000:
            return None
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def scan(name: str, suffix: str, text: str) -> list[str]:
    found = [f"{name}: {what}" for what, rx in SECRET_PATTERNS.items() if rx.search(text)]
    if suffix in CONFIG_SUFFIXES:
        for n, line in enumerate(text.splitlines(), 1):
            m = ASSIGNED_SECRET.match(line)
            if m and not PLACEHOLDER.search(m["v"]):
                found.append(f"{name}:{n}: literal secret value")
    return found


def test_no_secret_patterns() -> None:
    found = []
    for p in tracked_files():
        text = _text(p)
        if text is not None:
            found += scan(str(p.relative_to(REPO)), p.suffix, text)
    assert not found, "\n".join(found)


def test_scanner_catches_planted_secrets() -> None:
    """The scan above means something only if it catches the real thing."""
    key = DASHES + "BEGIN OPENSSH PRIVATE KEY" + DASHES + "\nb3BlbnNzaC1rZXk=\n"
    assert scan("k", "", key)
    assert scan("g", ".yml", "grafana_admin_password: hunter22\n")
    assert scan("t", ".toml", 'api_token = "s3cr3tvalue"\n')
    assert not scan("g", ".yml", "grafana_admin_password: \"{{ lookup('env', 'X') }}\"\n")
    assert not scan("g", ".yml", "grafana_admin_password: ''\n")


def registry_hosts() -> set[str]:
    """Hostnames of the package registries this machine is configured with."""
    hosts: set[str] = set()
    apt = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for f in apt:
        text = _text(f) or ""
        hosts.update(urlparse(u).hostname or "" for u in re.findall(r"\bhttps?://\S+", text))
    for f in (Path("/etc/pip.conf"), Path.home() / ".config/pip/pip.conf", Path.home() / ".npmrc"):
        text = _text(f) or ""
        hosts.update(urlparse(u).hostname or "" for u in re.findall(r"\bhttps?://[^\s'\"]+", text))
    hosts.discard("")
    return hosts


def test_no_registry_hostname_committed() -> None:
    hosts = registry_hosts()
    found = []
    for p in tracked_files():
        text = _text(p)
        if text is None:
            continue
        found += [f"{p.relative_to(REPO)}: {h}" for h in hosts if h in text]
    assert not found, "\n".join(found)
