"""Interlocks and the dry run (nothing touched), merging shard reports (nothing lost), signals
held back while a fault is injected or reverted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers import MATRIX, pytest_argv, run, sim_processes
from junitparser.xunit2 import JUnitXml

from harness.signals import critical
from reports.merge import merge


def test_dry_run_shows_every_hit_and_touches_nothing(tmp_path: Path) -> None:
    done = run(*pytest_argv("suites", "--dry-run", "--host", f"sim://?dir={tmp_path / 'root'}",
                            "--fault-param", "stall.duration_s=2.5"), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    head = next(x for x in lines if x.startswith("windsor dry run: "))
    assert f"{2 * MATRIX} fault injections would run, 0 would be refused, 0 skipped; nothing was touched" in head
    rows = {tuple(x.split()[:3]) for x in lines}
    assert ("netback-stall", "disaggregated", "(candidate)") in rows
    stall = next(x for x in lines if x.startswith("netback-stall") and "(baseline)" in x)
    assert " dom0 " in stall and "duration_s=2.5" in stall and " 2.5s " in stall and " 4.5s " in stall
    kill = next(x for x in lines if x.startswith("blkback-kill") and "(baseline)" in x)
    assert "HOST CRASH: all 6 guests" in kill
    contained = next(x for x in lines if x.startswith("blkback-kill") and "(candidate)" in x)
    assert " blkdd " in contained and "3 of 6 guests: g01:disk g03:disk g05:disk" in contained
    assert not (tmp_path / "root").exists() and not sim_processes()


def test_dry_run_shows_what_the_interlocks_would_refuse(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.toml"
    inventory.write_text('[[host]]\nurl = "xen+ssh://root@xen-prod-1"\ntest_host = true\n'
                         '[host.roles]\nnetback = "netdd"\n')
    done = run(*pytest_argv("suites", "--dry-run", "--host", f"xen+ssh://root@xen-prod-1?inventory={inventory}"),
               timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    # netback: kill, stall, throttle, crash-loop, memory-pressure, partition; blkback the same but
    # partition (not its role), and disk-error: 12 scenarios whose baselines hit dom0; and
    # xenstore-storm, whose target is a guest on both topologies; and g01's device model in its
    # stub domain g01-dm (kill, stall, crash-loop): 17 run. xenstored, xenconsoled and the
    # toolstack (the recovery agent) live in dom0 on both topologies here: kill, stall and
    # crash-loop of each are refused on both (18), and of g01's QEMU in dom0 on the baseline (3);
    # the throttle and memory pressure of those and of the device model are skipped (16)
    assert "17 fault injections would run, 33 would be refused, 16 skipped" in done.stdout
    refused = [x for x in done.stdout.splitlines() if "REFUSED (dom0 faults not allowed here)" in x]
    assert len(refused) == 33 and sum("monolithic (baseline)" in x for x in refused) == 24
    assert sum(" dom0/xenstored " in x or " dom0/xenconsoled " in x for x in refused) == 12
    assert sum(" dom0/windsor-agent " in x and "no guest (0 of 4)" in x for x in refused) == 6
    # the device model takes its guest whole (docs/design.md): every device of g01 may notice
    g01 = "1 of 4 guests: g01:console g01:emul g01:heartbeat"
    assert sum(" dom0/qemu-g01 " in x and g01 in x for x in refused) == 3
    assert sum(x.startswith("device-model-") and " g01-dm " in x and x.endswith(g01)
               for x in done.stdout.splitlines()) == 3
    # the console takes every guest that writes to it whole
    assert sum(" dom0/xenconsoled " in x and "4 of 4 guests: g01:console g01:emul" in x for x in refused) == 6
    assert any(x.startswith("netback-stall") and " netdd " in x and " 30s " in x for x in done.stdout.splitlines())
    # and the same run for real stops before anything, with the fix
    real = run(*pytest_argv("suites", "--host", f"xen+ssh://root@xen-prod-1?inventory={inventory}"), timeout=60)
    assert real.returncode == 4 and "set dom0_faults = true in its inventory" in real.stdout + real.stderr


def test_merge_keeps_every_case_of_three_shards_and_flags_duplicates(tmp_path: Path) -> None:
    def shard(name: str, cases: list[str]) -> str:
        path = tmp_path / f"{name}.xml"
        body = "".join(f'<testcase classname="suites.test_resilience" name="{c}" time="1"/>' for c in cases)
        path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="windsor" tests="{len(cases)}">'
                        f"{body}</testsuite></testsuites>")
        return str(path)

    shards = [shard("a", ["t[netback-kill]", "t[netback-stall]"]), shard("b", ["t[blkback-kill]"]),
              shard("c", ["t[netback-kill]", "t[console-kill]", "t[console-stall]"])]
    out = tmp_path / "merged.xml"
    out.write_text("previous")
    result = merge(shards, str(out))
    assert result.cases == 6
    assert result.duplicates == (f"suites.test_resilience::t[netback-kill] in {shards[2]} (first in {shards[0]})",)
    cases = [(s.name, c.name) for s in JUnitXml.fromfile(str(out)) for c in s]
    assert len(cases) == 6 and sorted({s for s, _ in cases}) == ["a.xml:windsor", "b.xml:windsor", "c.xml:windsor"]
    assert not list(tmp_path.glob(".merged.xml.partial-*"))
    done = run("windsor", "merge", str(tmp_path / "again.xml"), *shards)
    assert done.returncode == 0 and "merged 6 testcases from 3 files" in done.stdout
    assert "duplicate: suites.test_resilience::t[netback-kill]" in done.stdout


def test_signals_are_held_during_a_critical_section_and_delivered_after() -> None:
    got: list[str] = []
    with pytest.raises(KeyboardInterrupt), critical():
        os.kill(os.getpid(), signal.SIGINT)
        got.append("still inside")  # the interrupt did not cut the section short
    assert got == ["still inside"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # and the handler is back
