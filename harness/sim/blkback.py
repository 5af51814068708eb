"""The blkback role: block requests served from real backing files; a write is acknowledged
only after it has been fsynced."""

from __future__ import annotations

import os

from harness.sim.context import RoleContext
from harness.sim.proto import Channel
from harness.sim.xenbus import Backend, Session


class Blkback:
    def __init__(self, ctx: RoleContext) -> None:
        path = ctx.sock("vbd")
        Backend(ctx.xs, ctx.domid, "vbd", path, self.serve, "blkback", param_keys=("params",)).start()
        ctx.sockets["blkback"] = path

    def serve(self, chan: Channel, session: Session) -> None:
        fd = os.open(session.params["params"], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while (req := chan.recv()) is not None:
                op, off = req.get("op"), int(req.get("off", 0))
                if op == "write":
                    os.pwrite(fd, bytes.fromhex(req["data"]), off)
                    os.fsync(fd)
                    chan.send({"ok": True, "seq": req.get("seq")})
                elif op == "read":
                    data = os.pread(fd, int(req["len"]), off)
                    chan.send({"ok": True, "seq": req.get("seq"), "data": data.hex()})
                elif op == "size":
                    chan.send({"ok": True, "size": os.fstat(fd).st_size})
                else:
                    chan.send({"ok": False, "error": f"unknown op {op!r}"})
        finally:
            os.close(fd)
