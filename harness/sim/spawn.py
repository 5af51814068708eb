"""Starting sim:// processes and waiting for them to say they are ready.

A `Spawner` forks a *zygote* when it is made, while its process is still single-threaded: a
process that has already imported every sim:// module and does nothing but fork one child per
request (a fork server). A domain then costs a fork (≈ 2 ms) instead of a Python start-up and its
imports (≈ 70 ms of CPU each, measured here): that is most of a sim:// host's boot time and what
made boot time grow faster than the number of guests.

Every child dies when its parent goes (PR_SET_PDEATHSIG): a domain with its zygote, the zygote
with the thread that forked it (Linux ties the signal to a thread: the main thread of the
manager or of dom0, which lives as long as its process). The zygote sends back, with each child's
pid, the read end of its stdout (the ready line) and a pidfd, so the process that asked for the
child can wait for its end although it is not its parent.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Protocol

from harness.sim import paths

PR_SET_PDEATHSIG = 1
PRELOAD = ("harness.sim.domain", "harness.sim.guest", "harness.sim.dom0", "harness.sim.xenstored",
           "harness.sim.toolstack", "harness.sim.netback", "harness.sim.blkback", "harness.sim.console",
           "harness.sim.devmodel")


class SpawnError(RuntimeError):
    pass


def die_with_parent(parent: int) -> None:
    """Called first thing in every child: go when the process that started us goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class Child:
    """A process a zygote forked for us: its pid, its stdout (for the ready line), its end."""

    def __init__(self, pid: int, stdout: IO[bytes], pidfd: int | None) -> None:
        self.pid, self.stdout, self._pidfd = pid, stdout, pidfd

    def wait(self, timeout: float | None = None) -> None:
        """Until the process has ended (TimeoutExpired if it is still running after `timeout`).
        Any number of threads may wait; the pidfd is closed with this object."""
        if self._pidfd is None:
            return
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        if not readable:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)

    def __del__(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)


class Spawner:
    """Make it while the process is single-threaded (it forks the zygote); use it from any thread."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self._lock = threading.Lock()
        for module in PRELOAD:
            __import__(module)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _zygote(theirs, parent)  # never returns
        theirs.close()
        self._sock, self.zygote_pid = ours, pid

    def start(self, cfg: dict[str, Any], log_name: str, new_session: bool) -> Child:
        request = {"cfg": {**cfg, "run_dir": self.run_dir}, "log": paths.log(self.run_dir, log_name),
                   "new_session": new_session}
        with self._lock:
            self._sock.sendall(json.dumps(request).encode())
            data, fds, _, _ = socket.recv_fds(self._sock, 65536, 2)
        if not data:
            raise SpawnError("the zygote is gone")
        answer = json.loads(data)
        if "error" in answer:
            for fd in fds:
                os.close(fd)
            raise SpawnError(f"fork of {log_name}: {answer['error']}")
        pidfd = fds[1] if len(fds) > 1 else None
        return Child(int(answer["pid"]), os.fdopen(fds[0], "rb"), pidfd)

    def shutdown(self) -> None:
        self._sock.close()


def _zygote(sock: socket.socket, parent: int) -> None:
    """The fork server's loop: one child per request, until the socket closes."""
    die_with_parent(parent)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps; the asker waits on a pidfd
    _title("wsim zygote")
    gc.freeze()  # what the children inherit is never scanned: no copy-on-write of it by their collector
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            os._exit(0)
        request = json.loads(data)
        try:
            read, write = os.pipe()
            log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            sock.send(json.dumps({"error": str(exc)}).encode())
            continue
        request["cfg"]["parent"] = os.getpid()
        pid = os.fork()
        if pid == 0:
            sock.close()
            os.close(read)
            _child(request, write, log_fd)  # never returns
        os.close(write)
        os.close(log_fd)
        try:
            fds = [read, os.pidfd_open(pid)]
        except ProcessLookupError:  # already gone (and reaped): its stdout says so
            fds = [read]
        socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], fds)
        for fd in fds:
            os.close(fd)


def _child(request: dict[str, Any], stdout: int, log_fd: int) -> None:
    code = 1
    try:
        if request["new_session"]:
            os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(stdout, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _title(f"wsim {request['cfg'].get('name')} [{request['cfg'].get('kind')}]")
        from harness.sim.domain import run

        run(request["cfg"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # a child must never return into the zygote's loop
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _title(title: str) -> None:
    """What ps shows for a forked child (else every domain reads as its manager's command line);
    the environment is left as it is: `sweep` finds a host's processes by it."""
    os.environ["SPT_NOENV"] = "1"
    try:
        from setproctitle import setproctitle
    except ImportError:  # a process started with python -S
        return
    setproctitle(title)


class Readable(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...


def wait_ready(proc: Readable, timeout: float) -> dict[str, Any]:
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
