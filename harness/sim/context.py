"""What a role needs to run inside a sim:// domain process."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from harness.sim import paths
from harness.sim.xsclient import XsClient


@dataclass
class RoleContext:
    name: str  # the domain (or dom0 process) hosting the role
    domid: int
    run_dir: str
    xs: XsClient
    target: int | None = None  # a device model's guest domid
    sockets: dict[str, str] = field(default_factory=dict)  # role -> health socket
    stop: threading.Event = field(default_factory=threading.Event)

    def sock(self, what: str) -> str:
        return os.path.join(paths.sock_dir(self.run_dir), f"{self.name}.{self.domid}.{what}.sock")
