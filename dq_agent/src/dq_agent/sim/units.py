"""Sizes and rates as people write them in scenario files: "8 GiB", "640 MB/s", "1 Gbit/s"."""

from __future__ import annotations

import math
import re

_SIZE = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_BITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
_SIZE_RE = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z]+)?\s*$")
_RATE_RE = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z]+)\s*/\s*s\s*$")


def _finite(x: int | float, what: str) -> float:
    """float(x), refusing values no real guest or link has (overflow, inf, nan)."""
    try:
        f = float(x)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} is out of range")
    return f


def parse_size(value: object) -> float:
    """Bytes from an int/float (bytes) or a string like '4 GiB'; ValueError says why."""
    if isinstance(value, bool):
        raise ValueError("must be a size like '4 GiB' or a number of bytes")
    if isinstance(value, int | float):
        return _finite(value, "size")
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = (m.group(2) or "b").lower()
            if unit in _SIZE:
                return _finite(float(m.group(1)) * _SIZE[unit], "size")
    raise ValueError(f"must be a size like '4 GiB' or a number of bytes, not {value!r}")


def parse_rate(value: object) -> float:
    """Bytes/s from a number (bytes/s) or a string like '640 MB/s' or '1 Gbit/s'."""
    if isinstance(value, bool):
        raise ValueError("must be a rate like '640 MB/s' or a number of bytes/s")
    if isinstance(value, int | float):
        return _finite(value, "rate")
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if m:
            unit = m.group(2).lower()
            if unit in _SIZE:
                return _finite(float(m.group(1)) * _SIZE[unit], "rate")
            if unit in _BITS:
                return _finite(float(m.group(1)) * _BITS[unit] / 8, "rate")
    raise ValueError(f"must be a rate like '640 MB/s' or '1 Gbit/s', not {value!r}")
