"""``lab://`` — the real Xen 4.17 lab on this machine (harness/lab/): booted under QEMU if it is
not running (``windsor lab up``), then driven as ``xen+ssh://`` on its loopback ssh port.
The lab is a test host by construction, whose dom0 may be crashed or capped (it reboots by
itself). URL parameters: ``?dir=PATH`` (the lab dir); ``?dom0=stock`` boots the stock Debian Xen
host instead of our own dom0 (harness/lab/stock.py) and prepares it as a bare-metal runner is
prepared (``windsor host prepare``); ``?keep=1`` keeps the lab running after the session, until
it has been unused for ``?idle=MINUTES`` (default 30). Without it, the lab stops when the last
session using it ends (harness/lab/watchdog.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from harness.backend.base import HostSpec
from harness.backend.xen import XenHost
from harness.errors import HostError, UsageError
from harness.xen.remote import Remote

log = logging.getLogger("windsor.lab")


class LabHost(XenHost):
    def __init__(self, spec: HostSpec) -> None:
        unknown = set(spec.params) - {"dir", "dom0", "keep", "idle"}
        if unknown or spec.host or spec.port:
            raise UsageError(f"lab:// takes no host and only ?dir=PATH&dom0=windsor|stock&keep=1&idle=MINUTES, "
                             f"not {spec.url!r}")
        super().__init__(HostSpec(spec.url, spec.scheme))
        from harness.lab.machine import DEFAULT_DIR, DOM0_KINDS
        from harness.lab.watchdog import idle_seconds

        self.lab_dir = Path(spec.params.get("dir") or DEFAULT_DIR)
        self.dom0 = spec.params.get("dom0") or "windsor"
        if self.dom0 not in DOM0_KINDS:
            raise UsageError(f"lab://?dom0={self.dom0}: use one of {', '.join(DOM0_KINDS)}")
        self.keep = spec.params.get("keep", "") in ("1", "true", "yes")
        self.idle_s = idle_seconds(spec.params.get("idle", "30"), "lab://?idle=")

    @property
    def test_host(self) -> bool:
        return True

    @property
    def dom0_faults(self) -> bool:
        return True

    def preflight(self) -> list[str]:
        """The stock lab is prepared here, as `windsor host prepare` would (a no-op when it is);
        the last line says when the lab will stop."""
        return [*self._preflight(), self.lifetime()]

    def lifetime(self) -> str:
        from harness.lab.machine import Lab

        lab = Lab(self.lab_dir, self.dom0)
        state = lab.state()
        return "lab: not running" if state is None else lab.lifetime(state)

    def _preflight(self) -> list[str]:
        try:
            return super().preflight()
        except HostError as exc:
            if self.dom0 != "stock" or "windsor host prepare" not in str(exc):
                raise HostError(f"{exc} (lab://: windsor lab down, then run again: the lab is rebuilt)") from None
        from harness.lab.build import payload
        from harness.xen.payload import sources
        from harness.xen.prepare import prepare

        done = prepare(self.remote, self.prepare_url(), lambda: sources(payload(self.lab_dir)), log.info)
        return [f"prepared the stock lab: tools {done.version}, {len(done.uploaded)} files in {done.seconds:.0f}s",
                *super().preflight()]

    def prepare_url(self) -> str:
        from harness.lab.machine import Lab

        state = Lab(self.lab_dir, self.dom0).state()
        return self.spec.url if state is None else f"{state.url}?identity={Lab(self.lab_dir).files.key}"

    def connect(self) -> Remote:
        from harness.lab.machine import Lab

        lab = Lab(self.lab_dir, self.dom0)
        state = lab.up(self.keep, self.idle_s)
        return Remote(f"ssh://root@127.0.0.1:{state.port}", ssh_identity_file=str(lab.files.key),
                      ssh_extra_args=lab.ssh_options(state))
