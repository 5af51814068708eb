"""The device-model role: one per HVM guest, answering its emulated I/O."""

from __future__ import annotations

from harness.sim.context import RoleContext
from harness.sim.proto import Channel
from harness.sim.xenbus import Backend, Session


class DeviceModel:
    def __init__(self, ctx: RoleContext) -> None:
        if ctx.target is None:
            raise ValueError("a device model needs the domid of its guest")
        path = ctx.sock("dm")
        Backend(ctx.xs, ctx.domid, "dm", path, self.serve, "device-model", only_fe=ctx.target).start()
        ctx.sockets["device-model"] = path

    def serve(self, chan: Channel, session: Session) -> None:
        while (msg := chan.recv()) is not None:
            chan.send({"ok": True, "seq": msg.get("seq"), "port": msg.get("port", 0x70)})
