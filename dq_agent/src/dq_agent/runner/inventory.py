"""Source and destination lab hosts from an Ansible YAML inventory (the same file
`ansible-playbook` uses: groups `dq_sources` / `dq_destinations`, `ansible_host`,
`ansible_user`, `ansible_port`, `ansible_ssh_private_key_file`, and the known_hosts
file / StrictHostKeyChecking from `ansible_ssh_common_args`)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from dq_agent.harness.errors import ScenarioError
from dq_agent.runner.ssh import HostSpec

SRC_GROUP, DST_GROUP = "dq_sources", "dq_destinations"


@dataclass(frozen=True)
class LabHost:
    spec: HostSpec
    migration_address: str  # where the destination listens for the migration stream
    libvirt_socket: str | None = None  # --via libvirt: the daemon's socket (None: probe)


def _groups(node: dict[str, Any], inherited: dict[str, Any], out: dict[str, Any]) -> None:
    """Flatten groups: name -> (merged vars, {host: hostvars})."""
    for name, g in (node.get("children") or {}).items():
        g = g or {}
        merged = {**inherited, **(g.get("vars") or {})}
        out[name] = (merged, g.get("hosts") or {})
        _groups(g, merged, out)


def _ssh_opts(args: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    words = shlex.split(args)
    for i, w in enumerate(words):
        val = w[2:] if w.startswith("-o") and len(w) > 2 else None
        if w == "-o" and i + 1 < len(words):
            val = words[i + 1]
        if val and "=" in val:
            k, v = val.split("=", 1)
            opts[k.strip().lower()] = v.strip()
    return opts


def _host(inv: Path, group: str, groups: dict[str, Any], top: dict[str, Any]) -> LabHost:
    if group not in groups or not groups[group][1]:
        raise ScenarioError(f"{inv}: group {group}: no hosts")
    gvars, hosts = groups[group]
    name, hv = next(iter(hosts.items()))
    v = {**top, **gvars, **(hv or {})}
    where = f"{inv}: {name}"
    address = v.get("ansible_host", name)
    if not isinstance(address, str) or not re.fullmatch(r"[\w.:-]{1,253}", address):
        raise ScenarioError(f"{where}: ansible_host: not a host name or address: {address!r}")
    port = v.get("ansible_port", 22)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ScenarioError(f"{where}: ansible_port: must be 1..65535, got {port!r}")
    opts = _ssh_opts(str(v.get("ansible_ssh_common_args", "")))
    check = opts.get("stricthostkeychecking", "yes") != "no"
    if v.get("ansible_host_key_checking") is False:
        check = False
    key = v.get("ansible_ssh_private_key_file")
    if key is not None and not Path(str(key)).is_file():
        raise ScenarioError(f"{where}: ansible_ssh_private_key_file: no such file {key}")
    spec = HostSpec(
        name=str(name),
        address=address,
        user=str(v.get("ansible_user", "root")),
        port=port,
        key_file=str(key) if key else None,
        known_hosts=opts.get("userknownhostsfile"),
        check_host_key=check,
    )
    sock = v.get("dq_libvirt_socket")
    if sock is not None and not (isinstance(sock, str) and re.fullmatch(r"/[\w./@-]{1,200}", sock)):
        raise ScenarioError(f"{where}: dq_libvirt_socket: expected an absolute path, got {sock!r}")
    return LabHost(spec, _migration_address(where, v, address), sock)


def _migration_address(where: str, v: dict[str, Any], default: str) -> str:
    """dq_migration_address, else the libvirt role's dq_libvirt_migration_address (the
    real-lab inventory's name for it) unless that is still a Jinja expression."""
    for key in ("dq_migration_address", "dq_libvirt_migration_address"):
        value = v.get(key)
        if value is None or (key != "dq_migration_address" and "{{" in str(value)):
            continue
        if not isinstance(value, str) or not re.fullmatch(r"[\w.:-]{1,253}", value):
            raise ScenarioError(f"{where}: {key}: not a host name or address: {value!r}")
        return value
    return default


def load_inventory(path: str | Path) -> tuple[LabHost, LabHost]:
    """(source, destination): the first host of each group. Errors name the field."""
    inv = Path(path)
    try:
        doc = yaml.safe_load(inv.read_text())
    except OSError as e:
        raise ScenarioError(f"--inventory: cannot read {inv}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"--inventory: {inv}: not valid YAML ({type(e).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("all"), dict):
        raise ScenarioError(f"--inventory: {inv}: expected a top-level 'all' group")
    top = doc["all"].get("vars") or {}
    groups: dict[str, Any] = {}
    _groups(doc["all"], {}, groups)
    return _host(inv, SRC_GROUP, groups, top), _host(inv, DST_GROUP, groups, top)
