"""A fleet: --shard I/N splits the matrix (every case in exactly one shard), the host lease keeps
a host to one run (real processes), --host inventory:FILE takes a free host, and the fleet
pipeline of ci/gitlab-ci.yml runs end to end under gitlab-ci-local against two sim:// hosts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from helpers import CLAIMS, MATRIX, REPO, pytest_argv, run, sim_processes

from harness.backend import get_host
from harness.backend.sim import MARKER
from harness.errors import HostError
from harness.hostlease import TTL_S, HostLease, HostLeased, stamp
from harness.junit import case_props, read_cases
from harness.lease import Owner, machine_id
from harness.shard import bucket
from harness.waiting import wait_until
from harness.xen.hostlease import swap
from harness.xen.remote import Remote

CASE = ("--roles", "console", "--faults", "kill", "--no-baseline")  # one quick case
GLCI = Path(os.environ.get("WINDSOR_GLCI_DIR", Path.home() / ".cache/windsor/gitlab-ci-local"),
            "node_modules/.bin/gitlab-ci-local")


def left_on(root: Path) -> list[psutil.Process]:
    """Processes of sim:// hosts under `root` still running."""
    found = []
    for proc in sim_processes():
        try:
            if proc.environ().get(MARKER, "").startswith(str(root)):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def nodeids(*args: str) -> tuple[list[str], str]:
    done = run(*pytest_argv("suites", "--collect-only", "-q", *args), timeout=60)
    assert done.returncode in (0, 5), done.stdout + done.stderr
    return [x for x in done.stdout.splitlines() if "::" in x], done.stdout


def test_shards_partition_the_matrix() -> None:
    full, _ = nodeids()
    assert len(full) == MATRIX + CLAIMS
    specs = [(i, n) for n in range(1, 6) for i in range(1, n + 1)]
    with ThreadPoolExecutor(4) as pool:
        found = dict(zip(specs, pool.map(lambda s: nodeids("--shard", f"{s[0]}/{s[1]}"), specs), strict=True))
    for n in range(1, 6):
        shards = [found[(i, n)][0] for i in range(1, n + 1)]
        assert sorted(x for s in shards for x in s) == sorted(full), n  # the union, each case once
        for i, ids in enumerate(shards, 1):
            if len(ids) < len(full):  # pytest says what it left to the other shards
                total = MATRIX + CLAIMS
                assert f"{len(ids)}/{total} tests collected ({total - len(ids)} deselected)" in found[(i, n)][1]
    # the dry run plans exactly the shard's scenarios
    done = run(*pytest_argv("suites", "--dry-run", "--shard", "2/3", "--no-baseline"), timeout=60)
    planned = {x.split()[0] for x in done.stdout.splitlines() if x.split()[:1] and re.fullmatch(r"[a-z-]+-[a-z]+",
                                                                                                  x.split()[0])}
    assert planned == {re.sub(r".*\[(.*)\]", r"\1", x) for x in found[(2, 3)][0] if "test_fault_contained" in x}
    assert planned and all(bucket(s, 3) == 2 for s in planned)


@pytest.mark.parametrize("args, fragment", [
    (["--shard", "0/2"], "--shard '0/2': write I/N"),
    (["--shard", "3/2"], "--shard '3/2': write I/N"),
    (["--shard", "x"], "--shard 'x': write I/N"),
    (["--shard", "1/1001"], "<= 1000"),
    (["--host-wait", "-1"], "--host-wait '-1' is out of range (0 to 86400 s)"),
    (["--host-wait", "nan"], "--host-wait 'nan' is out of range"),
    (["--host", "inventory:"], "--host inventory: needs a file"),
    (["--host", "inventory:{dir}/none.toml"], "none.toml' does not exist"),
    (["--host", "inventory:{dir}/mixed.toml"], "mixes kinds of host"),
    (["--host", "inventory:{dir}/scheme.toml"], "url 'ftp://x' is not xen+ssh://USER@HOST"),
    (["--host", "inventory:{dir}/twice.toml"], "is listed twice"),
    (["--host", "inventory:{dir}/prod.toml"], "no host of inventory:"),
])
def test_bad_fleet_input(args: list[str], fragment: str, tmp_path: Path) -> None:
    inventories = {
        "mixed.toml": f'[[host]]\nurl = "sim://?dir={tmp_path}/a"\n[[host]]\nurl = "xen+ssh://root@h"\n',
        "scheme.toml": '[[host]]\nurl = "ftp://x"\n',
        "twice.toml": f'[[host]]\nurl = "sim://?dir={tmp_path}/a"\n[[host]]\nurl = "sim://?dir={tmp_path}/a"\n',
        "prod.toml": '[[host]]\nurl = "xen+ssh://root@h1"\n[[host]]\nurl = "xen+ssh://root@h2"\n',
    }
    for name, text in inventories.items():
        (tmp_path / name).write_text(text)
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    done = run(*pytest_argv("suites", *(args if "--host" in args else [*args, "--host", f"sim://?dir={tmp_path}/a"])),
               timeout=60)
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
    assert done.returncode == 4 and len(lines) == 1 and lines[0].startswith("ERROR: ") and fragment in lines[0], lines
    assert not (tmp_path / "a").exists()  # nothing was touched


def test_example_inventory_is_valid() -> None:
    done = run(*pytest_argv("suites", "--dry-run", "--host", "inventory:ci/hosts.toml", "--shard", "2/2"), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("a run takes the first free host of 2, trying xen+ssh://root@xen-2.ci.example.org?inventory=ci/hosts.toml"
            " first") in done.stdout
    assert "(a test host, dom0 faults allowed)" in done.stdout


@pytest.fixture
def shm() -> Iterator[Path]:
    """A directory in memory for sim:// hosts (on a disk, every run would warn about it)."""
    made = Path(tempfile.mkdtemp(prefix="windsor-fleet-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def lone() -> Iterator[subprocess.Popen[str]]:
    """A live process of ours that is no ancestor of this one (an owner that holds a lease)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True)
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)


def test_lease_record_and_takeovers(tmp_path: Path, lone: subprocess.Popen[str]) -> None:
    host = get_host(f"sim://?dir={tmp_path}")
    path = tmp_path / "host.lease"
    mine = HostLease.new(host.spec.url, now=1_800_000_000)
    assert HostLease.parse(mine.text()) == mine and "expires=2027-01-15T08:30:00Z" in mine.text()
    other = Owner(machine_id(), lone.pid, psutil.Process(lone.pid).create_time())
    theirs = HostLease(host.spec.url, other, "elsewhere", "https://ci.example/jobs/7", 0.0, 4e9)
    path.write_text(theirs.text())
    with pytest.raises(HostLeased, match=r"is leased by pid \d+ on elsewhere \(https://ci.example/jobs/7\) until "
                                         r"2096-10-02T07:06:40Z$"):
        host.claim(HostLease.new(host.spec.url))
    for record, why in ((theirs.text().replace("expires=2096-10-02T07:06:40Z", f"expires={stamp(1e9)}"),
                         "it expired at 2001-09-09T01:46:40Z"),
                        ("windsor-host-lease 1\nhost=", "its record is damaged")):
        path.write_text(record)
        assert host.claim(HostLease.new(host.spec.url))[-1].endswith(why)
        assert host.held is not None and path.read_text() == host.held.text()
        held = host.held
        assert host.claim(held.renewed(now=held.expires + 5)) == [] and host.held.expires == held.expires + 5 + TTL_S
        assert host.release() == [] and not path.exists()
    lone.stdin.close()  # type: ignore[union-attr]
    lone.wait(10)  # now its run is gone: taken over at once, however long its lease
    path.write_text(theirs.text())
    assert host.claim(HostLease.new(host.spec.url)) == ["took over the host lease of pid "
                                                        f"{lone.pid} on elsewhere (https://ci.example/jobs/7): "
                                                        "its run is gone"]
    path.write_text(theirs.text())  # taken from us: renewing says so, releasing leaves it
    assert host.held is not None
    with pytest.raises(HostError, match="this run's host lease was taken over"):
        host.claim(host.held.renewed())
    assert host.release()[0].startswith("did not release the host lease: it was taken over (sim://")
    assert path.read_text() == theirs.text()


def test_xen_host_lease_command(tmp_path: Path) -> None:
    """The control domain's side, run here by the same shell command (testinfra's local backend):
    one winner among racing runs, a held lease left alone, hostile text inert."""
    remote, where = Remote("local://"), str(tmp_path / "lib")
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda n: swap(remote, "", f"windsor-host-lease 1\nrun={n}", where), range(8)))
    assert found.count("") == 1  # exactly one run took it; the others read its record
    winner = f"windsor-host-lease 1\nrun={found.index('')}"
    assert all(f == winner for f in found if f) and Path(where, "host.lease").read_text() == winner + "\n"
    hostile = f"windsor-host-lease 1\njob=x'\"$(touch {tmp_path}/pwned)`touch {tmp_path}/pwned`;\n"
    assert swap(remote, "", hostile, where) == winner  # held: unchanged
    assert swap(remote, winner, hostile, where) == winner and swap(remote, hostile, "", where) == hostile.rstrip()
    assert not Path(where, "host.lease").exists() and not (tmp_path / "pwned").exists()


def start(root: Path, gate: Path, *args: str, job: str = "local") -> subprocess.Popen[str]:
    """A run of one case on sim://?dir=ROOT, held by fleet_gate until `gate` exists."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'tests'}:{REPO}", "WINDSOR_GATE": str(gate), "CI_JOB_URL": job}
    return subprocess.Popen(pytest_argv("suites", "-p", "fleet_gate", "-q", "--host", f"sim://?dir={root}", *CASE,
                                        *args), cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def holds(root: Path, proc: subprocess.Popen[str]) -> bool:
    try:
        return HostLease.parse((root / "host.lease").read_text()).owner.pid == proc.pid
    except (OSError, ValueError):
        return False


def test_a_leased_host_refuses_waits_and_is_taken_over(shm: Path) -> None:
    root, gate = shm / "root", shm / "gate"
    first = start(root, gate, job="https://ci.example/jobs/41")
    procs = [first]
    try:
        assert wait_until("the first run to hold its host", lambda: holds(root, first), 60), first
        refused = run(*pytest_argv("suites", "--host", f"sim://?dir={root}", *CASE), timeout=60)
        lines = [x for x in (refused.stdout + refused.stderr).splitlines() if x.strip()]
        assert refused.returncode == 4 and len(lines) == 1, lines
        assert re.fullmatch(rf"ERROR: sim://\?dir={root} is leased by pid {first.pid} on \S+ "
                            r"\(https://ci.example/jobs/41\) until \S+Z \(--host-wait SECONDS to wait for it\)",
                            lines[0]), lines
        waiting = subprocess.Popen(pytest_argv("suites", "-q", "--host", f"sim://?dir={root}", *CASE, "--host-wait",
                                               "60"), cwd=REPO, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(waiting)
        assert waiting.stdout is not None
        said = [waiting.stdout.readline() for _ in range(2)]  # blocks until the run says it (10 s)
        assert said[0].startswith(f"windsor: taking a host from sim://?dir={root}, waiting up to 60s"), said
        assert re.match(rf"windsor: waiting for a free host \(1[0-2]s of 60s\): sim://\?dir={root} is leased by "
                        rf"pid {first.pid} ", said[1]), said
        first.send_signal(signal.SIGINT)  # Ctrl-C: the first run gives its lease back, the waiting one takes it
        assert first.wait(30) == 2
        out = said[0] + said[1] + waiting.communicate(timeout=60)[0]
        assert waiting.returncode == 0 and "1 passed" in out, out
        killed = start(root, gate)  # SIGKILLed while it holds the host: its lease stays, and is taken over
        procs.append(killed)
        assert wait_until("the third run to hold its host", lambda: holds(root, killed), 60)
        killed.kill()
        killed.wait(10)
        after = run(*pytest_argv("suites", "-q", "--host", f"sim://?dir={root}", *CASE), timeout=60)
        assert after.returncode == 0, after.stdout + after.stderr
        assert re.search(rf"^windsor: sim://\?dir={root}: took over the host lease of pid {killed.pid} on \S+ "
                         r"\(local\): its run is gone$", after.stderr, re.M), after.stderr
        assert not (root / "host.lease").exists()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert not left_on(root)


@pytest.mark.skipif(not (shutil.which("node") and GLCI.exists() and shutil.which("rsync")),
                    reason="no node, rsync or gitlab-ci-local: ci/bootstrap.sh installs them (as root) where it can")
def test_fleet_pipeline_under_gitlab_ci_local(tmp_path: Path, shm: Path) -> None:
    """fleet-shard ×2 at once (each on a host of the inventory), a third run refused while both
    hold their host, then fleet-report: every case exactly once, a verdict that agrees."""
    roles = ("netback", "blkback")
    assert sorted(bucket(f"{r}-kill", 2) for r in roles) == [1, 2]  # one case in each shard
    hosts = shm
    inventory, gate, token = hosts / "hosts.toml", tmp_path / "gate", hosts.name
    inventory.write_text("".join(f'[[host]]\nurl = "sim://?dir={hosts / n}"\n' for n in ("a", "b")))
    out, state = f"out/{token}", f"out/{token}-glci"
    variables = {"CI_PIPELINE_SOURCE": "schedule", "WINDSOR_FLEET": "1", "WINDSOR_INVENTORY": str(inventory),
                 "WINDSOR_FLEET_OUT": out, "WINDSOR_HISTORY": str(tmp_path / "history"), "WINDSOR_BOOTSTRAP": "0",
                 "WINDSOR_VENV": str(Path(sys.executable).parent.parent), "WINDSOR_GATE": str(gate),
                 "PYTHONPATH": f"{REPO / 'tests'}:{REPO}",
                 "WINDSOR_PYTEST_ARGS": f"-p fleet_gate --roles {','.join(roles)} --faults kill"}
    argv = [str(GLCI), "--file", "ci/gitlab-ci.yml", "--state-dir", state, "--no-color", "--needs", "fleet-report",
            *(f"--variable={k}={v}" for k, v in variables.items())]
    log = tmp_path / "pipeline.log"
    try:
        with open(log, "w") as sink:
            pipeline = subprocess.Popen(argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            leases: list[HostLease] = []

            def both_held() -> bool:
                leases[:] = [HostLease.parse(p.read_text()) for p in sorted(hosts.glob("*/host.lease"))]
                return len({x.owner for x in leases}) == 2 and all(x.owner.alive() for x in leases)

            assert wait_until("both shards to hold their host", both_held, 60), log.read_text()[-3000:]
            third = run(*pytest_argv("suites", "--host", f"inventory:{inventory}", "--roles", ",".join(roles),
                                     "--faults", "kill"), timeout=60)
            lines = [x for x in (third.stdout + third.stderr).splitlines() if x.strip()]
            assert third.returncode == 4 and len(lines) == 1, lines
            assert lines[0].startswith(f"ERROR: every host of inventory:{inventory} is taken: "), lines
            for lease in leases:
                assert f"{lease.host} is leased by pid {lease.owner.pid} on {lease.machine} ({lease.job})" in lines[0]
            gate.touch()
            pipeline.wait(120)
        finally:
            if pipeline.poll() is None:
                os.killpg(pipeline.pid, signal.SIGTERM)
                pipeline.wait(30)
        said = log.read_text()
        cases = [c for c in read_cases(str(REPO / out / "all.xml"))]
        names = sorted(str(c.name) for c in cases)
        assert names == sorted(f"test_fault_contained[{r}-kill]" for r in roles), said[-3000:]
        shard_hosts = {c.name: case_props(c)["host"] for c in cases}
        assert shard_hosts == {f"test_fault_contained[{r}-kill]": f"sim://?dir={hosts / h}"  # shard I on host I
                               for r, h in zip(sorted(roles, key=lambda r: bucket(f"{r}-kill", 2)), "ab", strict=True)}
        failed = [c for c in cases if not c.is_passed]
        verdict = (REPO / out / "report/report.md").read_text()
        assert ("**NOT READY for sign-off" in verdict) == bool(failed), verdict[:2000]
        assert ("**READY for sign-off: 2 of 2 scenarios passed" in verdict) == (not failed), verdict[:2000]
        assert (pipeline.returncode == 0) == (not failed), said[-3000:]
        assert " PASS  fleet-report" in said and len(list((tmp_path / "history").glob("*.xml"))) == 1, said[-3000:]
        assert not list(hosts.glob("*/host.lease")), "a shard kept its host lease"
    finally:
        shutil.rmtree(REPO / out, ignore_errors=True)
        shutil.rmtree(REPO / state, ignore_errors=True)
    assert not left_on(hosts)


PARSE = """import org.codehaus.groovy.control.*
def unit = new CompilationUnit()
unit.addSource(new File(args[0]))
unit.compile(Phases.CONVERSION)
"""


@pytest.mark.skipif(not (shutil.which("groovy") and shutil.which("java")),
                    reason="no groovy (apt-get install groovy): the Jenkinsfile is not parsed")
def test_jenkinsfile_parses(tmp_path: Path) -> None:
    """No Jenkins runs here: the Jenkinsfile is only parsed, by Groovy (what Jenkins runs), and its
    fleet stages looked for. Its steps are not executed."""
    script = tmp_path / "parse.groovy"
    script.write_text(PARSE)
    java_home = Path(os.path.realpath(shutil.which("java") or "")).parents[1]
    done = subprocess.run(["groovy", str(script), str(REPO / "ci/Jenkinsfile")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "JAVA_HOME": str(java_home)})
    assert done.returncode == 0, done.stdout + done.stderr
    text = (REPO / "ci/Jenkinsfile").read_text()
    for needed in ("parallel branches", "lock(resource: \"windsor-${name}\")", "bash ci/fleet.sh shard",
                   "bash ci/fleet.sh report", "publishHTML", "reportDir: 'out/fleet/report'"):
        assert needed in text, needed
