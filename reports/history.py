"""This run against earlier ones, as OSSTest reports a flight against its baseline.

Each case of this run is classified by its result now and in the previous runs that had it (the
same host and test name; the newest previous run first):

=============  =====================================================================
REGR.          fails now; passed the last time it ran — a regression, blocks sign-off
still failing  fails now and failed the last time, but passed at some earlier time
never passed   fails now and passed in no previous run (or never ran before)
fixed          passes now; failed the last time it ran
pass           passes now and passed the last time
new            passes now and never ran before
skipped        skipped now (the reason is the skip message)
=============  =====================================================================

A case that passed before and is absent now is listed as missing: coverage went down.
Metrics of a case that ran both times are compared with the last time: a time (restart,
recovery, max downtime) drifts when it grows by more than the tolerance (default +50 %) and by
more than a floor (default 0.1 s, below which sim:// jitter lives); a count (guests impacted,
acknowledged writes lost) drifts on any increase; a time that had a value and now has none (the
service never came back) always drifts. Improvements beyond the same bounds are listed too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import UsageError
from harness.vocabulary import COUNTS, HEADLINE, SECONDS
from reports.cases import Case

LABELS = {p.key: p.label for p in HEADLINE}
BLOCKING = frozenset({"REGR.", "still failing", "never passed"})


@dataclass(frozen=True)
class Tolerance:
    ratio: float = 0.5  # a time drifts when it grows by more than this fraction ...
    floor_s: float = 0.1  # ... and by more than this many seconds

    @classmethod
    def parse(cls, pct: str, floor_s: str) -> Tolerance:
        try:
            ratio = float(pct.strip().rstrip("%")) / 100
            floor = float(floor_s)
        except ValueError:
            raise UsageError(f"--tolerance {pct!r} / --min-drift {floor_s!r}: give numbers, e.g. 50% and 0.1") from None
        if not (0 <= ratio <= 100 and 0 <= floor <= 3600):
            raise UsageError(f"--tolerance {pct!r} / --min-drift {floor_s!r}: use 0-10000 % and 0-3600 s")
        return cls(ratio, floor)


@dataclass(frozen=True)
class Drift:
    metric: str
    before: float | None
    now: float | None
    worse: bool

    def describe(self) -> str:
        label = LABELS[self.metric]

        def shown(v: float | None) -> str:
            return fmt_value(v) + (" s" if v is not None and self.metric in SECONDS else "")

        change = f" ({(self.now - self.before) / self.before:+.0%})" if self.now is not None and self.before else ""
        return f"{label} {shown(self.before)} → {shown(self.now)}{change}"


def plural(n: int, word: str) -> str:
    """1 regression, 2 regressions; 1 scenario ran twice, 2 scenarios ..."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fmt_value(v: float | None) -> str:
    if v is None:
        return "none"
    return f"{v:.0f}" if v == int(v) and abs(v) >= 1 else f"{v:.3f}".rstrip("0").rstrip(".") or "0"


@dataclass(frozen=True)
class Verdict:
    """One case of this run against the previous runs."""

    case: Case
    klass: str  # see the module docstring
    vs: str | None  # the previous file the class was decided against
    drifts: tuple[Drift, ...]

    @property
    def worse(self) -> tuple[Drift, ...]:
        return tuple(d for d in self.drifts if d.worse)

    @property
    def better(self) -> tuple[Drift, ...]:
        return tuple(d for d in self.drifts if not d.worse)


@dataclass(frozen=True)
class History:
    previous: tuple[str, ...]  # files, oldest first
    verdicts: tuple[Verdict, ...]
    missing: tuple[Case, ...]  # passed in the last run that had them; absent now
    tolerance: Tolerance

    def of(self, case: Case) -> Verdict | None:
        return next((v for v in self.verdicts if v.case is case), None)

    def count(self, klass: str) -> int:
        return sum(1 for v in self.verdicts if v.klass == klass)


def drifts(now: Case, before: Case, tol: Tolerance) -> tuple[Drift, ...]:
    out = []
    for metric in (*SECONDS, *COUNTS):
        a, b = before.value(metric), now.value(metric)
        if metric in now.props and metric in before.props and a is not None and b is None:
            out.append(Drift(metric, a, b, True))
        if a is None or b is None:
            continue
        if metric in COUNTS:
            if b != a:
                out.append(Drift(metric, a, b, b > a))
        elif abs(b - a) > tol.floor_s and abs(b - a) > tol.ratio * a:
            out.append(Drift(metric, a, b, b > a))
    return tuple(out)


def classify(current: Sequence[Case], runs: Sequence[tuple[str, Sequence[Case]]], tol: Tolerance) -> History:
    """`runs`: (file, its cases), oldest first."""
    seen: dict[tuple[str, str], list[tuple[str, Case]]] = defaultdict(list)  # newest first
    by_name: dict[str, list[tuple[str, Case]]] = defaultdict(list)
    for path, cases in reversed(runs):
        for c in cases:
            if c.duplicate_of is None and c.status != "skip":
                seen[c.key].append((path, c))
                by_name[c.name].append((path, c))

    def past(c: Case) -> list[tuple[str, Case]]:
        # files written before cases carried a host property match by name alone
        return seen.get(c.key) or [(p, o) for p, o in by_name.get(c.name, []) if not o.host or not c.host]

    verdicts = []
    for c in current:
        if c.duplicate_of is not None:
            continue
        history = past(c)
        last_path, last = history[0] if history else (None, None)
        ever_passed = any(o.passed for _, o in history)
        if c.status == "skip":
            klass = "skipped"
        elif c.failed:
            klass = ("REGR." if last is not None and last.passed else
                     "still failing" if ever_passed else "never passed")
        else:
            klass = "new" if last is None else "fixed" if last.failed else "pass"
        moved = drifts(c, last, tol) if last is not None and c.status != "skip" else ()
        verdicts.append(Verdict(c, klass, last_path, moved))
    keys, names, hostless = {c.key for c in current}, {c.name for c in current}, {c.name for c in current if not c.host}

    def present(key: tuple[str, str]) -> bool:
        return key in keys or (not key[0] and key[1] in names) or key[1] in hostless

    missing = tuple(h[0][1] for key, h in seen.items() if h[0][1].passed and not present(key))
    return History(tuple(p for p, _ in runs), tuple(verdicts), missing, tol)
