"""Start/stop evidence for throttling, the same evidence QEMU's auto-converge uses.

At each bitmap sync a period is "high" when the guest dirtied more than half of what was
transferred in that period. Throttling starts after 2 high periods in a row and stops
after 2 non-high periods in a row (contracts §3).
"""

from __future__ import annotations

from dataclasses import dataclass

HIGH_RATIO_PCT = 50
SYNCS_TO_SWITCH = 2


def is_high(dirty_bytes_period: int, transferred_bytes_period: int) -> bool:
    """QEMU's test: dirtied > transferred * 50 / 100 (integer, as in migration/ram.c)."""
    return dirty_bytes_period > transferred_bytes_period * HIGH_RATIO_PCT // 100


@dataclass(frozen=True, slots=True)
class TriggerState:
    """Whether throttling is on, and how many syncs in a row argue for switching."""

    active: bool = False
    streak: int = 0

    @classmethod
    def initial(cls, start_immediately: bool = False) -> TriggerState:
        return cls(active=start_immediately, streak=0)

    def on_sync(self, dirty_bytes_period: int, transferred_bytes_period: int) -> TriggerState:
        """The state after one bitmap sync's period figures."""
        high = is_high(dirty_bytes_period, transferred_bytes_period)
        if high != self.active:
            streak = self.streak + 1
            if streak >= SYNCS_TO_SWITCH:
                return TriggerState(active=high, streak=0)
            return TriggerState(active=self.active, streak=streak)
        return TriggerState(active=self.active, streak=0)
