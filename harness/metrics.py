"""From the guests' own records to DESIGN.md's metrics. Pure functions: no host needed."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from harness.model import Pair

LATE_FACTOR = 4.0


@dataclass(frozen=True)
class PairImpact:
    """One (guest, device) around the fault."""

    downtime_s: float  # longest gap beyond the normal cadence, among gaps touching the window
    gap_end: float | None  # when the impacting gap ended (None: not ended, or no impact)
    impacted: bool
    noise_s: float = 0.0  # the same measure in quiet windows (before the fault, after recovery)


@dataclass(frozen=True)
class Metrics:
    guests_total: int
    guests_impacted: int
    guests_expected_impacted: int
    max_guest_downtime_s: float
    noise_s: float  # worst jitter of any device in the quiet windows before and after the fault
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


def pair_impact(
    times: list[float], t0: float, t_end: float, cadence: float, threshold: float, noise: float = 0.0
) -> PairImpact:
    """Gaps between consecutive completions that overlap [t0, t_end] (and the open gap after the
    last completion) are candidates; a gap's downtime is its length less one cadence.

    A fault's own outage begins at the fault: the device stalls on its first operation after t0,
    so its gap starts at most about one cadence (plus an operation in flight) after t0. Such a gap
    is an impact when its downtime exceeds the threshold and twice the device's own jitter. A gap
    that starts later is a delayed consequence or the machine's noise: it counts only when it is
    four times as long (LATE_FACTOR)."""
    onset = t0 + max(2 * cadence, threshold)
    edges = [*times, t_end] if not times or times[-1] < t_end else times
    worst, hit, hit_end = 0.0, 0.0, None
    for i in range(1, len(edges)):
        start, end = edges[i - 1], edges[i]
        if end <= t0 or start >= t_end:
            continue
        downtime = max(0.0, end - start - cadence)
        worst = max(worst, downtime)
        needed = max(threshold, 2 * noise) * (1 if start <= onset else LATE_FACTOR)
        if downtime >= needed and downtime > hit:
            hit, hit_end = downtime, (end if i < len(times) else None)
    if not times:
        return PairImpact(t_end - t0, None, True, noise)
    return PairImpact(worst, hit_end, hit > 0, noise)


def compute(
    progress: Mapping[Pair, list[float]], all_pairs: frozenset[Pair], expected: frozenset[Pair],
    quiet: tuple[tuple[float, float], ...], t0: float, t_end: float, cadence: float, threshold: float,
    restart_s: float | None, acked_writes_lost: int, host_survived: bool,
) -> tuple[Metrics, dict[Pair, PairImpact]]:
    impacts = {}
    for p in sorted(all_pairs):
        times = progress.get(p, [])
        noise = max([0.0, *(excess_gap(times, start, end, cadence) for start, end in quiet)])
        impacts[p] = pair_impact(times, t0, t_end, cadence, threshold, noise)
    impacted = frozenset(p for p, i in impacts.items() if i.impacted)
    ends = [impacts[p].gap_end for p in impacted]
    if not impacted:
        recovery: float | None = 0.0
    elif any(e is None for e in ends):
        recovery = None
    else:
        recovery = max(e for e in ends if e is not None) - t0
    metrics = Metrics(
        guests_total=len({g for g, _ in all_pairs}),
        guests_impacted=len({g for g, _ in impacted}),
        guests_expected_impacted=len({g for g, _ in expected}),
        max_guest_downtime_s=max((i.downtime_s for i in impacts.values()), default=0.0),
        noise_s=max((i.noise_s for i in impacts.values()), default=0.0),
        service_restart_s=restart_s,
        guest_recovery_s=recovery,
        acked_writes_lost=acked_writes_lost,
        host_survived=host_survived,
        impacted=impacted,
        expected=expected,
    )
    return metrics, impacts
