"""A xenstore client that survives xenstored restarts: it reconnects and re-arms its watches.

Watch events are delivered to one `queue.Queue` per token. Because a watch fires once when it
is (re-)registered, a consumer that waits on its queue also learns about changes it missed
while xenstored was away. A domain's client (`domid`, or `guest` for a guest's) says which domain
it is on every connection: xenstored checks its requests against the nodes' permissions, and
holds a guest's watches to a quota. A client that says nothing is privileged (dom0's).
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
from typing import Any

from harness.sim.proto import Channel, Msg, connect


class XsUnavailable(OSError):
    """xenstored did not answer within the deadline."""


class XsClient:
    def __init__(self, sock_path: str, stop: threading.Event | None = None, guest: int | None = None,
                 domid: int | None = None) -> None:
        self.sock_path, self.guest = sock_path, guest
        self.domid = guest if guest is not None else domid
        self.stop = stop or threading.Event()
        self._chan: Channel | None = None
        self._connected = threading.Condition()
        self._pending: dict[int, list[Msg]] = {}
        self._answered = threading.Condition()
        self._rids = itertools.count(1)
        self._watches: dict[str, tuple[str, queue.Queue[str]]] = {}
        threading.Thread(target=self._run, name="xs-client", daemon=True).start()

    # -- connection management -------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.002
        while not self.stop.is_set():
            try:
                chan = connect(self.sock_path, timeout=1.0)
            except OSError:
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 0.05)
                continue
            backoff = 0.002
            chan.settimeout(None)
            with self._connected:
                try:
                    if self.domid is not None:
                        chan.send({"op": "introduce", "domid": self.domid, "guest": self.guest is not None,
                                   "rid": 0})
                    for token, (path, _) in list(self._watches.items()):
                        chan.send({"op": "watch", "path": path, "token": token, "rid": 0})
                except OSError:  # reached a xenstored that is going away: try again
                    chan.close()
                    continue
                self._chan = chan
                self._connected.notify_all()
            self._read(chan)
            with self._connected:
                self._chan = None
            chan.close()
            with self._answered:
                self._answered.notify_all()

    def _read(self, chan: Channel) -> None:
        while True:
            try:
                msg = chan.recv()
            except (OSError, ValueError):
                return
            if msg is None:
                return
            if "event" in msg:
                watch = self._watches.get(str(msg.get("token")))
                if watch is not None:
                    watch[1].put(str(msg["event"]))
                continue
            rid = msg.get("rid")
            with self._answered:
                if rid in self._pending:
                    self._pending[rid].append(msg)
                    self._answered.notify_all()

    def close(self) -> None:
        """Stop for good: the connection is closed now, not at the process's end."""
        self.stop.set()
        with self._connected:
            if self._chan is not None:
                try:
                    self._chan.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # -- requests -------------------------------------------------------------------------
    def call(self, msg: Msg, timeout: float = 5.0) -> Msg:
        rid = next(self._rids)
        msg = {**msg, "rid": rid}
        with self._connected:
            if not self._connected.wait_for(lambda: self._chan is not None, timeout):
                raise XsUnavailable(f"xenstore at {self.sock_path} unreachable")
            chan = self._chan
            assert chan is not None
            with self._answered:
                self._pending[rid] = []
            try:
                chan.send(msg)
            except OSError as exc:
                raise XsUnavailable(str(exc)) from exc
        with self._answered:
            try:
                got = self._answered.wait_for(
                    lambda: bool(self._pending[rid]) or self._chan is not chan, timeout
                )
                answers = self._pending.pop(rid)
            finally:
                self._pending.pop(rid, None)
        if not got or not answers:
            raise XsUnavailable(f"no answer to {msg['op']} from xenstore")
        return answers[0]

    def read(self, path: str, timeout: float = 5.0) -> str | None:
        answer = self.call({"op": "read", "path": path}, timeout)
        value: Any = answer.get("value")
        return None if value is None else str(value)

    def write(self, path: str, value: object, timeout: float = 5.0) -> None:
        self.call({"op": "write", "path": path, "value": str(value)}, timeout)

    def setperms(self, path: str, perms: list[str], timeout: float = 5.0) -> None:
        """Set a node's permissions (harness/sim/xsperms.py); PermissionError if xenstored refused."""
        answer = self.call({"op": "setperms", "path": path, "perms": perms}, timeout)
        if not answer.get("ok"):
            raise PermissionError(f"setperms {path}: {answer.get('error')}")

    def rm(self, path: str, timeout: float = 5.0) -> None:
        self.call({"op": "rm", "path": path}, timeout)

    def ls(self, path: str, timeout: float = 5.0) -> list[str]:
        return [str(v) for v in self.call({"op": "ls", "path": path}, timeout).get("value", [])]

    def watch(
        self, path: str, token: str, into: queue.Queue[str] | None = None
    ) -> queue.Queue[str]:
        """Register a watch (kept across reconnects); returns the queue its events arrive on.

        Several watches may share one queue (`into`): each event is the path that changed.
        """
        events: queue.Queue[str] = into if into is not None else queue.Queue()
        with self._connected:
            self._watches[token] = (path, events)
            if self._chan is not None:
                try:
                    self._chan.send({"op": "watch", "path": path, "token": token, "rid": 0})
                except OSError:
                    pass
        return events

    def watch_checked(self, path: str, token: str, into: queue.Queue[str], timeout: float = 5.0) -> bool:
        """Register a watch and wait for xenstored's answer: False if it refused it (a quota)."""
        with self._connected:
            self._watches[token] = (path, into)  # before the answer: its first event follows at once
        ok = False
        try:
            ok = bool(self.call({"op": "watch", "path": path, "token": token}, timeout).get("ok"))
        finally:
            if not ok:
                with self._connected:
                    self._watches.pop(token, None)
        return ok

    def unwatch(self, token: str) -> None:
        with self._connected:
            watch = self._watches.pop(token, None)
            if watch is not None and self._chan is not None:
                try:
                    self._chan.send({"op": "unwatch", "path": watch[0], "token": token, "rid": 0})
                except OSError:
                    pass
