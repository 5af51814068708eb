"""One vocabulary: every JUnit property a case writes is defined in harness/vocabulary.py and
named in docs/design.md; the checks judge an archived case as the suite judged it live."""

from __future__ import annotations

import re

from helpers import REPO

from harness.checks import CHECKS, failures
from harness.vocabulary import PROPERTIES


def test_every_property_is_documented_in_design() -> None:
    design = (REPO / "docs" / "design.md").read_text()
    named = set(re.findall(r"`([a-z0-9_]+)`", design))
    missing = [p.key for p in PROPERTIES if p.key not in named and p.key not in ("fault", "harness")]
    assert not missing, f"properties not in docs/design.md: {missing}"


def test_checks_pass_a_good_case_and_name_each_failure() -> None:
    good = {"escaped": "none", "disturbed": "none", "acked_writes_lost": "0", "host_survived": "true",
            "expected_host_crash": "false", "service_restart_s": "1.0000", "restart_budget_s": "5.0000",
            "guest_recovery_s": "2.0000", "recovery_budget_s": "10.0000", "fault_hits_s": "0.0000",
            "target_role": "netback", "target_domain": "netdd"}
    assert failures(good) == []
    bad = {**good, "escaped": "g02:disk", "acked_writes_lost": "2", "service_restart_s": "6.0000"}
    assert failures(bad) == ["impact escaped the blast radius of netdd: g02:disk",
                             "2 acknowledged writes lost: the guests' disks do not hold what blkback acknowledged",
                             "restart took 6.000s"]
    # a crash loop of 3 hits has 3 budgets; a case of an older run without budgets is not judged on them
    assert failures({**bad, "escaped": "none", "acked_writes_lost": "0", "fault_hits_s": "0 1 2"}) == []
    assert failures({k: v for k, v in bad.items() if k != "restart_budget_s"})[-1:] != ["restart took 6.000s"]
    assert [c.name for c in CHECKS][:3] == ["contained", "undisturbed", "no-write-lost"]
