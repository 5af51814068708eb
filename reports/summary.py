"""What a sign-off report says, from JUnit files alone: per scenario the topology under test
beside its monolithic baseline, the improvement ratio, where the run came from, and the verdict
(sign-off ready or not, and why). Rendering is reports/render.py's job."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.checks import CHECKS
from harness.junit import words
from harness.timeline import Timeline
from harness.vocabulary import HEADLINE
from reports import qos, scale
from reports.cases import Case
from reports.history import History, Verdict, fmt_value, plural
from reports.isolation import Isolation, collect
from reports.qos import Qos
from reports.scale import Scale

NOTHING_S = 0.001  # below this, a downtime is none at all


METRICS = HEADLINE  # the figures set beside the baseline (harness/vocabulary.py)


def shown(case: Case, key: str, baseline: bool = False) -> str:
    """A metric as the report shows it (raw JUnit values are kept in data-value attributes)."""
    pre = "baseline." if baseline else ""
    raw = case.props.get(pre + key)
    if raw is None:
        return "—"
    if key == "guests_impacted":
        return f"{raw}/{case.props.get(pre + 'guests_total', '?')}"
    if key == "host_survived":
        return "yes" if raw == "true" else "NO (host crashed)" if raw == "false" else raw
    if key.endswith("_s"):
        value = case.value(key, baseline)
        return "none" if value is None else f"{value:.3f}"
    return raw


def improvement(case: Case) -> tuple[float | None, str]:
    """Baseline max guest downtime ÷ candidate max guest downtime: how many times shorter the
    worst outage of any guest was on the topology under test. Only where a guest noticed: with no
    guest impacted on either side, both downtimes are the machine's jitter, not an outage."""
    mine, base = case.value("max_guest_downtime_s"), case.value("max_guest_downtime_s", baseline=True)
    hit, base_hit = case.value("guests_impacted"), case.value("guests_impacted", baseline=True)
    if mine is None or base is None:
        return None, "—"
    if not hit and not base_hit:
        return None, "no impact either side"
    if not hit or mine < NOTHING_S:
        return float("inf"), "∞ (no impact)"
    ratio = base / mine
    return ratio, f"×{ratio:.1f}" if ratio < 100 else f"×{ratio:.0f}"


@dataclass(frozen=True)
class Row:
    case: Case
    verdict: Verdict | None
    ratio: float | None
    ratio_text: str
    timelines: tuple[Timeline, ...]  # the candidate's first, then the baseline's (those found)


@dataclass(frozen=True)
class Report:
    generated: str
    sources: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]  # host, build, build id, harness, seed, topologies
    ready: bool
    headline: str
    reasons: tuple[str, ...]  # what blocks sign-off
    notes: tuple[str, ...]  # what a reader should know, without blocking
    rows: tuple[Row, ...]
    others: tuple[Case, ...]  # testcases without Windsor properties
    duplicates: tuple[Case, ...]
    history: History | None
    isolation: Isolation
    qos: Qos
    scale: Scale

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.rows:
            out[r.case.status] += 1
        return dict(out)


def distinct(cases: Sequence[Case], key: str) -> str:
    values = sorted({c.props[key] for c in cases if c.props.get(key)})
    return ", ".join(values) if values else "—"


def mismatch(t: Timeline, case: Case) -> str | None:
    """Why timeline `t` is not the record of `case` (None: every fact both hold agrees): a
    picture that disagrees with its table was written by another run, and must not be shown."""
    run = case.props.get("run_id")
    if t.run and run and t.run != run:
        return f"written by run {t.run}, not by this case's run {run}"
    side = "" if t.topology == case.props.get("topology") else (
        "baseline." if t.topology == case.props.get("baseline.topology") else None)
    if side is None or t.case != case.scenario:
        return f"it is {t.case} on {t.topology}, not {case.scenario} on this case's topologies"
    for key, mine in (("service_restart_s", t.restart_s), ("guest_recovery_s", t.recovery_s)):
        if side + key not in case.props:
            continue
        theirs = case.value(key, baseline=bool(side))  # JUnit keeps 4 decimals
        if (mine is None) != (theirs is None) or abs((mine or 0.0) - (theirs or 0.0)) > 2e-4:
            return f"{side}{key} {fmt_value(mine)} in the artifact, {fmt_value(theirs)} in the JUnit"
    raw = case.props.get(side + "impacted")
    if raw is not None and {k.replace("/", ":") for k in t.impacted} != set(words(raw)):
        return f"{side}impacted {' '.join(t.impacted) or 'none'} in the artifact, {raw} in the JUnit"
    return None


def timelines_of(case: Case) -> tuple[tuple[Timeline, ...], list[str], list[str]]:
    """The case's timelines (its own first), what could not be read, and what disagrees with it."""
    found, problems, wrong = [], [], []
    for path in case.attachments:
        if not path.name.endswith(".timeline.json"):
            continue
        try:
            t = Timeline.load(path)
        except Exception as exc:  # one bad artifact must not sink the report: it is said instead
            problems.append(str(exc))
            continue
        why = mismatch(t, case)
        if why is None:
            found.append(t)
        else:
            wrong.append(f"{path.name}: {why}")
    mine = case.props.get("topology")
    found.sort(key=lambda t: t.topology != mine)
    return tuple(found), problems, wrong


def names(cases: Sequence[Case], limit: int = 8) -> str:
    listed = [c.scenario + (f" on {c.host}" if c.host else "") for c in cases]
    return ", ".join(listed[:limit]) + (f" and {len(listed) - limit} more" if len(listed) > limit else "")


def build(cases: Sequence[Case], repeats: Sequence[Case], sources: Sequence[str], history: History | None) -> Report:
    """`cases`: one per case (reports.cases.collapse), `repeats`: the other runs of the same cases."""
    isolation, noisy, carried = collect(cases), qos.collect(cases), scale.collect(cases)
    claims = [*isolation.cases, *noisy.cases, *carried.cases]  # the claims beside availability
    windsor = [c for c in cases if c.claim == "availability"
               and (c.is_windsor or (c.name.startswith("test_fault_contained") and c.status != "pass"))]
    others = tuple(c for c in cases if c not in windsor and c not in claims)
    duplicates = tuple(repeats)
    reasons: list[str] = []
    notes: list[str] = []
    rows = []
    wrong: list[str] = []
    for c in windsor:
        lines, problems, disagree = timelines_of(c)
        notes.extend(f"{c.scenario}: {p}" for p in problems)
        wrong.extend(f"{c.scenario}: {w}" for w in disagree)
        ratio, text = improvement(c)
        rows.append(Row(c, history.of(c) if history else None, ratio, text, lines))
    failed = [c for c in windsor if c.failed]
    passed = [c for c in windsor if c.passed]
    skipped = [c for c in windsor if c.status == "skip"]
    if not windsor and not claims:
        reasons.append("no Windsor scenarios in the input (no testcase has Windsor properties)")
    if windsor and not passed and not failed:
        reasons.append(f"no scenario ran: all {len(windsor)} skipped")
    if failed:
        reasons.append(f"{len(failed)} of {plural(len(windsor), 'scenario')} failed: {names(failed)}")
    for claim, chosen in (("isolation", isolation.cases), ("QoS", noisy.cases), ("scalability", carried.cases)):
        if failed_claim := [c for c in chosen if c.failed]:
            reasons.append(f"{claim}: {len(failed_claim)} of {plural(len(chosen), 'case')} failed: "
                           + names(failed_claim))
    if wrong:
        reasons.append(f"{plural(len(wrong), 'timeline artifact')} disagree with their case's JUnit (another run "
                       f"wrote over them?), not shown: " + "; ".join(wrong[:4])
                       + (f" and {len(wrong) - 4} more" if len(wrong) > 4 else ""))
    broken = [c for c in others if c.failed]
    if broken:
        reasons.append(f"{plural(len(broken), 'other testcase')} failed: {', '.join(c.name for c in broken[:8])}")
    if history is not None:
        regr = [v.case for v in history.verdicts if v.klass == "REGR."]
        if regr:
            reasons.append(f"{plural(len(regr), 'regression')} (REGR.: passed last time, fail now): {names(regr)}")
        worse = [(v.case, d) for v in history.verdicts for d in v.worse]
        if worse:
            tol = history.tolerance
            reasons.append(f"{plural(len(worse), 'metric')} drifted beyond tolerance (+{tol.ratio:.0%} and "
                           f"{fmt_value(tol.floor_s)} s): "
                           + "; ".join(f"{c.scenario}: {d.describe()}" for c, d in worse[:6])
                           + (f" and {len(worse) - 6} more" if len(worse) > 6 else ""))
        if history.missing:
            gone = history.missing
            reasons.append(f"{plural(len(gone), 'scenario')} that passed before did not run: {names(gone)}")
    shown = {(c.host, c.classname, c.name): c for c in cases}
    flaky = {k: c for d in duplicates if d.passed and (c := shown[(d.host, d.classname, d.name)]).failed
             for k in [(c.host, c.classname, c.name)]}
    if flaky:
        reasons.append(f"{plural(len(flaky), 'case')} passed in one run and failed in another (flaky), shown as "
                       f"failed: {names(list(flaky.values()))}")
    if skipped:
        notes.append(f"{plural(len(skipped), 'scenario')} skipped: "
                     + "; ".join(f"{c.scenario} ({c.message or 'no reason given'})" for c in skipped[:6]))
    no_base = [c for c in windsor if c.is_windsor and not c.has_baseline]
    if no_base:
        notes.append(f"{plural(len(no_base), 'scenario')} without a baseline to compare with: {names(no_base)}")
    # a role the topology under test keeps in dom0, as the baseline does (sim://'s netdd-only, or a
    # role Xen keeps in dom0 everywhere): the comparison says nothing about disaggregating it
    in_dom0 = [c for c in windsor if c.has_baseline  # "dom0", or a process there: "dom0/xenstored"
               and c.props.get("target_domain", "").split("/")[0] == "dom0"
               and c.props.get("baseline.target_domain", "").split("/")[0] == "dom0"]
    if in_dom0:
        notes.append(f"{plural(len(in_dom0), 'scenario')} hit a role that is in dom0 on both topologies, so the "
                     "comparison shows no disaggregation of it: "
                     + "; ".join(f"{c.scenario} ({c.props.get('target_role', '?')} in dom0 on "
                                 f"{c.props.get('topology')} and {c.props.get('baseline.topology')})"
                                 for c in in_dom0[:6]))
    lost = [c for c in windsor if c.missing]
    if lost:
        notes.append(f"timelines attached but not found for {plural(len(lost), 'scenario')} (archive "
                     f"windsor-artifacts/ beside the JUnit file): {names(lost)}")
    if duplicates:
        notes.append(f"{plural(len(duplicates), 'repeat')} of a case shown once, with its worst outcome: "
                     f"{names(duplicates)}")
    ready = not reasons
    hosts = distinct(windsor, "host")
    if ready:
        of = plural(len(windsor), "scenario")
        parts = [f"{len(passed)} of {of} passed on {hosts}: on the topology under test, "
                 + ", ".join(check.claim for check in CHECKS[:3])  # the checks the suites assert (harness/checks.py)
                 + ", and the rest of its checks held"
                 + (f"; {len(skipped)} skipped" if skipped else "")] if windsor else []
        parts += [part.headline() for part in (isolation, noisy, carried) if part.cases]
        headline = ("READY for sign-off: " + "; ".join(parts)
                    + (f"; no regression or drift against {plural(len(history.previous), 'previous run')}"
                       if history else ""))
    else:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        headline = f"NOT READY for sign-off: {reasons[0]}{more}"
    facts = (("host", hosts), ("build", distinct(windsor, "build")), ("build id", distinct(windsor, "build_id")),
             ("harness", distinct(windsor, "harness")), ("seed", distinct(windsor, "seed")),
             ("topology under test", distinct(windsor, "topology")),
             ("baseline", distinct(windsor, "baseline.topology")),
             ("guests", distinct(windsor, "guests_total")))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Report(now, tuple(str(Path(s)) for s in sources), facts, ready, headline, tuple(reasons), tuple(notes),
                  tuple(rows), others, duplicates, history, isolation, noisy, carried)
