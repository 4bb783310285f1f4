"""Static checks of the Ansible tree: every playbook passes --syntax-check, and every
role default is declared in the role's argument_specs (so bad inventory fails early)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.ansible.ansible_run import REPO, playbook

PLAYBOOKS = sorted(p.name for p in (REPO / "playbooks").glob("*.yml"))
MY_ROLES = ["dq_host_base", "dq_libvirt", "dq_lab_guest", "dq_link", "dq_migration"]


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_syntax_check(name: str) -> None:
    out = playbook("--syntax-check", "-i", "inventory/lab.example", f"playbooks/{name}")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("role", MY_ROLES)
def test_every_default_has_an_argument_spec(role: str) -> None:
    root = REPO / "roles" / role
    defaults = yaml.safe_load((root / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((root / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), set(defaults) ^ set(options)
    for name, spec in options.items():
        assert spec.get("type") and spec.get("description"), name
        assert name.startswith(role + "_"), f"{name}: not namespaced by the role"


@pytest.mark.parametrize("role", MY_ROLES)
def test_main_only_includes_tagged_phases(role: str) -> None:
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks" / "main.yml").read_text())
    for t in tasks:
        assert {"ansible.builtin.import_tasks", "ansible.builtin.include_tasks"} & set(t), t
        assert t.get("tags"), t


def test_local_inventory_is_not_committed_state() -> None:
    ignore = (REPO / "inventory" / "local" / ".gitignore").read_text()
    assert "hosts.yml" in ignore.split()


def test_host_key_checking_stays_on() -> None:
    cfg = (REPO / "ansible.cfg").read_text()
    assert "host_key_checking = true" in cfg
    assert "StrictHostKeyChecking=no" not in Path(REPO / "tools" / "lab.sh").read_text()
