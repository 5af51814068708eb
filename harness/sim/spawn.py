"""Starting sim:// processes and waiting for them to say they are ready.

Every process is started from one long-lived thread: children ask the kernel to kill them when
their parent goes (PR_SET_PDEATHSIG), and Linux ties that to the thread that forked them, so a
short-lived request thread must never be the one that forks.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.sim import paths

PR_SET_PDEATHSIG = 1


class SpawnError(RuntimeError):
    pass


def die_with_parent(parent: int) -> None:
    """Called first thing in every child: go when the process that started us goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class Spawner:
    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")

    def start(self, cfg: dict[str, Any], log_name: str, new_session: bool) -> subprocess.Popen[bytes]:
        cfg = {**cfg, "parent": os.getpid(), "run_dir": self.run_dir}
        return self._pool.submit(self._popen, cfg, log_name, new_session).result()

    def _popen(self, cfg: dict[str, Any], log_name: str, new_session: bool) -> subprocess.Popen[bytes]:
        with open(paths.log(self.run_dir, log_name), "ab") as err:
            return subprocess.Popen(
                # -S: domains need only the stdlib and harness (on PYTHONPATH); skipping site halves start-up
                [sys.executable, "-S", "-m", "harness.sim.domain", json.dumps(cfg)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                start_new_session=new_session, close_fds=True,
            )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


def wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The ready line a child prints once it serves; SpawnError if it dies or stays silent."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpawnError(f"pid {proc.pid} not ready within {timeout:.1f}s")
            readable, _, _ = select.select([proc.stdout], [], [], left)
            if readable:
                line = proc.stdout.readline()
                if not line:
                    raise SpawnError(f"pid {proc.pid} exited before it was ready")
                ready: dict[str, Any] = json.loads(line)
                return ready
    finally:
        proc.stdout.close()


def announce(info: dict[str, Any]) -> None:
    """Tell the spawner we serve (one JSON line on stdout, then stdout is closed)."""
    sys.stdout.write(json.dumps({**info, "ready_t": time.monotonic()}) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
