"""kill: the domain hosting the role dies at once (SIGKILL of its process tree; on Xen an
in-domain kernel crash, `xl sysrq DOM c`).

On a kernel role (netback, blkback) in dom0 that is a dom0 crash, and so a host crash.
"""

from __future__ import annotations

from harness.fault import Fault


class Kill(Fault):
    name = "kill"
    summary = "kill the domain (or dom0 process) hosting the role; in dom0's kernel: host crash"
    needs = frozenset({"kill"})
    crashes_dom0 = True
    replaces_target = True  # on Xen the crash takes a moment: the old domain still answers at first

    def _inject(self) -> float:
        return self.host.kill(self.target)
