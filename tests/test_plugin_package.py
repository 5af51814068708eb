"""A fault package of a third party (tests/plugins/windsor-flap), installed with pip from its own
folder, implements a new fault with only the public contract (`harness.fault`) and runs on
sim://: listed by `windsor faults`, run by the suites, its bool parameter parsed, its per-phase
leases ended by the host one phase after a SIGKILLed harness, not after the whole window."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import REPO, pytest_argv
from junitparser.xunit2 import JUnitXml

from harness.sim.leases import read_journal
from harness.sim.sweep import MARKER
from harness.waiting import wait_until

PACKAGE = REPO / "tests" / "plugins" / "windsor-flap"
SCENARIO = REPO / "tests" / "revert" / "scenario_revert.py"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed by pip into a directory of its own (put on PYTHONPATH to use it)."""
    where, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "windsor-flap"
    shutil.copytree(PACKAGE, source)  # building in place would leave build/ and *.egg-info in the checkout
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(where),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (where / "windsor_flap").is_dir()
    return where


def env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def test_windsor_faults_lists_the_plugin_with_what_it_declares(site: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "windsor"), "faults"], capture_output=True, text=True,
                          timeout=60, env=env(site), cwd=REPO)
    assert done.returncode == 0, done.stderr
    after = done.stdout.split("  flap  (windsor_flap)\n")[1].splitlines()
    block = "\n".join(after[:next(i for i, line in enumerate(after) if not line.startswith("      "))])
    assert "needs: pause" in block and "target: role" in block, block
    assert "hosts: sim://, xen+ssh://, xen+local://, lab://" in block, block
    assert "periods=3, on_s=1.0, off_s=0.5, quiet=False" in block, block


def test_the_plugin_runs_in_the_suites(site: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    done = subprocess.run(pytest_argv("suites", "--faults", "flap", "--roles", "netback", "--no-baseline",
                                      "--fault-param", "flap.quiet=true", "--fault-param", "flap.on_s=0.5",
                                      f"--junitxml={junit}", "-q"),
                          capture_output=True, text=True, timeout=300, env=env(site), cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:]
    [case] = [c for s in JUnitXml.fromfile(str(junit)) for c in s]
    props = {p.name: p.value for p in case.properties()}
    assert props["fault"] == "flap" and props["fault_params"] == "periods=3,on_s=0.5,off_s=0.5,quiet=True"
    hits = [float(h) for h in props["fault_hits_s"].split()]
    assert len(hits) == 3 and all(0.9 < b - a < 1.3 for a, b in itertools.pairwise(hits)), hits
    assert int(props["guests_impacted"]) >= 1  # a stalled netback is seen by the guests with a network
    print(f"FLAP: stops at {hits} s; impacted {props['guests_impacted']}, restart {props['service_restart_s']} s")


def test_a_bad_bool_is_one_line_before_anything(site: Path) -> None:
    done = subprocess.run(pytest_argv("suites", "--faults", "flap", "--fault-param", "flap.quiet=maybe", "-q"),
                          capture_output=True, text=True, timeout=120, env=env(site), cwd=REPO)
    assert done.returncode == 4
    assert "fault 'flap': quiet='maybe' is not a bool" in done.stderr, done.stderr


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "root"
    for proc in psutil.process_iter():
        try:
            if str(tmp_path) in proc.environ().get(MARKER, ""):
                proc.kill()
        except (psutil.Error, OSError):
            continue


def test_after_a_sigkill_the_host_ends_the_stop_then_not_the_whole_flap(site: Path, root: Path,
                                                                         tmp_path: Path) -> None:
    argv = pytest_argv(str(SCENARIO), "--host", f"sim://?dir={root}", "--roles", "netback", "--faults", "flap",
                       "--no-baseline", "--guests", "3", "--fault-param", "flap.periods=20",
                       "--fault-param", "flap.on_s=1", "--fault-param", "flap.off_s=1")
    proc = subprocess.Popen(argv, cwd=REPO, env={**env(site), "WINDSOR_TRIGGER": "none",
                                                 "WINDSOR_TRIGGER_FILE": str(tmp_path / "t")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until("a stop's lease", lambda: root.exists() and bool(read_journal(str(root))), 60)
        proc.kill()
        proc.wait()
        [entry] = read_journal(str(root))
        whole = 20 * 1 + 19 * 1
        assert entry["window_s"] == 1 and entry["expires_mono"] - entry["taken_mono"] == pytest.approx(3.0), entry
        assert wait_until("the host ending the stop", lambda: not read_journal(str(root)), 10)
        print(f"FLAP sigkill: the host ended the stop {entry['expires_mono'] - entry['taken_mono']:.1f}s after it "
              f"began (one phase + margin), not {whole + 2}s (the whole flap + margin)")
    finally:
        if proc.poll() is None:
            proc.kill()
