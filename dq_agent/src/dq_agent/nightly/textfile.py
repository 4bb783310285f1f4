"""The tc limit as a node_exporter textfile metric, so dashboards draw it beside NIC throughput.

The runner (or harness) calls write_tc_limit() when it shapes a link and clear_tc_limit() when
it removes the shaping. node_exporter's textfile collector reads the directory (role default
/var/lib/prometheus/node-exporter).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_DEVICE = re.compile(r"^[A-Za-z0-9_.:@-]{1,32}$")


def _path(directory: Path, device: str) -> Path:
    if not _DEVICE.match(device):
        raise ValueError(f"device: not an interface name: {device!r}")
    return directory / f"dq_tc_{device}.prom"


def write_tc_limit(directory: Path, device: str, rate_bps: float) -> Path:
    """Atomically (write + rename) so node_exporter never reads half a file."""
    path = _path(directory, device)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        "# HELP dq_tc_rate_bits_per_second Rate limit tc applies to the migration NIC\n"
        "# TYPE dq_tc_rate_bits_per_second gauge\n"
        f'dq_tc_rate_bits_per_second{{device="{device}"}} {float(rate_bps)!r}\n'
    )
    os.replace(tmp, path)
    return path


def clear_tc_limit(directory: Path, device: str) -> None:
    _path(directory, device).unlink(missing_ok=True)
