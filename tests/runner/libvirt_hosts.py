"""Lab hosts that also run libvirtd, for `dq-runner --via libvirt`.

The daemons are tests/agent/libvirt_lab.py's (imported, not copied): Debian 12's
monolithic libvirtd without systemd, each with private /etc/libvirt, /run/libvirt,
/var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt bind-mounted in its own mount
namespace. Here each daemon runs in a runner lab host's network namespace, and that
host's sshd runs inside the daemon's mount namespace, so over SSH the host looks like a
real one: `/run/libvirt/libvirt-sock`, `/var/lib/libvirt/...` are where libvirt has them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from agent.libvirt_lab import Host, LibvirtLab
from conftest import CACHE

from runner.lab_hosts import LabHosts

CAPS_CACHE = CACHE / "runner-tests" / "libvirt-cache"  # skips libvirt's ~15 s QEMU probe


@dataclass
class LibvirtLabHosts(LabHosts):
    daemons: LibvirtLab | None = None
    virt_hosts: dict[str, Host] = field(default_factory=dict)

    def _sshd_prefix(self, name: str) -> list[str]:
        if self.daemons is None:
            self.daemons = LibvirtLab(self.tmp / "libvirt", caps_cache=CAPS_CACHE)
            self.daemons._ensure_qemu_user()
        h = self.hosts[name]
        vh = Host(name, h.ns, h.ip, self.tmp / "libvirt" / name)
        self.virt_hosts[name] = vh
        # the daemon lab tears these down in close(): src/dst are its two hosts
        setattr(self.daemons, name, vh)
        self.daemons._daemon(vh)
        self.daemons._wait_socket(vh)
        pid = (vh.root / "libvirtd.pid").read_text().strip()
        return ["nsenter", "-t", pid, "-m", "-n"]

    def root(self, name: str) -> Path:
        """Where the host's private /var/lib/libvirt etc. sit, seen from the controller."""
        return self.virt_hosts[name].root

    def domains(self, name: str) -> list[str]:
        """Every domain (active or defined) on the host's libvirtd."""
        out = self._virsh(name, "list", "--all", "--name")
        return [d for d in out.split() if d]

    def _virsh(self, name: str, *args: str) -> str:
        from runner.lab_hosts import sh

        uri = self.virt_hosts[name].uri
        return sh("virsh", "-c", uri, *args, check=False).stdout

    def close(self) -> None:
        if self.daemons is not None:
            with contextlib.suppress(Exception):
                self.daemons.close()
        super().close()
