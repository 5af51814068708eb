"""Signals the harness must survive long enough to revert a fault.

- SIGTERM and SIGHUP (CI cancelling a job, a dropped terminal) end the session the way Ctrl-C
  does: an exception, so every ``finally`` (every fault's revert) runs and pytest still writes
  its report. Python's default for them is to die on the spot.
- `critical()` holds back SIGINT, SIGTERM, SIGHUP and SIGALRM (pytest-timeout's signal method)
  while a fault is injected or reverted, and delivers them right after: an interrupt can never
  land between "the domain is stopped" and "the harness knows it must resume it", nor cut a
  revert in half.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled like Ctrl-C (pytest stops, reports, exits 2)."""


def _terminate(signum: int, _: FrameType | None) -> None:
    raise Terminated(f"{signal.Signals(signum).name}: stopping; every injected fault is reverted first")


def install_termination_handlers() -> None:
    """SIGTERM and SIGHUP raise `Terminated` (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _terminate)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold back interrupting signals for the duration; deliver them (in order) afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in HELD}

    def hold(signum: int, _: FrameType | None) -> None:
        pending.append(signum)

    for sig in HELD:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)
