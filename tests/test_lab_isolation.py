"""Security isolation on real Xen (the lab): an attacker in netdd, in blkdd and in the HVM guest's
device-model stub domain (`windsor-attempt` and `wprobe` there, asked through its attempt keeper),
beside dom0 as the attacker on the monolithic baseline. Xen 4.17 without XSM: xenstored's
permissions, the grant tables and the hypervisor's privilege checks deny everything outside the
service domain's duties, and each denial's positive control succeeds; dom0 reaches it all.
Nightly only (31.6 minutes of TCG here: three cases, each two boots)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, pytest_argv

from harness.junit import case_props, read_cases

pytestmark = [pytest.mark.lab, pytest.mark.nightly]


def test_a_compromised_driver_domain_reaches_nothing_dom0_would(tmp_path: Path) -> None:
    junit = tmp_path / "lab.xml"
    argv = pytest_argv("suites/test_isolation.py", "--host", "lab://", "--guests", "3", f"--junitxml={junit}")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    got = {c.name.split("[")[1].rstrip("]"): case_props(c) for c in read_cases(str(junit))}
    assert set(got) == {"netback", "blkback", "device-model"}, done.stdout[-4000:]
    assert done.returncode == 0, done.stdout[-4000:]
    for role, attacker in (("netback", "netdd"), ("blkback", "blkdd"), ("device-model", "g01-dm")):
        props = got[role]
        assert props["attacker"] == attacker and props["baseline.attacker"] == "dom0", props
        assert props["isolation_reachable"] == "0" and props["isolation_unproven"] == "0", props
        assert int(props["isolation_attempts"]) >= 8, props
        assert props["baseline.isolation_reachable"] == props["baseline.isolation_attempts"], props
        rows = props["isolation_rows"]
        assert "Permission denied (errno 13)" in rows and "Operation not permitted (errno 1)" in rows, rows
