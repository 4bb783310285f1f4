"""Ansible hygiene that protects a real lab: file modes, host key checking, no inline secrets."""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO, require

# Modules that create files; each such task must say which mode the file gets.
FILE_MODULES = {
    "template",
    "copy",
    "file",
    "assemble",
    "get_url",
    "lineinfile",
    "blockinfile",
    "unarchive",
    "ini_file",
    "community.general.ini_file",
}
NO_MODE_STATES = {"absent", "link", "hard"}


def _short(module: str) -> str:
    return module.removeprefix("ansible.builtin.").removeprefix("ansible.legacy.")


def _tasks(items: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(items, list):
        return
    for t in items:
        if not isinstance(t, dict):
            continue
        yield t
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(t.get(key))


def task_files() -> list[Path]:
    files = [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml")]
    files += [*REPO.glob("playbooks/*.yml"), *REPO.glob("playbooks/**/tasks/*.yml")]
    return sorted(files)


def missing_modes(path: Path, root: Path = REPO) -> list[str]:
    try:
        doc = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as e:  # Ansible cannot load it either: that is a finding too
        return [f"{path.relative_to(root)}: not valid YAML ({str(e).splitlines()[0]})"]
    bad = []
    for t in _tasks(doc):
        for key, args in t.items():
            mod = _short(str(key))
            if mod not in FILE_MODULES and key not in FILE_MODULES:
                continue
            args = args if isinstance(args, dict) else {}
            if args.get("state") in NO_MODE_STATES:
                continue
            if mod in ("lineinfile", "blockinfile", "ini_file") and not args.get("create"):
                continue  # edits an existing file; the mode stays the owner's
            if "mode" not in args:
                bad.append(f"{path.relative_to(root)}: {t.get('name', mod)!r} has no mode")
    return bad


def test_every_file_task_sets_mode() -> None:
    files = task_files()
    require(bool(files), "no Ansible task files yet")
    bad = [m for f in files for m in missing_modes(f)]
    assert not bad, "\n".join(bad)


def test_mode_checker_catches_a_missing_mode(tmp_path: Path) -> None:
    p = tmp_path / "t.yml"
    p.write_text(
        "- name: no mode\n  ansible.builtin.template: {src: a, dest: /b}\n"
        "- block:\n  - name: nested\n    copy: {src: a, dest: /c}\n"
        "- name: fine\n  ansible.builtin.file: {path: /d, state: absent}\n"
    )
    bad = missing_modes(p, tmp_path)
    assert len(bad) == 2, bad


HOSTKEY_OFF = re.compile(
    r"(?i)(StrictHostKeyChecking\s*=\s*no|host_key_checking\s*[:=]\s*(false|no|0)\b)"
)


def test_host_key_checking_on() -> None:
    cfg_path = REPO / "ansible.cfg"
    require(cfg_path.exists(), "ansible.cfg not committed yet")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(cfg_path)
    value = cfg.get("defaults", "host_key_checking", fallback="True").strip().lower()
    assert value in ("true", "yes", "1"), f"ansible.cfg host_key_checking = {value}"
    ssh_args = cfg.get("ssh_connection", "ssh_args", fallback="")
    assert not HOSTKEY_OFF.search(ssh_args), ssh_args


def test_only_local_inventory_may_disable_host_keys() -> None:
    offenders = []
    for p in REPO.rglob("*"):
        if (
            not p.is_file()
            or ".git" in p.parts
            or p.suffix not in {".yml", ".yaml", ".cfg", ".ini", ".j2"}
        ):
            continue
        rel = p.relative_to(REPO)
        if rel.parts[:2] == ("inventory", "local") or rel.parts[0] in ("tests", ".ansible"):
            continue
        if HOSTKEY_OFF.search(p.read_text(errors="replace")):
            offenders.append(str(rel))
    assert not offenders, offenders


def test_secret_defaults_come_from_vault_or_env() -> None:
    bad = []
    for p in REPO.glob("roles/*/defaults/main.yml"):
        doc = yaml.safe_load(p.read_text()) or {}
        for k, v in doc.items():
            from_vault_or_env = isinstance(v, str) and ("lookup(" in v or "vault" in v)
            if (
                re.search(r"password|secret|token", k)
                and v not in ("", None)
                and not from_vault_or_env
            ):
                bad.append(f"{p.relative_to(REPO)}: {k}")
    assert not bad, bad
