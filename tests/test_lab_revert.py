"""The revert matrix on real Xen (the lab): a stall is `xl pause` of the network driver domain
(or, on a monolithic dom0, a CPU cap by wstall), a throttle its credit2 cap, each journalled in
dom0 by ``windsor-lease``. Each
case runs the scenario (tests/revert/) in a pytest of its own against lab://, cuts it short, then
checks in dom0 that nothing is left paused or capped, who ended the lease and when, and that
every guest device progressed again; and that a run killed with its watchdog is cleaned up by
the next session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, pytest_argv
from junitparser.xunit2 import JUnitXml

from harness.fault import installed_faults
from harness.lab.machine import Lab
from harness.model import DEVICES
from harness.waiting import wait_until
from harness.xen.payload import tool
from harness.xen.plan import DD_MEMORY_MB
from harness.xen.records import LOG_DIR, Records

pytestmark = pytest.mark.lab
SCENARIO = REPO / "tests" / "revert" / "scenario_revert.py"
LEASES = "/var/lib/windsor/state/leases.log"
LEASE_TOOL = tool("windsor-lease")
# trigger: (exit status, stall window, extra arguments). The timeout must fall inside the stall
# whatever the topology's boot and steady state took (25-50 s here): a 75 s limit, a 60 s stall.
TRIGGERS: dict[str, tuple[int, float, list[str]]] = {
    "assert": (1, 5.0, []),
    "exception": (1, 5.0, []),
    "sigint": (2, 15.0, []),
    "sigterm": (2, 15.0, []),
    "timeout": (1, 60.0, ["--timeout", "75"]),
    "sigkill": (-9, 5.0, []),
}
DOM0_WINDOW_S = 20.0  # a capped dom0 answers slowly: 20-60 s for one ssh command here
SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}


def dom0_offset(lab: Lab) -> float:
    """dom0's wallclock minus ours, from the fastest of three round trips."""
    best = (1e9, 0.0)
    for _ in range(3):
        before = time.time()
        there = float(lab.ssh("date +%s.%N").stdout)
        after = time.time()
        best = min(best, (after - before, there - (before + after) / 2))
    return best[1]


def lease_ends(lab: Lab, pid: int) -> list[dict[str, str]]:
    """The ends of the leases taken by harness process `pid`, as dom0's journal logged them."""
    out = []
    for line in lab.ssh(f"cat {LEASES} 2>/dev/null || true").stdout.splitlines():
        words = line.split()
        info = dict(w.split("=", 1) for w in words[3:] if "=" in w)
        if len(words) > 3 and words[1] == "end" and info.get("owner", "").split(":")[1:2] == [str(pid)]:
            out.append({"t": words[0], "id": words[2], **info})
    return out


def held(lab: Lab) -> str:
    """What in dom0 still holds a fault: paused domains, a CPU cap, wstall, journalled leases, a
    driver domain short of memory, a vif listed as cut, a disk listed as failing, a guest asked to
    storm xenstore."""
    said = lab.ssh("xl list | awk 'NR > 1 && $5 ~ /p/ { print \"paused\", $1 }'; "
                   "xl sched-credit2 | awk 'NR > 1 && $4 != 0 && $4 ~ /^[0-9]+$/ { print \"capped\", $1 }'; "
                   f"xl list | awk 'NR > 1 && $1 ~ /dd$/ && $3 < {DD_MEMORY_MB} {{ print \"squeezed\", $1 }}'; "
                   "for d in $(xenstore-list /local/domain); do "
                   "xenstore-list /local/domain/$d/data/windsor-link 2>/dev/null | sed \"s/^/cut /\"; "
                   "xenstore-list /local/domain/$d/data/windsor-disk 2>/dev/null | sed \"s/^/failing disk /\"; "
                   "xenstore-exists /local/domain/$d/data/windsor-storm 2>/dev/null && echo storm $d; done; "
                   f"pgrep -x wstall >/dev/null && echo wstall running; {LEASE_TOOL} list", 60)
    return said.stdout.strip()


def in_effect(lab: Lab, fault: str, target: str) -> bool:
    """Is the fault holding now: journalled in dom0, and in effect? (A domain being created is
    paused too: the journal tells a fault apart.) Cheap checks: a capped dom0 crawls."""
    journalled = f"{LEASE_TOOL} list | grep -q ' {fault} {target}$'"
    dom = f"/local/domain/$(xl domid {target})"
    if target == "dom0":  # wstall says when the cap is set
        check = "grep -q capped /var/lib/windsor/state/wstall.out"
    elif fault == "partition":  # netdd's link keeper is told which vif to cut
        check = f"[ -n \"$(xenstore-list {dom}/data/windsor-link 2>/dev/null)\" ]"
    elif fault == "disk-error":  # blkdd's disk keeper is told whose disk to fail
        check = f"[ -n \"$(xenstore-list {dom}/data/windsor-disk 2>/dev/null)\" ]"
    elif fault == "memory-pressure":
        check = f"xl list {target} | awk 'NR == 2 && $3 < {DD_MEMORY_MB} {{ found = 1 }} END {{ exit !found }}'"
    elif fault == "xenstore-storm":
        check = f"xenstore-exists {dom}/data/windsor-storm"
    elif fault == "stall":
        check = f"xl list {target} | awk 'NR == 2 && $5 ~ /p/ {{ found = 1 }} END {{ exit !found }}'"
    else:
        check = f"xl sched-credit2 -d {target} | awk 'NR == 2 && $4 > 0 {{ found = 1 }} END {{ exit !found }}'"
    return lab.ssh(f"{journalled} && {check}", 60).returncode == 0


def progress_after(lab: Lab, t: float) -> dict[tuple[str, str], int]:
    """Per guest device: how many operations completed after host time `t` (the consoles' logs)."""
    guests = tuple(lab.ssh(f"ls {LOG_DIR}").stdout.replace(".log", "").split())
    records = Records(tuple(g for g in guests if g.startswith("g")))
    state = lab.state()
    assert state is not None
    done = subprocess.run(lab.ssh_argv(state, records.command(), 60), capture_output=True)  # bytes: \r\n kept
    records.feed(done.stdout)
    return {pair: sum(x > t for x in times) for pair, times in records.times.items()
            if pair[1] in DEVICES}  # not what guests saw besides progress (xs-write of a storm)


@pytest.fixture
def topology_down(lab: Lab) -> Iterator[None]:
    yield
    lab.ssh(f"{tool('windsor-topo')} down >/dev/null 2>&1; {LEASE_TOOL} list", 120)


# (fault, trigger, topology, target): the stall of a driver domain cut short every way; the
# dead-man's switch for a dom0 cap (monolithic) and for a driver domain's credit2 cap
CASES = ([("stall", t, "netdd-only", "netdd") for t in TRIGGERS]
         + [("stall", "sigkill", "monolithic", "dom0"), ("throttle", "sigkill", "netdd-only", "netdd")]
         # every other change Xen applies, with the harness SIGKILLed: the host undoes it by itself
         + [("partition", "sigkill", "netdd-only", "netdd"), ("memory-pressure", "sigkill", "netdd-only", "netdd"),
            ("xenstore-storm", "sigkill", "netdd-only", "g02"), ("disk-error", "sigkill", "disaggregated", "blkdd")])
# CI keeps what only the host can do: the dead-man's switch of a driver domain's pause (the lease
# watcher) and of a dom0 cap (wstall). The in-process triggers end a
# fault by the harness's own revert, the path of every case's normal end and the one that
# tests/test_revert_matrix.py covers per trigger on sim://; the throttle's dead-man's switch is
# the same lease watcher as the stall's, with another undo command. The nightly lab job runs them all.
IN_CI = {("stall", "sigkill", "netdd-only"), ("stall", "sigkill", "monolithic")}


@pytest.mark.parametrize("fault, trigger, topology, target", [
    pytest.param(*c, id=f"{c[0]}-{c[3]}-{c[1]}", marks=[] if c[:3] in IN_CI else [pytest.mark.nightly])
    for c in CASES])
def test_lab_fault_is_reverted_however_the_run_ends(
    lab: Lab, topology_down: None, fault: str, trigger: str, topology: str, target: str, tmp_path: Path,
) -> None:
    status, window, extra = TRIGGERS[trigger]
    if target == "dom0":
        window = DOM0_WINDOW_S
    elif topology == "disaggregated":  # 2 driver domains busy dom0: its in_effect check took more than 5 s
        window = max(window, 15.0)
    mark = tmp_path / "trigger"
    role = installed_faults()[fault].roles()[0] if fault in ("xenstore-storm", "disk-error") else "netback"
    argv = pytest_argv(str(SCENARIO), "--host", "lab://", "--topology", topology, "--roles", role,
                       "--faults", fault, "--no-baseline", "--guests", "2",
                       "--fault-param", f"{fault}.duration_s={window}", f"--junitxml={tmp_path / 'j.xml'}", *extra)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WINDSOR_TRIGGER": trigger, "WINDSOR_TRIGGER_FILE": str(mark)}
    offset = dom0_offset(lab)  # now: a capped dom0 may take a minute to answer
    if trigger in SIGNALS:
        argv.append("--log-cli-level=INFO")  # the harness says when the fault is in effect
    proc = subprocess.Popen(argv, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        if trigger in SIGNALS:  # once the fault holds: the harness has said so (and, cheaply, dom0 agrees)
            said = lambda: proc.poll() is not None or any(f"injected {fault} on {target}" in x for x in lines)  # noqa: E731
            assert wait_until(f"the {fault} injected", said, 300) and proc.poll() is None, "".join(lines)[-3000:]
            if target != "dom0":  # a capped dom0 takes a minute to answer: checked after the fact below
                assert in_effect(lab, fault, target)
            else:  # wstall sets the cap after the harness is told: 5 s into the 20 s window
                # (in a CI run here wstall capped dom0 3.1 s after the time the harness recorded
                # as the injection, so 1 s was not enough; the assertion below still checks that
                # the harness died inside the real cap)
                # (and 7.9 s once, with the recovery agent running in the monolithic dom0): 10 s
                # into the 20 s window
                line = next(x for x in lines if f"injected {fault} on {target}" in x)
                hit = float(line.split("at host time ")[1].split(";")[0]) - offset
                assert wait_until("10 s into the cap", lambda: time.time() > hit + 10.0, 30)
            t_trigger = time.time()
            proc.send_signal(SIGNALS[trigger])
        proc.wait(600)
        reader.join(10)
        out, err = "".join(lines), ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, out[-3000:] + err[-3000:]
    if trigger not in SIGNALS:
        t_trigger = time.time() - time.monotonic() + float(mark.read_text()) + (75.0 if trigger == "timeout" else 0)

    ends: list[dict[str, str]] = []

    def ended() -> bool:
        ends[:] = lease_ends(lab, proc.pid)
        return bool(ends)

    assert wait_until("the lease's end in dom0's journal", ended, window + 80), lab.ssh(f"tail -5 {LEASES}").stdout
    [end] = ends
    latency = float(end["t"]) - offset - t_trigger
    assert end["rc"] == "0" and end["target"] == target, end
    if trigger == "sigkill":
        assert end["by"] == "lease", end
    else:
        assert end["by"] == "harness", end
        assert latency < 10, (latency, end)  # one ssh command under TCG: about a second
        assert "windsor rollback: " in out + err
        suites = JUnitXml.fromfile(str(tmp_path / "j.xml"))  # a whole file (an interrupt may record the case)
        assert sum(1 for s in suites for _ in s) == 1 or status == 2
    assert held(lab) == ""  # nothing paused, capped or journalled is left in dom0
    # every guest device progressed after the revert (the consoles' logs outlive the guests)
    revert_t = float(end["t"])
    if target == "dom0":  # wstall undid the cap itself at the window's end; the lease came later
        capped, uncapped = map(float, lab.ssh("cat /var/lib/windsor/state/wstall.out").stdout.split()[1::2])
        assert capped < t_trigger + offset < uncapped  # the harness died while dom0 was capped
        revert_t = uncapped
        latency = revert_t - offset - t_trigger

    def progressed() -> bool:
        after = progress_after(lab, revert_t)
        return len(after) >= 4 and all(n >= 2 for n in after.values())

    assert wait_until("every guest device progressing after the revert", progressed, 120), progress_after(lab, revert_t)
    taken, expires = float(end["taken"]), float(end["expires"])
    by = "wstall at its window's end; its lease ended later" if target == "dom0" else end["by"]
    print(f"LAB {fault}/{target}/{trigger}: reverted {latency:.2f}s after the trigger (by {by}; lease taken "
          f"{taken - offset - t_trigger:+.1f}s from the trigger, {expires - taken:.0f}s long)")


@pytest.mark.nightly  # CI keeps the lease watcher's own undo (above): 94 s of CI's 30 minutes
def test_lab_recover_reverts_a_stall_whose_run_and_watchdog_were_killed(lab: Lab, topology_down: None,
                                                                         tmp_path: Path) -> None:
    argv = pytest_argv(str(SCENARIO), "--host", "lab://", "--topology", "netdd-only", "--roles", "netback",
                       "--faults", "stall", "--no-baseline", "--guests", "2", "--fault-param", "stall.duration_s=300")
    log = tmp_path / "harness.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=out)
    try:
        paused = lambda: proc.poll() is not None or in_effect(lab, "stall", "netdd")  # noqa: E731
        assert wait_until("netdd paused", paused, 300) and proc.poll() is None, log.read_text()[-3000:]
        proc.kill()
        proc.wait()
        lab.ssh("pkill -f '[w]indsor-lease watch'")  # its watchdog too: only the journal is left
        assert in_effect(lab, "stall", "netdd")  # the host still holds it: nothing will end it now
        started = time.time()
        done = subprocess.run([sys.executable, "-m", "harness.cli", "recover", "--host", "lab://"], cwd=REPO,
                              capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
        took = time.time() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, done.stderr
    assert "reverted stall of netdd" in done.stdout and f"left by pid {proc.pid}, which is gone" in done.stdout
    assert held(lab) == ""
    [end] = lease_ends(lab, proc.pid)
    assert end["by"] == "recovery" and end["rc"] == "0"
    print(f"LAB recover: the stall of netdd left by a killed run and watchdog reverted by `windsor recover` "
          f"in {took:.1f}s")
