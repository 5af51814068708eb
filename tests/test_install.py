"""`pip install .` (a built wheel, not an editable checkout) gives a harness that works from
anywhere: every backend, the lab's files, the suites and the report templates are in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

SKIP = shutil.ignore_patterns(".git", ".venv", "out", "build", "dist", "*.egg-info", "__pycache__",
                              ".mypy_cache", ".ruff_cache", ".pytest_cache")


def sh(*argv: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_built_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building in place leaves build/ and *.egg-info in the checkout
    shutil.copytree(REPO, source, ignore=SKIP)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source, cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("windsor_harness-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    sh(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    faults = sh(venv / "bin" / "windsor", "faults", cwd=elsewhere).stdout
    assert all(f"  {name} " in faults for name in ("kill", "stall", "throttle")), faults
    assert "usage: windsor lab" in sh(venv / "bin" / "windsor", "lab", "--help", cwd=elsewhere).stdout
    dry = sh(venv / "bin" / "pytest", "--pyargs", "suites", "--host", "lab://", "--roles", "netback", "--dry-run",
             "-p", "no:cacheprovider", cwd=elsewhere).stdout
    # kill, stall, throttle, crash-loop, memory-pressure and partition, each with its baseline
    assert "windsor dry run: lab:// (a test host, dom0 faults allowed); 12 fault injections would run" in dry, dry
    installed = sh(venv / "bin" / "python", "-c", "import harness.lab.build as b; print(b.FILES)", cwd=elsewhere)
    files = Path(installed.stdout.strip())
    assert str(files).startswith(str(venv)), files  # the installed copy, not the checkout
    assert {"windsor-lease", "windsor-agent", "windsor-topo", "windsor-console", "windsor-boot", "wrec.c", "wstall.c",
            "dom0-init.sh"} <= {
        p.name for p in files.iterdir()}
    assert sh(venv / "bin" / "windsor", "topology", "disaggregated", cwd=elsewhere).stdout.startswith("disaggregated")
    assert not (REPO / "build").exists()
