"""Reports that never hide: what a merge, two runs in one directory or a case run twice could once
make a report show differently from what happened."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from helpers import pytest_argv, run
from test_report_history import case, junit

from harness.junit import case_props, read_cases
from harness.timeline import attachments

MESSAGE = "impact escaped the blast radius of netdd:&#10;[('g03', 'disk')]&#10;second line"


def failing(path: Path, name: str, message: str = MESSAGE) -> str:
    text = case(name, "fail").replace('message="impact escaped the blast radius"', f'message="{message}"')
    return junit(path, text)


def test_merge_keeps_a_failure_message_as_it_was(tmp_path: Path) -> None:
    """minidom's pretty print wrote the &#10; of a failure message as a raw newline, which every
    XML reader then turns into a space."""
    shard = failing(tmp_path / "shard.xml", "netback-kill")
    merged = tmp_path / "all.xml"
    assert run("windsor", "merge", str(merged), shard).returncode == 0
    message = ET.parse(merged).getroot().find(".//failure").get("message")  # type: ignore[union-attr]
    assert message == "impact escaped the blast radius of netdd:\n[('g03', 'disk')]\nsecond line"


def test_a_case_run_twice_shows_its_worst_outcome_whatever_the_order(tmp_path: Path) -> None:
    """A case that passed in one shard and failed in another was shown as a pass, its failure hidden,
    for one merge order; shards given side by side were not checked for repeats at all."""
    good = junit(tmp_path / "good.xml", case("netback-kill", "pass"), case("blkback-kill", "pass"))
    bad = failing(tmp_path / "bad.xml", "netback-kill")
    merged_ab, merged_ba = tmp_path / "ab.xml", tmp_path / "ba.xml"
    assert run("windsor", "merge", str(merged_ab), good, bad).returncode == 0
    assert run("windsor", "merge", str(merged_ba), bad, good).returncode == 0
    for inputs in ([str(merged_ab)], [str(merged_ba)], [good, bad], [bad, good]):
        out = tmp_path / f"rep-{len(list(tmp_path.iterdir()))}"
        said = run("windsor", "report", *inputs, "--out", str(out)).stdout
        assert said.startswith("NOT READY for sign-off: 1 of 2 scenarios failed: netback-kill on sim://"), said
        assert "1 case passed in one run and failed in another (flaky), shown as failed: netback-kill" in said
        md = (out / "report.md").read_text()
        assert md.count("| netback-kill |") == 1, inputs
        assert "[('g03', 'disk')]" in md, inputs  # the failure's own message is shown


def test_two_runs_in_one_directory_keep_their_own_timelines(tmp_path: Path) -> None:
    """Artifacts were named after the case alone: a second run into the same directory wrote over
    the first's, and its report drew the other run's picture beside its own table."""
    junits = []
    for name in ("first", "second"):
        junits.append(tmp_path / f"{name}.xml")
        done = run(*pytest_argv("suites", "-q", "--no-baseline", "-k", "console-kill", "--host",
                                f"sim://?dir={tmp_path / 'root'}", "--junitxml", str(junits[-1])))
        assert done.returncode == 0, done.stdout[-2000:]
    (one,), (two,) = (list(read_cases(str(j))) for j in junits)
    first, second = attachments(one.system_out or ""), attachments(two.system_out or "")
    assert len(first) == len(second) == 1 and first != second
    assert len(list((tmp_path / "windsor-artifacts").iterdir())) == 2
    for j, case_ in zip(junits, (one, two), strict=True):
        said = run("windsor", "report", str(j), "--out", str(tmp_path / f"rep-{j.stem}")).stdout
        assert said.startswith("READY for sign-off"), said
        artifact = Path(attachments(case_.system_out or "")[0])
        assert json.loads(artifact.read_text())["run"] == case_props(case_)["run_id"]


def test_a_timeline_that_disagrees_with_its_case_is_not_drawn_and_blocks(tmp_path: Path) -> None:
    """The picture must say what the table says: an artifact written over by another run (here the
    second run's timeline put in place of the first's, as the old names allowed) is refused."""
    junits = []
    for name in ("first", "second"):
        junits.append(tmp_path / name / "junit.xml")
        done = run(*pytest_argv("suites", "-q", "--no-baseline", "-k", "console-kill", "--host",
                                f"sim://?dir={tmp_path / 'root'}", "--junitxml", str(junits[-1])))
        assert done.returncode == 0, done.stdout[-2000:]
    mine = Path(attachments(next(read_cases(str(junits[0]))).system_out or "")[0])
    theirs = Path(attachments(next(read_cases(str(junits[1]))).system_out or "")[0])
    mine.write_text(theirs.read_text())
    said = run("windsor", "report", str(junits[0]), "--out", str(tmp_path / "rep")).stdout
    assert said.startswith("NOT READY for sign-off: 1 timeline artifact disagree with their case's JUnit"), said
    assert f"{mine.name}: written by run" in said
    assert not (tmp_path / "rep" / "img" / "timeline-console-kill.png").exists()
    doc = json.loads(theirs.read_text())  # and without run ids (an older harness), the facts still must agree
    doc["run"], doc["restart_s"] = "", 0.5
    mine.write_text(json.dumps(doc))
    said = run("windsor", "report", str(junits[0]), "--out", str(tmp_path / "rep2")).stdout
    assert "service_restart_s 0.5 in the artifact" in said, said
