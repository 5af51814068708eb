"""The netback role: a switch between guests' network frontends, keyed by MAC.

Where netback is spread over several domains (a topology's ``shards``), the switches are joined by
a wire: each listens on a datagram socket (``*.wire.sock``), and a frame for a MAC it does not
serve goes to the others, as a switch floods a frame for an unknown address to its uplinks; the
one serving that MAC delivers it. Such a frame costs both domains a request (harness/sim/vcpu.py)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from harness.sim import leaks, paths, vcpu
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
        self.wire_dir, self.wire_path = paths.sock_dir(ctx.run_dir), ctx.sock("wire")
        self.wire = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            os.unlink(self.wire_path)  # a dead incarnation's (dom0 after a host crash: same name, same domid)
        except FileNotFoundError:
            pass
        self.wire.bind(self.wire_path)
        self._uplinks: tuple[float, list[str]] = (0.0, [])
        self.learned: dict[str, str] = {}  # MAC -> the wire of the netback serving it
        threading.Thread(target=self._from_wire, name="wire", daemon=True).start()

    def uplinks(self) -> list[str]:
        """The other netbacks' wires (looked up again every second: shards come and go)."""
        when, found = self._uplinks
        if time.monotonic() - when > 1.0:
            found = [os.path.join(self.wire_dir, n) for n in os.listdir(self.wire_dir)
                     if n.endswith(".wire.sock") and os.path.join(self.wire_dir, n) != self.wire_path]
            self._uplinks = (time.monotonic(), found)
        return found

    def _from_wire(self) -> None:
        while True:
            try:
                data, sender = self.wire.recvfrom(65536)
                frame = json.loads(data)
            except (OSError, ValueError):
                return
            vcpu.spend()
            if isinstance(sender, str) and sender:
                self.learned[str(frame.get("src"))] = sender
            with self.lock:
                port = self.ports.get(str(frame.get("dst")))
            if port is not None and not self.cut(str(frame.get("src")), str(frame.get("dst"))):
                try:
                    port.send(frame)
                except OSError:
                    pass

    def _to_wire(self, frame: dict[str, object]) -> bool:
        """Send a frame for a MAC served elsewhere to the other netbacks; False: there are none."""
        uplinks = self.uplinks()
        data = json.dumps(frame, separators=(",", ":")).encode()
        known = self.learned.get(str(frame.get("dst")))
        for path in [known] if known in uplinks else uplinks:
            try:
                self.wire.sendto(data, path)
            except OSError:
                self.learned.pop(str(frame.get("dst")), None)  # that netback is gone: flood again
        return bool(uplinks)

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
                    elif self._to_wire(frame):
                        pass
                    elif frame.get("t") == "ping":  # no such port (yet): say so, as an unanswered ARP would
                        chan.send({"t": "unreachable", "seq": frame.get("seq")})
                except OSError:
                    pass  # the destination's link is down: the frame is dropped, as on a wire
        finally:
            with self.lock:
                if self.ports.get(mac) is chan:
                    del self.ports[mac]
