"""The report's "Scalability" section: from the scale cases' properties (harness/scale.py), the
guests each topology carried at the same CPU budget, beside the baseline, and the guests-per-host
curves (reports/plots.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reports.cases import Case


def curve(case: Case, baseline: bool = False) -> list[tuple[int, float, str, float]]:
    """(guests, the median guest's rate over its cadence, the busiest domain, its share of its budget)."""
    raw = case.props.get("baseline.scale_curve" if baseline else "scale_curve", "")
    out = []
    for step in raw.split(";"):
        parts = step.split(":")
        try:
            out.append((int(parts[0]), float(parts[1]), parts[2], float(parts[3])))
        except (IndexError, ValueError):
            continue
    return out


@dataclass(frozen=True)
class Scale:
    cases: tuple[Case, ...]

    def headline(self) -> str:
        got = [c for c in self.cases if c.props.get("scale_guests")]
        if not got:
            return "scalability: no figure"
        parts = [f"{c.props.get('topology')} {c.props.get('scale_guests')}" for c in got]
        base = {(c.props.get("baseline.topology"), c.props.get("baseline.scale_guests")) for c in got
                if c.props.get("baseline.scale_guests")}
        budget = got[0].props.get("scale_cpu_pct", "?")
        return (f"scalability: guests carried at {budget} % of a CPU a domain: " + ", ".join(parts)
                + "".join(f", {t} {n} (baseline)" for t, n in sorted(base, key=str)))


def collect(cases: Sequence[Case]) -> Scale:
    return Scale(tuple(c for c in cases if c.claim == "scale"))
