"""crash-loop: the domain hosting the role is killed as soon as it is back, ``times`` times in
all (on Xen an in-domain kernel crash, ``xl sysrq DOM c``, each time). Shows whether recovery
keeps up, backs off or gives up: the restart time is the time to the final recovery, from the
first crash. If the service is not back within ``wait_s`` after a crash, the loop stops there
(the case then fails on its restart budget, as it should: recovery gave up).

On a kernel role in dom0 every crash is a host crash."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from harness.errors import UsageError
from harness.fault import Fault, wait_until

log = logging.getLogger("windsor")
MAX_TIMES = 20


@dataclass(frozen=True)
class CrashLoopParams:
    times: int = 3
    wait_s: float = 60.0  # how long each comeback is awaited before the loop gives up

    def __post_init__(self) -> None:
        if not 2 <= self.times <= MAX_TIMES:
            raise UsageError(f"crash-loop times={self.times}: use 2 to {MAX_TIMES} crashes")
        if not (math.isfinite(self.wait_s) and 0 < self.wait_s <= 3600):
            raise UsageError(f"crash-loop wait_s={self.wait_s}: use a number of seconds above 0 and at most 3600")


class CrashLoop(Fault):
    name = "crash-loop"
    summary = "kill the domain hosting the role as soon as it is back, times times (in dom0's kernel: host crashes)"
    Params = CrashLoopParams
    needs = frozenset({"kill"})
    crashes_dom0 = True
    replaces_target = True

    def _inject(self) -> float:
        return self.host.kill(self.target)

    def hold(self) -> None:
        """Each time the service is back (a new incarnation answers its health probe), crash it again."""
        for n in range(2, int(self.params.times) + 1):
            last = self.last_hit

            def back(last: float = last) -> bool:
                health = self.host.health(self.target.role, self.target.guest)
                return health.ok and health.ready_since is not None and health.ready_since > last

            if not wait_until(f"{self.target.role} back before crash {n} of {self.params.times}", back,
                              float(self.params.wait_s)):
                log.warning("crash-loop: %s not back within %gs of crash %d: the loop stops", self.target.role,
                            self.params.wait_s, n - 1)
                return
            self.hits.append(self.host.kill(self.target))
            log.info("crash-loop: crash %d of %s at host time %.3f, %.3fs after the first", n, self.target.entity,
                     self.last_hit, self.last_hit - (self.injected_at or self.last_hit))
