"""The toolstack role: the management API. Guests are created and destroyed only through it.

``create`` asks the hypervisor (the domain manager) for a paused domain, writes the guest's
devices into xenstore (`xenbus.attach`), then unpauses it, as xl does. ``destroy`` undoes it.
``list``, as ``xl list``: the domains, each named from xenstore (dom0's toolstack probe asks it).
"""

from __future__ import annotations

import os
from typing import Any

from harness.sim import paths
from harness.sim.context import RoleContext
from harness.sim.proto import Msg, Server, request, serve_requests
from harness.sim.xenbus import attach


class Toolstack:
    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.mgr = paths.manager(ctx.run_dir)
        sock = paths.toolstack(ctx.run_dir)
        Server(sock, serve_requests(self.handle)).start()
        ctx.sockets["toolstack"] = sock

    def handle(self, msg: Msg) -> Msg:
        op = msg.get("op")
        try:
            if op == "ping":
                return {"ok": True, "role": "toolstack", "pid": os.getpid()}
            if op == "create":
                return self.create(msg["guest"])
            if op == "destroy":
                return self.destroy(str(msg["name"]))
            if op == "list":  # as xl list: the domains, each named from xenstore
                listed = request(self.mgr, {"op": "status"}, timeout=5.0)
                xs = self.ctx.xs
                names = {d: xs.read(f"/local/domain/{d}/name") for d in xs.ls("/local/domain")}
                return {**listed, "names": names}
        except (OSError, KeyError, ValueError) as exc:
            return {"ok": False, "error": f"{op}: {exc}"}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def create(self, guest: dict[str, Any]) -> Msg:
        made = request(self.mgr, {"op": "domain_create", "guest": guest}, timeout=15.0)
        if not made.get("ok"):
            return made
        fe = int(made["domid"])
        self.ctx.xs.write(f"/local/domain/{fe}/name", guest["name"])  # as xl does: who this domain is
        for dev in made["devices"]:
            attach(self.ctx.xs, fe, int(dev["backend"]), dev["kind"], 0, dev.get("params", {}))
        return request(self.mgr, {"op": "domain_unpause", "domid": fe}, timeout=15.0)

    def destroy(self, name: str) -> Msg:
        gone = request(self.mgr, {"op": "domain_destroy", "name": name}, timeout=15.0)
        if gone.get("ok"):
            self.ctx.xs.rm(f"/local/domain/{gone['domid']}")
        return gone
