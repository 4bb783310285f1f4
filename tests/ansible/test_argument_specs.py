"""A wrong inventory value stops the role at its start, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.ansible.ansible_run import REPO, playbook

CASES = [
    # (role, bad group_vars, text the error must contain)
    (
        "dq_lab_guest",
        "dq_lab_guest_accel: xen\n",
        "value of dq_lab_guest_accel must be one of: auto, kvm, tcg, got: xen",
    ),
    (
        "dq_host_base",
        "dq_host_base_release: buster\n",
        "value of dq_host_base_release must be one of: trixie, bookworm, got: buster",
    ),
    ("dq_lab_guest", "dq_lab_guest_memory_mib: lots\n", "dq_lab_guest_memory_mib"),
    ("dq_link", "dq_link_profiles: [100mbit]\n", "dq_link_profiles"),
]


@pytest.mark.parametrize(("role", "bad", "message"), CASES)
def test_bad_inventory_value_fails_at_role_start(
    tmp_path: Path, role: str, bad: str, message: str
) -> None:
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  hosts:\n    probe:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    (inv / "group_vars" / "all" / "bad.yml").write_text("---\n" + bad)
    pb = tmp_path / "play.yml"
    pb.write_text(
        f"- hosts: all\n  gather_facts: false\n  roles:\n    - role: {REPO}/roles/{role}\n"
    )
    out = playbook("-i", str(inv), str(pb), timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert message in text, text
    # It is the argument validation that stopped the play, before any real task ran.
    assert "Validating arguments against arg spec" in text
    assert "changed=0" in text
