"""The sim:// hypervisor's domain table (`Dom`) and its guests' lifecycle, as xl's domain
create, unpause and destroy see it (harness/sim/manager.py is the rest of the hypervisor)."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil

from harness.sim import paths
from harness.sim.proto import Msg, request
from harness.sim.spawn import Child, Spawner, wait_ready
from harness.topology import stub_domain

READY_TIMEOUT = 20.0


@dataclass
class Dom:
    name: str
    domid: int
    kind: str  # dom0 | service | dm | guest
    roles: list[str]
    pid: int = 0
    create_time: float = 0.0
    ready_t: float = 0.0
    sockets: dict[str, str] = field(default_factory=dict)
    procs: dict[str, dict[str, Any]] = field(default_factory=dict)
    target: str | None = None  # the guest a device model serves
    popen: Child | None = None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "popen"}


def killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Guests:
    """Guests' create, unpause and destroy, for the manager: what it has that they use."""

    lock: threading.RLock
    doms: dict[str, Dom]
    guests: dict[str, dict[str, Any]]
    state: str
    boots: int
    next_domid: int
    stubdom_dm: bool
    run_dir: str
    spawner: Spawner

    def spawn(self, name: str, kind: str, roles: list[str], target: str | None = None) -> Dom:
        raise NotImplementedError

    def register(self, msg: Msg) -> Msg:
        raise NotImplementedError

    def devices(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def event(self, what: str, **info: Any) -> None:
        raise NotImplementedError

    def _reap(self, dom: Dom) -> None:
        raise NotImplementedError

    def domain_create(self, spec: dict[str, Any]) -> Msg:
        if self.state not in ("running", "rebooting"):
            return {"ok": False, "error": f"host is {self.state}"}
        name = spec["name"]
        with self.lock:
            if name in self.doms:
                return {"ok": False, "error": f"domain {name} exists"}
            spec = {**self.guests.get(name, {}), **spec, "domid": self.next_domid, "running": False,
                    "made_in": self.boots}
            self.next_domid += 1
            self.guests[name] = spec
        if "emul" in spec["devices"]:
            if self.stubdom_dm:
                self.spawn(stub_domain(name), "dm", ["device-model"], target=name)
            else:
                made = request(paths.dom0_ctl(self.run_dir),
                               {"op": "spawn_dm", "guest": name, "target": spec["domid"]}, 20.0)
                if not made.get("ok"):
                    return made
                self.register({"domain": "dom0", **made})
        devices = [{"kind": d["kind"], "backend": self.doms[d["domain"]].domid, "params": d["params"]}
                   for d in self.devices(spec)]
        return {"ok": True, "domid": spec["domid"], "devices": devices}

    def domain_unpause(self, domid: int) -> Msg:
        """Start a created guest: once, and only in the boot it was created in (a toolstack of a
        dom0 that died meanwhile may still ask; its domid is someone else's now)."""
        with self.lock:  # creates add guests from other threads meanwhile
            spec = next((s for s in self.guests.values() if s["domid"] == domid
                         and s.get("made_in") == self.boots), None)
            if spec is None or spec.get("running") or spec.get("starting") or spec["name"] in self.doms:
                return {"ok": False, "error": f"no domain {domid} to start in boot {self.boots}"}
            spec["starting"], boot = True, self.boots
        try:
            dom = self.spawn_guest(spec, boot)
        finally:
            spec["starting"] = False
        if dom is None:
            return {"ok": False, "error": f"the host rebooted while {spec['name']} started"}
        return {"ok": True, "domid": dom.domid, "pid": dom.pid}

    def spawn_guest(self, spec: dict[str, Any], boot: int) -> Dom | None:
        popen = self.spawner.start({**spec, "kind": "guest"}, spec["name"], new_session=True)
        dom = Dom(spec["name"], spec["domid"], "guest", [], pid=popen.pid, popen=popen)
        dom.create_time = psutil.Process(popen.pid).create_time()
        dom.ready_t = wait_ready(popen, READY_TIMEOUT)["ready_t"]
        with self.lock:
            stale = self.boots != boot  # killed with its host while it started: it must not live on
            if not stale:
                spec["running"] = True
                self.doms[dom.name] = dom
        if stale:
            killpg(popen.pid)
            popen.wait()
            return None
        self.event("ready", domain=dom.name, domid=dom.domid, pid=dom.pid)
        threading.Thread(target=self._reap, args=(dom,), daemon=True).start()
        return dom

    def domain_destroy(self, name: str) -> Msg:
        with self.lock:
            dom = self.doms.pop(name, None)
            spec = self.guests.pop(name, None)
        if dom is None or spec is None:
            return {"ok": False, "error": f"no guest {name}"}
        killpg(dom.pid)
        dm = self.doms.pop(stub_domain(name), None)
        if dm is not None:
            killpg(dm.pid)
        elif "emul" in spec["devices"]:
            request(paths.dom0_ctl(self.run_dir), {"op": "stop_dm", "guest": name}, 5.0)
        return {"ok": True, "domid": dom.domid}
