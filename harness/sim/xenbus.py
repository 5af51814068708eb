"""The split-driver handshake through xenstore (XenbusState 1..6), as Xen's frontends and
backends do it, plus `attach` (what the toolstack writes to create a device).

Backend dir:  /local/domain/<be>/backend/<kind>/<fe>/<devid>  {frontend, frontend-id, state,
              sock, instance, params...}
Frontend dir: /local/domain/<fe>/device/<kind>/<devid>        {backend, backend-id, state,
              ring-ref}
1 Initialising → backend 2 InitWait (publishes its socket and instance) → frontend
3 Initialised (publishes its ring-ref token) → backend 4 Connected → the frontend opens the data
socket, says hello with its token, and goes 4 Connected. A restarted backend starts over at
InitWait with a new instance; frontends notice and redo their half.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.sim import vcpu
from harness.sim.proto import Channel, Server, connect
from harness.sim.xsclient import XsClient, XsUnavailable

INITIALISING, INITWAIT, INITIALISED, CONNECTED, CLOSING, CLOSED = range(1, 7)


def fe_dir(fe: int, kind: str, devid: int = 0) -> str:
    return f"/local/domain/{fe}/device/{kind}/{devid}"


def be_dir(be: int, kind: str, fe: int, devid: int = 0) -> str:
    return f"/local/domain/{be}/backend/{kind}/{fe}/{devid}"


def attach(
    xs: XsClient, fe: int, be: int, kind: str, devid: int = 0,
    params: Mapping[str, str] | None = None,
) -> None:
    """Create (or move to a new backend) one device; the frontend reacts to its `backend` key.
    Each end's directory is its domain's, readable by the other end, as libxl makes them."""
    b, f = be_dir(be, kind, fe, devid), fe_dir(fe, kind, devid)
    xs.setperms(b, [f"n{be}", f"r{fe}"])
    xs.setperms(f, [f"n{fe}", f"r{be}"])
    for key, value in (params or {}).items():
        xs.write(f"{b}/{key}", value)
    xs.write(f"{b}/frontend", f)
    xs.write(f"{b}/frontend-id", fe)
    xs.write(f"{b}/state", INITIALISING)
    xs.write(f"{f}/backend-id", be)
    xs.write(f"{f}/state", INITIALISING)
    xs.write(f"{f}/backend", b)


@dataclass(frozen=True)
class Session:
    """One connected device, as its backend sees it."""

    fe: int
    devid: int
    params: Mapping[str, str]


Service = Callable[[Channel, Session], None]


class Backend:
    """The backend half for every device of one kind under one backend domain.

    `only_fe` limits it to one frontend domain (a device model serves exactly one guest).
    Health probes (`{"op": "ping"}`) are answered on the same socket as the data path.
    """

    def __init__(
        self, xs: XsClient, domid: int, kind: str, sock_path: str, service: Service,
        role: str, only_fe: int | None = None, param_keys: tuple[str, ...] = (),
    ) -> None:
        self.xs, self.domid, self.kind, self.sock_path = xs, domid, kind, sock_path
        self.service, self.role, self.only_fe, self.param_keys = service, role, only_fe, param_keys
        self.instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.root = f"/local/domain/{domid}/backend/{kind}"
        self._tokens: dict[str, Session] = {}
        self._offered: set[str] = set()
        self._fe_of: dict[str, str] = {}
        self._lock = threading.Lock()
        self._events: queue.Queue[str] = queue.Queue()
        self.server = Server(sock_path, self._serve)

    def start(self) -> Backend:
        self.server.start()
        self.xs.watch(self.root, f"be:{self.kind}", into=self._events)
        threading.Thread(target=self._loop, name=f"backend:{self.kind}", daemon=True).start()
        return self

    # -- data socket -----------------------------------------------------------------------
    def _serve(self, chan: Channel) -> None:
        while (msg := chan.recv()) is not None:
            if msg.get("op") == "ping":
                chan.send({"ok": True, "role": self.role, "pid": os.getpid()})
                continue
            with self._lock:
                session = self._tokens.get(str(msg.get("ring")))
            if msg.get("op") != "hello" or session is None:
                chan.send({"ok": False, "error": "unknown ring-ref"})
                continue
            chan.send({"ok": True})
            chan.cost = vcpu.spend  # every request on the ring costs this domain its vCPU time
            self.service(chan, session)
            return

    # -- xenstore side -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.xs.stop.is_set():
            try:
                path = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._dispatch(path)
            except XsUnavailable:
                continue  # xenstored restarting: its watches fire again when it is back

    def _dispatch(self, path: str) -> None:
        if path.startswith(self.root + "/"):
            parts = path[len(self.root) + 1:].split("/")
            if len(parts) >= 2:
                self._device(f"{self.root}/{parts[0]}/{parts[1]}")
                return
        if "/device/" in path:
            with self._lock:
                owners = [b for b, f in self._fe_of.items() if path == f or path == f"{f}/state"]
            for b in owners:
                self._device(b)
            return
        for fe in self.xs.ls(self.root):
            for devid in self.xs.ls(f"{self.root}/{fe}"):
                self._device(f"{self.root}/{fe}/{devid}")

    def _device(self, b: str) -> None:
        fe_id = int(b.rsplit("/", 2)[1])
        if self.only_fe is not None and fe_id != self.only_fe:
            return
        state, f = self.xs.read(f"{b}/state"), self.xs.read(f"{b}/frontend")
        if state is None or f is None:
            return
        with self._lock:
            fresh = b not in self._offered
            self._fe_of[b] = f
        if fresh:  # local state changes only once xenstore acknowledged: a lost write is redone
            self.xs.watch(f"{f}/state", f"fe:{b}", into=self._events)
            self.xs.write(f"{b}/sock", self.sock_path)
            self.xs.write(f"{b}/instance", self.instance)
            self.xs.write(f"{b}/state", INITWAIT)
            with self._lock:
                self._offered.add(b)
            return
        if self.xs.read(f"{f}/state") != str(INITIALISED):
            return
        ring = self.xs.read(f"{f}/ring-ref")
        if ring is None:
            return
        with self._lock:
            known = ring in self._tokens
        if not known:
            params = {k: self.xs.read(f"{b}/{k}") or "" for k in self.param_keys}
            devid = int(b.rsplit("/", 1)[1])
            with self._lock:
                self._tokens[ring] = Session(fe=fe_id, devid=devid, params=params)
            try:
                self.xs.write(f"{b}/state", CONNECTED)
            except XsUnavailable:
                with self._lock:
                    del self._tokens[ring]
                raise


class Frontend:
    """The frontend half of one device: `connect()` blocks until the data path is up."""

    def __init__(self, xs: XsClient, domid: int, kind: str, devid: int = 0) -> None:
        self.xs, self.kind = xs, kind
        self.f = fe_dir(domid, kind, devid)
        self._events: queue.Queue[str] = queue.Queue()
        self._offered: tuple[str, str] | None = None
        self._ring = ""
        self._be_watch: str | None = None
        xs.watch(self.f, f"fe:{kind}:{devid}", into=self._events)

    def connect(self) -> Channel | None:
        """Connected data channel, or None once the guest is stopping."""
        while not self.xs.stop.is_set():
            try:
                chan = self._step()
            except XsUnavailable:
                chan = None
            if chan is not None:
                return chan
            try:
                self._events.get(timeout=0.1)
            except queue.Empty:
                pass
        return None

    def _step(self) -> Channel | None:
        b = self.xs.read(f"{self.f}/backend")
        if b is None:
            return None
        if b != self._be_watch:
            if self._be_watch is not None:
                self.xs.unwatch(f"be:{self.f}")
            self.xs.watch(f"{b}/state", f"be:{self.f}", into=self._events)
            self._be_watch = b
        state, instance = self.xs.read(f"{b}/state"), self.xs.read(f"{b}/instance") or ""
        # Offer to every backend instance we have not offered to; also when it is already
        # Connected: an offer whose acknowledgement was lost may have been taken, and a fresh one
        # is answered the same way (the backend takes re-offers in any state).
        if state in (str(INITWAIT), str(CONNECTED)) and self._offered != (b, instance):
            ring = secrets.token_hex(8)
            self.xs.write(f"{self.f}/ring-ref", ring)
            self.xs.write(f"{self.f}/state", INITIALISED)
            self._ring, self._offered = ring, (b, instance)  # only once both writes were acknowledged
            return None
        if state != str(CONNECTED) or self._offered != (b, instance):
            return None
        sock = self.xs.read(f"{b}/sock")
        if sock is None:
            return None
        try:
            chan = connect(sock, timeout=1.0)
            chan.send({"op": "hello", "ring": self._ring})
            answer = chan.recv()
        except OSError:
            return None
        if not answer or not answer.get("ok"):
            chan.close()
            return None
        chan.settimeout(None)
        self.xs.write(f"{self.f}/state", CONNECTED)
        return chan
