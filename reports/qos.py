"""The report's "QoS under a noisy neighbour" section: from the QoS cases' properties
(harness/qos.py), per flooded device and topology, the other guests' latency quiet and loaded on
the topology under test and on the baseline, and their latency CDFs (reports/plots.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reports.cases import Case


def ratio(case: Case, baseline: bool = False) -> float | None:
    return case.value("qos_p99_ratio", baseline)


def cdf(case: Case, baseline: bool = False) -> tuple[list[float], list[float]]:
    """The others' latency at every 5th percentile, quiet and loaded (seconds); empty when absent."""
    raw = case.props.get("baseline.qos_cdf_s" if baseline else "qos_cdf_s", "")
    try:
        quiet, loaded = ([float(x) for x in part.split(",") if x] for part in raw.split(";"))
    except ValueError:
        return [], []
    return quiet, loaded


def ms(case: Case, key: str, baseline: bool = False) -> str:
    value = case.value(key, baseline)
    return "—" if value is None else f"{value * 1e3:.2f}"


def times(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


@dataclass(frozen=True)
class Qos:
    cases: tuple[Case, ...]

    def headline(self) -> str:
        """The others' p99 ratio where the noisy tenant has its own domain, and on the baseline."""
        own = [c for c in self.cases if c.props.get("qos_isolated") == "true" and ratio(c) is not None]
        shown = own or [c for c in self.cases if ratio(c) is not None]
        if not shown:
            return "QoS: no figure"
        parts = [f"{c.props.get('qos_device', '?')} on {c.props.get('topology', '?')} {times(ratio(c))}"
                 + (f" ({times(ratio(c, True))} on {c.props.get('baseline.topology')})"
                    if ratio(c, True) is not None else "") for c in shown]
        return "QoS: the others' p99 under a noisy neighbour, loaded over quiet: " + ", ".join(parts)


def collect(cases: Sequence[Case]) -> Qos:
    return Qos(tuple(c for c in cases if c.claim == "qos"))
