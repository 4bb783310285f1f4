"""site.yml on the local lab: the first run (the package fixture) provisions every host;
a second run changes nothing."""

from __future__ import annotations

import subprocess

import pytest
from tests.ansible.ansible_run import playbook, recap
from tests.lab.labhosts import SITE

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_site_provisions_every_host(provisioned_lab: subprocess.CompletedProcess[str]) -> None:
    counts = recap(provisioned_lab.stdout)
    assert {"dq-src", "dq-dst", "dq-mon"} <= set(counts), provisioned_lab.stdout[-2000:]
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values()), counts


def test_site_is_idempotent(provisioned_lab: subprocess.CompletedProcess[str]) -> None:
    second = playbook(*SITE)
    assert second.returncode == 0, second.stdout[-4000:]
    counts = recap(second.stdout)
    assert {"dq-src", "dq-dst", "dq-mon"} <= set(counts), second.stdout[-2000:]
    changed = {h: c["changed"] for h, c in counts.items() if c["changed"]}
    assert changed == {}, "second site.yml run changed something:\n" + "\n".join(
        ln for ln in second.stdout.splitlines() if ln.startswith("changed:")
    )
