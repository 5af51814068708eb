"""``--shard I/N``: run one N-th of the scenario matrix, chosen by a stable hash.

A case's shard depends on its identity alone — the scenario id (``netback-kill``) for a scenario
case, the test's name otherwise — never on collection order, the file's path, the Python process
(``hash()`` is salted per process) or the other cases selected: the first 8 bytes of its SHA-256,
modulo N. So every shard of a fleet computes the same split on its own, every case lands in
exactly one shard, and a case stays in the same shard (on the same runner) from night to night
while N does not change — what the sign-off report's history compares needs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError
from harness.scenario import Scenario

MAX_SHARDS = 1000
SHAPE = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with 1 ≤ I ≤ N ≤ 1000; UsageError (one line, with an example) otherwise."""
        found = SHAPE.match(text)
        if found is not None:
            index, total = int(found[1]), int(found[2])
            if 1 <= index <= total <= MAX_SHARDS:
                return cls(index, total)
        raise UsageError(f"--shard {text!r}: write I/N, shard I of N, with 1 <= I <= N <= {MAX_SHARDS} "
                         "(e.g. --shard 2/4)")

    def holds(self, key: str) -> bool:
        """Does the case whose identity is `key` belong to this shard?"""
        return bucket(key, self.total) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def bucket(key: str, total: int) -> int:
    """The shard (1..total) of the case whose identity is `key`."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % total


def case_key(item: Any) -> str:
    """A pytest item's identity for sharding: its scenario's id (``netback-kill``, with the guest
    of a device model when one is named), else its test name; never its path or its order."""
    chosen = getattr(getattr(item, "callspec", None), "params", {}).get("windsor_scenario")
    if isinstance(chosen, Scenario):
        return chosen.id + (f"@{chosen.guest}" if chosen.guest else "")
    return str(item.name)
