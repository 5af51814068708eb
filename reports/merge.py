"""Joining shard reports (one JUnit file per runner) into one, losing nothing.

Every testsuite of every input is kept whole, named after its file, so every testcase survives —
including two runs of the same case (same class, name and host) on different shards, which
junitparser's ``+`` would keep too but nobody would notice: each repeat gets a
``windsor.duplicate_of`` property naming the file that had it first, and is listed. The output
is written beside its final name and renamed into place, and read back: the merge fails unless
it holds exactly as many cases as its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from junitparser.xunit2 import JUnitXml, TestCase

from harness.atomic import check_writable_dir, replacing
from harness.errors import HarnessError, UsageError
from harness.junit import case_props, read_cases, read_suites


@dataclass(frozen=True)
class Merged:
    cases: int
    duplicates: tuple[str, ...]  # "classname::name in B (first in A)"


def check_paths(paths: list[str], out: str) -> None:
    """UsageError before anything is read or written: an input given twice, or the output being
    one of the inputs (each would double every case it holds), or an output that cannot be written."""
    target = Path(out)
    if target.is_dir():
        raise UsageError(f"merge: the output {out!r} is a directory: name a file, e.g. {out.rstrip('/')}/all.xml")
    check_writable_dir(target.resolve().parent, "merge: the output's directory")
    seen: dict[Path, str] = {}
    for path in paths:
        real = Path(path).resolve()
        if real == target.resolve():
            raise UsageError(f"merge: the output {out!r} is also an input: write the merge to a new file")
        if real in seen:
            raise UsageError(f"merge: {path!r} is given twice (as {seen[real]!r} too): its cases would count twice")
        seen[real] = path


def merge(paths: list[str], out: str) -> Merged:
    check_paths(paths, out)
    suites = [(path, suite) for path in paths for suite in read_suites(path, "merge: ")]
    merged = JUnitXml("windsor")
    first: dict[tuple[str, str, str], str] = {}
    duplicates = []
    total = 0
    for path, suite in suites:
        suite.name = f"{Path(path).name}:{suite.name}"
        for item in suite:
            case = cast(TestCase, item)
            host = case_props(case).get("host", "")  # the same test on another host is not a repeat
            key = (str(case.classname), str(case.name), host)
            if key in first:
                case.add_property("windsor.duplicate_of", first[key])
                on = f" on {host}" if host else ""
                duplicates.append(f"{key[0]}::{key[1]}{on} in {path} (first in {first[key]})")
            else:
                first[key] = path
            total += 1
        merged.add_testsuite(suite)
    merged.update_statistics()  # type: ignore[no-untyped-call]
    with replacing(out) as tmp:
        merged.write(str(tmp), pretty=False)  # minidom's pretty print turns &#10; in attributes into newlines
        kept = sum(1 for _ in read_cases(str(tmp)))
        if kept != total:
            raise HarnessError(f"merge: {kept} testcases written of {total} read: {out} left as it was")
    return Merged(total, tuple(duplicates))
