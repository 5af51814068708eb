"""Leaks planted on purpose in the sim:// host, to prove that the harness catches them: each is a
real flaw of the kind a disaggregated dom0 can have, made by the host's own processes. Never on
by default: ``sim://?leak=NAME[,NAME]`` turns them on for that host (`windsor bench --accuracy`
and tests/test_accuracy.py use them). The run's ``host`` property keeps the URL, so a report
shows which leaks were planted.

The host passes the chosen leaks to its processes in the environment (`ENV`); each role asks
`planted(name)`. Domain processes run without site-packages (``python -S``): stdlib only here.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable

from harness.errors import UsageError

ENV = "WINDSOR_SIM_LEAKS"
LEAKS = {
    "hidden-dependency": "blkback waits for netback on every request: a netback fault stalls every disk",
    "late-stall": "1-2 s after a service domain is hit, a guest that does not use it stops for 0.5 s",
    "lost-write": "a restarted blkback silently drops one acknowledged write",
    "hollow-service": "a restarted netback answers its health probe but forwards no frame",
    "open-xenstore": "xenstored checks no permission: every domain reads and writes every node, as dom0",
}
LATE_STALL_ENV = "WINDSOR_SIM_LATE_STALL_S"  # how long late-stall stops its bystander (bench --accuracy)
LATE_AFTER_S = (1.0, 2.0)


def parse(text: str) -> tuple[str, ...]:
    """``leak=a,b`` of a sim:// URL: the leaks, checked; UsageError on an unknown one."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in LEAKS:
            raise UsageError(f"sim://?leak={text}: unknown leak {name!r}: use one of {', '.join(LEAKS)}")
    return names


def planted(name: str) -> bool:
    """Is leak `name` planted in the host this process belongs to?"""
    assert name in LEAKS, name
    return name in os.environ.get(ENV, "").split(",")


def late_stall_s() -> float:
    return float(os.environ.get(LATE_STALL_ENV, "0.5"))


def restarted(run_dir: str, domain: str, role: str) -> bool:
    """True when `role` has started in `domain`'s place of this host before (this start is a
    restart): the leaks that strike only a restarted service ask this once, at start."""
    mark = os.path.join(run_dir, f"started-{role}")
    again = os.path.exists(mark)
    with open(mark, "a", encoding="ascii") as fh:
        fh.write(f"{domain} {os.getpid()}\n")
    return again


def stop_later(pid: int, said: Callable[[float], None], stop: threading.Event) -> None:
    """late-stall: 1-2 s from now, stop process `pid` for `late_stall_s()`, then let it run again."""

    def stall() -> None:
        seconds = late_stall_s()
        said(seconds)
        try:
            os.kill(pid, signal.SIGSTOP)
            stop.wait(seconds)  # allow-sleep: the planted stall itself
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    timer = threading.Timer(random.uniform(*LATE_AFTER_S), stall)
    timer.daemon = True
    timer.start()
