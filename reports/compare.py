"""Candidate vs monolithic baseline, per scenario, from JUnit files alone."""

from __future__ import annotations

from harness.junit import case_props, read_cases

COLUMNS = (("guests_impacted", "impacted"), ("max_guest_downtime_s", "downtime s"),
           ("service_restart_s", "restart s"), ("guest_recovery_s", "recovery s"),
           ("acked_writes_lost", "lost"), ("host_survived", "survived"))


def load_cases(paths: list[str]) -> list[tuple[str, str, dict[str, str]]]:
    """(test name, result, properties) for every testcase in the files."""
    out = []
    for path in paths:
        for case in read_cases(path):
            result = "pass" if case.is_passed else "skip" if case.is_skipped else "FAIL"
            out.append((str(case.name), result, case_props(case)))
    return out


def compare(paths: list[str]) -> str:
    rows = [("scenario", "result", *(f"{label}" for _, label in COLUMNS))]
    for name, result, props in load_cases(paths):
        if "topology" not in props:
            continue
        scenario = name.split("[", 1)[-1].rstrip("]")

        def cell(key: str, props: dict[str, str] = props) -> str:
            mine, base = props.get(key, "-"), props.get(f"baseline.{key}", "-")
            if key == "guests_impacted":
                mine += f"/{props.get('guests_total', '?')}"
                base += f"/{props.get('baseline.guests_total', '?')}"
            return f"{mine} vs {base}"

        rows.append((scenario, result, *(cell(k) for k, _ in COLUMNS)))
    if len(rows) == 1:
        return "no Windsor testcases (with a topology property) in " + ", ".join(paths)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "candidate vs baseline (candidate first)\n" + "\n".join(lines)
