"""dom0's daemons on real Xen (the lab), each fault with its baseline: xenstored (oxenstored) and
xenconsoled, stalled and killed, an HVM guest's device model (QEMU) stalled, and the toolstack
(the recovery agent and xl's domain monitors) killed and stalled; each expectation
is what the lab measured (README). Both topologies keep the daemons in dom0 (Debian's Xen has no
stub domains for them), so candidate and baseline hit the same process: the comparison shows no
disaggregation for these roles, and the report says so. The device model is the exception: in
its stub domain on disaggregated, in dom0 on monolithic. Nightly
only (about 50 minutes of TCG)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, pytest_argv

from harness.junit import case_props, read_cases

pytestmark = [pytest.mark.lab, pytest.mark.nightly]


def cases(tmp_path: Path, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    junit = tmp_path / "lab.xml"
    argv = pytest_argv("suites", "--host", "lab://", f"--junitxml={junit}", *args)
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    got = {c.name.split("[")[1].rstrip("]"): case_props(c) for c in read_cases(str(junit))}
    assert got, done.stdout[-4000:] + done.stderr[-2000:]
    return done.returncode, got


def test_a_console_outage_freezes_every_guest_that_writes_to_its_console(tmp_path: Path) -> None:
    """xenconsoled stopped for 10 s, then killed (the recovery agent starts it again). Linux's PV
    console (hvc_xen) waits for room in the 2 KiB ring with interrupts off, so once the ring is
    full every guest that writes to hvc0 stops whole, not only its console: stopped for 10 s,
    every device of every guest is out, on both topologies, whatever the guest buffers itself.
    Killed, the guests freeze only if the agent's restart outlasts the ring (≈ 3 s of records):
    once 4/4 whole at 5.5 s, once none at 2.0 s. That is the console's blast radius
    (`Blast.expected`: every guest writing to it, whole), so the cases pass: nothing is lost, and
    each guest comes back with its console."""
    rc, got = cases(tmp_path, "--roles", "console", "--faults", "stall,kill")
    assert rc == 0, got
    for name in ("console-stall", "console-kill"):
        case = got[name]
        for side in ("", "baseline."):
            assert case[f"{side}acked_writes_lost"] == "0" and case[f"{side}host_survived"] == "true", case
            assert case[f"{side}service_restart_s"] != "none" and case[f"{side}guest_recovery_s"] != "none", case
    stall = got["console-stall"]
    for side in ("", "baseline."):
        assert stall[f"{side}guests_impacted"] == stall[f"{side}guests_total"], stall
        assert float(stall[f"{side}max_guest_downtime_s"]) >= 9.0, stall  # frozen for the 10 s window


def test_xenstored_killed_never_comes_back_and_the_host_is_rebooted(tmp_path: Path) -> None:
    """A stalled xenstored delays every xenstore user by its window and comes back; a killed one
    never does (Xen 4.17 has no live-update state to start it from): the case fails with that
    finding, the guests' data paths go on without it, and the harness reboots the host before
    the next case."""
    rc, got = cases(tmp_path, "--roles", "xenstore", "--faults", "stall,kill")
    assert rc == 1, got  # the kill cases fail: a real finding, not an error
    stall = got["xenstore-stall"]
    for side in ("", "baseline."):
        assert stall[f"{side}impacted"] == "none" and stall[f"{side}service_restart_s"] != "none", stall
        assert float(stall[f"{side}xenstore_late_s"]) >= 8.0, stall  # every probe waited the window out
    kill = got["xenstore-kill"]
    for side in ("", "baseline."):
        assert kill[f"{side}service_restart_s"] == "none" and kill[f"{side}host_survived"] == "true", kill
        assert kill[f"{side}impacted"] == "none" and kill[f"{side}acked_writes_lost"] == "0", kill


def test_a_stalled_device_model_stops_its_guest_whole_until_it_goes_on(tmp_path: Path) -> None:
    """An HVM guest's QEMU (in its stub domain g01-dm, paused; in dom0 on monolithic, SIGSTOP)
    stopped for 10 s: the guest's vCPU waits on
    the I/O request QEMU has not answered, so every device of it stops (its PV console and
    heartbeat too), and it goes on by itself at SIGCONT; the PV guest beside it never notices.
    Contained: the blast radius of a device model is its guest, whole (docs/design.md)."""
    rc, got = cases(tmp_path, "--roles", "device-model", "--faults", "stall", "--guests", "2")
    assert rc == 0, got
    case = got["device-model-stall"]
    for side in ("", "baseline."):
        assert case[f"{side}impacted"] == "g01:console g01:emul g01:heartbeat", case
        assert case[f"{side}target_domain"] == ("dom0/qemu-g01" if side else "g01-dm"), case
        assert case[f"{side}disturbed"] == "none", case
        assert case[f"{side}service_restart_s"] != "none" and case[f"{side}guest_recovery_s"] != "none", case
        assert float(case[f"{side}max_guest_downtime_s"]) >= 9.0, case  # stopped for the 10 s window


def test_a_killed_toolstack_comes_back_alone_and_xl_monitors_do_not(tmp_path: Path) -> None:
    """The toolstack of an xl host: the recovery agent (under its keeper, as a toolstack runs under
    a supervisor) and xl's per-domain monitors, in dom0 on both topologies. Killed, the agent is
    back within seconds and xl's monitors never are (xl cannot give a running domain a new one):
    no guest's device notices either; the host is not reused after it (its crashes would no
    longer be answered by xl). Stopped for 10 s, nothing notices, and it goes on."""
    rc, got = cases(tmp_path, "--roles", "toolstack", "--faults", "kill,stall", "--guests", "2")
    assert rc == 0, got
    for name in ("toolstack-kill", "toolstack-stall"):
        case = got[name]
        for side in ("", "baseline."):
            assert case[f"{side}impacted"] == "none" and case[f"{side}disturbed"] == "none", case
            assert case[f"{side}target_domain"] == "dom0/windsor-agent", case
            assert case[f"{side}service_restart_s"] != "none", case
            assert case[f"{side}acked_writes_lost"] == "0" and case[f"{side}host_survived"] == "true", case
