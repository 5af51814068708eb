"""`windsor report` from the matrix's own JUnit (and its attached timelines), read back the way a
person sees it: in a real headless Chromium with the network cut off. The numbers on the page
are checked against the JUnit properties, one by one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import CLAIM_PICTURES, CLAIMS, ISOLATION, MATRIX, QOS, SCALE, fault_cases, pytest_argv, run
from junitparser.xunit2 import JUnitXml
from report_check import METRIC_KEYS, PNG, Cells, check_numbers, expected_text, report

from harness.junit import case_props, read_cases, words
from harness.timeline import Timeline, attachments
from reports.browser import executable, look


@pytest.fixture(scope="module")
def matrix_report(matrix_junit: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    said = report(str(matrix_junit), "--out", str(out))
    assert said.startswith(f"READY for sign-off: {MATRIX} of {MATRIX} scenarios passed on sim://"), said
    return out


def test_timelines_are_attached_to_each_testcase(matrix_junit: Path) -> None:
    for case in fault_cases(matrix_junit):
        props = case_props(case)
        attached = attachments(case.system_out or "")
        assert len(attached) == 2, case.name  # the baseline's and the candidate's
        seen = {}
        for path in attached:
            t = Timeline.load(path)
            seen[t.topology] = t
            assert all(len(ops) > 10 for ops in t.ops.values()), (case.name, path)
            assert t.fault_end_s >= 0 and min(min(v) for v in t.ops.values()) < 0 < max(max(v) for v in t.ops.values())
        mine = seen[props["topology"]]
        assert {k.replace("/", ":") for k in mine.impacted} == set(words(props["impacted"]))
        assert len({k.split("/")[0] for k in mine.impacted}) == int(props["guests_impacted"])
        assert {k.split("/")[0] for k in mine.ops} == {f"g{i:02d}" for i in range(1, int(props["guests_total"]) + 1)}
        base = seen[props["baseline.topology"]]
        assert len({k.split("/")[0] for k in base.impacted}) == int(props["baseline.guests_impacted"])


def test_markdown_matches_junit(matrix_report: Path, matrix_junit: Path) -> None:
    md = (matrix_report / "report.md").read_text()
    assert md.splitlines()[2].startswith("**READY for sign-off")
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and " / " in line}
    for case in fault_cases(matrix_junit):
        props = case_props(case)
        line = rows[str(case.name).split("[")[1].rstrip("]")]
        for key in METRIC_KEYS:
            assert f" {expected_text(key, props, '')} / {expected_text(key, props, 'baseline.')} |" in line, (key, line)
    images = sorted(p.name for p in (matrix_report / "img").iterdir())
    # the summary, one timeline per scenario, the QoS CDFs and the scalability curves
    assert len(images) == MATRIX + 1 + CLAIM_PICTURES and "summary.png" in images
    for name in images:
        assert f"](img/{name})" in md
        assert (matrix_report / "img" / name).read_bytes().startswith(PNG)


def test_page_renders_offline_in_chromium(matrix_report: Path, matrix_junit: Path) -> None:
    if executable() is None:
        pytest.fail("no chromium on PATH: apt-get install chromium (ci/bootstrap.sh does, as root)")
    page = matrix_report / "index.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # nothing that could be fetched
    seen = look(page)
    assert seen.fetched == (), seen.fetched
    assert seen.title == "Windsor resilience report — READY"
    assert len(seen.images) == MATRIX + 1 + CLAIM_PICTURES, seen.images
    assert all(i["ok"] and i["width"] > 600 for i in seen.images), seen.images
    assert seen.tables["scenarios"] == 2 + MATRIX and seen.tables["facts"] >= 10
    cells = Cells()
    cells.feed(seen.dom)  # what the browser built, not the file
    assert check_numbers(cells.cells, matrix_junit) == MATRIX * 6 * 2
    shot = matrix_report / "page.png"
    said = report(str(matrix_junit), "--out", str(matrix_report), "--png", str(shot))
    assert f"wrote {shot} (the page in headless Chromium)" in said
    head = shot.read_bytes()[:24]
    tall = min(seen.height, 16000)  # the screenshot's limit (reports/browser.py)
    assert head.startswith(PNG) and int.from_bytes(head[16:20]) == 1400 and int.from_bytes(head[20:24]) == tall


def test_report_from_archived_artifacts(matrix_junit: Path, tmp_path: Path) -> None:
    """A report made later, elsewhere: the JUnit file and windsor-artifacts/ moved together."""
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(matrix_junit, archive / "nightly.xml")
    shutil.copytree(matrix_junit.parent / "windsor-artifacts", archive / "windsor-artifacts")
    report(str(archive / "nightly.xml"), "--out", str(tmp_path / "a"))
    assert len(list((tmp_path / "a" / "img").iterdir())) == MATRIX + 1 + CLAIM_PICTURES
    # without them, the report still comes out, and says what it could not find
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(matrix_junit, alone / "nightly.xml")
    moved = matrix_junit.parent / "windsor-artifacts"
    hidden = matrix_junit.parent / "hidden-artifacts"
    moved.rename(hidden)
    try:
        report(str(alone / "nightly.xml"), "--out", str(tmp_path / "b"))
    finally:
        hidden.rename(moved)
    md = (tmp_path / "b" / "report.md").read_text()
    assert f"timelines attached but not found for {MATRIX} scenarios" in md
    assert sorted(p.name for p in (tmp_path / "b" / "img").iterdir()) == ["qos-cdf.png", "scale-curves.png",
                                                                          "summary.png"]


def test_three_shards_merged_then_reported(matrix_junit: Path, tmp_path: Path) -> None:
    """Three runners' shards (each a third of the matrix, one case run twice) merged: every case
    kept, the repeat flagged and shown once."""
    names = [str(c.name) for c in read_cases(str(matrix_junit))]
    shards = []
    for i in range(3):
        xml = JUnitXml.fromstring(matrix_junit.read_text())
        for suite in xml:
            for case in list(suite):
                if names.index(case.name) % 3 != i and not (i == 2 and case.name == names[0]):
                    suite.remove_testcase(case)
        shard = tmp_path / f"shard{i}.xml"
        xml.write(str(shard))
        shards.append(shard)
    merged = tmp_path / "all.xml"
    done = run("windsor", "merge", str(merged), *map(str, shards))
    said = done.stdout + done.stderr
    every = MATRIX + CLAIMS + 1
    assert done.returncode == 0 and f"merged {every} testcases from 3 files" in done.stdout, said
    assert sum(1 for _ in read_cases(str(merged))) == every
    out = tmp_path / "rep"
    said = report(str(merged), "--out", str(out), "--previous", str(matrix_junit))
    assert said.startswith(f"READY for sign-off: {MATRIX} of {MATRIX}"), said
    md = (out / "report.md").read_text()
    assert f"1 repeat of a case shown once, with its worst outcome: {names[0].split('[')[1][:-1]}" in md


def test_a_role_in_dom0_on_both_topologies_is_said_to_show_no_disaggregation(tmp_path: Path) -> None:
    """netdd-only keeps xenstore in dom0, as the monolithic baseline does: the report says the
    comparison shows nothing about disaggregating it (and says nothing of netback, which moved)."""
    junit = tmp_path / "j.xml"
    done = run(*pytest_argv("suites", "--topology", "netdd-only", "--roles", "xenstore,netback", "--faults", "stall",
                            "--junitxml", str(junit), "-q"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report(str(junit), "--out", str(tmp_path / "r"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert ("1 scenario hit a role that is in dom0 on both topologies, so the comparison shows no disaggregation of "
            "it: xenstore-stall (xenstore in dom0 on netdd-only and monolithic)") in md, md


def test_isolation_section_matches_junit(matrix_report: Path, matrix_junit: Path) -> None:
    """The security-isolation section: a row per service with its reachable counts, under test and
    on the baseline, as the JUnit file has them; the matrix has every attempt; the headline says
    the total."""
    md = (matrix_report / "report.md").read_text()
    section = md.split("## Security isolation", 1)[1].split("\n## ", 1)[0]
    cases = [case_props(c) for c in read_cases(str(matrix_junit)) if str(c.name).startswith("test_compromised")]
    assert len(cases) == ISOLATION
    made = reached = 0
    for props in cases:
        mine = f"{props['isolation_reachable']} of {props['isolation_attempts']}"
        base = f"{props['baseline.isolation_reachable']} of {props['baseline.isolation_attempts']}"
        assert f"| {props['target_role']} | pass | {props['attacker']} / dom0 | {mine} / {base} | 0 |" in section
        made, reached = made + int(props["isolation_attempts"]), reached + int(props["isolation_reachable"])
        for row in props["isolation_rows"].split(" | "):
            assert f"| {row.split(' [')[0]} |" in section, row
    assert reached == 0 and f"isolation: 0 of {made} attempts outside the services' duties reachable" in md


def test_qos_and_scalability_sections_match_junit(matrix_report: Path, matrix_junit: Path) -> None:
    """The QoS section: a row per case with the others' p99 ratio under test and on the baseline as
    the JUnit file has them; the scalability section: the guests each topology carried; the
    headline says both."""
    md = (matrix_report / "report.md").read_text()
    qos = md.split("## QoS under a noisy neighbour", 1)[1].split("\n## ", 1)[0]
    cases = [case_props(c) for c in read_cases(str(matrix_junit)) if str(c.name).startswith("test_noisy_neighbour")]
    assert len(cases) == QOS
    for props in cases:
        ratios = f"×{float(props['qos_p99_ratio']):.2f} / ×{float(props['baseline.qos_p99_ratio']):.2f} |"
        row = next(line for line in qos.splitlines()
                   if line.startswith(f"| {props['qos_device']} by {props['qos_noisy']} ")
                   and f" {props['topology']} / monolithic " in line)
        assert row.endswith(ratios) and ("| yes |" in row) == (props["qos_isolated"] == "true"), row
        if props["qos_isolated"] == "true":
            assert float(props["qos_p99_ratio"]) <= 2 and f"{props['qos_device']} on {props['topology']} ×" in md
    assert "![Latency CDFs under a noisy neighbour](img/qos-cdf.png)" in qos
    scale = md.split("## Scalability", 1)[1].split("\n## ", 1)[0]
    cases = [case_props(c) for c in read_cases(str(matrix_junit)) if str(c.name).startswith("test_guests_per_host")]
    assert len(cases) == SCALE
    for props in cases:
        assert (f"| {props['topology']} / monolithic | pass | {props['scale_cpu_pct']} | {props['scale_guests']} / "
                f"{props['baseline.scale_guests']} |") in scale
        assert int(props["scale_guests"]) > int(props["baseline.scale_guests"])
        assert f"{props['topology']} {props['scale_guests']}" in md.splitlines()[2]
    assert "![Guests per host](img/scale-curves.png)" in scale
