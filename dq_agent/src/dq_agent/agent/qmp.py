"""QMP as the agent sees it: one callable per domain, `execute(command, arguments)`.

The live implementation goes through libvirt_qemu.qemuMonitorCommand; tests replay
recorded transcripts through the same type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Execute = Callable[[str, dict[str, Any] | None], Any]


class QmpError(RuntimeError):
    """QEMU answered with an error object (class + desc), or the reply was unusable."""

    def __init__(self, command: str, klass: str, desc: str) -> None:
        super().__init__(f"{command}: {klass}: {desc}")
        self.command = command
        self.klass = klass
        self.desc = desc


def request(command: str, arguments: dict[str, Any] | None) -> str:
    msg: dict[str, Any] = {"execute": command}
    if arguments:
        msg["arguments"] = arguments
    return json.dumps(msg, separators=(",", ":"))


def unwrap(command: str, reply_text: str) -> Any:
    """The `return` value of a QMP reply, or QmpError for an `error` reply."""
    try:
        reply = json.loads(reply_text)
    except json.JSONDecodeError:
        raise QmpError(command, "ReplyNotJson", reply_text[:200]) from None
    if not isinstance(reply, dict):
        raise QmpError(command, "ReplyNotObject", reply_text[:200])
    if "error" in reply:
        err = reply["error"]
        if not isinstance(err, dict):
            raise QmpError(command, "MalformedError", repr(err)[:200])
        raise QmpError(command, str(err.get("class", "?"))[:100], str(err.get("desc", ""))[:200])
    if "return" not in reply:
        raise QmpError(command, "ReplyWithoutReturn", reply_text[:200])
    return reply["return"]


# Typed access to `return` values: anything not shaped as documented is a QmpError, so the
# control loop's QmpError handling covers a QEMU that answers nonsense.


def as_dict(command: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise QmpError(command, "BadReturn", f"expected an object, got {type(value).__name__}")
    return value


def as_list(command: str, value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise QmpError(command, "BadReturn", f"{what}: expected a list")
    return value


def as_int(command: str, obj: dict[str, Any], key: str, default: int | None = None) -> int:
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise QmpError(command, "BadReturn", f"{key}: expected an integer, got {v!r}"[:200])
    return v


def as_bool(command: str, obj: dict[str, Any], key: str, default: bool = False) -> bool:
    v = obj.get(key, default)
    if not isinstance(v, bool):
        raise QmpError(command, "BadReturn", f"{key}: expected true/false, got {v!r}"[:200])
    return v
