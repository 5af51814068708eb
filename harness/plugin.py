"""The pytest plugin (entry point ``pytest11``): options (harness/options.py), markers, the scenario matrix and the
``windsor`` fixture that runs a scenario with its baseline and records JUnit properties.

Safety, in the order a session meets it: options, topologies, faults and the interlocks over the
whole matrix are checked at configure time (one ``ERROR:`` line, exit 4, nothing touched);
SIGTERM and SIGHUP become interrupts, so every fault's revert runs; at session start the host is
taken (harness/fleet.py: ``--host inventory:FILE`` picks a free one): checked (`Host.preflight`),
leased to this run (`Host.claim`, harness/hostlease.py; renewed as tests start, released at the
end), and whatever killed runs left on it is reverted (`Host.recover`), and said; ``--shard I/N``
deselects the other shards' cases (harness/shard.py); ``--dry-run`` prints what would be hit
instead of running; the JUnit file is renamed into place whole (a killed run leaves the previous
file or the new one, never half of one).
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from harness import reuse
from harness.atomic import check_writable_dir, partial_name, publish
from harness.backend import get_host, host_class
from harness.backend.base import Host
from harness.change import FLOOD_DEVICES
from harness.errors import HarnessError
from harness.fleet import HostPool, allowed, parse_wait, take
from harness.hostlease import stamp
from harness.isolation import ROLES as ISOLATION_ROLES
from harness.junit import BaselineJunit, Outcome, case_properties
from harness.options import add_options, options_from, setting
from harness.qos import ROLE_OF as QOS_ROLE
from harness.qos import TOPOLOGIES as QOS_TOPOLOGIES
from harness.runner import CaseResult, During, run_case
from harness.safety import check_interlocks, describe, plan
from harness.scale import TOPOLOGIES as SCALE_TOPOLOGIES
from harness.scenario import RunOptions, Scenario, matrix
from harness.shard import Shard, case_key
from harness.signals import install_termination_handlers
from harness.timeline import attachment_line, file_name


class Measured(Protocol):
    """What a claim suite measures on one topology (harness/isolation.py, qos.py, scale.py)."""

    def properties(self, prefix: str = "") -> list[tuple[str, str]]: ...


M = TypeVar("M", bound=Measured)
OPTIONS = pytest.StashKey[RunOptions]()
BASELINES = pytest.StashKey["BaselineJunit | None"]()
RUN_ID = pytest.StashKey[str]()  # this session, in artifact names and the run_id property
NOTES = pytest.StashKey[list[str]]()  # what the session says at its start, besides the host's own lines
HOST = pytest.StashKey[Host]()
POOL = pytest.StashKey[HostPool]()  # the hosts the run may take (one, or an inventory's)
SHARD = pytest.StashKey[Shard]()
def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    for marker in (
        "windsor_role(name): the service role a scenario targets",
        "windsor_fault(name): the fault plugin a scenario injects",
        "destructive: injects faults; run only against test hosts",
        "lab: needs the real-Xen lab (lab://)",
    ):
        config.addinivalue_line("markers", marker)
    install_termination_handlers()
    try:
        pool = HostPool.parse(setting(config, "windsor_host", str, "--host", {}))  # connects to nothing
        shard = setting(config, "windsor_shard", Shard.parse, "--shard", {})
        setting(config, "windsor_host_wait", parse_wait, "--host-wait", {})
        opts = options_from(config, pool.rotated(shard.index - 1)[0])
        path = config.getoption("windsor_baseline_junit")
        baselines = BaselineJunit(path, opts.baseline_topology or "monolithic") if path else None
        config.stash[NOTES] = []
        if baselines is not None and pool.inventory is None and (note := baselines.check_host(opts.host)):
            config.stash[NOTES].append(note)
        config.stash[BASELINES] = baselines
        if not config.getoption("windsor_dry_run"):  # a dry run shows what would be refused instead
            pool = allowed(pool, lambda url: interlocks(config, replace(opts, host=url)), config.stash[NOTES].append)
            opts = replace(opts, host=pool.rotated(shard.index - 1)[0])
            check_outputs(config)
        host = get_host(opts.host)  # parses the URL and the inventory; connects to nothing
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[OPTIONS] = opts
    config.stash[HOST] = host
    config.stash[POOL] = pool
    config.stash[SHARD] = shard
    config.stash[RUN_ID] = new_run_id()


def interlocks(config: pytest.Config, opts: RunOptions) -> None:
    """UsageError unless the interlocks let the whole matrix run on `opts.host`."""
    host = get_host(opts.host)
    check_interlocks(opts, host, plan(opts, host, matrix(opts), runs_baseline(config, opts)))


def new_run_id() -> str:
    """A session's id: when it started (UTC) and 6 random hex digits, e.g. 20261127T161500-3fa9c2."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def check_outputs(config: pytest.Config) -> None:
    """Every place the run will write is writable, before anything is booted or injected."""
    junit = config.getoption("xmlpath", None)
    if junit:
        check_writable_dir(Path(junit).resolve().parent, "--junitxml")
    where = artifacts_dir(config)
    if where is not None:
        check_writable_dir(where, "--artifacts" if config.getoption("windsor_artifacts") else "--junitxml's artifacts")


def runs_baseline(config: pytest.Config, opts: RunOptions) -> bool:
    return bool(opts.baseline_topology) and not config.getoption("windsor_baseline_junit")


def say(line: str) -> None:
    print(f"windsor: {line}", file=sys.stderr)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Take the host — check it answers, lease it to this run (waiting up to --host-wait for a
    free one) — and revert what killed runs left on it, before the first test."""
    config = session.config
    if config.getoption("windsor_dry_run") or config.option.collectonly or HOST not in config.stash:
        return
    pool, opts = config.stash[POOL], config.stash[OPTIONS]
    if config.stash[HOST].spec.scheme == "lab":  # may take a minute or two: say why nothing seems to happen
        say("lab://: booting the lab unless it runs (windsor lab up), then checking its lease journal")
    try:
        host = config.stash[HOST] = take(pool, setting(config, "windsor_host_wait", parse_wait, "--host-wait", {}),
                                         config.stash[SHARD].index - 1, say)
        opts = config.stash[OPTIONS] = replace(opts, host=host.spec.url)
        if pool.inventory is not None:
            until = stamp(host.held.expires) if host.held else "its parent run ends"
            say(f"took {host.spec.url} from the inventory {pool.inventory} (leased until {until})")
            baselines = config.stash[BASELINES]
            if baselines is not None and (note := baselines.check_host(opts.host)):
                config.stash[NOTES].append(note)
        for line in host.recover():
            say(f"{host.spec.url}: {line}")
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    for line in config.stash.get(NOTES, []):
        say(line)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session with no scenario to run on the host (the harness's own tests, ``-k`` matching
    nothing) lets the host go as soon as it knows, so that the runs it starts can take it."""
    if not any({"windsor", "windsor_scenario"} & set(getattr(item, "fixturenames", ())) for item in session.items):
        release_host(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Renew the host lease as tests start (at most once a minute): a run holds its host for as long
    as it goes, and a SIGKILLed one lets go of it within the lease's TTL."""
    host = item.config.stash.get(HOST, None)
    if host is None or host.held is None or not host.held.due():
        return
    try:
        host.claim(host.held.renewed())
    except HarnessError as exc:
        pytest.exit(f"windsor: {exc}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Shut the kept topology down and give the host lease back, however the session ended
    (failures, Ctrl-C, SIGTERM included)."""
    reuse.close()
    release_host(config)


def release_host(config: pytest.Config) -> None:
    host = config.stash.get(HOST, None)
    if host is None or host.held is None:
        return
    try:
        said = host.release()
    except HarnessError as exc:
        said = [f"could not release the host lease ({exc}): it expires by itself"]
    for line in said:
        say(f"{host.spec.url}: {line}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--shard I/N: keep this shard's cases; pytest reports the others as deselected. So are the
    cases of the other claims' suites (isolation, QoS, scalability) when none was chosen (an empty
    parametrization)."""
    cases = claim_cases(config.stash[OPTIONS])
    values = {name: [c.values[0] for c in chosen] for name, chosen in cases.items()}

    def unparametrized(item: pytest.Item) -> bool:  # a claim suite's case, none of it chosen
        params = getattr(getattr(item, "callspec", None), "params", {})
        return any(name in getattr(item, "fixturenames", ()) and params.get(name) not in values[name]
                   for name in CLAIMS)

    unchosen = [item for item in items if unparametrized(item)]
    if unchosen:
        config.hook.pytest_deselected(items=unchosen)
        items[:] = [item for item in items if item not in unchosen]
    shard = config.stash.get(SHARD, None)
    if shard is not None and shard.total > 1:
        keep = [item for item in items if shard.holds(case_key(item))]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """``--dry-run``: the plan of the selected scenarios instead of running them."""
    if not session.config.getoption("windsor_dry_run"):
        return None
    opts = session.config.stash[OPTIONS]
    scenarios: dict[Scenario, None] = {}
    for item in session.items:
        chosen = getattr(getattr(item, "callspec", None), "params", {}).get("windsor_scenario")
        if isinstance(chosen, Scenario):
            scenarios[chosen] = None
    cases = plan(opts, session.config.stash[HOST], list(scenarios), runs_baseline(session.config, opts))
    pool = session.config.stash[POOL]
    if pool.inventory is not None:
        print(f"windsor dry run: --host {pool.given}: a run takes the first free host of {len(pool.urls)}, "
              f"trying {opts.host} first; the plan for it:")
    print(describe(opts, session.config.stash[HOST], cases))
    return True


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """pytest's JUnit writer opens its file and writes it in place: point it at a partial file,
    and rename that over the real one once it is complete."""
    from _pytest.junitxml import xml_key

    xml = session.config.stash.get(xml_key, None)
    final = getattr(xml, "logfile", None)
    if xml is not None and final:
        xml.logfile = str(partial_name(final))
    try:
        return (yield)
    finally:
        if xml is not None and final:
            partial, xml.logfile = xml.logfile, final
            if partial != final:
                try:
                    publish(partial, final)
                except FileNotFoundError:
                    pass  # it was never written (pytest failed before): the old file stays


def claim_cases(opts: RunOptions) -> dict[str, list[Any]]:  # of pytest.param (ParameterSet)
    """The cases of the suites beside availability, per fixture: none when --faults narrows the run
    to fault cases; those of the chosen --roles (scalability has no role: it runs with none given)."""
    def chosen(role: str) -> bool:
        return not opts.faults and (not opts.roles or role in opts.roles)

    return {
        "windsor_attacker": [pytest.param(r, marks=pytest.mark.windsor_role(r)) for r in ISOLATION_ROLES if chosen(r)],
        "windsor_noisy": [pytest.param((d, t), id=f"{d}-{t}", marks=pytest.mark.windsor_role(QOS_ROLE[d]))
                          for d in FLOOD_DEVICES for t in QOS_TOPOLOGIES if chosen(QOS_ROLE[d])],
        "windsor_scale": [pytest.param(t) for t in SCALE_TOPOLOGIES if not opts.faults and not opts.roles],
    }


CLAIMS = ("windsor_attacker", "windsor_noisy", "windsor_scale")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wanted = [name for name in CLAIMS if name in metafunc.fixturenames]
    if wanted:  # suites/test_isolation.py, test_qos.py, test_scale.py
        cases = claim_cases(metafunc.config.stash[OPTIONS])
        for name in wanted:
            metafunc.parametrize(name, cases[name])
    if "windsor_scenario" not in metafunc.fixturenames:
        return
    scenarios = matrix(metafunc.config.stash[OPTIONS])
    metafunc.parametrize("windsor_scenario", [
        pytest.param(s, id=s.id, marks=[pytest.mark.windsor_role(s.role), pytest.mark.windsor_fault(s.fault),
                                        pytest.mark.destructive])
        for s in scenarios
    ])


class Windsor:
    """What a suite test gets: the run options and `run(scenario)`."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.options = item.config.stash[OPTIONS]
        self.budgets = self.options.budgets

    def run(self, scenario: Scenario, during: During | None = None) -> Outcome:
        """Run the scenario on the baseline topology (unless read from JUnit or disabled) and on
        the topology under test; record both as JUnit properties and one system-out line.
        `during(ctx)` runs while each fault holds (after inject, before revert): raising there
        fails the test, and the fault is still reverted."""
        opts = self.options
        why_not = host_class(opts.host).cannot(scenario.role, scenario.fault)
        if why_not:
            pytest.skip(why_not)
        baselines = self.item.config.stash[BASELINES]
        baseline: dict[str, str] | None = None
        ran: list[CaseResult] = []
        failure = None
        try:
            if baselines is not None:
                baseline = dict(baselines.get(self.item.name))
            # every other case runs its baseline second: consecutive runs share a topology (harness/reuse.py)
            items = self.item.session.items
            second = self.item in items and items.index(self.item) % 2 == 1
            with_baseline = bool(opts.baseline_topology) and baselines is None
            if with_baseline and not second:
                ran.append(run_case(scenario, opts, opts.baseline_topology, during))
            ran.append(run_case(scenario, opts, opts.topology, during))
            if with_baseline and second:
                ran.insert(0, run_case(scenario, opts, opts.baseline_topology, during))
            if len(ran) == 2:
                baseline = case_properties(ran[0])
            outcome = Outcome(ran[-1], baseline)
        except HarnessError as exc:  # a message that names the problem: no traceback needed
            failure = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        run = self.record(outcome.properties())
        print(outcome.summary_line())
        where = artifacts_dir(self.item.config)
        if where is not None:  # the case under test first: GitLab links only the first attachment
            for result in reversed(ran):
                path = where / file_name(self.item.name, result.topology, run)
                replace(result.timeline, run=run).write(path)
                print(attachment_line(path))
        self.item.config.hook.pytest_windsor_result(item=self.item, outcome=outcome)
        return outcome


    def beside(self, measure: Callable[[str], M], topology: str) -> tuple[M, M | None]:
        """A claim measured by `measure(topology name)` on `topology` and on the run's baseline (none
        with --no-baseline), its figures written as the case's properties (the baseline's as
        ``baseline.*``). A harness error fails the case with its one line, no traceback."""
        try:
            candidate = measure(topology)
            baseline = measure(self.options.baseline_topology) if self.options.baseline_topology else None
        except HarnessError as exc:
            pytest.fail(str(exc), pytrace=False)
        self.record(candidate.properties() + (baseline.properties("baseline.") if baseline else []))
        return candidate, baseline

    def record(self, props: list[tuple[str, str]]) -> str:
        """Write `props` as the case's JUnit properties, with this session's run_id and build_id."""
        run = self.item.config.stash[RUN_ID]
        self.item.user_properties.extend([*props, ("run_id", run)])
        build_id = self.item.config.getoption("windsor_build_id")
        if build_id:
            self.item.user_properties.append(("build_id", str(build_id)))
        return run


def artifacts_dir(config: pytest.Config) -> Path | None:
    """--artifacts, else windsor-artifacts/ beside the JUnit file, else None (nothing to attach to)."""
    chosen = config.getoption("windsor_artifacts")
    if chosen:
        return Path(chosen)
    junit = config.getoption("xmlpath", None)
    return Path(junit).parent / "windsor-artifacts" if junit else None


@pytest.fixture
def windsor(request: pytest.FixtureRequest) -> Windsor:
    return Windsor(request.node)
