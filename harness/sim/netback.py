"""The netback role: a switch between guests' network frontends, keyed by MAC."""

from __future__ import annotations

import threading

from harness.sim import leaks
from harness.sim.changes import raised
from harness.sim.context import RoleContext
from harness.sim.proto import Channel
from harness.sim.xenbus import Backend, Session


class Netback:
    def __init__(self, ctx: RoleContext) -> None:
        # planted leak (harness/sim/leaks.py), off unless sim://?leak= asks: healthy, but hollow
        self.hollow = leaks.planted("hollow-service") and leaks.restarted(ctx.run_dir, ctx.name, "netback")
        self.run_dir = ctx.run_dir
        self.ports: dict[str, Channel] = {}
        self.lock = threading.Lock()
        path = ctx.sock("vif")
        Backend(ctx.xs, ctx.domid, "vif", path, self.serve, "netback", param_keys=("mac",)).start()
        ctx.sockets["netback"] = path

    def cut(self, src: str, dst: str) -> bool:
        """Is either end's link down (the change link-down: a partition)? Its frames are dropped."""
        return raised(self.run_dir, "link", src) or raised(self.run_dir, "link", dst)

    def serve(self, chan: Channel, session: Session) -> None:
        mac = session.params["mac"]
        with self.lock:
            self.ports[mac] = chan
        try:
            while (frame := chan.recv()) is not None:
                with self.lock:
                    port = self.ports.get(str(frame.get("dst")))
                if self.hollow or self.cut(mac, str(frame.get("dst"))):
                    continue
                try:
                    if port is not None:
                        port.send(frame)
                    elif frame.get("t") == "ping":  # no such port (yet): say so, as an unanswered ARP would
                        chan.send({"t": "unreachable", "seq": frame.get("seq")})
                except OSError:
                    pass  # the destination's link is down: the frame is dropped, as on a wire
        finally:
            with self.lock:
                if self.ports.get(mac) is chan:
                    del self.ports[mac]
