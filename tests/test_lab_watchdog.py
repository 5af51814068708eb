"""The lab's watchdog (harness/lab/watchdog.py) against a real QEMU process (one that never starts
its CPU, ``-S``, so it costs nothing): stopped when the last process using the lab is gone, kept
for its idle time when kept, started afresh when the machine resets (``-no-reboot``, a reset
asked for over QMP). No Xen is booted here; `lab` tests boot it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from harness.lab.machine import Lab, LabState
from harness.lab.watchdog import POLL_S, alive_users, register
from harness.sim.sweep import dead
from harness.waiting import wait_until

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs QEMU")


def qemu_argv(root: Path) -> list[str]:
    """A QEMU that never runs its CPU, exits on a reset (as the lab's does) and takes QMP commands."""
    return ["qemu-system-x86_64", "-S", "-no-reboot", "-display", "none", "-nodefaults", "-m", "16",
            "-qmp", f"unix:{root / 'qmp.sock'},server=on,wait=off", "-daemonize", "-pidfile", str(root / "qemu.pid")]


def kill(pid: int) -> None:
    try:
        psutil.Process(pid).kill()
    except psutil.NoSuchProcess:
        pass


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[int]:
    subprocess.run(qemu_argv(tmp_path), check=True, timeout=30)
    pid = int((tmp_path / "qemu.pid").read_text())
    try:
        yield pid
    finally:
        kill(pid)


def user() -> subprocess.Popen[str]:
    """A process that uses the lab until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True)


def start(root: Path, qemu: int, keep: bool, idle_s: float, users: list[subprocess.Popen[str]]) -> Lab:
    lab = Lab(root)
    state = LabState(qemu, 0, 0.0, 0.0, keep=keep, idle_s=idle_s, argv=tuple(qemu_argv(root)))
    (root / "lab.json").write_text(json.dumps(asdict(state)))
    for proc in users:
        register(root, proc.pid)
    lab._watchdog(qemu)  # registers this process too, as `up` does
    (root / "users" / str(psutil.Process().pid)).unlink()  # ... which would outlive the test's checks
    return lab


def gone(pid: int) -> bool:
    try:
        return dead(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def said(root: Path, line: str) -> bool:
    return wait_until(f"the watchdog to say {line!r}", lambda: line in (root / "watchdog.log").read_text(), 5.0)


def test_the_lab_stops_when_the_last_session_using_it_ends(tmp_path: Path, qemu: int) -> None:
    first, second = user(), user()
    lab = start(tmp_path, qemu, False, 1800.0, [first, second])
    first.communicate("")
    assert wait_until("the first user's record removed", lambda: len(alive_users(tmp_path)) == 1, 3 * POLL_S + 5)
    assert not gone(qemu), "stopped while a session still used it"
    second.communicate("")
    assert wait_until("QEMU stopped", lambda: gone(qemu), 3 * POLL_S + 15), (tmp_path / "watchdog.log").read_text()
    assert lab.state() is None
    assert said(tmp_path, "no session uses the lab any more: stopped")


def test_a_kept_lab_stays_for_its_idle_time_then_stops(tmp_path: Path, qemu: int) -> None:
    idle_s = 4 * POLL_S
    session = user()
    start(tmp_path, qemu, True, idle_s, [session])
    session.communicate("")
    assert wait_until("the session's record removed", lambda: not alive_users(tmp_path), 3 * POLL_S + 5)
    ended = time.time()
    assert wait_until("QEMU stopped", lambda: gone(qemu), idle_s + 3 * POLL_S + 15)
    assert time.time() - ended >= idle_s - POLL_S, "a kept lab stopped before its idle time"
    assert said(tmp_path, f"kept lab idle for {idle_s / 60:g} min: stopped")


def reset(root: Path) -> None:
    """Ask QEMU for a machine reset, as Xen's reboot after a dom0 crash does."""
    with socket.socket(socket.AF_UNIX) as qmp:
        qmp.connect(str(root / "qmp.sock"))
        reader = qmp.makefile("r")
        reader.readline()  # the greeting
        for command in ("qmp_capabilities", "system_reset"):
            qmp.sendall(json.dumps({"execute": command}).encode() + b"\n")
            answer = json.loads(reader.readline())
            while "event" in answer:  # -no-reboot: the reset is a SHUTDOWN event
                answer = json.loads(reader.readline())
            assert "return" in answer, (command, answer)


def test_a_reset_of_the_lab_host_is_a_fresh_qemu_and_down_stops_it(tmp_path: Path, qemu: int) -> None:
    session = user()
    lab = start(tmp_path, qemu, False, 1800.0, [session])
    fresh: list[int] = []
    try:
        reset(tmp_path)
        assert wait_until("the first QEMU to exit", lambda: gone(qemu), 10)

        def restarted() -> bool:
            state = lab.state()
            fresh[:] = [state.pid] if state is not None and state.pid != qemu else []
            return bool(fresh)

        assert wait_until("a fresh QEMU", restarted, 10), (tmp_path / "watchdog.log").read_text()
        assert said(tmp_path, f"QEMU pid {qemu} exited (the lab host reset): started a fresh QEMU, pid {fresh[0]}")
        assert psutil.Process(fresh[0]).cmdline()[:3] == qemu_argv(tmp_path)[:3]
        assert lab.down()  # a QEMU stopped by `down` is not started again
        assert wait_until("the fresh QEMU stopped", lambda: gone(fresh[0]), 15)
        assert said(tmp_path, "QEMU is gone (lab down, or a new lab)")
        assert lab.saved() is None and not [p for p in psutil.process_iter(["cmdline"])
                                            if str(tmp_path / "qmp.sock") in " ".join(p.info["cmdline"] or [])]
    finally:
        session.communicate("")
        for pid in fresh:
            kill(pid)
