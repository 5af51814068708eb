"""throttle: the domain hosting the role may use only ``cap_pct`` % of a CPU for ``duration_s``
(a credit2 cap, ``xl sched-credit2 -c``; on sim:// its process tree is stopped and continued in
every 100 ms period), then runs freely again. On a kernel role in dom0, all of dom0 is capped.

Like a stall, the cap is a lease: if the harness goes away, the host lifts it by itself."""

from __future__ import annotations

import math
from dataclasses import dataclass

from faults.stall import MAX_STALL_S
from harness.errors import UsageError
from harness.fault import Fault


@dataclass(frozen=True)
class ThrottleParams:
    duration_s: float = 1.0
    cap_pct: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= MAX_STALL_S):
            raise UsageError(
                f"throttle duration_s={self.duration_s}: use a number of seconds above 0 and at most {MAX_STALL_S:g}"
            )
        if not 1 <= self.cap_pct <= 90:
            raise UsageError(f"throttle cap_pct={self.cap_pct}: use a whole percentage of one CPU from 1 to 90")


class Throttle(Fault):
    name = "throttle"
    summary = "cap the CPU of the domain (or dom0 process) hosting the role to cap_pct % for duration_s"
    Params = ThrottleParams

    @property
    def window_s(self) -> float:
        return float(self.params.duration_s)

    def _inject(self) -> float:
        return self.host.throttle(self.target, int(self.params.cap_pct), self.lease)

    def _revert(self) -> float:
        return self.host.unpause(self.target)
