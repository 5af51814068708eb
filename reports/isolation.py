"""The report's "Security isolation" section: from the isolation cases' properties (harness/isolation.py),
per service an attacker owned, how much it reached outside its duties on the topology under test and
on the baseline, and the matrix of every attempt (allowed or denied, on each side)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reports.cases import Case

ROW_RE = re.compile(r"^(?P<what>.+?) \[(?P<how>[^\]]*)\]: (?P<said>allowed|denied)")


def answers(case: Case, baseline: bool = False) -> dict[str, str]:
    """Each attempt of a case's `isolation_rows` → "allowed" or "denied"."""
    raw = case.props.get("baseline.isolation_rows" if baseline else "isolation_rows", "")
    out = {}
    for part in raw.split(" | "):
        found = ROW_RE.match(part.strip())
        if found:
            out[found["what"]] = found["said"]
    return out


@dataclass(frozen=True)
class Isolation:
    cases: tuple[Case, ...]
    attempts: tuple[str, ...]  # the matrix's rows, in the order the cases made them

    @property
    def reachable(self) -> tuple[int, int, int | None, int | None]:
        """Attempts outside the duties reached, and made: under test, then on the baseline (None: none)."""
        def total(key: str, baseline: bool) -> int | None:
            got = [c.value(key, baseline) for c in self.cases]
            return None if not got or any(v is None for v in got) else int(sum(v or 0 for v in got))

        return (total("isolation_reachable", False) or 0, total("isolation_attempts", False) or 0,
                total("isolation_reachable", True), total("isolation_attempts", True))

    def headline(self) -> str:
        got, made, base_got, base_made = self.reachable
        text = f"isolation: {got} of {made} attempts outside the services' duties reachable"
        if base_got is not None:
            text += f" ({base_got} of {base_made} on the baseline)"
        return text

    def cell(self, case: Case, what: str, baseline: bool = False) -> str:
        return answers(case, baseline).get(what, "")


def collect(cases: Sequence[Case]) -> Isolation:
    chosen = tuple(c for c in cases if c.claim == "isolation")
    attempts: dict[str, None] = {}
    for c in chosen:
        for side in (False, True):
            attempts.update(dict.fromkeys(answers(c, side)))
    return Isolation(chosen, tuple(attempts))
