"""Reading a report back: its table cells (as the browser built them) against the JUnit file."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from helpers import fault_cases, run

from harness.junit import case_props

METRIC_KEYS = ("guests_impacted", "max_guest_downtime_s", "service_restart_s", "guest_recovery_s",
               "acked_writes_lost", "host_survived")
PNG = b"\x89PNG\r\n\x1a\n"


class Cells(HTMLParser):
    """Every `td[data-key]` of the rows `tr[data-case]`: (case, key, side) -> (data-value, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.case: str | None = None
        self.open: tuple[str, str, str] | None = None
        self.raw = ""
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-case"):
            self.case = a["data-case"]
        elif tag == "td" and self.case and a.get("data-key"):
            self.open = (self.case, a["data-key"] or "", a.get("data-side") or "")
            self.raw, self.text = a.get("data-value") or "", ""

    def handle_data(self, data: str) -> None:
        if self.open:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.open:
            self.cells[self.open] = (self.raw, self.text.strip())
            self.open = None
        elif tag == "tr":
            self.case = None


def expected_text(key: str, props: dict[str, str], prefix: str) -> str:
    raw = props[prefix + key]
    if key == "guests_impacted":
        return f"{raw}/{props[prefix + 'guests_total']}"
    if key == "host_survived":
        return "yes" if raw == "true" else "NO (host crashed)"
    if key.endswith("_s"):
        return "none" if raw == "none" else f"{float(raw):.3f}"
    return raw


def check_numbers(cells: dict[tuple[str, str, str], tuple[str, str]], junit: Path) -> int:
    """Every metric of every case, under test and baseline, as the JUnit file has it; returns how
    many cells were checked."""
    checked = 0
    for case in fault_cases(junit):
        props = case_props(case)
        for key in METRIC_KEYS:
            for side, prefix in (("test", ""), ("base", "baseline.")):
                raw, text = cells[(str(case.name), key, side)]
                assert raw == props[prefix + key], (case.name, key, side)
                assert text == expected_text(key, props, prefix), (case.name, key, side, text)
                checked += 1
        mine, base = float(props["max_guest_downtime_s"]), float(props["baseline.max_guest_downtime_s"])
        ratio = cells[(str(case.name), "improvement", "")][1]
        if props["guests_impacted"] == props["baseline.guests_impacted"] == "0":
            assert ratio == "no impact either side"
        elif props["guests_impacted"] != "0":
            assert ratio == (f"×{base / mine:.1f}" if base / mine < 100 else f"×{base / mine:.0f}"), (case.name, ratio)
        else:
            assert ratio == "∞ (no impact)", (case.name, ratio)
        assert cells[(str(case.name), "result", "")][1] == ("pass" if case.is_passed else "fail")
    return checked


def report(*args: str) -> str:
    """`windsor report ARGS`, which must succeed; what it said."""
    done = run("windsor", "report", *args, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
