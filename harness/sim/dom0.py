"""The control domain. Kernel roles placed in dom0 (netback, blkback) run inside this process,
as they run inside dom0's kernel; process roles (xenstored, the toolstack, xenconsoled, one
QEMU per HVM guest) are its child processes, in its process group, restarted by this init when
they die — but xenstored, which Xen 4.17 cannot start again without live-update state (on the
lab it never came back; a xenstore domain is another matter), and a QEMU, which nothing on Xen
4.17 gives its guest again (on the lab its guest stayed frozen). Killing this process is a dom0
crash; stopping its group is a dom0 stall.

dom0 also runs the toolstack probe, as an administrator's ``xl list`` would: every
`PROBE_CADENCES` cadences it asks the toolstack for the domain list (which reads every domain's
name from xenstore) and records ``toolstack`` in dom0's records when it answers (the harness reads
how late it came: `harness/metrics.py` probe_late)."""

from __future__ import annotations

import os
import threading
from typing import Any

from harness.metrics import DOM0, TOOLSTACK
from harness.sim import paths, vcpu
from harness.sim.context import RoleContext
from harness.sim.domain import start_roles
from harness.sim.guest import PROBE_CADENCES, Recorder, Ticker
from harness.sim.proto import Msg, Server, request, serve_requests
from harness.sim.spawn import Child, Spawner, announce, wait_ready
from harness.sim.xsclient import XsClient

KERNEL_ROLES = ("netback", "blkback")
PROC_NAMES = {"xenstore": "xenstored", "toolstack": "toolstack", "console": "xenconsoled"}


class Dom0Init:
    def __init__(self, run_dir: str, cpu_pct: int) -> None:
        self.run_dir, self.cpu_pct = run_dir, cpu_pct
        self.spawner = Spawner(run_dir)
        self.procs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stopping: set[str] = set()

    def start(self, proc: str, roles: list[str], target: int | None = None) -> dict[str, Any]:
        cfg = {"kind": "service", "name": proc, "domid": 0, "roles": roles, "target": target, "cpu_pct": self.cpu_pct}
        child = self.spawner.start(cfg, f"dom0-{proc}", new_session=False)
        ready = wait_ready(child, timeout=15.0)
        info = {"proc": proc, "pid": child.pid, "roles": roles, "target": target,
                "sockets": ready["sockets"], "ready_t": ready["ready_t"]}
        with self.lock:
            self.procs[proc] = info
        threading.Thread(target=self._watch, args=(child, proc), daemon=True).start()
        return info

    def _watch(self, child: Child, proc: str) -> None:
        child.wait()
        with self.lock:
            info = self.procs.get(proc)
            if proc in self.stopping or info is None or info["pid"] != child.pid:
                return
        if proc == PROC_NAMES["xenstore"] or proc.startswith("qemu-"):  # as on Xen 4.17: a dead
            return  # xenstored cannot be started again (no live-update state), nor a guest's QEMU
        try:
            new = self.start(proc, info["roles"], info["target"])
            request(paths.manager(self.run_dir), {"op": "register", "domain": "dom0", **new})
        except (OSError, RuntimeError, ValueError):
            pass  # the manager sees the role unhealthy; nothing else to do from here

    def stop(self, proc: str) -> Msg:
        with self.lock:
            self.stopping.add(proc)
            info = self.procs.pop(proc, None)
        if info is not None:
            try:
                os.kill(int(info["pid"]), 9)
            except ProcessLookupError:
                pass
        return {"ok": True}


def toolstack_probe(run_dir: str, period: float, stop: threading.Event) -> None:
    rec, ticker, n = Recorder(paths.records(run_dir, DOM0)), Ticker(period, 0.0, stop), 0
    while not stop.is_set():
        ticker.wait()
        try:
            if request(paths.toolstack(run_dir), {"op": "list"}, timeout=30.0).get("ok"):
                rec.record(TOOLSTACK, n)
                n += 1
        except (OSError, ValueError):
            pass  # the toolstack is away: the probe's gap says for how long


def run_dom0(cfg: dict[str, Any]) -> None:
    run_dir, roles = cfg["run_dir"], list(cfg["roles"])
    init = Dom0Init(run_dir, int(cfg.get("cpu_pct", 100)))
    vcpu.use(run_dir, "dom0", init.cpu_pct)
    if "xenstore" in roles:
        init.start(PROC_NAMES["xenstore"], ["xenstore"])
    stop = threading.Event()
    ctx = RoleContext(name="dom0", domid=0, run_dir=run_dir,
                      xs=XsClient(paths.xenstore(run_dir), stop), stop=stop)
    start_roles(ctx, [r for r in roles if r in KERNEL_ROLES])
    for role in ("toolstack", "console"):
        if role in roles:
            init.start(PROC_NAMES[role], [role])

    def control(msg: Msg) -> Msg:
        op = msg.get("op")
        try:
            if op == "spawn_dm":
                return {"ok": True, **init.start(f"qemu-{msg['guest']}", ["device-model"], int(msg["target"]))}
            if op == "stop_dm":
                return init.stop(f"qemu-{msg['guest']}")
            if op == "ping":
                return {"ok": True, "role": "dom0", "pid": os.getpid()}
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r}"}

    Server(paths.dom0_ctl(run_dir), serve_requests(control)).start()
    period = float(cfg.get("cadence", 0.01)) * PROBE_CADENCES
    threading.Thread(target=toolstack_probe, args=(run_dir, period, stop), name="toolstack-probe", daemon=True).start()
    with init.lock:
        procs = dict(init.procs)
    announce({"name": "dom0", "sockets": ctx.sockets, "procs": procs})
    stop.wait()
