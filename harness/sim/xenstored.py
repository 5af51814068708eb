"""Start the xenstore role in a domain (its journal lives in the host's run dir)."""

from __future__ import annotations

from harness.sim import paths
from harness.sim.context import RoleContext
from harness.sim.xenstore import XenstoreService


class Xenstored:
    def __init__(self, ctx: RoleContext) -> None:
        sock = paths.xenstore(ctx.run_dir)
        XenstoreService(sock, paths.journal(ctx.run_dir), paths.states(ctx.run_dir)).start()
        ctx.sockets["xenstore"] = sock
