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
        raise QmpError(command, str(err.get("class", "?")), str(err.get("desc", "")))
    if "return" not in reply:
        raise QmpError(command, "ReplyWithoutReturn", reply_text[:200])
    return reply["return"]
