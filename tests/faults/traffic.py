"""Tiny bounded traffic probes run inside our namespaces (no external tools needed)."""

from __future__ import annotations

import subprocess
import sys
import time

UDP_RX = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5999)); s.settimeout(1.5)
print("ready", flush=True)
n = 0
try:
    while True:
        s.recv(64); n += 1
except TimeoutError:
    pass
print(n)
"""
UDP_TX = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    try:
        s.sendto(b"x" * 32, (sys.argv[1], 5999))
    except PermissionError:  # nftables dropped it on output: that is the fault
        pass
    if i % 50 == 0: time.sleep(0.001)
"""
TCP_RX = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5998)); s.listen(1); s.settimeout(30)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
print(n)
"""
TCP_TX = """
import socket, sys, time
t = time.monotonic()
c = socket.create_connection((sys.argv[1], 5998), timeout=30)
c.sendall(b"x" * int(sys.argv[2])); c.shutdown(socket.SHUT_WR); c.recv(1)
print(time.monotonic() - t)
"""


def _server(prefix: list[str], code: str, ip: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [*prefix, sys.executable, "-c", code, ip], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    return p


def udp_delivered(tx: list[str], rx: list[str], rx_ip: str, count: int) -> int:
    """Packets of `count` sent tx->rx that arrived."""
    srv = _server(rx, UDP_RX, rx_ip)
    subprocess.run([*tx, sys.executable, "-c", UDP_TX, rx_ip, str(count)], check=True, timeout=30)
    out, _ = srv.communicate(timeout=30)
    return int(out.strip())


def tcp_send_seconds(tx: list[str], rx: list[str], rx_ip: str, nbytes: int) -> float:
    srv = _server(rx, TCP_RX, rx_ip)
    try:
        p = subprocess.run(
            [*tx, sys.executable, "-c", TCP_TX, rx_ip, str(nbytes)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        got = int(srv.communicate(timeout=30)[0].strip())
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    assert got == nbytes
    return float(p.stdout.strip())


def can_connect(tx: list[str], ip: str, port: int = 5997, timeout_s: float = 1.0) -> bool:
    code = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(('{ip}', {port}), timeout={timeout_s})\n"
        "except ConnectionRefusedError:\n    sys.exit(0)\n"  # reachable: RST came back
        "except OSError:\n    sys.exit(1)\n"
    )
    t = time.monotonic()
    r = subprocess.run([*tx, sys.executable, "-c", code], timeout=timeout_s + 10)
    del t
    return r.returncode == 0
