"""Scenarios (what to break) and run options (how to run and judge), validated up front."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.backend import get_host
from harness.errors import UsageError
from harness.fault import get_fault, installed_faults
from harness.model import ROLES, check_role, fleet
from harness.topology import load_topology


@dataclass(frozen=True)
class Scenario:
    role: str
    fault: str
    params: tuple[tuple[str, str], ...] = ()
    guest: str | None = None  # the guest it is about (default: the fault's choice, `Fault.choose_guest`)

    @property
    def id(self) -> str:
        return f"{self.role}-{self.fault}"


@dataclass(frozen=True)
class Budgets:
    restart_s: float = 5.0
    recovery_s: float = 10.0


@dataclass(frozen=True)
class RunOptions:
    host: str = "sim://"
    topology: str = "disaggregated"
    baseline_topology: str = "monolithic"
    guests: int = 6
    seed: int = 0
    cadence_s: float = 0.01
    impact_threshold_s: float = 0.05
    watch_after_s: float = 2.5  # every guest is watched at least this long after the fault
    budgets: Budgets = Budgets()
    fault_params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    roles: tuple[str, ...] = ()  # empty: every role
    faults: tuple[str, ...] = ()  # empty: every installed fault
    allow_destructive: bool = False  # destructive faults on a host not marked as a test host
    reuse: bool = True  # a clean booted topology serves the next case (harness/reuse.py)

    def validate(self) -> RunOptions:
        """Every check that can be made before a host is touched; UsageError on the first."""
        get_host(self.host)  # parses the URL and the backend's own parameters; touches nothing
        load_topology(self.topology)
        if self.baseline_topology:
            load_topology(self.baseline_topology)
        fleet(self.guests, self.seed)
        for name, value, low, high, unit in (  # in the flag's own unit
            ("--cadence-ms", self.cadence_s * 1000, 1.0, 1000.0, "ms"),
            ("--impact-threshold-ms", self.impact_threshold_s * 1000, 1.0, 60000.0, "ms"),
            ("--restart-budget", self.budgets.restart_s, 0.001, 3600.0, "s"),
            ("--recovery-budget", self.budgets.recovery_s, 0.001, 3600.0, "s"),
            ("--watch-after", self.watch_after_s, 0.0, 3600.0, "s"),
        ):
            if not (math.isfinite(value) and low <= value <= high):
                raise UsageError(f"{name} {value:g} is out of range ({low:g} to {high:g} {unit})")
        for role in self.roles:
            check_role(role)
        for fault in self.faults:
            get_fault(fault)
        for fault, params in self.fault_params.items():
            get_fault(fault).parse_params(params)
        return self


def parse_fault_params(items: list[str]) -> dict[str, dict[str, str]]:
    """``FAULT.KEY=VALUE`` strings (``--fault-param stall.duration_s=0.5``) by fault."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        fault, dot, name = key.partition(".")
        if not sep or not dot or not fault or not name:
            raise UsageError(f"--fault-param {item!r}: write FAULT.KEY=VALUE, e.g. stall.duration_s=0.5")
        get_fault(fault)
        out.setdefault(fault, {})[name] = value
    return out


def matrix(opts: RunOptions) -> list[Scenario]:
    """The chosen roles × the chosen faults (default: all of each), with each fault's parameters:
    a fault appears only with the roles its declarations allow (`Fault.roles`)."""
    faults = {name: get_fault(name) for name in (opts.faults or tuple(installed_faults()))}
    return [
        Scenario(check_role(role), fault, tuple(sorted(opts.fault_params.get(fault, {}).items())))
        for role in (opts.roles or ROLES)
        for fault, cls in faults.items() if role in cls.roles()
    ]
