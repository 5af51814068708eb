"""JUnit: docs/design.md's property names, the one-line summary for system-out, and reading a
baseline back from an earlier run's JUnit file."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from junitparser import JUnitXmlError
from junitparser.xunit2 import JUnitXml, TestCase, TestSuite

from harness.errors import UsageError
from harness.runner import CaseResult
from harness.vocabulary import BASELINE_KEYS, BY_KEY, NONE, fmt

__all__ = ["METRICS", "NONE", "fmt"]

METRICS = BASELINE_KEYS  # what a baseline read back from JUnit carries (harness/vocabulary.py)


@functools.cache
def harness_version() -> str:
    """windsor-harness's version, and its git commit when it runs from a checkout."""
    from harness import __version__

    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10, check=False)
        commit = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"windsor-harness {__version__}" + (f" ({commit})" if commit else "")


def case_properties(r: CaseResult) -> dict[str, str]:
    m = r.metrics
    values: dict[str, object] = {
        "fault": r.scenario.fault, "target_role": r.scenario.role, "target_domain": r.target.entity,
        "topology": r.topology, "seed": r.seed, "guests_total": m.guests_total,
        "guests_impacted": m.guests_impacted, "guests_expected_impacted": m.guests_expected_impacted,
        "max_guest_downtime_s": m.max_guest_downtime_s, "service_restart_s": m.service_restart_s,
        "guest_recovery_s": m.guest_recovery_s, "acked_writes_lost": m.acked_writes_lost,
        "host_survived": m.host_survived,
        "max_guest_outages": m.max_guest_outages, "max_guest_total_downtime_s": m.max_guest_total_downtime_s,
        "fault_params": r.fault_params,
        "fault_window_s": r.fault_window_s,
        "observed_s": r.observed_s,
        "case_wall_s": sum(r.phases.values()),  # this run, booting (or reusing) to teardown
        "topology_reused": r.reused,
        "noise_s": m.noise_s,
        "impacted": " ".join(f"{g}:{d}" for g, d in sorted(m.impacted)),
        "outages": " ".join(f"{g}:{d}={i.outages}/{i.total_downtime_s:.4f}"
                            for (g, d), i in sorted(r.impacts.items()) if i.impacted),
        "disturbed": " ".join(r.disturbed),
        "escaped": " ".join(f"{g}:{d}" for g, d in sorted(m.escaped)),
        "expected_host_crash": r.blast.host_crash,
        "restart_budget_s": r.budgets.restart_s,
        "recovery_budget_s": r.budgets.recovery_s,
        "fault_hits_s": " ".join(f"{h:.4f}" for h in r.hits),
        "xenstore_late_s": r.xenstore_late_s,
        "toolstack_late_s": r.toolstack_late_s,
        "guest_events": " ".join(f"{g}:{d}={n}" for (g, d), n in sorted(r.guest_events.items())),
        "host": r.host,
        "build": r.build,
        "harness": harness_version(),
    }
    unknown = set(values) - set(BY_KEY)
    assert not unknown, f"properties missing from harness/vocabulary.py: {sorted(unknown)}"
    return {k: fmt(v) for k, v in values.items()}


@dataclass(frozen=True)
class Outcome:
    """A scenario's candidate result and its monolithic baseline (run now, or read from JUnit)."""

    candidate: CaseResult
    baseline: Mapping[str, str] | None

    def properties(self) -> list[tuple[str, str]]:
        props = list(case_properties(self.candidate).items())
        if self.baseline is not None:
            props += [(f"baseline.{k}", v) for k, v in self.baseline.items()]
        return props

    def summary_line(self) -> str:
        parts = [f"WINDSOR {self.candidate.scenario.id}", brief(case_properties(self.candidate))]
        if self.baseline is not None:
            parts.append("baseline " + brief(self.baseline))
        return " | ".join(parts)


def same_host(url: str) -> str:
    """A host URL without its query (sim://?dir=... is the same embedded host wherever its root is)."""
    return url.split("?", 1)[0].rstrip("/")


def words(value: str | None) -> list[str]:
    """A list-valued property (impacted, disturbed, outages) back as its words."""
    return [] if value in (None, NONE) else str(value).split()


def brief(p: Mapping[str, str]) -> str:
    host = "host survived" if p.get("host_survived") == "true" else "HOST CRASHED"
    return (
        f"{p.get('topology')}: {p.get('guests_impacted')}/{p.get('guests_total')} guests impacted "
        f"(expected {p.get('guests_expected_impacted')}), max downtime {p.get('max_guest_downtime_s')}s, "
        f"restart {p.get('service_restart_s')}s, recovery {p.get('guest_recovery_s')}s, "
        f"acked writes lost {p.get('acked_writes_lost')}, {host}"
    )


def read_suites(path: str, what: str = "") -> list[TestSuite]:
    """The testsuites of a JUnit file (one suite or many); UsageError if it is not one."""
    if Path(path).is_dir():
        raise UsageError(f"{what}{path!r} is a directory, not a JUnit XML file")
    if not Path(path).is_file():
        raise UsageError(f"{what}{path!r}: no such file")
    try:
        xml = JUnitXml.fromfile(path)
    except (JUnitXmlError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{what}{path!r} is not a JUnit XML file: {exc}") from None
    return [xml] if isinstance(xml, TestSuite) else [cast(TestSuite, s) for s in xml]


def read_cases(path: str, what: str = "") -> Iterator[TestCase]:
    """Every testcase of a JUnit file (one suite or many); UsageError if it is not one."""
    for suite in read_suites(path, what):
        for case in suite:
            yield cast(TestCase, case)


def case_props(case: TestCase) -> dict[str, str]:
    return {str(p.name): str(p.value) for p in case.properties()}  # type: ignore[no-untyped-call]


class BaselineJunit:
    """Baselines by test name from an earlier JUnit file: a case's own metrics when it ran on the
    baseline topology, else its ``baseline.*`` properties."""

    def __init__(self, path: str, topology: str) -> None:
        self.path = path
        self.by_name: dict[str, dict[str, str]] = {}
        self.hosts: set[str] = set()  # the hosts its baselines were measured on (older files do not say)
        for case in read_cases(path, "--baseline-junit "):
            props = case_props(case)
            if props.get("topology") == topology:
                picked = {k: props[k] for k in METRICS if k in props}
            else:
                picked = {k[9:]: v for k, v in props.items() if k.startswith("baseline.") and k[9:] in METRICS}
            if picked:
                self.by_name[str(case.name)] = picked
                if picked.get("host", NONE) != NONE:
                    self.hosts.add(picked["host"])

    def check_host(self, url: str) -> str | None:
        """UsageError when the baselines were measured on another host than `url`; a note when the
        file does not say where (an older harness), else None."""
        if not self.hosts:
            return (f"--baseline-junit {self.path!r} does not say which host its baselines ran on (an older "
                    f"harness): they are compared with {url} as given")
        other = sorted(h for h in self.hosts if same_host(h) != same_host(url))
        if other:
            raise UsageError(f"--baseline-junit {self.path!r} holds baselines measured on {', '.join(other)}, not on "
                             f"{url}: a baseline is the same scenario on the same host; run it here (leave out "
                             "--baseline-junit) or give a JUnit file from this host")
        return None

    def get(self, test_name: str) -> Mapping[str, str]:
        if test_name not in self.by_name:
            raise UsageError(f"--baseline-junit {self.path!r} has no baseline for {test_name}")
        return self.by_name[test_name]
