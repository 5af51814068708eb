"""The blkback role: block requests served from real backing files; a write is acknowledged
only after it has been fsynced."""

from __future__ import annotations

import glob
import os
import threading

from harness.sim import leaks, paths
from harness.sim.changes import raised
from harness.sim.context import RoleContext
from harness.sim.proto import Channel, request
from harness.sim.xenbus import Backend, Session


class Blkback:
    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.waits_for_netback = leaks.planted("hidden-dependency")
        self.remember = leaks.planted("lost-write")
        self.drop_one = self.remember and leaks.restarted(ctx.run_dir, ctx.name, "blkback")
        self.dropping = threading.Lock()
        path = ctx.sock("vbd")
        Backend(ctx.xs, ctx.domid, "vbd", path, self.serve, "blkback", param_keys=("params",)).start()
        ctx.sockets["blkback"] = path

    def serve(self, chan: Channel, session: Session) -> None:
        image = session.params["params"]
        guest = os.path.basename(image).removesuffix(".img")
        fd = os.open(image, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._leak_a_write(fd, image)
            last: tuple[int, int] | None = None
            while (req := chan.recv()) is not None:
                if self.waits_for_netback:
                    self._netback_answers()
                op, off = req.get("op"), int(req.get("off", 0))
                if op in ("write", "read") and raised(self.ctx.run_dir, "eio", guest):
                    chan.send({"ok": False, "seq": req.get("seq"), "error": "EIO"})  # the change disk-error
                    continue
                if op == "write":
                    data = bytes.fromhex(req["data"])
                    os.pwrite(fd, data, off)
                    os.fsync(fd)
                    if self.remember and last is not None and last[0] != off:
                        # the leak notes what it will drop after a restart: the write *before*
                        # this one, which the guest has surely recorded (it wrote on after it)
                        with open(image + ".acked", "w", encoding="ascii") as fh:
                            fh.write(f"{last[0]} {last[1]}")
                    last = (off, len(data))
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

    # -- planted leaks (harness/sim/leaks.py): off unless sim://?leak= asks ------------------
    def _leak_a_write(self, fd: int, image: str) -> None:
        """lost-write: a restarted blkback zeroes an acknowledged block (the last but one written)
        of the first disk it serves. Not the last: a kill between its ack and the guest's record of it
        makes the guest write it again, and nothing would be lost."""
        with self.dropping:
            if not self.drop_one:
                return
            try:
                with open(image + ".acked", encoding="ascii") as fh:
                    off, size = map(int, fh.read().split())
            except (OSError, ValueError):
                return
            os.pwrite(fd, bytes(size), off)
            os.fsync(fd)
            self.drop_one = False

    def _netback_answers(self) -> None:
        """hidden-dependency: every block request first waits until a netback answers a ping."""
        while not self.ctx.stop.is_set():
            for sock in sorted(glob.glob(os.path.join(paths.sock_dir(self.ctx.run_dir), "*.vif.sock"))):
                try:
                    if request(sock, {"op": "ping"}, timeout=30.0).get("ok"):
                        return
                except OSError:
                    continue
            self.ctx.stop.wait(0.01)
