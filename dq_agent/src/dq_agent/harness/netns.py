"""Two network namespaces joined by a veth pair, the src->dst direction shaped by tc htb.

Names carry a per-run suffix and addresses come from the harness range 198.18.16.0/20
(contracts §7), one /30 per link, so parallel runs never collide. `Link` is a context
manager: everything it created is removed on exit, also after an exception.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from types import TracebackType

from dq_agent.harness.errors import HarnessError

HARNESS_NET = ipaddress.IPv4Network("198.18.16.0/20")


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: {out.stderr.strip() or out.returncode}")
    return out


@dataclass
class Link:
    """Namespaces `src_ns`/`dst_ns`, addresses `src_ip`/`dst_ip`, rate in Mbit/s."""

    rate_mbit: float
    suffix: str = ""
    src_ns: str = ""
    dst_ns: str = ""
    src_ip: str = ""
    dst_ip: str = ""
    up: bool = False

    def __post_init__(self) -> None:
        self.suffix = self.suffix or f"{os.getpid() % 100000:x}{secrets.token_hex(2)}"
        self.src_ns = f"dqh-{self.suffix}-s"
        self.dst_ns = f"dqh-{self.suffix}-d"
        subnets = list(HARNESS_NET.subnets(new_prefix=30))
        net = subnets[int(self.suffix, 16) % len(subnets)]
        hosts = list(net.hosts())
        self.src_ip, self.dst_ip = str(hosts[0]), str(hosts[1])
        # veth names are limited to 15 chars
        self._veth_s, self._veth_d = f"dqs{self.suffix}"[:15], f"dqd{self.suffix}"[:15]

    def __enter__(self) -> Link:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def create(self) -> None:
        sh("ip", "netns", "add", self.src_ns)
        sh("ip", "netns", "add", self.dst_ns)
        self.up = True
        sh(
            "ip",
            "link",
            "add",
            self._veth_s,
            "netns",
            self.src_ns,
            "type",
            "veth",
            "peer",
            "name",
            self._veth_d,
            "netns",
            self.dst_ns,
        )
        for ns, dev, ip in (
            (self.src_ns, self._veth_s, self.src_ip),
            (self.dst_ns, self._veth_d, self.dst_ip),
        ):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.shape(self.rate_mbit)

    def shape(self, rate_mbit: float) -> None:
        """(Re)apply htb on the source veth egress: the migration stream's direction."""
        self.rate_mbit = rate_mbit
        ns, dev = self.src_ns, self._veth_s
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
        rate = f"{int(rate_mbit * 1000)}kbit"
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "tc",
            "qdisc",
            "add",
            "dev",
            dev,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            "10",
        )
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "tc",
            "class",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            rate,
            "ceil",
            rate,
        )

    def tc_stats(self) -> dict[str, int]:
        """Bytes/packets sent and drops of the shaping class (`tc -s class`; this iproute2
        prints no JSON for classes)."""
        out = sh(
            "ip", "netns", "exec", self.src_ns, "tc", "-s", "class", "show", "dev", self._veth_s
        )
        m = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", out.stdout)
        if not m:
            return {"bytes": 0, "packets": 0, "drops": 0}
        return {"bytes": int(m[1]), "packets": int(m[2]), "drops": int(m[3])}

    def exec_argv(self, side: str) -> list[str]:
        """Prefix that runs a command inside the `src` or `dst` namespace."""
        return ["ip", "netns", "exec", self.src_ns if side == "src" else self.dst_ns]

    def destroy(self) -> None:
        if not self.up:
            return
        # deleting a namespace deletes its veth end (and with it the peer and the qdisc)
        for ns in (self.src_ns, self.dst_ns):
            sh("ip", "netns", "del", ns, check=False)
        self.up = False


def measure_link(link: Link, seconds: float = 3.0) -> float:
    """Measured src->dst TCP throughput in Mbit/s (iperf3, one bounded run)."""
    port = "5201"
    srv = subprocess.Popen(
        [*link.exec_argv("dst"), "iperf3", "-s", "-1", "-B", link.dst_ip, "-p", port],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        time.sleep(0.3)
        while True:
            out = sh(
                *link.exec_argv("src"),
                "iperf3",
                "-J",
                "-c",
                link.dst_ip,
                "-p",
                port,
                "-t",
                f"{seconds:g}",
                check=False,
                timeout=seconds + 20,
            )
            if out.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # server not listening yet
        if out.returncode != 0:
            raise HarnessError(f"iperf3 failed: {out.stderr.strip() or out.stdout[-200:]}")
        doc = json.loads(out.stdout)
        if "error" in doc:
            raise HarnessError(f"iperf3: {doc['error']}")
        bps = doc["end"]["sum_received"]["bits_per_second"]
        return float(bps) / 1e6
    finally:
        srv.kill()
        srv.wait(timeout=5)
