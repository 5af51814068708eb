"""The harness's command-line options and ini settings, and the run options made of them: the
command line, else the ini file, else what suits the host (`Host.defaults`), else ours."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest

from harness.backend import host_class
from harness.errors import UsageError
from harness.fleet import parse_wait
from harness.scenario import Budgets, RunOptions, parse_fault_params
from harness.shard import Shard

T = TypeVar("T")

# (option, ini/dest name, type, default, help)
SETTINGS: list[tuple[str, str, Callable[[str], Any], str, str]] = [
    ("--host", "windsor_host", str, "sim://", "host URL to test (sim://, xen+ssh://..., ...), or inventory:FILE "
     "for a free host of that inventory"),
    ("--host-wait", "windsor_host_wait", parse_wait, "0",
     "seconds to wait for a free host when every host is leased to other runs (0: fail at once, naming them)"),
    ("--shard", "windsor_shard", Shard.parse, "1/1", "run only shard I of N of the matrix (I/N; split by a stable "
     "hash of each scenario)"),
    ("--topology", "windsor_topology", str, "disaggregated", "topology under test (name or .toml path)"),
    ("--baseline-topology", "windsor_baseline_topology", str, "monolithic",
     "topology each scenario is compared with"),
    ("--roles", "windsor_roles", str, "all", "comma-separated roles to test"),
    ("--faults", "windsor_faults", str, "all", "comma-separated fault plugins to inject"),
    ("--guests", "windsor_guests", int, "6", "guests per host"),
    ("--seed", "windsor_seed", int, "0", "seed for the guest mix and workload phases"),
    ("--cadence-ms", "windsor_cadence_ms", float, "10", "guests' operation cadence"),
    ("--impact-threshold-ms", "windsor_impact_threshold_ms", float, "50",
     "downtime beyond the cadence from which a guest device counts as impacted"),
    ("--restart-budget", "windsor_restart_budget", float, "5", "seconds allowed for a service to be healthy again"),
    ("--recovery-budget", "windsor_recovery_budget", float, "10",
     "seconds allowed for every impacted guest to progress again"),
    ("--watch-after", "windsor_watch_after", float, "2.5",
     "seconds every guest is watched after the fault at least: a delayed consequence within them is caught"),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("windsor", "Windsor resilience harness")
    for flag, name, _, default, help_text in SETTINGS:
        group.addoption(flag, dest=name, default=None, help=f"{help_text} (ini {name}; default {default})")
        parser.addini(name, help_text, default="")
    group.addoption("--fault-param", dest="windsor_fault_params", action="append", default=[],
                    metavar="FAULT.KEY=VALUE", help="a fault parameter, e.g. stall.duration_s=0.5 (repeatable)")
    group.addoption("--baseline-junit", dest="windsor_baseline_junit", default=None, metavar="FILE",
                    help="take each scenario's baseline from an earlier JUnit file instead of running it")
    group.addoption("--no-baseline", dest="windsor_no_baseline", action="store_true",
                    help="do not run or record a baseline")
    group.addoption("--dry-run", dest="windsor_dry_run", action="store_true",
                    help="print which domains each selected scenario would hit, with what and for how long; "
                         "touch nothing")
    group.addoption("--artifacts", dest="windsor_artifacts", default=None, metavar="DIR",
                    help="where each case's raw per-guest timelines are written, attached to its JUnit testcase "
                         "(default: windsor-artifacts/ beside the --junitxml file; none without one)")
    group.addoption("--build-id", dest="windsor_build_id", default=None, metavar="TEXT",
                    help="the build under test, as reports should name it (e.g. a CI build number); "
                         "recorded as the build_id property")
    group.addoption("--allow-destructive", dest="windsor_allow_destructive", action="store_true",
                    help="run destructive faults on a host that is not marked test_host = true in an inventory")
    group.addoption("--fresh-host", dest="windsor_fresh_host", action="store_true",
                    help="boot the topology afresh for every case (default: a case that left its host clean "
                         "hands the booted topology to the next one; harness/reuse.py)")


def setting(config: pytest.Config, name: str, cast: Callable[[str], T], flag: str,
             defaults: Mapping[str, str]) -> T:
    """The command line, else the ini file, else what suits the host (`Host.defaults`), else ours."""
    raw = config.getoption(name)
    if raw is None:
        raw = config.getini(name) or defaults.get(name) or DEFAULTS[name]
    try:
        return cast(str(raw))
    except ValueError:
        raise UsageError(f"{flag} {raw!r} is not a valid {cast.__name__}") from None


DEFAULTS = {name: default for _, name, _, default, _ in SETTINGS}


def options_from(config: pytest.Config, host: str | None = None) -> RunOptions:
    """The run options; for `host` (one host of an inventory) instead of --host when given."""
    host = host or setting(config, "windsor_host", str, "--host", {})
    backend = host_class(host)
    defaults = backend.defaults
    fault_params = {f: dict(p) for f, p in backend.fault_defaults.items()}
    for fault, params in parse_fault_params(config.getoption("windsor_fault_params")).items():
        fault_params.setdefault(fault, {}).update(params)
    s: dict[str, Any] = {name: setting(config, name, cast, flag, defaults) for flag, name, cast, _, _ in SETTINGS}
    return RunOptions(
        host=host, topology=s["windsor_topology"],
        baseline_topology="" if config.getoption("windsor_no_baseline") else s["windsor_baseline_topology"],
        guests=s["windsor_guests"], seed=s["windsor_seed"], cadence_s=s["windsor_cadence_ms"] / 1000,
        impact_threshold_s=s["windsor_impact_threshold_ms"] / 1000,
        budgets=Budgets(s["windsor_restart_budget"], s["windsor_recovery_budget"]),
        watch_after_s=s["windsor_watch_after"],
        fault_params=fault_params,
        roles=_choice(s["windsor_roles"]), faults=_choice(s["windsor_faults"]),
        allow_destructive=bool(config.getoption("windsor_allow_destructive")),
        reuse=not config.getoption("windsor_fresh_host"),
    ).validate()


def _choice(text: str) -> tuple[str, ...]:
    return () if text.strip() in ("", "all") else tuple(x.strip() for x in text.split(","))
