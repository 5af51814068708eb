"""The console role: collects every guest's console lines into per-guest log files."""

from __future__ import annotations

import os

from harness.sim.context import RoleContext
from harness.sim.proto import Channel
from harness.sim.xenbus import Backend, Session


class Console:
    def __init__(self, ctx: RoleContext) -> None:
        self.log_dir = os.path.join(ctx.run_dir, "console")
        os.makedirs(self.log_dir, exist_ok=True)
        path = ctx.sock("console")
        Backend(ctx.xs, ctx.domid, "console", path, self.serve, "console", param_keys=("name",)).start()
        ctx.sockets["console"] = path

    def serve(self, chan: Channel, session: Session) -> None:
        name = os.path.basename(session.params["name"] or str(session.fe))
        fd = os.open(os.path.join(self.log_dir, f"{name}.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            while (msg := chan.recv()) is not None:
                os.write(fd, (str(msg.get("line", "")) + "\n").encode())
                chan.send({"ok": True, "seq": msg.get("seq")})
        finally:
            os.close(fd)
