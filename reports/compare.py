"""Candidate vs monolithic baseline, per scenario, from JUnit files alone."""

from __future__ import annotations

from collections.abc import Mapping

from harness.vocabulary import HEADLINE
from reports.cases import load_all

COLUMNS = tuple((p.key, p.short) for p in HEADLINE)


def compare(paths: list[str]) -> str:
    rows = [("scenario", "result", *(f"{label}" for _, label in COLUMNS))]
    for case in load_all(paths):
        if not case.is_windsor or case.claim != "availability":  # the other claims: `windsor report`'s sections
            continue
        props, result = case.props, {"pass": "pass", "skip": "skip"}.get(case.status, "FAIL")

        def cell(key: str, props: Mapping[str, str] = props) -> str:
            mine, base = props.get(key, "-"), props.get(f"baseline.{key}", "-")
            if key == "guests_impacted":
                mine += f"/{props.get('guests_total', '?')}"
                base += f"/{props.get('baseline.guests_total', '?')}"
            return f"{mine} vs {base}"

        rows.append((case.scenario, result, *(cell(k) for k, _ in COLUMNS)))
    if len(rows) == 1:
        return "no Windsor testcases (with a topology property) in " + ", ".join(paths)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "candidate vs baseline (candidate first)\n" + "\n".join(lines)
