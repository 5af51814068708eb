"""QoS and scalability on real Xen (the lab): the suites run on lab:// as on sim://, each case
beside monolithic, with figures that come from the host itself — wrec's per-operation latency in
the guests' records, a guest flood driven through xenstore, xl's CPU time against credit2's cap.
Nightly only (the lab's TCG makes each topology a boot of minutes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, pytest_argv

from harness.backend.xen import XenHost
from harness.junit import case_props, read_cases

pytestmark = [pytest.mark.lab, pytest.mark.nightly]


Cases = dict[str, dict[str, str]]


def run_suite(suite: str, junit: Path) -> tuple[subprocess.CompletedProcess[str], Cases]:
    argv = pytest_argv(suite, "--host", "lab://", "--guests", "4", f"--junitxml={junit}")
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=5400,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return done, {c.name.split("[")[1].rstrip("]"): case_props(c) for c in read_cases(str(junit))}


def test_a_noisy_neighbour_is_measured_on_real_xen(tmp_path: Path) -> None:
    """Every case has both sides' windows full, a flood that took (the noisy guest's own requests
    rose), per-tenant counted as isolated and the shared topologies not; the suite's verdicts
    (per-tenant within ×2) are the lab's finding."""
    done, got = run_suite("suites/test_qos.py", tmp_path / "qos.xml")
    assert set(got) == {f"{d}-{t}" for d in ("disk", "net") for t in ("disaggregated", "per-tenant")}, \
        done.stdout[-4000:]
    ops = XenHost.claims.qos_window_ops
    for name, props in got.items():
        for side in ("", "baseline."):
            assert props[side + "qos_noisy"] == "g01", props
            assert all(int(n) >= ops for n in props[side + "qos_ops"].split(";")), props
            assert float(props[side + "qos_noisy_speedup"]) >= 2, props
            assert 0 < float(props[side + "qos_quiet_p50_s"]) <= float(props[side + "qos_quiet_p99_s"]), props
        assert props["baseline.topology"] == "monolithic" and props["baseline.qos_isolated"] == "false", props
        assert props["qos_isolated"] == ("true" if name.endswith("per-tenant") else "false"), props
    assert done.returncode == 0, done.stdout[-4000:]


def test_guests_per_host_are_measured_on_real_xen(tmp_path: Path) -> None:
    """Each topology is stepped up to its limit at the same credit2 cap for dom0 and every driver
    domain, the busiest domain's share read from xl's CPU time; the suite's verdict (more guests
    than monolithic) is the lab's finding."""
    done, got = run_suite("suites/test_scale.py", tmp_path / "scale.xml")
    assert set(got) == {"disaggregated", "two-netdds"}, done.stdout[-4000:]
    for props in got.values():
        for side in ("", "baseline."):
            steps = [s.split(":") for s in props[side + "scale_curve"].split(";")]
            assert steps and props[side + "scale_cpu_pct"] == str(XenHost.claims.scale_cpu_pct), props
            for _, rate, busiest, share in steps:
                assert busiest != "none" and 0 < float(share) < 1.5 and 0 <= float(rate) <= 1.5, props
    assert done.returncode == 0, done.stdout[-4000:]
