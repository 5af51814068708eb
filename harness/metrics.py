"""From the guests' own records to docs/design.md's metrics. Pure functions: no host needed.

A (guest, device)'s *outages* are the gaps between its consecutive completions (and the open gap
after its last one) that overlap the judged span, from the fault to the end of observation, and
are long enough to count; a gap's downtime is its length less one cadence.

- A gap is the fault's own when it starts while the fault acts on the device: for a device in the
  blast radius, from the hit until the fault was reverted and the role answered again; for any
  other device, at the hit (a hidden dependency shows at once) — each plus the time a device takes
  to notice (`Observation.slack`). It counts when its downtime exceeds the impact threshold and
  twice the device's own jitter (`noise`, measured before the fault). A fault that comes and goes
  (a flap, a crash loop, a throttle) has several such outages, and every one counts.
- Any other gap is a delayed consequence, or the machine's noise: it counts only when it is
  `LATE_FACTOR` times as long. So the smallest late outage that is caught is
  `LATE_FACTOR × max(threshold, 2 × noise)` of downtime (200 ms at sim://'s defaults). Measured
  under load: a 90 ms stall of every process on the machine just after a window ended, which a
  1× rule for every device counted as an escape (`windsor bench --accuracy`).

A guest whose domain was destroyed and made again during the case (with the host, or on its own)
lost everything it held: each of its devices is impacted, with its longest gap as the outage, however
short the embedded host made that gap (sim:// reboots a whole host in about 0.1 s, near the
threshold; a busy machine's noise then hid a host crash).

A device is impacted when it has an outage; its recovery is the end of its *last* outage, and the
fault's guest recovery the latest of those (none while one is still open).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from harness.model import Pair

LATE_FACTOR = 4.0


@dataclass(frozen=True)
class Observation:
    """What the metrics are judged from: every device's completions (host clock) and the spans."""

    progress: Mapping[Pair, list[float]]
    pairs: frozenset[Pair]
    expected: frozenset[Pair]  # the fault's blast radius
    quiet: tuple[float, float]  # a window before the fault: each device's own jitter
    t0: float  # the fault hit
    own_until: float  # the fault's own period ends: reverted, and the role answering again
    t_end: float  # the end of observation
    cadence: float
    threshold: float
    restarted: frozenset[str] = frozenset()  # guests whose domain was made again during the case

    @property
    def slack(self) -> float:
        """How long after the fault's own period a device may take to notice it."""
        return max(2 * self.cadence, self.threshold)


@dataclass(frozen=True)
class PairImpact:
    """One (guest, device) around the fault."""

    downtime_s: float  # its longest gap touching the judged span, less one cadence
    outages: int  # gaps long enough to count
    total_downtime_s: float  # their downtime, summed
    gap_end: float | None  # when its last outage ended (None: still open, or no outage)
    noise_s: float = 0.0  # its longest gap in the quiet window before the fault, less one cadence

    @property
    def impacted(self) -> bool:
        return self.outages > 0


@dataclass(frozen=True)
class Metrics:
    guests_total: int
    guests_impacted: int
    guests_expected_impacted: int
    max_guest_downtime_s: float
    max_guest_outages: int  # the most outages any device had
    max_guest_total_downtime_s: float  # the most downtime, summed over its outages, of any device
    noise_s: float  # worst jitter of any device in the quiet window before the fault
    service_restart_s: float | None
    guest_recovery_s: float | None
    acked_writes_lost: int
    host_survived: bool
    impacted: frozenset[Pair]
    expected: frozenset[Pair]

    @property
    def escaped(self) -> frozenset[Pair]:
        """Impacted pairs that the fault's blast radius does not account for."""
        return self.impacted - self.expected


def excess_gap(times: list[float], start: float, end: float, cadence: float) -> float:
    """Longest gap between consecutive completions inside [start, end], less one cadence."""
    inside = [t for t in times if start <= t <= end]
    return max((b - a - cadence for a, b in itertools.pairwise(inside)), default=0.0)


def pair_impact(times: list[float], obs: Observation, noise: float = 0.0, exposed: bool = True,
                restarted: bool = False) -> PairImpact:
    """One device's outages in [obs.t0, obs.t_end] (see the module's docstring); `exposed`: the
    device is in the fault's blast radius; `restarted`: its guest's domain was made again."""
    if not times:
        return PairImpact(obs.t_end - obs.t0, 1, obs.t_end - obs.t0, None, noise)
    own_until = (obs.own_until if exposed else obs.t0) + obs.slack
    edges = [*times, obs.t_end] if times[-1] < obs.t_end else times
    worst, outages, total, last_end, worst_end = 0.0, 0, 0.0, None, None
    for i in range(1, len(edges)):
        start, end = edges[i - 1], edges[i]
        if end <= obs.t0 or start >= obs.t_end:
            continue
        downtime = max(0.0, end - start - obs.cadence)
        if downtime > worst or worst_end is None:
            worst, worst_end = downtime, (end if i < len(times) else None)
        needed = max(obs.threshold, 2 * noise) * (1 if start <= own_until else LATE_FACTOR)
        if downtime >= needed:
            outages += 1
            total += downtime
            last_end = end if i < len(times) else None
    if restarted and not outages:  # its domain died: the longest gap was that, however short
        outages, total, last_end = 1, worst, worst_end
    return PairImpact(worst, outages, total, last_end, noise)


def compute(obs: Observation, restart_s: float | None, acked_writes_lost: int,
            host_survived: bool) -> tuple[Metrics, dict[Pair, PairImpact]]:
    impacts = {}
    for p in sorted(obs.pairs):
        times = obs.progress.get(p, [])
        noise = max(0.0, excess_gap(times, *obs.quiet, obs.cadence))
        impacts[p] = pair_impact(times, obs, noise, p in obs.expected, p[0] in obs.restarted)
    impacted = frozenset(p for p, i in impacts.items() if i.impacted)
    ends = [impacts[p].gap_end for p in impacted]
    if not impacted:
        recovery: float | None = 0.0
    elif any(e is None for e in ends):
        recovery = None
    else:
        recovery = max(e for e in ends if e is not None) - obs.t0
    metrics = Metrics(
        guests_total=len({g for g, _ in obs.pairs}),
        guests_impacted=len({g for g, _ in impacted}),
        guests_expected_impacted=len({g for g, _ in obs.expected}),
        max_guest_downtime_s=max((i.downtime_s for i in impacts.values()), default=0.0),
        max_guest_outages=max((i.outages for i in impacts.values()), default=0),
        max_guest_total_downtime_s=max((i.total_downtime_s for i in impacts.values()), default=0.0),
        noise_s=max((i.noise_s for i in impacts.values()), default=0.0),
        service_restart_s=restart_s,
        guest_recovery_s=recovery,
        acked_writes_lost=acked_writes_lost,
        host_survived=host_survived,
        impacted=impacted,
        expected=obs.expected,
    )
    return metrics, impacts


PROBE = "xs"  # each guest's xenstore probe: a write and a read back of its own node per period
TOOLSTACK = "toolstack"  # dom0's toolstack probe: a domain list (xl list) per period
DOM0 = "dom0"  # whose records the toolstack probe's are: (DOM0, TOOLSTACK)
PROBES = frozenset({PROBE, TOOLSTACK})  # records that time a service, not a guest device


def probe_late(progress: Mapping[Pair, list[float]], device: str, quiet: tuple[float, float], t0: float,
               t_end: float, skip: str | None = None) -> float | None:
    """How late a probe's round trips came, at worst, from the fault to the end of observation:
    its longest gap there less its usual gap (its median in the quiet window; the last ten
    before the fault if the quiet window holds fewer than two), over every probe `device` of
    any owner but `skip` (the guest the fault drives: a storming guest). None: no probe."""
    late = []
    for (owner, dev), times in progress.items():
        if dev != device or owner == skip:
            continue
        before = [t for t in times if t < t0]
        usual = sorted(b - a for a, b in itertools.pairwise(t for t in times if quiet[0] <= t <= quiet[1]))
        usual = usual or sorted(b - a for a, b in itertools.pairwise(before[-11:]))
        if not usual:
            continue
        edges = [t for t in times if t0 <= t <= t_end]
        gaps = [b - a for a, b in itertools.pairwise([*before[-1:], *edges, t_end])]
        late.append(max(0.0, max(gaps, default=0.0) - usual[len(usual) // 2]))
    return max(late) if late else None
