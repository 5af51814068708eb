"""`windsor report --previous`: two crafted earlier runs and this one, every OSSTest class and
every kind of drift in them, read back from the page and the exit status."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from helpers import run

from reports.cases import load
from reports.history import Tolerance, classify

BASE = {"fault": "kill", "target_role": "netback", "target_domain": "netdd", "topology": "disaggregated",
        "seed": "0", "guests_total": "6", "guests_expected_impacted": "4", "host": "sim://",
        "guests_impacted": "4", "max_guest_downtime_s": "1.0000", "service_restart_s": "1.0000",
        "guest_recovery_s": "1.0000", "acked_writes_lost": "0", "host_survived": "true",
        "baseline.topology": "monolithic", "baseline.max_guest_downtime_s": "5.0000",
        "baseline.guests_impacted": "6", "baseline.guests_total": "6"}


def case(name: str, status: str, **metrics: str) -> str:
    props = {**BASE, **metrics}
    body = "".join(f'<property name="{k}" value="{v}"/>' for k, v in props.items())
    result = {"pass": "", "fail": '<failure message="impact escaped the blast radius">boom</failure>',
              "error": '<error message="host did not boot">boom</error>',
              "skip": '<skipped message="not on this host"/>'}[status]
    return (f'<testcase classname="suites.test_resilience" name="test_fault_contained[{name}]" time="1">'
            f"<properties>{body}</properties>{result}</testcase>")


def junit(path: Path, *cases: str) -> str:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="windsor" tests="{len(cases)}">'
                    f"{''.join(cases)}</testsuite></testsuites>")
    return str(path)


# name: (oldest run, previous run, this run); None: not in that run
RUNS: dict[str, tuple[tuple[str, dict[str, str]] | None, ...]] = {
    "steady": (("pass", {}), ("pass", {}), ("pass", {})),
    "slower": (("pass", {}), ("pass", {}), ("pass", {"service_restart_s": "1.6000", "guest_recovery_s": "1.2000"})),
    "wider": (None, ("pass", {"service_restart_s": "0.0500"}),
              ("pass", {"guests_impacted": "5", "service_restart_s": "0.0900"})),
    "faster": (None, ("pass", {"guest_recovery_s": "3.0000"}), ("pass", {"guest_recovery_s": "1.0000"})),
    "broke": (("pass", {}), ("pass", {}), ("fail", {"service_restart_s": "none"})),
    "still": (("pass", {}), ("fail", {}), ("fail", {})),
    "never": (("fail", {}), ("error", {}), ("fail", {})),
    "fixed": (("pass", {}), ("fail", {}), ("pass", {})),
    "fresh": (None, None, ("pass", {})),
    "fresh-fail": (None, None, ("error", {})),
    "gone": (("pass", {}), ("pass", {}), None),
    "skipped": (("pass", {}), ("pass", {}), ("skip", {})),
}
WANT = {"steady": "pass", "slower": "pass", "wider": "pass", "faster": "pass", "broke": "REGR.",
        "still": "still failing", "never": "never passed", "fixed": "fixed", "fresh": "new",
        "fresh-fail": "never passed", "skipped": "skipped"}


def crafted(tmp_path: Path) -> tuple[str, str, str]:
    files = []
    for i, label in enumerate(("old", "prev", "now")):
        chosen = [case(name, runs[i][0], **runs[i][1]) for name, runs in RUNS.items() if runs[i] is not None]
        files.append(junit(tmp_path / f"{label}.xml", *chosen))
    return files[0], files[1], files[2]


def test_classes_and_drifts(tmp_path: Path) -> None:
    old, prev, now = crafted(tmp_path)
    history = classify(load(now), [(old, load(old)), (prev, load(prev))], Tolerance(0.5, 0.1))
    got = {v.case.scenario: v for v in history.verdicts}
    assert {k: v.klass for k, v in got.items()} == WANT
    assert [c.scenario for c in history.missing] == ["gone"]
    assert got["fixed"].vs == prev and got["still"].vs == prev
    # +60 % restart is a drift; +20 % recovery is inside the tolerance
    assert [(d.metric, d.before, d.now) for d in got["slower"].worse] == [("service_restart_s", 1.0, 1.6)]
    # a count drifts on any increase; +80 % of 0.05 s is under the 0.1 s floor
    assert [(d.metric, d.before, d.now) for d in got["wider"].worse] == [("guests_impacted", 4.0, 5.0)]
    assert got["faster"].worse == () and [d.metric for d in got["faster"].better] == ["guest_recovery_s"]
    # a restart that had a value and now has none: the service never came back
    assert [(d.metric, d.now) for d in got["broke"].worse] == [("service_restart_s", None)]
    assert got["steady"].drifts == ()
    # a wider tolerance lets the restart pass; the count still drifts
    looser = classify(load(now), [(old, load(old)), (prev, load(prev))], Tolerance(0.7, 0.1))
    assert [d.metric for v in looser.verdicts for d in v.worse if v.case.scenario in ("slower", "wider")] == [
        "guests_impacted"]


class Classes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == "history"
        if tag == "tr" and self.inside and a.get("data-case"):
            self.found[str(a["data-case"]).split("[")[1].rstrip("]")] = str(a["data-class"])


def test_report_says_not_ready_and_why(tmp_path: Path) -> None:
    old, prev, now = crafted(tmp_path)
    out = tmp_path / "rep"
    done = run("windsor", "report", now, "--out", str(out), "--previous", old, prev)
    assert done.returncode == 0, done.stderr
    headline = done.stdout.splitlines()[0]
    assert headline.startswith("NOT READY for sign-off: 4 of 11 scenarios failed: broke on sim://, still on sim://"), \
        headline
    said = done.stdout
    assert "also: 1 regression (REGR.: passed last time, fail now): broke on sim://" in said
    assert "also: 3 metrics drifted beyond tolerance (+50% and 0.1 s): slower: service restart 1 s → 1.6 s (+60%); " \
           "wider: guests impacted 4 → 5 (+25%); broke: service restart 1 s → none" in said
    assert "also: 1 scenario that passed before did not run: gone on sim://" in said
    page = Classes()
    page.feed((out / "index.html").read_text())
    assert page.found == {**WANT, "gone": "missing"}
    md = (out / "report.md").read_text()
    assert "| broke | **REGR.** |" in md and "| fixed | fixed |" in md
    assert "| skipped | skipped |" in md and "not on this host" in md
    strict = run("windsor", "report", now, "--out", str(out), "--previous", old, prev, "--strict")
    assert strict.returncode == 1
    # this run against itself: no class but pass/skipped, no drift; the failures still block
    same = run("windsor", "report", prev, "--out", str(tmp_path / "same"), "--previous", prev)
    assert same.stdout.startswith("NOT READY for sign-off: 3 of 10 scenarios failed"), same.stdout
    assert "drifted" not in same.stdout and "REGR." not in same.stdout


def test_merge_keys_on_host_and_flaky_repeats_block(tmp_path: Path) -> None:
    """The same test on sim:// and on the lab is two cases; the same case on two shards of one
    host is a repeat, and a repeat with another result blocks sign-off as flaky."""
    sim = junit(tmp_path / "sim.xml", case("netback-kill", "pass"), case("blkback-kill", "pass"))
    lab = junit(tmp_path / "lab.xml", case("netback-kill", "pass", host="lab://"))
    again = junit(tmp_path / "again.xml", case("blkback-kill", "fail"))
    merged = tmp_path / "all.xml"
    done = run("windsor", "merge", str(merged), sim, lab, again)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"merged 4 testcases from 3 files into {merged}",
        f"duplicate: suites.test_resilience::test_fault_contained[blkback-kill] on sim:// in {again} (first in {sim})"]
    out = tmp_path / "rep"
    said = run("windsor", "report", str(merged), "--out", str(out)).stdout
    assert said.startswith("NOT READY for sign-off: 1 of 3 scenarios failed: blkback-kill on sim://"), said
    assert "1 case passed in one run and failed in another (flaky), shown as failed: blkback-kill on sim://" in said
    md = (out / "report.md").read_text()
    assert md.count("| netback-kill |") == 2 and md.count("| blkback-kill |") == 1  # two hosts; the repeat once
    assert "| sim:// |" in md and "| lab:// |" in md
