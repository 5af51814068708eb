"""``lab://`` — the real Xen 4.17 lab on this machine (harness/lab/): booted under QEMU if it is
not running (``windsor lab up``), then driven as ``xen+ssh://`` on its loopback ssh port.
The lab is a test host by construction, whose dom0 may be crashed or capped (it reboots by
itself). URL parameter: ``?dir=PATH`` (the lab dir)."""

from __future__ import annotations

from pathlib import Path

from harness.backend.base import HostSpec
from harness.backend.xen import XenHost
from harness.errors import HostError, UsageError
from harness.xen.remote import Remote


class LabHost(XenHost):
    def __init__(self, spec: HostSpec) -> None:
        unknown = set(spec.params) - {"dir"}
        if unknown or spec.host or spec.port:
            raise UsageError(f"lab:// takes no host and only ?dir=PATH, not {spec.url!r}")
        super().__init__(HostSpec(spec.url, spec.scheme))
        from harness.lab.machine import DEFAULT_DIR

        self.lab_dir = Path(spec.params.get("dir") or DEFAULT_DIR)

    @property
    def test_host(self) -> bool:
        return True

    @property
    def dom0_faults(self) -> bool:
        return True

    def preflight(self) -> list[str]:
        try:
            return super().preflight()
        except HostError as exc:
            if "no windsor-lease" not in str(exc):
                raise
            raise HostError("lab://: the running lab was built before windsor-lease (the lease journal): "
                            "windsor lab down, then run again (it is rebuilt and booted)") from None

    def connect(self) -> Remote:
        from harness.lab.machine import Lab

        lab = Lab(self.lab_dir)
        state = lab.up()
        return Remote(f"ssh://root@127.0.0.1:{state.port}", ssh_identity_file=str(lab.files.key),
                      ssh_extra_args=lab.ssh_options(state))
