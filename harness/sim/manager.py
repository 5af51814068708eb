"""The sim:// hypervisor and Windsor's watchdog: ``python -m harness.sim.manager RUN_DIR CFG``.

It keeps the domain table, starts every domain as a process in its own process group, rebuilds a
dead service domain (with a new domid, as Xen's ``on_crash="restart"`` does) and re-attaches the
guests' devices to it (the recovery agent's job), and reboots the host when dom0 dies: every
domain is killed, xenstore starts empty, the service domains boot again and the guests are
created again through the toolstack (as xendomains does). It also keeps the host's leases
(harness/sim/leases.py): a stall is undone by the manager itself when its lease ends, and a host
whose harness is gone (SIGKILL, a crash) keeps its leases to their end, then shuts itself down.
Control requests arrive on ``s/manager.sock`` as JSON lines; see `Manager.handle`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

from harness.sim import attempts, changes, leaks, paths
from harness.sim.domains import READY_TIMEOUT, Dom, Guests, killpg
from harness.sim.guest import KIND
from harness.sim.leases import ORPHAN_LINGER_S, LeaseKeeper, watch_owner
from harness.sim.proto import Msg, Server, request, serve_requests
from harness.sim.spawn import Spawner, SpawnError, announce, wait_ready
from harness.sim.sweep import sweep
from harness.sim.xenbus import attach
from harness.sim.xsclient import XsClient
from harness.topology import stub_domain

ROLE_OF_DEVICE = {"net": "netback", "disk": "blkback", "console": "console", "emul": "device-model"}


class Manager(Guests):
    def __init__(self, run_dir: str, cfg: dict[str, Any]) -> None:
        self.run_dir, self.cfg = run_dir, cfg
        self.placement: dict[str, list[tuple[str, list[str] | None]]] = {}  # role -> its domains, and whom they serve
        for d in cfg["topology"]["domains"]:
            for role in d["roles"]:
                self.placement.setdefault(role, []).append((d["name"], d.get("guests")))
        self.cpu_pct = int(cfg["topology"].get("cpu_pct", 100))
        self.stubdom_dm = cfg["topology"].get("device_model", "dom0") == "stubdom"
        self.spawner = Spawner(run_dir)
        self.lock = threading.RLock()
        self.doms: dict[str, Dom] = {}
        self.guests: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.state, self.boots, self.next_domid = "down", 0, 1
        self.in_reboot = self.again = False  # one reboot at a time; dom0 dead again during it: start over
        self.stop = threading.Event()
        self.xs = XsClient(paths.xenstore(run_dir), self.stop)
        self.orphan = False
        self._lingering = False
        self._late_stall_armed = False
        host_info = {"run_dir": run_dir, "manager_pid": os.getpid(),
                     "manager_started": psutil.Process().create_time()}
        self.leases = LeaseKeeper(cfg["root"], host_info, on_idle=self._idle)

    # -- placement ---------------------------------------------------------------------------
    def domain_of(self, role: str, guest: str | None = None) -> str:
        if role == "device-model":
            return stub_domain(guest or "") if self.stubdom_dm else "dom0"
        shards = self.placement.get(role, [("dom0", None)])
        return next((name for name, served in shards if served is None or guest in served), shards[0][0])

    def event(self, what: str, **info: Any) -> None:
        with self.lock:
            self.events.append({"t": time.monotonic(), "event": what, **info})

    # -- domains -----------------------------------------------------------------------------
    def spawn(self, name: str, kind: str, roles: list[str], target: str | None = None) -> Dom:
        with self.lock:
            domid = 0 if kind == "dom0" else self.next_domid
            self.next_domid += kind != "dom0"
        target_id = self.guests[target]["domid"] if target else None
        cfg = {"kind": "dom0" if kind == "dom0" else ("guest" if kind == "guest" else "service"),
               "name": name, "domid": domid, "roles": roles, "target": target_id,
               "cadence": self.cfg.get("cadence", 0.01), "cpu_pct": self.cpu_pct}
        popen = self.spawner.start(cfg, name, new_session=True)
        dom = Dom(name, domid, kind, roles, pid=popen.pid, target=target, popen=popen)
        try:
            dom.create_time = psutil.Process(popen.pid).create_time()
            ready = wait_ready(popen, READY_TIMEOUT)
        except (SpawnError, psutil.Error):
            killpg(popen.pid)
            popen.wait()
            raise
        dom.ready_t, dom.sockets = ready["ready_t"], ready.get("sockets", {})
        dom.procs = ready.get("procs", {})
        with self.lock:
            self.doms[name] = dom
        self.event("ready", domain=name, domid=domid, pid=dom.pid)
        threading.Thread(target=self._reap, args=(dom,), daemon=True).start()
        return dom

    def _reap(self, dom: Dom) -> None:
        assert dom.popen is not None
        dom.popen.wait()
        with self.lock:
            current = self.doms.get(dom.name) is dom
            if current:
                del self.doms[dom.name]
        if not current:
            return
        self.event("died", domain=dom.name, domid=dom.domid, pid=dom.pid)
        if dom.kind == "dom0" and (self.state == "running" or self.in_reboot):
            self.reboot()
        if self.state != "running":
            return
        if dom.kind in ("service", "dm"):
            self.leak_late_stall(dom.name)
        if dom.kind in ("service", "dm"):
            self.rebuild(dom)

    def rebuild(self, dead: Dom) -> None:
        for attempt in range(5):
            try:
                new = self.spawn(dead.name, dead.kind, dead.roles, dead.target)
                break
            except SpawnError as exc:
                self.event("rebuild-failed", domain=dead.name, attempt=attempt, error=str(exc))
        else:
            return
        self.event("rebuilt", domain=new.name, domid=new.domid, pid=new.pid)
        try:
            self.xs.rm(f"/local/domain/{dead.domid}")
            for spec in list(self.guests.values()):
                for dev in self.devices(spec):
                    if dev["domain"] == new.name and spec.get("running"):
                        attach(self.xs, spec["domid"], new.domid, dev["kind"], 0, dev["params"])
        except OSError as exc:
            self.event("reattach-failed", domain=new.name, error=str(exc))

    def devices(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for device in spec["devices"]:
            if device not in ROLE_OF_DEVICE:
                continue
            domain = self.domain_of(ROLE_OF_DEVICE[device], spec["name"])
            params = {"net": {"mac": spec.get("mac", "")},
                      "disk": {"params": paths.disk(self.run_dir, spec["name"])},
                      "console": {"name": spec["name"]}}.get(device, {})
            out.append({"kind": KIND[device], "domain": domain, "params": params})
        return out

    # -- host lifecycle ----------------------------------------------------------------------
    def boot(self, then: str = "running") -> Msg:
        with self.lock:
            self.state, self.next_domid = "booting", 1
            self.boots += 1
        if os.path.exists(paths.journal(self.run_dir)):
            os.unlink(paths.journal(self.run_dir))
        self.event("boot", boot=self.boots)
        service = {d["name"]: d["roles"] for d in self.cfg["topology"]["domains"] if d["name"] != "dom0"}
        dom0_roles = [r for r in self.cfg["roles"] if self.domain_of(r) == "dom0" and r != "device-model"]
        if not self.stubdom_dm:
            dom0_roles.append("device-model")
        xs_home = self.domain_of("xenstore")  # everything else needs xenstore: it boots first
        first = (xs_home, "service", service.pop(xs_home)) if xs_home != "dom0" else ("dom0", "dom0", dom0_roles)
        rest = [(n, "service", r) for n, r in service.items()] + ([("dom0", "dom0", dom0_roles)] * (xs_home != "dom0"))
        self.spawn(*first)
        with ThreadPoolExecutor(max_workers=max(1, len(rest))) as pool:
            list(pool.map(lambda spec: self.spawn(*spec), rest))
        with self.lock:
            self.state = then
        self.event("booted", boot=self.boots)
        return {"ok": True, "boot": self.boots}

    def reboot(self) -> None:
        """dom0 died: every domain goes, the host boots again, and its guests are created again.
        One at a time: when dom0 dies again meanwhile (a crash loop), the reboot starts over — two
        at once handed one domid to two guests, and one guest's disk to another."""
        with self.lock:
            if self.in_reboot:
                self.again = True
                return
            self.in_reboot = True
        for attempt in itertools.count(1):
            with self.lock:
                self.state, self.again = "rebooting", False
            self.event("host-crash")
            self.kill_all()
            try:
                self.boot(then="rebooting")
            except (SpawnError, OSError) as exc:
                self.event("boot-failed", error=str(exc), attempt=attempt)
                if attempt < 5:
                    continue
                with self.lock:
                    self.state, self.in_reboot = "failed", False
                return
            for spec in list(self.guests.values()):
                if self.again:
                    break
                spec["boot"] = spec.get("boot", 0) + 1
                spec["running"] = False
                try:
                    request(paths.toolstack(self.run_dir), {"op": "create", "guest": spec}, timeout=30.0)
                except OSError as exc:
                    self.event("autostart-failed", domain=spec["name"], error=str(exc))
            with self.lock:
                if not self.again:
                    self.state, self.in_reboot = "running", False
                    break
        self.event("rebooted", boot=self.boots)

    def kill_all(self) -> None:
        with self.lock:
            doms = list(self.doms.values())
            self.doms.clear()
        for dom in doms:
            killpg(dom.pid)
        for dom in doms:
            if dom.popen is not None:
                dom.popen.wait()

    def register(self, msg: Msg) -> Msg:
        """A dom0 process (re)started by dom0's init."""
        with self.lock:
            dom0 = self.doms.get("dom0")
            if dom0 is None:
                return {"ok": False, "error": "no dom0"}
            info = {k: msg[k] for k in ("proc", "pid", "roles", "target", "sockets", "ready_t")}
            dom0.procs[str(msg["proc"])] = info
        self.event("ready", domain="dom0", proc=msg["proc"], pid=msg["pid"])
        return {"ok": True}

    # -- leases ------------------------------------------------------------------------------
    def change(self, msg: Msg) -> Msg:
        """Apply one `Change` (harness/change.py) under a lease: journalled with its undo first
        (harness/sim/changes.py), undone by the lease's end if the harness does not undo it."""
        change = dict(msg["change"])
        domain, process = str(change["domain"]), change.get("process")
        entity = f"{domain}/{process}" if process else domain

        def tree() -> list[psutil.Process]:
            with self.lock:
                dom = self.doms.get(domain)
                pid = dom.pid if dom is not None and not process else (
                    dom.procs.get(str(process), {}).get("pid") if dom is not None else None)
            if pid is None:
                raise ValueError(f"no {entity} to change")
            root = psutil.Process(int(pid))
            return [root, *root.children(recursive=True)]

        def mac_of(guest: str) -> str:
            with self.lock:
                return str(self.guests[guest]["mac"])

        todo = changes.plan(change, self.run_dir, tree, mac_of)
        hit = self.leases.take(dict(msg["lease"]), entity, change, todo)
        self.event("changed", domain=entity, kind=change["kind"], guest=change.get("guest"), lease=msg["lease"]["id"])
        if change["kind"] in ("pause", "cap"):
            self.leak_late_stall(domain)
        return {"ok": True, "hit": hit}

    def leak_late_stall(self, hit: str) -> None:
        """Planted leak late-stall (harness/sim/leaks.py; off unless sim://?leak= asks): 1-2 s
        after domain `hit` is faulted, the first guest that uses nothing of it stops for a while."""
        if not leaks.planted("late-stall") or self._late_stall_armed:
            return
        self._late_stall_armed = True
        with self.lock:
            specs = sorted(self.guests.values(), key=lambda g: str(g["name"]))
        bystanders = [g["name"] for g in specs if hit not in {d["domain"] for d in self.devices(g)}]
        if bystanders:
            dom = self.doms.get(bystanders[0])
            if dom is not None:
                leaks.stop_later(dom.pid, lambda s: self.event("leak-late-stall", domain=dom.name, seconds=s),
                                 self.stop)

    def release(self, lease_id: str, by: str) -> Msg:
        ended = self.leases.release(lease_id, by)
        if ended is None:
            return {"ok": True, "held": False, "resumed": time.monotonic(), "by": None}
        return {"ok": True, "held": ended[1] == by, "resumed": ended[0], "by": ended[1]}

    def orphaned(self) -> None:
        """The harness that booted this host is gone: keep the leases to their end, then stop."""
        self.orphan = True
        self.event("orphaned", leases=len(self.leases.active()))
        if not self.leases.active():
            self._idle()

    def _idle(self) -> None:
        if self.orphan and not self._lingering:
            self._lingering = True
            self.event("lingering", seconds=ORPHAN_LINGER_S)
            timer = threading.Timer(ORPHAN_LINGER_S, self.stop.set)
            timer.daemon = True
            timer.start()

    # -- control socket ----------------------------------------------------------------------
    def handle(self, msg: Msg) -> Msg:
        op = msg.get("op")
        try:
            if op == "status":
                with self.lock:
                    return {"ok": True, "state": self.state, "boots": self.boots,
                            "domains": [d.public() for d in self.doms.values()],
                            "guests": [dict(g) for g in self.guests.values()],
                            "events": list(self.events), "orphan": self.orphan,
                            "leases": self.leases.active()}
            if op == "boot":
                return self.boot()
            if op == "domain_create":
                return self.domain_create(dict(msg["guest"]))
            if op == "domain_unpause":
                return self.domain_unpause(int(msg["domid"]))
            if op == "domain_destroy":
                return self.domain_destroy(str(msg["name"]))
            if op == "register":
                return self.register(msg)
            if op == "change":
                return self.change(msg)
            if op == "release":
                return self.release(str(msg["id"]), str(msg.get("by", "harness")))
            if op == "layout":
                return attempts.layout(self)
            if op == "attempt":  # an attacker in a domain (harness/isolation.py)
                return attempts.attempt(self, str(msg["as"]), str(msg["action"]), str(msg["target"]))
            if op == "shutdown":
                self.stop.set()
                return {"ok": True}
        except (OSError, SpawnError, KeyError, ValueError, psutil.Error) as exc:
            return {"ok": False, "error": f"{op}: {exc}"}
        return {"ok": False, "error": f"unknown op {op!r}"}


def main() -> None:
    run_dir, cfg = sys.argv[1], json.loads(sys.argv[2])
    paths.make(run_dir)
    manager = Manager(run_dir, cfg)
    signal.signal(signal.SIGTERM, lambda *_: manager.stop.set())
    server = Server(paths.manager(run_dir), serve_requests(manager.handle)).start()
    watch_owner(int(cfg["parent"]), manager.orphaned)
    announce({"name": "manager", "sockets": {"manager": server.path}})
    manager.stop.wait()
    with manager.lock:
        manager.state = "stopping"
    for held in manager.leases.active():  # a stopped process must not outlive its host stopped
        manager.leases.release(held["id"], "shutdown")
    manager.kill_all()
    server.close()
    if manager.orphan:  # nobody else will clean up after this host
        sweep(run_dir)
        paths.remove(run_dir, keep=bool(cfg.get("keep")))


if __name__ == "__main__":
    main()
