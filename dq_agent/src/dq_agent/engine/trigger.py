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

    def on_sync(
        self, dirty_bytes_period: int, transferred_bytes_period: int, quota_exhausted: bool = False
    ) -> TriggerState:
        """The state after one bitmap sync's period figures.

        `quota_exhausted`: some vCPU hit its quota during the period. While throttling is
        on, such a period counts as high: the guest still wants to dirty faster than the
        budget allows, and the low dirty figure is only the throttle working. Without it,
        a budget at 0.5 x link keeps the throttled period just below the 50% test, the
        throttle switches itself off after 2 syncs, and pre-copy oscillates (dq-sim shows
        it with `dirty-quota.hold_while_exhausted=false`). Leaving it False gives exactly
        the contracts §3 rule.
        """
        high = is_high(dirty_bytes_period, transferred_bytes_period)
        if self.active and quota_exhausted:
            high = True
        if high != self.active:
            streak = self.streak + 1
            if streak >= SYNCS_TO_SWITCH:
                return TriggerState(active=high, streak=0)
            return TriggerState(active=self.active, streak=streak)
        return TriggerState(active=self.active, streak=0)
