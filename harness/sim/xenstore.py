"""The xenstore role: a hierarchical key-value store with watches, persisted across restarts.

Operations (one JSON object per request, answered with the same `rid`):
``read``, ``write``, ``rm`` (recursive), ``ls``, ``watch``/``unwatch`` (path prefix, token),
``ping``, ``setperms``/``getperms`` (harness/sim/xsperms.py). A watch fires once at registration
(as Xen's does) and then on every change at or below its path; events are pushed on the
watcher's connection as ``{"event": path, "token": t}``.
A domain's connection says which domain it is first (``introduce`` with its domid, once: as the
ring Xen's xenstored reads a domain's requests from, it stays that domain's); every request on it
is then checked against the node's permissions (``EACCES``), and a guest's (``guest``: true) is held,
like oxenstored holds an unprivileged domain, to `WATCH_QUOTA` watches (``EQUOTA``). A connection
that never introduced itself is privileged, as dom0's socket is.
Every change is appended to a journal and fsynced before it is answered, so a restarted
xenstored starts with the state it had when it died.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any

from harness.sim import leaks, xsperms
from harness.sim.proto import Channel, Msg, Server


class Store:
    """The tree, with its journal. Paths are absolute, '/'-separated, without a trailing '/'."""

    def __init__(self, journal: str) -> None:
        self.data: dict[str, str] = {}
        self.perms: dict[str, tuple[str, ...]] = {}  # the nodes that have permissions of their own
        self.open = leaks.planted("open-xenstore")  # planted leak (harness/sim/leaks.py): no checks
        self.journal = journal
        self.lock = threading.Lock()
        if os.path.exists(journal):
            with open(journal, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        op, path, value = json.loads(line)
                    except ValueError:
                        break  # a torn last line: the change was never acknowledged
                    self._apply(op, path, value)
        self._compact()
        self._fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _compact(self) -> None:
        tmp = self.journal + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            for path, value in self.data.items():
                fh.write(json.dumps(["write", path, value]) + "\n")
            for path, perms in self.perms.items():
                fh.write(json.dumps(["perms", path, list(perms)]) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.journal)

    def _apply(self, op: str, path: str, value: Any) -> None:
        if op == "write":
            self.data[path] = str(value)
        elif op == "perms":
            self.perms[path] = tuple(value)
        else:
            prefix = path.rstrip("/") + "/"
            for table in (self.data, self.perms):
                for key in [k for k in table if k == path or k.startswith(prefix)]:
                    del table[key]

    def change(self, op: str, path: str, value: Any = "") -> None:
        with self.lock:
            os.write(self._fd, (json.dumps([op, path, value]) + "\n").encode())
            os.fsync(self._fd)
            self._apply(op, path, value)

    def read(self, path: str) -> str | None:
        with self.lock:
            return self.data.get(path)

    def allowed(self, path: str, domid: int | None, want: str) -> bool:
        """May `domid` (None: privileged) `want` ("r", "w") the node — or, a new node, its parent?"""
        if domid is None or self.open:
            return True
        with self.lock:
            if want == "w" and path not in self.data and path not in self.perms and path != "/":
                path = path.rsplit("/", 1)[0] or "/"
            return xsperms.allows(xsperms.effective(self.perms, path), domid, want)

    def created_by(self, path: str, domid: int | None) -> tuple[str, ...] | None:
        """The permissions a node `domid` is about to create needs of its own (None: its parent's do)."""
        with self.lock:
            if domid is None or path in self.data or path in self.perms:
                return None
            parent = xsperms.effective(self.perms, path.rsplit("/", 1)[0] or "/")
        mine = xsperms.inherited(parent, domid)
        return None if mine == parent else mine

    def ls(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        with self.lock:
            names = {k[len(prefix):].split("/", 1)[0] for k in self.data if k.startswith(prefix)}
        return sorted(names)


WATCH_QUOTA = 100  # oxenstored's quota-maxwatch (Xen 4.17's default), per guest
STATE_RE = re.compile(r"^/local/domain/(\d+)/(device|backend)/([a-z]+)/(?:(\d+)/)?\d+/state$")


class XenstoreService:
    """`states`: a file to append every split-driver state change to, one line each:
    ``MONOTONIC_TIME GUEST KIND fe|be STATE`` (the guest named by its ``/local/domain/ID/name``)."""

    def __init__(self, sock_path: str, journal: str, states: str | None = None) -> None:
        self.store = Store(journal)
        self._states = os.open(states, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if states else None
        self._watches: dict[Channel, list[tuple[str, str]]] = {}
        self._guests: set[Channel] = set()  # connections of guests: their watches are under quota
        self._ids: dict[Channel, int] = {}  # the domain each introduced connection is
        self._index = WatchIndex()
        self._wlock = threading.Lock()
        self.server = Server(sock_path, self._handle)

    def start(self) -> XenstoreService:
        self.server.start()
        return self

    def _notify(self, path: str) -> None:
        with self._wlock:
            targets = self._index.fired_by(path)
        for chan, token in targets:
            try:
                chan.send({"event": path, "token": token})
            except OSError:
                pass

    def _handle(self, chan: Channel) -> None:
        with self._wlock:
            self._watches[chan] = []
        try:
            while (msg := chan.recv()) is not None:
                answer = self._answer(chan, msg)
                answer["rid"] = msg.get("rid")
                chan.send(answer)
                if msg.get("op") == "watch" and answer.get("ok"):
                    chan.send({"event": msg["path"], "token": msg["token"]})
                elif msg.get("op") in ("write", "rm") and answer.get("ok"):
                    self._notify(msg["path"])
        finally:
            with self._wlock:
                for wpath, token in self._watches.pop(chan, []):
                    self._index.remove(wpath, chan, token)
                self._guests.discard(chan)
                self._ids.pop(chan, None)

    def _answer(self, chan: Channel, msg: Msg) -> dict[str, Any]:
        op, path = msg.get("op"), msg.get("path", "")
        if op == "ping":
            return {"ok": True, "role": "xenstore", "pid": os.getpid()}
        if op == "introduce":
            with self._wlock:
                if chan in self._ids or not isinstance(msg.get("domid"), int):
                    return {"ok": False, "error": "EPERM"}  # a connection is one domain's, for good
                self._ids[chan] = int(msg["domid"])
                if msg.get("guest", True):
                    self._guests.add(chan)
            return {"ok": True}
        if not isinstance(path, str) or not path.startswith("/"):
            return {"ok": False, "error": "EINVAL"}
        domid = self._ids.get(chan)
        want = {"read": "r", "ls": "r", "getperms": "r", "write": "w", "rm": "w", "setperms": "w"}.get(str(op))
        if want is not None and not self.store.allowed(path, domid, want):
            return {"ok": False, "error": "EACCES"}
        if op == "setperms":
            perms = msg.get("perms")
            if not xsperms.valid(perms):
                return {"ok": False, "error": "EINVAL"}
            owner = int(xsperms.effective(self.store.perms, path)[0][1:])
            if domid is not None and owner != domid:
                return {"ok": False, "error": "EPERM"}
            self.store.change("perms", path, list(perms))
            return {"ok": True}
        if op == "getperms":
            return {"ok": True, "value": list(xsperms.effective(self.store.perms, path))}
        if op == "read":
            value = self.store.read(path)
            return {"ok": value is not None, "value": value, "error": None if value is not None else "ENOENT"}
        if op == "write":
            own = self.store.created_by(path, domid)
            if own is not None:
                self.store.change("perms", path, list(own))
            self.store.change("write", path, str(msg.get("value", "")))
            if self._states is not None and path.endswith("/state"):
                self._log_state(path, str(msg.get("value", "")))
            return {"ok": True}
        if op == "rm":
            self.store.change("rm", path)
            return {"ok": True}
        if op == "ls":
            return {"ok": True, "value": self.store.ls(path)}
        if op in ("watch", "unwatch"):
            entry = (path, str(msg.get("token", "")))
            with self._wlock:
                watches = self._watches.setdefault(chan, [])
                if op == "watch" and entry in watches:
                    return {"ok": True}  # the same watch again (a client re-arming after a reconnect)
                if op == "watch" and chan in self._guests and len(watches) >= WATCH_QUOTA:
                    return {"ok": False, "error": "EQUOTA"}
                if op == "watch":
                    watches.append(entry)
                    self._index.add(path, chan, entry[1])
                elif entry in watches:
                    watches.remove(entry)
                    self._index.remove(path, chan, entry[1])
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


    def _log_state(self, path: str, value: str) -> None:
        found = STATE_RE.match(path)
        if found is None or self._states is None:
            return
        domid, side, kind, fe = found.groups()
        guest = self.store.read(f"/local/domain/{fe if side == 'backend' else domid}/name") or "?"
        end = "be" if side == "backend" else "fe"
        os.write(self._states, f"{time.monotonic():.6f} {guest} {kind} {end} {value}\n".encode())


def _norm(path: str) -> str:
    return path.rstrip("/") or "/"


def _ancestors(path: str) -> list[str]:
    """"/a/b/c" → ["/a/b", "/a", "/"]."""
    out = []
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        out.append(path)
    return out


class WatchIndex:
    """Which watches a change at a path fires: those at the path, at any path above it, and (a
    removed subtree) at any path below it. Looked up by path, not by scanning every watch: with
    hundreds of guests there are thousands of watches and each boot writes thousands of keys."""

    def __init__(self) -> None:
        self._at: dict[str, list[tuple[Channel, str]]] = {}
        self._below: dict[str, set[str]] = {}  # a path → the watched paths strictly below it

    def add(self, path: str, chan: Channel, token: str) -> None:
        path = _norm(path)
        self._at.setdefault(path, []).append((chan, token))
        for up in _ancestors(path):
            self._below.setdefault(up, set()).add(path)

    def remove(self, path: str, chan: Channel, token: str) -> None:
        path = _norm(path)
        entries = self._at.get(path, [])
        if (chan, token) in entries:
            entries.remove((chan, token))
        if entries:
            return
        self._at.pop(path, None)
        for up in _ancestors(path):
            below = self._below.get(up)
            if below is not None:
                below.discard(path)
                if not below:
                    del self._below[up]

    def fired_by(self, path: str) -> list[tuple[Channel, str]]:
        path = _norm(path)
        paths = [path, *_ancestors(path), *self._below.get(path, ())]
        return [entry for p in paths for entry in self._at.get(p, ())]
