"""The revert matrix on sim://: every fault that changes the host's state × every way a run can
end while it holds — a failing check, an exception, SIGINT, SIGTERM, a pytest-timeout, SIGKILL
of the harness. Each case runs the scenario in a pytest of its own (tests/revert/), cuts it short,
then checks with psutil that nothing of the host is left stopped, that the fault was reverted
(by the harness, or by the host when the lease ran out) and when, and that every guest device
progressed again — and that the JUnit file is whole (or, after SIGKILL, the previous one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import REPO, pytest_argv
from junitparser.xunit2 import JUnitXml

from harness.fault import installed_faults
from harness.model import DEVICES
from harness.sim.leases import ORPHAN_LINGER_S, read_journal
from harness.sim.sweep import MARKER
from harness.waiting import wait_until

SCENARIO = REPO / "tests" / "revert" / "scenario_revert.py"
REVERSIBLE = [name for name, cls in installed_faults().items() if cls.reversible()]
# how each trigger ends the run: (exit status, the fault's window, extra arguments)
TRIGGERS: dict[str, tuple[int, float, list[str]]] = {
    "assert": (1, 6.0, []),
    "exception": (1, 6.0, []),
    "sigint": (2, 6.0, []),
    "sigterm": (2, 6.0, []),
    "timeout": (1, 30.0, ["--timeout", "8"]),
    "sigkill": (-9, 2.0, []),
}
SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
OLD_JUNIT = '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="earlier" tests="0"/></testsuites>'


def host_processes(root: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER, "").startswith(str(root)) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def stopped(procs: list[psutil.Process]) -> list[int]:
    out = []
    for proc in procs:
        try:
            if proc.status() == psutil.STATUS_STOPPED:
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def applied(undo: dict[str, Any]) -> bool:
    """Does what a lease's undo record takes back hold now: its flags raised, its memory limits lowered?"""
    flags = all(os.path.exists(path) for path in undo.get("unlink", []))
    limits = all(psutil.Process(pid).rlimit(psutil.RLIMIT_AS)[0] != soft
                 for pid, _, soft, _ in undo.get("rlimit", []) if psutil.pid_exists(pid))
    return flags and limits and bool(undo.get("unlink") or undo.get("rlimit"))


def undone(undo: dict[str, Any]) -> bool:
    """Is all of it taken back: no flag left, every memory limit as it was?"""
    flags = not any(os.path.exists(path) for path in undo.get("unlink", []))
    limits = all(psutil.Process(pid).rlimit(psutil.RLIMIT_AS)[0] == soft
                 for pid, _, soft, _ in undo.get("rlimit", []) if psutil.pid_exists(pid))
    return flags and limits


def records(root: Path) -> dict[tuple[str, str], list[float]]:
    """Every guest device's completion times, from the guests' own record files."""
    out: dict[tuple[str, str], list[float]] = {}
    for rec in root.glob("wsim-*/rec/*.rec"):
        for line in rec.read_text().splitlines():
            words = line.split()
            if len(words) in (3, 4) and words[1] in DEVICES:  # not boot, nor what guests saw (disk-eio); [latency]
                out.setdefault((rec.stem, words[1]), []).append(float(words[0]))
    return out


def releases(root: Path) -> list[dict[str, Any]]:
    """Every lease's end the host logged (harness/sim/leases.py), oldest first."""
    try:
        return [json.loads(x) for x in (root / "leases.log").read_text().splitlines()]
    except FileNotFoundError:
        return []


@pytest.fixture
def harness_run(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Where a case's harness writes; whatever it leaves running is ended after the test."""
    run: dict[str, Any] = {"root": tmp_path / "root", "junit": tmp_path / "junit.xml",
                           "trigger": tmp_path / "trigger", "proc": None}
    yield run
    if run["proc"] is not None and run["proc"].poll() is None:
        run["proc"].kill()
    for proc in host_processes(run["root"]):
        proc.kill()


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("fault", REVERSIBLE)
def test_fault_is_reverted_however_the_run_ends(fault: str, trigger: str, harness_run: dict[str, Any]) -> None:
    status, window, extra = TRIGGERS[trigger]
    root, junit, mark = harness_run["root"], harness_run["junit"], harness_run["trigger"]
    junit.write_text(OLD_JUNIT)
    roles = installed_faults()[fault].roles()
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={root}&keep=1", "--faults", fault,
                       "--roles", "netback" if "netback" in roles else roles[0], "--no-baseline", "--guests", "3",
                       "--fault-param", f"{fault}.duration_s={window}", f"--junitxml={junit}", *extra)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WINDSOR_TRIGGER": trigger, "WINDSOR_TRIGGER_FILE": str(mark)}
    proc = harness_run["proc"] = subprocess.Popen(argv, cwd=REPO, env=env, text=True,
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if trigger in SIGNALS:  # sent once the fault holds: its lease journalled, its target stopped
        journal: list[dict[str, Any]] = []

        def lease_taken() -> bool:
            journal[:] = read_journal(str(root)) if root.exists() else []
            return bool(journal) or proc.poll() is not None

        assert wait_until("the fault's lease in the host's journal", lease_taken, 60) and journal, proc.communicate()
        held = [psutil.Process(pid) for pid, _ in journal[0]["pids"] if psutil.pid_exists(pid)]
        assert wait_until("the change applied (the target stopped, a flag raised, a limit lowered)",
                          lambda: len(stopped(held)) == len(held) > 0 or applied(journal[0]["undo"]), 10)
        t_trigger = time.monotonic()
        proc.send_signal(SIGNALS[trigger])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, out[-3000:] + err[-2000:]
    if trigger not in SIGNALS:
        t_trigger = float(mark.read_text()) + (8.0 if trigger == "timeout" else 0.0)

    # the fault was reverted: by the harness at once, or after SIGKILL by the host at the lease's end
    assert wait_until("the lease released", lambda: bool(releases(root)), 10)
    [rec] = releases(root)
    if trigger == "sigkill":
        assert rec["by"] == "lease"
        assert -0.05 < rec["t"] - rec["expires"] < 0.5, rec
    else:
        assert rec["by"] == "harness", rec
        # pytest-timeout's clock starts before the test's fixture writes the mark: its trigger may
        # come a little before mark + 8 s (4 µs before it in one CI run)
        assert (-0.05 if trigger == "timeout" else 0) <= rec["t"] - t_trigger < 1.0, (rec["t"] - t_trigger, rec)
        assert "windsor rollback: " in out + err
        assert rec["t"] < rec["expires"]
    latency = rec["t"] - t_trigger
    assert read_journal(str(root)) == []
    # nothing of the host is stopped or changed, and every guest device made progress after the revert
    assert stopped(host_processes(root)) == []
    assert undone(rec["undo"]), rec
    need = {pair: 2 for pair in records(root)}
    assert len(need) >= 9  # 3 guests: g01 net disk emul console heartbeat, g02 ..., g03 ...

    def progressed() -> bool:
        got = records(root)
        return all(sum(t > rec["t"] for t in got.get(p, [])) >= n for p, n in need.items())  # type: ignore[index]

    assert wait_until("every guest device progressing after the revert", progressed, ORPHAN_LINGER_S)
    back = max(sorted(t for t in ts if t > rec["t"])[1] for ts in records(root).values()) - rec["t"]
    if trigger == "sigkill":  # the orphaned host shuts itself down after its leases and a linger
        assert wait_until("the orphaned host gone", lambda: not host_processes(root), ORPHAN_LINGER_S + 10)
        assert junit.read_text() == OLD_JUNIT  # never half a file: the previous one, untouched
    else:
        suites = JUnitXml.fromfile(str(junit))  # a whole new file
        cases = [c for s in suites for c in s]
        assert (len(cases) == 1 and not cases[0].is_passed) or status == 2  # an interrupt may record the case
    print(f"REVERT {fault}/{trigger}: reverted {latency:.3f}s after the trigger (by {rec['by']}), "
          f"every guest device progressing {back:.3f}s after the revert")


def test_an_orphaned_host_still_rebuilds_what_was_killed(harness_run: dict[str, Any]) -> None:
    """The harness SIGKILLed right after it killed netback's domain: the host, orphaned, rebuilds
    the domain and re-attaches the guests (its own watchdog's job), then shuts itself down."""
    root, mark = harness_run["root"], harness_run["trigger"]
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={root}&keep=1", "--roles", "netback", "--faults", "kill",
                       "--no-baseline", "--guests", "3")
    env = {**os.environ, "PYTHONPATH": str(REPO), "WINDSOR_TRIGGER": "sigkill", "WINDSOR_TRIGGER_FILE": str(mark)}
    proc = harness_run["proc"] = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL)
    assert wait_until("netdd killed", lambda: (mark.exists() and mark.read_text() != "") or proc.poll() is not None, 60)
    proc.kill()
    assert proc.wait() == -9
    t_kill = float(mark.read_text())
    net = [pair for pair in records(root) if pair[1] == "net"]
    assert len(net) == 2  # g01 and g02 have a vif on netdd

    def rebuilt() -> bool:
        got = records(root)
        return all(sum(t > t_kill for t in got.get(p, [])) >= 2 for p in net)

    assert wait_until("the guests' network back through a rebuilt netdd", rebuilt, ORPHAN_LINGER_S)
    back = max(sorted(t for t in records(root)[p] if t > t_kill)[0] for p in net) - t_kill
    assert stopped(host_processes(root)) == []
    assert wait_until("the orphaned host gone", lambda: not host_processes(root), ORPHAN_LINGER_S + 10)
    print(f"ORPHAN kill/sigkill: the orphaned host rebuilt netdd; guests' network back {back:.3f}s after the kill")


def test_a_harness_frozen_past_its_lease_finds_the_fault_ended_and_ends_it_again_harmlessly(
    harness_run: dict[str, Any],
) -> None:
    """A harness that cannot act (stopped here; on a real host: cut off) past its lease: the host
    ends the stall by itself; when the harness comes back its own revert is a harmless no-op."""
    root = harness_run["root"]
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={root}", "--roles", "netback", "--faults", "stall",
                       "--no-baseline", "--guests", "3", "--fault-param", "stall.duration_s=1")
    proc = harness_run["proc"] = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert wait_until("a lease", lambda: root.exists() and bool(read_journal(str(root))), 60)
    harness = psutil.Process(proc.pid)
    harness.suspend()
    try:
        assert wait_until("the host ending the lease by itself", lambda: bool(releases(root)), 10)
        [rec] = releases(root)
        assert rec["by"] == "lease" and abs(rec["t"] - rec["expires"]) < 0.5
        assert stopped(host_processes(root)) == []
    finally:
        harness.resume()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1) and "Traceback" not in out, out[-3000:]
    assert [r["by"] for r in releases(root)] == ["lease"]  # the harness's own end found nothing to end
    assert read_journal(str(root)) == [] and not host_processes(root)


def test_a_target_absent_from_the_host_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={tmp_path / 'root'}", "--roles", "device-model",
                       "--faults", "stall", "--no-baseline", "--guests", "3", "-q", "--no-header", "-rN")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), "WINDSOR_GUEST": "g09"})
    assert done.returncode == 1, done.stdout
    assert "device-model fault on 'g09': it is not an HVM guest (HVM guests: g01)" in done.stdout
    assert "Traceback" not in done.stdout and "harness/" not in done.stdout and "During" not in done.stdout, done.stdout
    # no host was booted; the session only held, then gave back, its host lease
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["host.lease.lock"]


@pytest.mark.parametrize("via", ["windsor recover", "session start"])
def test_recover_reverts_what_a_killed_run_left(via: str, tmp_path: Path) -> None:
    """A harness SIGKILLed in a long stall leaves the host holding it; the next session (or
    `windsor recover`) reverts it at once, long before the lease would, removes the orphaned host,
    and says so."""
    root = tmp_path / "root"
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={root}", "--roles", "netback", "--faults", "stall",
                       "--no-baseline", "--guests", "2", "--fault-param", "stall.duration_s=120")
    proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until("a lease", lambda: root.exists() and bool(read_journal(str(root))), 60)
        entry = read_journal(str(root))[0]
        held = [psutil.Process(pid) for pid, _ in entry["pids"]]
        assert wait_until("the target stopped", lambda: len(stopped(held)) == len(held), 10)
        proc.kill()
        proc.wait()
        assert stopped(held) == [p.pid for p in held]  # the host still holds the stall
        assert len(host_processes(root)) >= 8
        started = time.monotonic()
        if via == "windsor recover":
            argv = [sys.executable, "-m", "harness.cli", "recover", "--host", f"sim://?dir={root}"]
        else:  # a new session on the same host: it recovers first, then runs its own case
            argv = pytest_argv("suites", "--host", f"sim://?dir={root}", "-k", "xenstore-kill", "--no-baseline")
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        took = time.monotonic() - started
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        said = done.stdout + done.stderr
        assert f"reverted stall of netdd (lease {entry['id']}) left by pid {proc.pid}, which is gone" in said, said
        assert "removed the sim host" in said, said
        [rec] = releases(root)
        assert rec["id"] == entry["id"] and rec["by"] == "recovery" and rec["t"] < entry["expires_mono"] - 100
        assert not host_processes(root) and not list(root.glob("wsim-*")) and read_journal(str(root)) == []
        print(f"RECOVER: a stall left by a killed run reverted {rec['t'] - started:.3f}s after `{via}` "
              f"started ({took:.2f}s in all), {entry['expires_mono'] - rec['t']:.0f}s before its lease's end")
        if via == "session start":
            return
        again = subprocess.run([sys.executable, "-m", "harness.cli", "recover", "--host", f"sim://?dir={root}"],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "nothing to recover" in again.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in host_processes(root):
            p.kill()
