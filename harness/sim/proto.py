"""JSON-lines messages over Unix stream sockets: the wire of every sim:// service.

Each message is one JSON object on one line. A server gives every connection its own thread;
a client either makes one request and reads one answer (`request`) or keeps a `Channel` open.
"""

from __future__ import annotations

import _thread
import json
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

Msg = dict[str, Any]


class Channel:
    """One JSON-lines conversation over a connected stream socket (thread-safe sends)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = sock.makefile("rb")
        self._wlock = threading.Lock()
        self.cost: Callable[[], None] | None = None  # called for every message received (harness/sim/vcpu.py)

    def send(self, msg: Msg) -> None:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        with self._wlock:
            self.sock.sendall(data)

    def recv(self) -> Msg | None:
        """Next message, or None at end of stream. Raises OSError/TimeoutError on failure."""
        line = self._reader.readline()
        if not line:
            return None
        msg: Msg = json.loads(line)
        if self.cost is not None:
            self.cost()
        return msg

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def close(self) -> None:
        for closer in (self._reader.close, self.sock.close):
            try:
                closer()
            except OSError:
                pass


def connect(path: str, timeout: float | None = 1.0) -> Channel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return Channel(sock)


def request(path: str, msg: Msg, timeout: float = 2.0) -> Msg:
    """Send one message and return the one answer; OSError if the peer is gone or silent."""
    chan = connect(path, timeout)
    try:
        chan.send(msg)
        answer = chan.recv()
    finally:
        chan.close()
    if answer is None:
        raise ConnectionResetError(f"{path}: closed without answering")
    return answer


class Server:
    """A threaded Unix-socket server; `handler(channel)` owns the connection until it returns."""

    def __init__(self, path: str, handler: Callable[[Channel], None]) -> None:
        self.path = path
        self._handler = handler
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(128)
        self._thread = threading.Thread(target=self._accept_loop, name=f"srv:{path}", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            except MemoryError:  # memory-pressure: this connection is lost, the next one is served
                continue
            # _thread, not threading: under memory-pressure a new thread can die before it starts,
            # and threading's start() then waits for it for ever (this loop would serve no more)
            try:
                _thread.start_new_thread(self._serve, (conn,))
            except (RuntimeError, MemoryError):  # no memory for a thread: refuse this one, serve the next
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        chan = Channel(conn)
        try:
            self._handler(chan)
        except (OSError, ValueError):
            pass
        finally:
            chan.close()

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)


def serve_requests(handle: Callable[[Msg], Msg]) -> Callable[[Channel], None]:
    """Adapt a request→answer function into a connection handler (answers until EOF)."""

    def handler(chan: Channel) -> None:
        while (msg := chan.recv()) is not None:
            chan.send(handle(msg))

    return handler
