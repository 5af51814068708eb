"""flap: a service that stalls and resumes, again and again (a flapping link, a domain that keeps
being descheduled). Only the harness's public contract is used: `harness.fault`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.fault import Change, Fault, UsageError, wait_until


@dataclass(frozen=True)
class FlapParams:
    periods: int = 3
    on_s: float = 1.0  # stopped
    off_s: float = 0.5  # running, between two stops
    quiet: bool = False  # log nothing per period

    def __post_init__(self) -> None:
        if not 1 <= self.periods <= 100:
            raise UsageError(f"periods={self.periods}: use 1 to 100")
        for name, value in (("on_s", self.on_s), ("off_s", self.off_s)):
            if not (math.isfinite(value) and 0 < value <= 60):
                raise UsageError(f"{name}={value}: use seconds above 0 and at most 60")


class Flap(Fault):
    name = "flap"
    summary = "stop the domain hosting the role for on_s, let it run off_s, periods times"
    Params = FlapParams
    needs = frozenset({"pause"})

    @property
    def window_s(self) -> float:
        p = self.params
        return float(p.periods * p.on_s + (p.periods - 1) * p.off_s)

    def _stop(self) -> float:
        """One stop, under a lease of its own: the host ends it on_s + margin later by itself."""
        lease = self.phase_lease(self.params.on_s)
        return self.apply(Change.at("pause", self.target), lease)

    def _inject(self) -> float:
        return self._stop()

    def _until(self, t: float, what: str) -> None:
        wait_until(what, lambda: self.host.now() >= t, t - self.host.now() + 5.0, quiet=self.params.quiet,
                   interval=0.01)

    def hold(self) -> None:
        p = self.params
        for n in range(1, p.periods + 1):
            self._until(self.last_hit + p.on_s, f"the end of stop {n} of {p.periods}")
            self.undo(self.held[-1])
            if n == p.periods:
                return
            self._until(self.host.now() + p.off_s, f"the run between stops {n} and {n + 1}")
            self.hits.append(self._stop())
