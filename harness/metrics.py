"""From the guests' own records to DESIGN.md's metrics. Pure functions: no host needed."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from harness.model import Pair


@dataclass(frozen=True)
class PairImpact:
    """One (guest, device) around the fault."""

    downtime_s: float  # longest gap beyond the normal cadence, among gaps touching the window
    gap_end: float | None  # when that gap ended (None: it had not ended when observation did)
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
    """Gaps between consecutive completions that overlap [t0, t_end] (and the open gap after
    the last completion) count; the downtime is the longest one less one cadence. It is an
    impact when it exceeds both the threshold and twice the device's own steady-state jitter."""
    worst, worst_end = 0.0, None
    edges = [*times, t_end] if not times or times[-1] < t_end else times
    prev = None
    for i, t in enumerate(edges):
        if prev is not None and t > t0 and prev < t_end:
            gap = t - prev
            if gap > worst:
                ended = i < len(times)
                worst, worst_end = gap, (t if ended else None)
        prev = t
    if not times:
        return PairImpact(t_end - t0, None, True, noise)
    downtime = max(0.0, worst - cadence)
    return PairImpact(downtime, worst_end, downtime >= max(threshold, 2 * noise), noise)


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
