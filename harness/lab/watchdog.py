"""The lab's watchdog: ``python -m harness.lab.watchdog LAB_DIR QEMU_PID``, started detached with
every QEMU the harness boots. A QEMU lab costs a core; nothing should leave one running.

Every process that uses the lab (a pytest session on ``lab://``, `windsor lab up`, a test's
fixture) registers in ``LAB_DIR/users/<pid>`` (`register`). The watchdog stops QEMU:
- when no registered process is alive any more, unless the lab is kept;
- when it is kept (``lab://?keep=1``, `windsor lab up`), once no process has used it for its
  idle time (``idle_s`` in ``lab.json``; ``lab://?idle=MINUTES``, default 30).

It works whatever became of the processes that used the lab (a normal end, Ctrl-C, SIGKILL):
it polls their pids. Its log is ``LAB_DIR/watchdog.log``.

It also turns a reset of the lab host into a fresh QEMU: QEMU runs with ``-no-reboot`` and exits
when Xen reboots the machine; while the lab is still wanted, the watchdog starts it again
(`Lab.restart`) within ``QEMU_POLL_S``, and watches the new one.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import psutil

from harness.errors import UsageError

POLL_S = 2.0
QEMU_POLL_S = 0.2  # a QEMU that exited (a reset of the lab host) is started again this fast
MAX_RESETS, RESET_SPAN_S = 5, 300.0  # more resets than this within the span: a boot loop, stop
IDLE_S = 1800.0
MAX_IDLE_MIN = 7 * 24 * 60
log = logging.getLogger("windsor.lab.watchdog")


def idle_seconds(minutes: str, what: str) -> float:
    """A kept lab's idle time given in minutes (`what` names the flag or URL parameter), in seconds;
    UsageError unless it is above 0 and at most a week."""
    try:
        value = float(minutes)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_IDLE_MIN:
        raise UsageError(f"{what}{minutes}: give the minutes a kept lab may stay unused, above 0 and at most "
                         f"{MAX_IDLE_MIN} (a week)")
    return value * 60


def register(root: Path, pid: int | None = None) -> None:
    """Say that process `pid` (default: this one) uses the lab in `root` while it lives."""
    pid = os.getpid() if pid is None else pid
    users = root / "users"
    users.mkdir(exist_ok=True)
    (users / str(pid)).write_text(f"{psutil.Process(pid).create_time()}\n", encoding="ascii")


def alive_users(root: Path) -> list[int]:
    """The registered processes that still run (the records of the others are removed)."""
    alive = []
    for record in sorted((root / "users").glob("*")):
        try:
            pid, started = int(record.name), float(record.read_text())
            if abs(psutil.Process(pid).create_time() - started) < 0.01:
                alive.append(pid)
                continue
        except (OSError, ValueError, psutil.Error):
            pass
        record.unlink(missing_ok=True)
    return alive


def idle_deadline(root: Path, idle_s: float) -> float | None:
    """When a kept lab will stop by itself if nobody uses it (time.time()); None while in use."""
    if alive_users(root):
        return None
    try:
        last = (root / "users").stat().st_mtime  # a user's record is removed when it is found gone
    except OSError:
        last = time.time()
    return last + idle_s


def watch(root: Path, qemu_pid: int) -> str:
    """Until the lab should stop (then stop it) or is gone; why, in a few words. A QEMU that
    exited by itself while the lab is wanted is started again."""
    from harness.errors import HostError
    from harness.lab.machine import Lab, qemu_runs

    lab = Lab(root)
    tick = threading.Event()
    next_check = 0.0
    resets: list[float] = []
    while True:
        state = lab.saved()
        if state is None or state.pid != qemu_pid:
            return "QEMU is gone (lab down, or a new lab)"
        exited = not qemu_runs(qemu_pid)
        if exited or time.monotonic() >= next_check:
            next_check = time.monotonic() + POLL_S
            if not alive_users(root):
                deadline = idle_deadline(root, state.idle_s) if state.keep else 0.0
                if deadline is not None and time.time() >= deadline:
                    lab.down()
                    return (f"kept lab idle for {state.idle_s / 60:g} min: stopped" if state.keep else
                            "no session uses the lab any more: stopped")
        if exited:
            resets = [t for t in resets if t > time.monotonic() - RESET_SPAN_S] + [time.monotonic()]
            if len(resets) > MAX_RESETS:
                lab.down()
                return f"the lab host reset {len(resets)} times within {RESET_SPAN_S:g} s: a boot loop, stopped"
            try:
                fresh = lab.restart(state)
            except HostError as exc:
                lab.down()
                return f"QEMU pid {qemu_pid} exited and was not started again: {exc}"
            log.info("QEMU pid %d exited (the lab host reset): started a fresh QEMU, pid %d", qemu_pid, fresh.pid)
            qemu_pid = fresh.pid
        tick.wait(QEMU_POLL_S)  # allow-sleep: a supervisor's poll period, not a wait for a condition


def main() -> None:
    root, qemu_pid = Path(sys.argv[1]), int(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog: %(message)s")
    log.info("watching QEMU pid %d of %s", qemu_pid, root)
    log.info("%s", watch(root, qemu_pid))


if __name__ == "__main__":
    main()
