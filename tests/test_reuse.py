"""Reusing a booted topology between cases (harness/reuse.py): a clean case hands its host to the
next one, and a case never starts on a host the one before it damaged."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from helpers import sim_processes

from harness import reuse
from harness.backend.sim import MARKER, SimHost
from harness.errors import HarnessError
from harness.lease import Lease
from harness.runner import FaultContext, run_case
from harness.scenario import RunOptions, Scenario
from harness.signals import Terminated, install_termination_handlers
from harness.sim import paths

OPTS = RunOptions(guests=4)


def kept() -> SimHost:
    [entry] = reuse._kept
    assert isinstance(entry.host, SimHost)
    return entry.host


def test_a_clean_case_hands_its_topology_to_the_next_and_both_measure_the_same() -> None:
    first = run_case(Scenario("netback", "stall"), OPTS, "disaggregated")
    manager = kept().manager
    assert manager is not None
    second = run_case(Scenario("netback", "stall"), OPTS, "disaggregated")
    assert not first.reused and second.reused
    assert kept().manager is manager, "the second case booted a host of its own"
    for result in (first, second):
        assert result.metrics.impacted == result.metrics.expected and not result.metrics.escaped
        assert result.metrics.max_guest_downtime_s >= result.fault_window_s - 0.05
        assert result.metrics.service_restart_s is not None and result.metrics.guest_recovery_s is not None
    assert second.phases["boot"] < first.phases["boot"]


def test_another_topology_or_fresh_host_boots_afresh() -> None:
    run_case(Scenario("netback", "stall"), OPTS, "disaggregated")
    assert not run_case(Scenario("netback", "stall"), OPTS, "monolithic").reused
    assert not run_case(Scenario("netback", "stall"), RunOptions(guests=4, reuse=False), "monolithic").reused
    assert not reuse._kept, "a host was kept although reuse was off"


def test_a_host_crash_is_never_reused() -> None:
    crashed = run_case(Scenario("netback", "kill"), OPTS, "monolithic")  # netback in dom0: the host reboots
    assert crashed.metrics.host_survived is False
    assert not reuse._kept
    assert not run_case(Scenario("netback", "kill"), OPTS, "monolithic").reused


def test_a_case_cut_short_is_never_reused() -> None:
    def boom(ctx: FaultContext) -> None:
        raise HarnessError("cut short while the fault holds")

    with pytest.raises(HarnessError):
        run_case(Scenario("blkback", "stall"), OPTS, "disaggregated", during=boom)
    assert not reuse._kept
    assert not run_case(Scenario("blkback", "stall"), OPTS, "disaggregated").reused


def test_damage_done_to_a_kept_host_is_caught_by_the_gate() -> None:
    """A guest frozen after a clean case: the next case does not start on that host."""
    run_case(Scenario("console", "kill"), OPTS, "disaggregated")
    host = kept()
    guest = next(d for d in host.status()["domains"] if d["name"] == "g02")
    os.kill(int(guest["pid"]), signal.SIGSTOP)
    try:
        result = run_case(Scenario("console", "kill"), OPTS, "disaggregated")
    finally:
        if psutil.pid_exists(int(guest["pid"])):
            os.kill(int(guest["pid"]), signal.SIGCONT)
    assert not result.reused
    assert not result.metrics.escaped and result.metrics.guest_recovery_s is not None


def test_a_lease_still_held_keeps_a_host_from_being_reused() -> None:
    run_case(Scenario("netback", "stall"), OPTS, "disaggregated")
    host = kept()
    assert host.manager is not None
    manager = host.manager.pid
    target = host.locate("netback")
    host.pause(target, Lease.new("stall", target.entity, 30.0, 2.0))
    assert host.reusable() == "1 leases still held"
    assert not run_case(Scenario("netback", "stall"), OPTS, "disaggregated").reused  # and it was shut down
    assert not psutil.pid_exists(manager) or psutil.Process(manager).status() == psutil.STATUS_ZOMBIE


def test_a_role_that_never_answers_again_is_never_reused() -> None:
    """The toolstack lost its socket while stalled (a role that never answers again; guests are
    untouched and progress): the case fails on it, and its host is not handed on."""
    def lose_socket(ctx: FaultContext) -> None:
        host = ctx.host
        assert isinstance(host, SimHost) and host.run_dir  # booted: its run dir is set
        os.unlink(paths.toolstack(host.run_dir))

    result = run_case(Scenario("toolstack", "stall"), OPTS, "disaggregated", during=lose_socket)
    assert result.metrics.service_restart_s is None and result.metrics.guest_recovery_s is not None
    assert not reuse._kept, "a host whose role never answered again was kept"
    assert not run_case(Scenario("toolstack", "stall"), OPTS, "disaggregated").reused


def test_a_terminate_during_teardown_waits_for_the_topology_to_go() -> None:
    """SIGTERM while the kept host is being shut down (CI cancelling the job a second time): the
    shutdown finishes first, then the signal stops the run; nothing of the host is left running."""
    install_termination_handlers()  # as the harness's plugin does: SIGTERM raises Terminated
    run_case(Scenario("netback", "stall"), OPTS, "disaggregated")
    host = kept()
    mine = lambda: [p for p in sim_processes() if p.environ().get(MARKER) == host.run_dir]  # noqa: E731
    assert mine(), "the kept host runs no process: nothing to prove"
    shutdown = host.shutdown

    def cancelled_again() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # lands at the start of the teardown
        shutdown()

    host.shutdown = cancelled_again  # type: ignore[method-assign]
    try:
        with pytest.raises(Terminated):
            reuse.close()
        assert not mine(), "the teardown was cut short by the signal"
    finally:
        shutdown()
