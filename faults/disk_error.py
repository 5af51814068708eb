"""disk-error: one guest's disk fails under it for ``duration_s``: every read and write of it is
answered with an I/O error (EIO) by blkback (on sim://; the change disk-error), then the disk
works again. The guest must see errors, not a hang, and must lose no write it had acknowledged:
a failed write is not acknowledged, so the guest writes it again."""

from __future__ import annotations

from typing import Any

from faults.stall import StallParams
from harness.fault import Blast, Change, Fault
from harness.topology import Topology


class DiskError(Fault):
    name = "disk-error"
    summary = "answer every request on one guest's disk with EIO in blkback for duration_s"
    Params = StallParams
    target_kind = "guest-disk"
    needs = frozenset({"disk-error"})

    @classmethod
    def blast(cls, topology: Topology, role: str, guest: str | None = None, params: Any = None) -> Blast:
        return Blast(frozenset(), pairs=frozenset({(guest, "disk")} if guest else set()))

    def _inject(self) -> float:
        return self.apply(Change.at("disk-error", self.target))
