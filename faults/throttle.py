"""throttle: the domain hosting the role may use only ``cap_pct`` % of a CPU for ``duration_s``
(a credit2 cap, ``xl sched-credit2 -c``; on sim:// its process tree is stopped and continued in
every 100 ms period), then runs freely again. On a kernel role in dom0, all of dom0 is capped.

A stall that lets the domain crawl instead of stopping it: the same window, the same lease (if
the harness goes away, the host lifts the cap by itself), the same revert."""

from __future__ import annotations

from dataclasses import dataclass

from faults.stall import Stall, StallParams
from harness.errors import UsageError
from harness.fault import Change


@dataclass(frozen=True)
class ThrottleParams(StallParams):
    cap_pct: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.cap_pct <= 90:
            raise UsageError(f"throttle cap_pct={self.cap_pct}: use a whole percentage of one CPU from 1 to 90")


class Throttle(Stall):
    name = "throttle"
    summary = "cap the CPU of the domain (or dom0 process) hosting the role to cap_pct % for duration_s"
    Params = ThrottleParams
    needs = frozenset({"cap"})

    def _inject(self) -> float:
        return self.apply(Change.at("cap", self.target, cap_pct=int(self.params.cap_pct)))
