"""xenstore-storm: one guest floods xenstore for ``duration_s``: it writes its own nodes and adds
watches on them in a loop, as fast as xenstored answers (the change xenstore-storm). The other
guests' devices, already connected, should not notice (their data paths do not go through
xenstore); the storming guest itself may."""

from __future__ import annotations

from typing import Any

from faults.stall import StallParams
from harness.fault import Blast, Change, Fault
from harness.topology import Topology


class XenstoreStorm(Fault):
    name = "xenstore-storm"
    summary = "make one guest write and watch its xenstore nodes in a loop for duration_s"
    Params = StallParams
    target_kind = "guest"
    applies_to = ("xenstore",)
    needs = frozenset({"xenstore-storm"})

    @classmethod
    def blast(cls, topology: Topology, role: str, guest: str | None = None, params: Any = None) -> Blast:
        return Blast(frozenset(), guests=frozenset({guest} if guest else set()))

    def _inject(self) -> float:
        return self.apply(Change.at("xenstore-storm", self.target))
