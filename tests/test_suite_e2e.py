"""`pytest suites` as a user runs it: the whole matrix, its JUnit, baselines read back from JUnit,
and a failing run that still leaves no process behind."""

import os
import subprocess
from pathlib import Path

from helpers import REPO, pytest_argv, run, sim_processes
from junitparser.xunit2 import JUnitXml

from harness.fault import installed_faults
from harness.junit import METRICS

CASES = {f"test_fault_contained[{r}-{f}]" for f, cls in installed_faults().items() for r in cls.roles()}


def cases(path: Path) -> dict[str, tuple[bool, dict[str, str], str]]:
    out = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            props = {p.name: p.value for p in case.properties()}
            if case.name.startswith("test_fault_contained"):  # the isolation cases: tests/test_isolation.py
                out[case.name] = (case.is_passed, props, case.system_out or "")
    return out


def test_matrix_is_green_with_baseline_in_every_case(matrix_junit: Path) -> None:
    got = cases(matrix_junit)
    assert set(got) == CASES
    for name, (passed, props, out) in got.items():
        assert passed, name
        assert props["topology"] == "disaggregated" and props["baseline.topology"] == "monolithic", name
        assert props["acked_writes_lost"] == "0" and props["baseline.acked_writes_lost"] == "0", name
        assert "WINDSOR " in out and "baseline monolithic" in out, name
        # nothing empty (Jenkins hides empty properties), the parameters in effect, the case under test attached first
        assert all(v.strip() for v in props.values()), [k for k, v in props.items() if not v.strip()]
        assert props["disturbed"] == "none" and props["baseline.host"] == props["host"], name
        in_effect = {"kill": "none", "stall": "duration_s=1", "throttle": "duration_s=1,cap_pct=10",
                     "crash-loop": "times=3,wait_s=10", "memory-pressure": "duration_s=1,memory_pct=50",
                     "partition": "duration_s=1,all=False", "disk-error": "duration_s=1",
                     "xenstore-storm": "duration_s=1"}
        assert props["fault_params"] == in_effect[props["fault"]], name
        assert ".disaggregated." in out.split("[[ATTACHMENT|", 1)[1].split("]]")[0], name
        assert float(props["observed_s"]) >= 2.5, name


def test_blast_radius_disaggregated_vs_monolithic(matrix_junit: Path) -> None:
    got = cases(matrix_junit)
    for role in ("netback", "blkback"):
        _, p, _ = got[f"test_fault_contained[{role}-kill]"]
        assert p["host_survived"] == "true" and p["baseline.host_survived"] == "false"
        assert int(p["guests_impacted"]) < int(p["guests_total"])
        assert p["baseline.guests_impacted"] == p["baseline.guests_total"]
        for held in ("stall", "throttle"):  # dom0 stopped or capped: more guests than the driver domain
            _, s, _ = got[f"test_fault_contained[{role}-{held}]"]
            assert int(s["guests_impacted"]) < int(s["baseline.guests_impacted"]), s
        # dom0 stopped: every guest, a console-only one too (its console's ring fills and holds
        # its vCPU); dom0 capped serves slower, and a console-only guest's ring keeps up
        _, s, _ = got[f"test_fault_contained[{role}-stall]"]
        assert s["baseline.guests_impacted"] == s["guests_total"], s
    _, p, _ = got["test_fault_contained[toolstack-kill]"]
    assert p["guests_impacted"] == "0" and float(p["service_restart_s"]) > 0


def test_the_catalogue_shows_what_each_fault_must(matrix_junit: Path) -> None:
    """The fault catalogue's expectations (docs/design.md), on both topologies of the matrix."""
    got = cases(matrix_junit)
    for side in ("", "baseline."):
        _, p, _ = got["test_fault_contained[netback-partition]"]  # g01's link: g01 and g05, which pings it
        assert p[f"{side}impacted"] == "g01:net g05:net" and p[f"{side}host_survived"] == "true", p
        _, d, _ = got["test_fault_contained[blkback-disk-error]"]  # g01's disk: errors, not a hang, nothing lost
        assert d[f"{side}impacted"] == "g01:disk" and d[f"{side}acked_writes_lost"] == "0", d
        assert d[f"{side}guest_events"].startswith("g01:disk-eio=") and int(d[f"{side}guest_events"][13:]) >= 50, d
        _, s, _ = got["test_fault_contained[xenstore-xenstore-storm]"]  # the last guest storms; nobody else notices
        seen = dict(e.split("=") for e in s[f"{side}guest_events"].split())
        assert int(seen["g06:xs-write"]) >= 1 and seen["g06:xs-quota"] == "1", s  # xenstored's watch quota held it
        assert set(s[f"{side}impacted"].split()) <= {"none", *(f"g06:{dev}" for dev in ("net", "disk", "heartbeat"))}
        assert float(s[f"{side}xenstore_late_s"]) >= 0, s  # the others' probes measured it (a figure, not none)
        _, x, _ = got["test_fault_contained[xenstore-stall]"]  # xenstored stopped 1 s: every probe waited it out
        assert 0.9 <= float(x[f"{side}xenstore_late_s"]) < 2.0, x
        assert 0.9 <= float(x[f"{side}toolstack_late_s"]) < 2.0, x  # xl list names domains from xenstore
        _, t, _ = got["test_fault_contained[toolstack-stall]"]  # the toolstack stopped 1 s; xenstore went on
        assert 0.9 <= float(t[f"{side}toolstack_late_s"]) < 2.0 and float(t[f"{side}xenstore_late_s"]) < 0.5, t
    _, k, _ = got["test_fault_contained[netback-kill]"]  # netdd's crash leaves the toolstack alone; dom0's is a reboot
    assert float(k["toolstack_late_s"]) < 0.5 and k["baseline.toolstack_late_s"] == "none", k
    for role in ("netback", "blkback", "xenstore"):
        _, c, _ = got[f"test_fault_contained[{role}-crash-loop]"]
        # monolithic: every crash of netback or blkback is a host crash; dom0's xenstored, as on Xen
        # 4.17, never comes back, so its loop stops after the first (the others' xenstore waits on)
        in_dom0_kernel = role != "xenstore"
        hits = 3 if in_dom0_kernel else 1
        assert len(c["fault_hits_s"].split()) == 3 and len(c["baseline.fault_hits_s"].split()) == hits, c
        assert c["host_survived"] == "true" and c["baseline.host_survived"] == str(not in_dom0_kernel).lower()
    _, k, _ = got["test_fault_contained[xenstore-kill]"]  # xenstore domain restarted; dom0's xenstored never
    assert float(k["service_restart_s"]) > 0 and k["baseline.service_restart_s"] == "none", k
    assert float(k["baseline.xenstore_late_s"]) >= 5 and k["baseline.guests_impacted"] == "0", k


def test_baseline_read_back_from_junit(matrix_junit: Path, tmp_path: Path) -> None:
    junit = tmp_path / "again.xml"
    done = run(*pytest_argv("suites", "-k", "netback-kill", "--baseline-junit", str(matrix_junit),
                            "--junitxml", str(junit), "-q"))
    assert done.returncode == 0, done.stdout[-3000:]
    _, old, _ = cases(matrix_junit)["test_fault_contained[netback-kill]"]
    (_, new, _), = cases(junit).values()
    assert {k: v for k, v in new.items() if k.startswith("baseline.")} == {
        k: v for k, v in old.items() if k.startswith("baseline.") and k[9:] in METRICS}
    table = run("windsor", "compare", str(junit))
    assert table.returncode == 0 and "netback-kill" in table.stdout and "true vs false" in table.stdout


def test_failing_run_fails_and_leaves_no_process(tmp_path: Path) -> None:
    done = run(*pytest_argv("suites", "-k", "console-kill", "--no-baseline", "--restart-budget", "0.001",
                            "--host", f"sim://?dir={tmp_path}", "-q"))
    assert done.returncode == 1, done.stdout[-2000:]
    assert "restart took" in done.stdout
    assert not sim_processes()
    assert list(tmp_path.glob("wsim-*")) == []  # the run dir went with the host
    assert list((tmp_path / "leases").iterdir()) == []  # and no lease is left in the journal


def test_the_main_job_leaves_its_report_when_a_case_fails(tmp_path: Path) -> None:
    """README's first command (ci/nightly.sh): a failing run is when the report matters most. It
    is written, says NOT READY, and the job still exits non-zero."""
    env = {**os.environ, "WINDSOR_OUT": str(tmp_path / "out"), "WINDSOR_BOOTSTRAP": "0"}
    done = subprocess.run(["bash", "ci/nightly.sh", "-q", "-k", "console-kill", "--no-baseline", "--restart-budget",
                           "0.001", "--host", f"sim://?dir={tmp_path / 'root'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    page = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "**NOT READY for sign-off: 1 of 1 scenario failed: console-kill" in page, page[:500]
    assert (tmp_path / "out" / "report" / "index.html").is_file()
    assert f"nightly: report in {tmp_path / 'out'}/report/index.html (and report.md); tests exited 1" in done.stdout
