"""JUnit testcases as a report sees them: outcome, Windsor properties (candidate and
``baseline.*``), and the timeline artifacts their system-out attaches — found where the run left
them, or beside the JUnit file when the artifacts were archived and moved with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from junitparser import Error, Failure, Skipped
from junitparser.xunit2 import TestCase

from harness.junit import case_props, read_suites
from harness.timeline import attachments
from harness.vocabulary import SECONDS

__all__ = ["SECONDS", "Case"]


CLAIMS = (("isolation", "isolation_attempts", "test_compromised_service_contained"),
          ("qos", "qos_p99_ratio", "test_noisy_neighbour"),
          ("scale", "scale_guests", "test_guests_per_host"))


@dataclass(frozen=True)
class Case:
    name: str  # test name, e.g. test_fault_contained[netback-kill]
    classname: str
    source: str  # the JUnit file it came from
    status: str  # pass | fail | error | skip
    message: str  # why it failed, errored or was skipped (whole, up to MESSAGE_MAX characters)
    props: Mapping[str, str]
    attachments: tuple[Path, ...]  # found on disk
    missing: tuple[str, ...]  # attached in system-out, but not found
    duplicate_of: str | None  # set by `windsor merge` on a repeat of a case from another file
    time_s: float

    @property
    def scenario(self) -> str:
        return self.name.split("[", 1)[1].rstrip("]") if "[" in self.name else self.name

    @property
    def is_windsor(self) -> bool:
        return "topology" in self.props

    @property
    def claim(self) -> str:
        """Which claim the case measures: availability (suites/test_resilience.py), isolation,
        qos or scale (suites/test_isolation.py, test_qos.py, test_scale.py), by its properties,
        or by its test's name when it failed before writing them."""
        for claim, key, test in CLAIMS:
            if key in self.props or (self.name.startswith(test) and self.failed):
                return claim
        return "availability"

    @property
    def host(self) -> str:
        return self.props.get("host", "")

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a case across runs: its host and its name."""
        return (self.host, self.name)

    @property
    def has_baseline(self) -> bool:
        return "baseline.topology" in self.props

    def value(self, key: str, baseline: bool = False) -> float | None:
        """A numeric metric (None when absent or "none")."""
        raw = self.props.get(f"baseline.{key}" if baseline else key)
        try:
            return None if raw is None else float(raw)
        except ValueError:
            return None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


KINDS = ((Error, "error"), (Failure, "fail"), (Skipped, "skip"))
MESSAGE_MAX = 2000


def status_of(case: TestCase) -> tuple[str, str]:
    for result in case.result:
        for cls, kind in KINDS:
            if isinstance(result, cls):
                text = (result.message or result.text or "").strip()
                return kind, text[:MESSAGE_MAX] + ("…" if len(text) > MESSAGE_MAX else "")
    return "pass", ""


def find(attached: str, junit: Path) -> Path | None:
    """An attached path as written, else relative to the JUnit file's directory, else by name in
    the JUnit file's directory or its windsor-artifacts/ (artifacts archived beside the file)."""
    given = Path(attached)
    name = given.name
    for place in (given, junit.parent / given, junit.parent / name, junit.parent / "windsor-artifacts" / name):
        if place.is_file():
            return place
    return None


def load(path: str) -> list[Case]:
    """Every testcase of a JUnit file, in file order; UsageError if it is not a JUnit file."""
    out = []
    for suite in read_suites(path):
        for item in suite:
            case = cast(TestCase, item)
            status, message = status_of(case)
            found, missing = [], []
            for attached in attachments((case.system_out or "") + (case.system_err or "")):
                place = find(attached, Path(path))
                if place is None:
                    missing.append(attached)
                else:
                    found.append(place)
            props = case_props(case)
            out.append(Case(str(case.name), str(case.classname or ""), path, status, message, props,
                            tuple(found), tuple(missing), props.get("windsor.duplicate_of"), float(case.time or 0.0)))
    return out


def load_all(paths: list[str]) -> list[Case]:
    return [c for p in paths for c in load(p)]


SEVERITY = {"skip": 0, "pass": 1, "fail": 2, "error": 3}


def collapse(cases: list[Case]) -> tuple[list[Case], list[Case]]:
    """One case per (host, class, name) over every input, merged or not, in first-seen order: the
    worst outcome (error, fail, pass, skip) with its message, whatever order the inputs came in;
    and the repeats not shown, each with `duplicate_of` naming the file of the one shown."""
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault((c.host, c.classname, c.name), []).append(c)
    shown: list[Case] = []
    repeats: list[Case] = []
    for group in groups.values():
        worst = max(group, key=lambda c: SEVERITY[c.status])
        shown.append(replace(worst, duplicate_of=None))
        repeats.extend(replace(c, duplicate_of=worst.source) for c in group if c is not worst)
    return shown, repeats
