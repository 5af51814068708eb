"""sim://'s answers to an attacker in a domain (harness/isolation.py), as Xen 4.17 without XSM gives
them: the manager plays the hypervisor.

- xenstore: the attempt is made on a connection that says it is the attacker's domain; the
  xenstore role checks it against the nodes' permissions (harness/sim/xsperms.py).
- grant-map: a frontend grants its ring to its backend (`backend-id`, as its grant entry names
  the domain that may map it); only that domain may map the reference it published.
- foreign-map and domctl-pause: only a privileged domain (dom0; the toolstack's domain, which
  Windsor gives control), and for a foreign map a device model of its own guest (its `target`).
  A pause that is allowed really stops the guest's process tree and lets it go at once.
- disk-read, sniff: a guest's disk blocks and frames pass through the domain that serves them
  (and dom0, which owns the disk images); an allowed read really reads the first sector.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import psutil

from harness.model import XENBUS_DEVICE
from harness.sim import paths
from harness.sim.proto import Msg
from harness.sim.xenbus import be_dir, fe_dir
from harness.sim.xsclient import XsClient, XsUnavailable

if TYPE_CHECKING:
    from harness.sim.manager import Manager


def layout(mgr: Manager) -> Msg:
    """Every guest device: its kind, both xenstore directories, the domain serving it."""
    with mgr.lock:
        specs = [dict(s) for s in mgr.guests.values() if s.get("running")]
        domids = {d.name: d.domid for d in mgr.doms.values()}
    devices = []
    for spec in sorted(specs, key=lambda s: str(s["name"])):
        for dev in mgr.devices(spec):
            be = domids.get(str(dev["domain"]))
            if be is None:
                continue
            devices.append({"guest": spec["name"], "kind": XENBUS_DEVICE[dev["kind"]],
                            "path": fe_dir(spec["domid"], dev["kind"]),
                            "backend_path": be_dir(be, dev["kind"], spec["domid"]),
                            "backend": dev["domain"], "ring": "ring-ref"})
    private = {str(s["name"]): f"/local/domain/{s['domid']}/name" for s in specs}
    return {"ok": True, "devices": devices, "private": private}


def attempt(mgr: Manager, attacker: str, action: str, target: str) -> Msg:
    with mgr.lock:
        dom = mgr.doms.get(attacker)
        if dom is None:
            return {"ok": False, "error": f"no domain {attacker!r}"}
        domid, privileged = dom.domid, attacker == "dom0" or "toolstack" in dom.roles
        dm_of = dom.target
    if action in ("xs-read", "xs-write"):
        return xenstore(mgr, None if privileged else domid, action, target)
    if action == "grant-map":
        grantee = mgr.xs.read(target.rsplit("/", 1)[0] + "/backend-id")
        if mgr.xs.read(target) is None or grantee is None:
            return {"ok": False, "error": f"no grant reference at {target}"}
        if int(grantee) != domid:
            return answer(False, f"GNTST_permission_denied: granted to domain {grantee}, not {domid}")
        return answer(True, "mapped")
    spec = mgr.guests.get(target)
    if spec is None or target not in mgr.doms:
        return {"ok": False, "error": f"no guest {target!r}"}
    if action == "foreign-map":
        allowed = privileged or dm_of == target
        return answer(allowed, "mapped" if allowed else f"EPERM: domain {domid} has no privilege over {target}")
    if action == "domctl-pause":
        if not privileged:
            return answer(False, f"EPERM: domain {domid} is not privileged")
        pause(mgr.doms[target].pid)
        return answer(True, "paused and unpaused")
    if action in ("disk-read", "sniff"):
        kind = {"disk-read": "disk", "sniff": "net"}[action]
        served = [d["domain"] for d in mgr.devices(spec) if XENBUS_DEVICE[d["kind"]] == kind]
        if not served:
            return {"ok": False, "error": f"{target} has no {kind} device"}
        if attacker not in (*served, "dom0"):
            return answer(False, f"ENODEV: {target}'s {kind} is served by {served[0]}, not {attacker}")
        if action == "disk-read":
            with open(paths.disk(mgr.run_dir, target), "rb") as fh:
                return answer(True, f"read {len(fh.read(512))} bytes")
        return answer(True, f"its frames pass through {attacker}")
    return {"ok": False, "error": f"unknown action {action!r}"}


def answer(allowed: bool, detail: str) -> Msg:
    return {"ok": True, "allowed": allowed, "detail": detail}


def xenstore(mgr: Manager, domid: int | None, action: str, path: str) -> Msg:
    """The attempt on a connection of the attacker's domain (`domid`; None: a privileged one); a
    write writes back the value the node holds."""
    value = mgr.xs.read(path)
    if value is None:
        return {"ok": False, "error": f"no node {path}"}
    xs = XsClient(paths.xenstore(mgr.run_dir), threading.Event(), domid=domid)
    try:
        msg: dict[str, Any] = {"op": "read", "path": path} if action == "xs-read" else \
            {"op": "write", "path": path, "value": value}
        got = xs.call(msg, timeout=5.0)
    except XsUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        xs.close()
    if got.get("ok"):
        return answer(True, "ok")
    return answer(False, f"{got.get('error')} from xenstored")


def pause(pid: int) -> None:
    """Stop the process tree and continue it at once (what a pause of a domain is here)."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for sig in (signal.SIGSTOP, signal.SIGCONT):
        for proc in procs:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
