"""stall: the domain hosting the role stops running for ``duration_s`` (SIGSTOP/SIGCONT of its
process tree / xl pause), then runs again. On a kernel role in dom0, all of dom0 stalls."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UsageError
from harness.fault import Change, Fault

MAX_STALL_S = 600.0


@dataclass(frozen=True)
class StallParams:
    duration_s: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= MAX_STALL_S):
            raise UsageError(
                f"duration_s={self.duration_s}: use a number of seconds above 0 and at most {MAX_STALL_S:g}"
            )


class Stall(Fault):
    name = "stall"
    summary = "stop the domain (or dom0 process) hosting the role for duration_s, then resume it"
    Params = StallParams
    needs = frozenset({"pause"})

    def _inject(self) -> float:
        # the host ends the stall by itself when the lease (window + margin) ends
        return self.apply(Change.at("pause", self.target))
