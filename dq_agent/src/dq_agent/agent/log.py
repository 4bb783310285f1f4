"""Structured logs: one `key=value` line per event on stderr (the journal under systemd)."""

from __future__ import annotations

import logging
import sys

_LOG = logging.getLogger("dq_agent")


def _fmt(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    # No timestamp: journald stamps every line; `level=` keeps severity greppable.
    handler.setFormatter(logging.Formatter("level=%(levelname)s %(message)s"))
    _LOG.handlers[:] = [handler]
    _LOG.setLevel(level.upper())
    _LOG.propagate = False


def event(level: int, msg: str, **fields: object) -> None:
    if _LOG.isEnabledFor(level):
        kv = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        _LOG.log(level, f"msg={_fmt(msg)} {kv}".rstrip())


def info(msg: str, **fields: object) -> None:
    event(logging.INFO, msg, **fields)


def warning(msg: str, **fields: object) -> None:
    event(logging.WARNING, msg, **fields)


def error(msg: str, **fields: object) -> None:
    event(logging.ERROR, msg, **fields)


def debug(msg: str, **fields: object) -> None:
    event(logging.DEBUG, msg, **fields)
