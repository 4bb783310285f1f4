"""Replay a recorded QMP transcript as an `Execute`: each call must match the next record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dq_agent.agent.qmp import unwrap

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


class Replay:
    def __init__(self, name: str) -> None:
        self.doc = json.loads((TRANSCRIPTS / f"{name}.json").read_text())
        self.exchanges: list[dict[str, Any]] = list(self.doc["exchanges"])
        self.pos = 0

    def __call__(self, command: str, arguments: dict[str, Any] | None) -> Any:
        assert self.pos < len(self.exchanges), f"unexpected extra command {command} {arguments}"
        want = self.exchanges[self.pos]
        self.pos += 1
        assert (command, arguments) == (want["execute"], want.get("arguments")), (
            f"exchange {self.pos}: sent {command} {arguments}, transcript has "
            f"{want['execute']} {want.get('arguments')}"
        )
        return unwrap(command, json.dumps(want["reply"]))

    @property
    def finished(self) -> bool:
        return self.pos == len(self.exchanges)
