"""Scalability: how many guests a topology carries before a service saturates, at equal CPU.

Guests are added in steps (`ClaimBudget.scale_steps`, per kind of host; a fresh host each step).
At each, after the steady state, every guest device's operations are counted over the budget's
window of cadences: a guest's rate is
the mean, over its devices, of the operations done over the operations its cadence asks for. The
step meets the target while the median guest's rate is at least `TARGET` (80 %) and no domain
(dom0, a service domain) used `AT_CAP` of its CPU budget. The figure is the largest step that met
it. Every domain has the same budget (`ClaimBudget.scale_cpu_pct` % of one CPU: on sim:// the
model of harness/sim/vcpu.py, on Xen credit2's cap), so a topology carries more only by spreading
the work over more domains.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HostError, NotSteady
from harness.model import fleet
from harness.vocabulary import fmt
from harness.waiting import wait_until

if TYPE_CHECKING:
    from harness.backend.base import Host
    from harness.scenario import RunOptions

log = logging.getLogger("windsor")
TARGET = 0.8  # the median guest's rate over its cadence, at least
AT_CAP = 0.95  # a domain that used this share of its budget is saturated
TOPOLOGIES = ("disaggregated", "two-netdds")  # each beside the run's baseline (monolithic)
WORK = ("net", "disk", "console", "emul")  # the devices that make a guest's rate (not its probes)
LATE_CADENCES = 5  # after the window, for its records to arrive
SERVICES = ("netback", "blkback", "console", "xenstore", "toolstack")  # what the steps load


@dataclass(frozen=True)
class Step:
    guests: int
    median_rate: float  # the median guest's operations over what its cadence asks for
    busiest: str  # the domain with the largest share of its budget used
    busiest_share: float
    steady: bool = True

    @property
    def limit(self) -> str | None:
        """What saturated at this step (None: it met the target)."""
        if not self.steady:
            return "no steady state"
        if self.median_rate < TARGET:
            return f"median rate {self.median_rate:.0%}"
        if self.busiest_share >= AT_CAP:
            return f"{self.busiest} at its CPU cap"
        return None

    def row(self) -> str:
        return f"{self.guests}:{self.median_rate:.3f}:{self.busiest}:{self.busiest_share:.3f}"


@dataclass(frozen=True)
class Carried:
    topology: str
    steps: tuple[Step, ...]
    cpu_pct: int  # every domain's budget

    @property
    def guests(self) -> int:
        met = [s.guests for s in self.steps if s.limit is None]
        return max(met, default=0)

    @property
    def limit(self) -> str:
        failed = next((s for s in self.steps if s.limit is not None), None)
        return f"{failed.limit} at {failed.guests} guests" if failed else f"none up to {self.steps[-1].guests} guests"

    def properties(self, prefix: str = "") -> list[tuple[str, str]]:
        values: list[tuple[str, object]] = [
            ("topology", self.topology), ("scale_cpu_pct", self.cpu_pct), ("scale_guests", self.guests),
            ("scale_limit", self.limit), ("scale_curve", ";".join(s.row() for s in self.steps)),
        ]
        return [(prefix + k, fmt(v)) for k, v in values]


def measure_step(host: Host, cadence_s: float) -> tuple[float, str, float]:
    """The median guest's rate and the busiest domain's share of its budget over the window. A
    guest's operations are counted by the time they were made, in the window, once the records
    made in it have had `LATE_CADENCES` more to arrive (a Xen guest's reach dom0 through its
    console, seconds late under TCG: counted as they arrived, a backlog from before the window
    made a step look faster than its cadence)."""
    cpu0, start = dict(host.cpu_busy()), host.now()
    cadences = host.claims.scale_window_cadences
    end = start + cadences * cadence_s
    wait_until(f"a window of {cadences} cadences", lambda: host.now() >= end, cadences * cadence_s + 60)
    span, cpu1 = host.now() - start, dict(host.cpu_busy())
    late = end + LATE_CADENCES * cadence_s
    wait_until("the window's last records", lambda: host.now() >= late, LATE_CADENCES * cadence_s + 60)
    rates: dict[str, list[float]] = {}
    for (guest, device), times in host.progress().items():
        if device in WORK:
            done = bisect.bisect_right(times, end) - bisect.bisect_right(times, start)
            rates.setdefault(guest, []).append(done * cadence_s / (end - start))
    if not rates:
        raise HostError("no guest did any operation in the window")
    shares = {d: (cpu1[d] - cpu0.get(d, 0.0)) / span for d in cpu1}
    busiest = max(shares, key=lambda d: shares[d], default="none")
    return statistics.median(statistics.mean(r) for r in rates.values()), busiest, shares.get(busiest, 0.0)


_measured: dict[tuple[object, ...], Carried] = {}


def measure(opts: RunOptions, topology_name: str) -> Carried:
    """Step the guests up on `topology_name` at the scale budget until a step misses the target
    (once a session for the same host, seed and cadence: the baseline beside each case)."""
    key = (opts.host, topology_name, opts.seed, opts.cadence_s)
    if key not in _measured:
        _measured[key] = _measure(opts, topology_name)
    return _measured[key]


def _measure(opts: RunOptions, topology_name: str) -> Carried:
    from harness import reuse
    from harness.backend import host_class
    from harness.topology import load_topology

    budget = host_class(opts.host).claims
    topology = dataclasses.replace(load_topology(topology_name), cpu_pct=budget.scale_cpu_pct)
    cadence_s = opts.cadence_s * budget.scale_cadence_factor
    steps: list[Step] = []
    for n in budget.scale_steps:
        try:
            # the services scaled: no device model (on Xen, PV guests only: an HVM boot is minutes of TCG)
            with reuse.booted(opts, topology, fleet(n, opts.seed), SERVICES, cadence_s) as (host, _):
                step = Step(n, *measure_step(host, cadence_s))
        except NotSteady:
            step = Step(n, 0.0, "none", 0.0, steady=False)
        log.info("%s with %d guests: median rate %.0f%%, busiest %s at %.0f%% of its budget%s", topology.name, n,
                 step.median_rate * 100, step.busiest, step.busiest_share * 100,
                 f": saturated ({step.limit})" if step.limit else "")
        steps.append(step)
        if step.limit is not None:
            break
    return Carried(topology.name, tuple(steps), topology.cpu_pct)
