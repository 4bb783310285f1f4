"""Harness error types: bad input (exit 2, one line naming the field) vs. run failures."""


class ScenarioError(ValueError):
    """A scenario or flag is invalid; the message starts with the field name."""


class HarnessError(RuntimeError):
    """The environment cannot run the request (QEMU too old, missing artifact, ...)."""


class PolicyUnavailable(RuntimeError):
    """The policy cannot work with this QEMU/accelerator; the message is QEMU's reason."""
