"""What every sim:// process runs: `run` (in a child of a zygote: harness/sim/spawn.py), or
``python -m harness.sim.domain '<json config>'``.

``kind`` is ``service`` (a domain, or a dom0 process, hosting roles in-process), ``dom0`` (the
control domain: its init) or ``guest``.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import threading
from typing import Any

from harness.sim import paths, vcpu
from harness.sim.context import RoleContext
from harness.sim.spawn import announce, die_with_parent
from harness.sim.xsclient import XsClient

ROLE_CLASSES = {
    "xenstore": "harness.sim.xenstored:Xenstored",
    "toolstack": "harness.sim.toolstack:Toolstack",
    "netback": "harness.sim.netback:Netback",
    "blkback": "harness.sim.blkback:Blkback",
    "console": "harness.sim.console:Console",
    "device-model": "harness.sim.devmodel:DeviceModel",
}


def start_roles(ctx: RoleContext, roles: list[str]) -> None:
    """Start roles in this process, xenstore first; return once every one of them serves."""
    for role in sorted(roles, key=lambda r: r != "xenstore"):
        module, cls = ROLE_CLASSES[role].split(":")
        getattr(importlib.import_module(module), cls)(ctx)
    if any(r != "xenstore" for r in roles):
        ctx.xs.read("/", timeout=10.0)  # xenstore answers: we can do handshakes


def unprivileged(cfg: dict[str, Any]) -> int | None:
    """The domid a service domain's xenstore connection says it is; None for a privileged one
    (dom0's processes, the toolstack's domain: Windsor gives it control of the others)."""
    return None if int(cfg["domid"]) == 0 or "toolstack" in cfg["roles"] else int(cfg["domid"])


def run_service(cfg: dict[str, Any]) -> None:
    stop = threading.Event()
    vcpu.use(cfg["run_dir"], "dom0" if int(cfg["domid"]) == 0 else cfg["name"], int(cfg.get("cpu_pct", 100)))
    ctx = RoleContext(
        name=cfg["name"], domid=int(cfg["domid"]), run_dir=cfg["run_dir"],
        xs=XsClient(paths.xenstore(cfg["run_dir"]), stop, domid=unprivileged(cfg)), target=cfg.get("target"),
        stop=stop,
    )
    start_roles(ctx, list(cfg["roles"]))
    announce({"name": cfg["name"], "sockets": ctx.sockets})
    stop.wait()


def run(cfg: dict[str, Any]) -> None:
    """Be the process `cfg` describes (in a child of a zygote, or from `main`)."""
    die_with_parent(int(cfg["parent"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    kind = cfg["kind"]
    if kind == "guest":
        from harness.sim.guest import run_guest

        run_guest(cfg)
    elif kind == "dom0":
        from harness.sim.dom0 import run_dom0

        run_dom0(cfg)
    else:
        run_service(cfg)


def main() -> None:
    run(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
