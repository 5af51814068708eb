"""partition: one guest's network link (or, with ``all=true``, every link of the netback) is cut
for ``duration_s``: netback drops every frame to and from it (on sim://; the change link-down),
then the link heals. Only that guest's network, and the network of whoever talks to it, may
notice; netback itself stays up."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from faults.stall import StallParams
from harness.fault import Blast, Change, Fault
from harness.topology import Topology


@dataclass(frozen=True)
class PartitionParams(StallParams):
    all: bool = False  # every link of the netback, not only the target guest's


class Partition(Fault):
    name = "partition"
    summary = "cut one guest's network link (all=true: every link) in netback for duration_s, then heal it"
    Params = PartitionParams
    target_kind = "guest-link"
    needs = frozenset({"link-down"})

    @classmethod
    def blast(cls, topology: Topology, role: str, guest: str | None = None, params: Any = None) -> Blast:
        # the guest's echo partner loses its pongs too (harness/model.py, `peers`): Blast.links says so
        cut = "*" if params is not None and params.all else guest
        return Blast(frozenset(), links=frozenset({cut or "*"}))

    def _inject(self) -> float:
        change = Change.at("link-down", self.target)
        return self.apply(replace(change, guest=None) if self.params.all else change)
