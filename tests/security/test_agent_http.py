"""The running agent exposes metrics only: one listening socket, GET /metrics, nothing else.

Runs the real `dq-agent run` with libvirt's built-in test driver (no libvirtd needed):
the metrics server starts before the libvirt connection, which is all this needs.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(addr: str, port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"agent never listened on {addr}:{port}")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """A real agent bound to 127.0.0.2 (not the default), yielding (addr, port, pid)."""
    addr, port = "127.0.0.2", _free_port()
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[libvirt]\nuri = "test:///default"\n'
        f'[metrics]\nlisten_address = "{addr}"\nport = {port}\nhost_label = "sec"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "dq_agent.agent.cli", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(addr, port)
        yield addr, port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(
    addr: str, port: int, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(addr, port, timeout=5)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_metrics_answer(agent: tuple[str, int, int]) -> None:
    addr, port, _ = agent
    status, body = _request(addr, port, "GET", "/metrics")
    assert status == 200
    assert b'dq_agent_up{host="sec"} 1.0' in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_no_write_methods(agent: tuple[str, int, int], method: str) -> None:
    addr, port, _ = agent
    for path in ("/metrics", "/", "/control", "/throttle", "/config"):
        status, _ = _request(addr, port, method, path, body=b'{"budget-pages": 1}')
        assert status in (400, 404, 405, 501), (method, path, status)


def test_only_metrics_path_answers(agent: tuple[str, int, int]) -> None:
    """Anything but /metrics is 404, so no one mistakes the port for an API."""
    addr, port, _ = agent
    for path in ("/", "/control", "/release", "/debug", "/../etc/passwd"):
        status, body = _request(addr, port, "GET", path)
        assert status == 404, f"GET {path} -> {status} ({body[:60]!r})"


def test_listens_only_where_configured(agent: tuple[str, int, int]) -> None:
    addr, port, pid = agent
    with pytest.raises(OSError):  # not on 127.0.0.1, only on the configured address
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # state LISTEN, owned by the agent
                listening.append(f[1])
    want = f"{socket.inet_aton(addr)[::-1].hex().upper()}:{port:04X}"
    assert listening == [want], listening
