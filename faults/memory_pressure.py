"""memory-pressure: the domain (or dom0 process) hosting the role may use only ``memory_pct`` %
of the memory it uses now, for ``duration_s`` (``xl mem-set`` of the domain on Xen; on sim:// a
lower address-space limit on its processes), then gets it back. What breaks first, and whether
it comes back by itself, is the measurement: the blast radius is the domain's roles, as for a
stall (in dom0's kernel: all of dom0's)."""

from __future__ import annotations

from dataclasses import dataclass

from faults.stall import Stall, StallParams
from harness.errors import UsageError
from harness.fault import Change


@dataclass(frozen=True)
class MemoryParams(StallParams):
    memory_pct: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.memory_pct <= 99:
            raise UsageError(f"memory-pressure memory_pct={self.memory_pct}: use a whole percentage from 1 to 99 "
                             "of the memory the domain uses now")


class MemoryPressure(Stall):
    name = "memory-pressure"
    summary = "let the domain hosting the role keep only memory_pct % of its memory for duration_s"
    Params = MemoryParams
    needs = frozenset({"memory"})

    def _inject(self) -> float:
        return self.apply(Change.at("memory", self.target, memory_pct=int(self.params.memory_pct)))
