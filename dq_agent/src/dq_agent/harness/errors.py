"""Harness error types: bad input (exit 2, one line naming the field) vs. run failures."""


class ScenarioError(ValueError):
    """A scenario or flag is invalid; the message starts with the field name."""


class HarnessError(RuntimeError):
    """The environment cannot run the request (QEMU too old, missing artifact, ...)."""


class QMPError(HarnessError):
    """A QMP command timed out, lost its connection or got a malformed reply."""


class QMPCommandError(QMPError):
    """QEMU answered a QMP command with an error; `desc` is QEMU's message."""

    def __init__(self, command: str, desc: str) -> None:
        super().__init__(f"qmp {command}: {desc}")
        self.desc = desc


class PolicyUnavailable(RuntimeError):
    """The policy cannot work with this QEMU/accelerator; the message is QEMU's reason."""
