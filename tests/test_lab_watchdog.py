"""The lab's watchdog (harness/lab/watchdog.py) against a real QEMU process (one that never starts
its CPU, ``-S``, so it costs nothing): stopped when the last process using the lab is gone, kept
for its idle time when kept. No Xen is booted here; `lab` tests boot it."""

from __future__ import annotations

import json
import shutil
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


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[int]:
    pidfile = tmp_path / "qemu.pid"
    subprocess.run(["qemu-system-x86_64", "-S", "-display", "none", "-nodefaults", "-m", "16",
                    "-daemonize", "-pidfile", str(pidfile)], check=True, timeout=30)
    pid = int(pidfile.read_text())
    try:
        yield pid
    finally:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def user() -> subprocess.Popen[str]:
    """A process that uses the lab until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True)


def start(root: Path, qemu: int, keep: bool, idle_s: float, users: list[subprocess.Popen[str]]) -> Lab:
    lab = Lab(root)
    (root / "lab.json").write_text(json.dumps(asdict(LabState(qemu, 0, 0.0, 0.0, keep=keep, idle_s=idle_s))))
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
