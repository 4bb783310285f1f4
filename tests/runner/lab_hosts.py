"""Two throwaway "lab hosts" for runner tests: a network namespace each, joined by a
bridge with a per-run name (198.18.64.0/20, one /29 per run), each running its own sshd
with a fresh host key and a fresh client key. Everything goes away in close()."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dq_agent.runner.ssh import HostSpec

SSHD = "/usr/sbin/sshd"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


@dataclass
class LabHost:
    name: str
    ns: str
    ip: str
    dev: str  # the host's NIC (inside its namespace): the migration NIC
    pidfile: Path


@dataclass
class LabHosts:
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dqr-lab-")))
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000}{random.randrange(100):02d}")
    hosts: dict[str, LabHost] = field(default_factory=dict)
    bridge: str = ""
    veths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        block = random.randrange(512)  # /29s in 198.18.64.0/20
        base = (64 << 8) + block * 8
        self._addr = lambda i: f"198.18.{(base + i) >> 8}.{(base + i) & 255}"
        self.controller_ip = self._addr(1)
        self.unused_ip = self._addr(6)  # on-link, never assigned: a host that is not there
        self.key = self.tmp / "id_ed25519"
        self.known_hosts = self.tmp / "known_hosts"

    def up(self) -> LabHosts:
        try:
            self._up()
        except BaseException:
            self.close()
            raise
        return self

    def _up(self) -> None:
        os.chmod(self.tmp, 0o755)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        shutil.copy(f"{self.key}.pub", self.tmp / "authorized_keys")
        self.bridge = f"dqrb{self.tag}"
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.controller_ip}/29", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        Path("/run/sshd").mkdir(exist_ok=True)
        for i, name in enumerate(("src", "dst")):
            self._host(name, self._addr(2 + i))

    def _host(self, name: str, ip: str) -> None:
        ns, root_end = f"dqr{self.tag}-{name}", f"dqr{self.tag}{name[0]}"
        sh("ip", "netns", "add", ns)
        self.hosts[name] = host = LabHost(name, ns, ip, "eth0", self.tmp / f"sshd-{name}.pid")
        sh("ip", "link", "add", root_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.veths.append(root_end)
        sh("ip", "link", "set", root_end, "master", self.bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/29", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        hk = self.tmp / f"host-{name}"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hk))
        cfg = self.tmp / f"sshd-{name}.conf"
        cfg.write_text(
            f"ListenAddress {ip}\nPidFile {host.pidfile}\nHostKey {hk}\n"
            f"AuthorizedKeysFile {self.tmp}/authorized_keys\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nAllowStreamLocalForwarding yes\n"
            "Subsystem sftp internal-sftp\nPrintMotd no\n"
            "StrictModes no\n"  # the keys sit under /tmp (world-writable parent)
        )
        sh(*self._sshd_prefix(name), SSHD, "-f", str(cfg), "-E", str(self.tmp / f"sshd-{name}.log"))
        kind, key = Path(f"{hk}.pub").read_text().split()[:2]
        with self.known_hosts.open("a") as f:
            f.write(f"{ip} {kind} {key}\n")
        deadline = time.monotonic() + 10
        while not host.pidfile.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd in {ns} did not start: {self.sshd_log(name)}")
            time.sleep(0.05)

    def _sshd_prefix(self, name: str) -> list[str]:
        """How sshd enters the host (a subclass may start more there first)."""
        return ["ip", "netns", "exec", self.hosts[name].ns]

    def sshd_log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self.tmp / f"sshd-{name}.log").read_text()[-500:]
        return ""

    def spec(self, name: str, **over: object) -> HostSpec:
        h = self.hosts[name]
        kw: dict[str, object] = {
            "name": f"dq-{name}",
            "address": h.ip,
            "key_file": str(self.key),
            "known_hosts": str(self.known_hosts),
        }
        kw.update(over)
        return HostSpec(**kw)  # type: ignore[arg-type]

    def kill_sessions(self, name: str) -> None:
        """Kill every per-connection sshd child of this host's listener (server-side drop)."""
        pid = self.hosts[name].pidfile.read_text().strip()
        out = sh("pgrep", "-P", pid, check=False).stdout.split()
        for child in out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)

    def ns_pids(self, name: str) -> list[int]:
        out = sh("ip", "netns", "pids", self.hosts[name].ns, check=False).stdout.split()
        return [int(p) for p in out]

    def close(self) -> None:
        for h in self.hosts.values():
            # everything still running in the namespace: sshd, its sessions, any QEMU
            for pid in self.ns_pids(h.name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            sh("ip", "netns", "del", h.ns, check=False)
        for v in self.veths:
            sh("ip", "link", "del", v, check=False)
        if self.bridge:
            sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
