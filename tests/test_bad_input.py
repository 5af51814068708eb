"""Bad input gets one clear line and a non-zero exit, before anything is started."""

from pathlib import Path

import pytest
from helpers import pytest_argv, run, sim_processes

BAD_SUITE_ARGS = [
    (["--roles", "netbak"], "unknown role 'netbak'"),
    (["--roles", "netback;rm -rf /"], "unknown role"),
    (["--faults", "explode"], "unknown fault 'explode'"),
    (["--topology", "nope"], "unknown topology 'nope'"),
    (["--topology", "/no/such.toml"], "does not exist"),
    (["--baseline-topology", "$(reboot)"], "unknown topology"),
    (["--host", "ftp://x"], "unknown host scheme 'ftp'"),
    (["--host", "nourl"], "bad host URL"),
    (["--host", "sim://?x=1"], "sim:// takes no host"),
    (["--host", "sim://somehost"], "sim:// takes no host"),
    (["--fault-param", "stall.duration_s=-1"], "above 0"),
    (["--fault-param", "stall.duration_s=0"], "above 0"),
    (["--fault-param", "stall.duration_s=1e9"], "at most 600"),
    (["--fault-param", "stall.duration_s=nan"], "above 0"),
    (["--fault-param", "stall.duration_s=soon"], "is not a float"),
    (["--fault-param", "stall.speed=2"], "no parameter 'speed'"),
    (["--fault-param", "boom.x=1"], "unknown fault 'boom'"),
    (["--fault-param", "duration_s=1"], "FAULT.KEY=VALUE"),
    (["--guests", "0"], "use 1 to 1000 guests"),
    (["--guests", "-3"], "use 1 to 1000 guests"),
    (["--guests", "many"], "not a valid int"),
    (["--cadence-ms", "abc"], "not a valid float"),
    (["--cadence-ms", "-10"], "out of range"),
    (["--restart-budget", "-1"], "out of range"),
    (["--recovery-budget", "inf"], "out of range"),
    (["--impact-threshold-ms", "0"], "out of range"),
    (["--baseline-junit", "/no/such.xml"], "no such file"),
    (["--host", "xen+ssh://"], "write xen+ssh://user@host"),
    (["--host", "xen+ssh://root@h?color=red"], "takes ?inventory=FILE"),
    (["--host", "xen+ssh://root@h?inventory=/no/such.toml"], "inventory '/no/such.toml' does not exist"),
    (["--host", "lab://somehost"], "lab:// takes no host"),
    (["--host", "lab://?speed=2"], "lab:// takes no host"),
    # hostile or broken host URLs never reach ssh
    (["--host", "xen+ssh://root@-oProxyCommand=touch /tmp/pwned"], "bad host name"),
    (["--host", "xen+ssh://root@$(reboot)"], "bad host name"),
    (["--host", "xen+ssh://root@host;rm -rf /"], "bad host name"),
    (["--host", "xen+ssh://ro;ot@host"], "bad user name"),
    (["--host", "xen+ssh://root@host:99999"], "bad port"),
    (["--host", "xen+local://root@host"], "xen+local:// takes no user"),
    # inventories: missing, malformed, wrong
    (["--host", "xen+ssh://root@h?inventory={dir}/broken.toml"], "not valid TOML"),
    (["--host", "xen+ssh://root@h?inventory={dir}/typo.toml"], "unknown keys ['test-host']"),
    (["--host", "xen+ssh://root@h?inventory={dir}/other.toml"], "is not in the inventory"),
    # the interlocks: a host not marked as a test host, dom0 faults where they are not allowed
    (["--host", "xen+ssh://root@h"], "is not marked as a test host"),
    (["--host", "xen+ssh://root@h?inventory={dir}/prod.toml"], "is not marked as a test host"),
    (["--host", "xen+ssh://root@h?inventory={dir}/test.toml"], "would hit dom0 of xen+ssh://root@h"),
    (["--host", "xen+ssh://root@h?inventory={dir}/test.toml", "--no-baseline", "--topology", "monolithic"],
     "(--topology) would hit dom0"),
    (["--host", "xen+ssh://root@h?inventory={dir}/prod.toml", "--roles", "netback", "--dry-run", "--seed", "x"],
     "not a valid int"),
    # an unreachable host: found at session start, before anything is booted
    (["--host", "xen+ssh://root@127.0.0.1:1?inventory={dir}/local.toml", "--no-baseline"], "does not answer over ssh"),
    (["--fault-param", "stall.duration_s=601"], "at most 600"),
    (["--topology", "{dir}/hostile.toml"], "bad domain name '$(reboot)'"),
    (["--topology", "{dir}/badrole.toml"], "unknown role 'netbak'"),
    # every place the run writes, checked before anything starts
    (["--host", "sim://?dir=/proc/1/nope"], "sim://?dir=/proc/1/nope: cannot write in '/proc/1'"),
    (["--host", "sim://?dir={dir}/broken.toml"], "broken.toml' exists and is not a directory"),
    (["--host", "sim://?dir=/tmp/" + "d" * 300], "is too long a path"),
    (["--artifacts", "/proc/1/nope"], "--artifacts: cannot write in '/proc/1'"),
    (["--artifacts", "{dir}/broken.toml"], "--artifacts: '{dir}/broken.toml' exists and is not a directory"),
    (["--junitxml", "/proc/1/nope/junit.xml"], "--junitxml: cannot write in '/proc/1'"),
    # values said in the unit of their flag
    (["--cadence-ms", "5000"], "--cadence-ms 5000 is out of range (1 to 1000 ms)"),
    (["--impact-threshold-ms", "-1"], "--impact-threshold-ms -1 is out of range (1 to 60000 ms)"),
    (["--watch-after", "-1"], "--watch-after -1 is out of range (0 to 3600 s)"),
    (["--host", "xen+ssh://root@" + "a" * 5000], "(5000 characters)': use a DNS name"),
    (["--host", "sim://?leak=everything"], "unknown leak 'everything'"),
    (["--baseline-junit", "{dir}/elsewhere.xml"],
     "holds baselines measured on xen+ssh://root@xen-runner-9, not on sim://?dir="),
]
ELSEWHERE = ('<testsuites><testsuite name="s"><testcase classname="c" name="test_fault_contained[netback-kill]">'
             '<properties><property name="topology" value="disaggregated"/><property name="host" '
             'value="xen+ssh://root@xen-runner-9"/><property name="baseline.topology" value="monolithic"/>'
             '<property name="baseline.host" value="xen+ssh://root@xen-runner-9"/>'
             '<property name="baseline.guests_impacted" value="4"/></properties></testcase></testsuite></testsuites>')
INVENTORIES = {
    "broken.toml": "[[host]\n",
    "typo.toml": '[[host]]\nurl = "xen+ssh://root@h"\ntest-host = true\n',
    "other.toml": '[[host]]\nurl = "xen+ssh://root@elsewhere"\ntest_host = true\n',
    "prod.toml": '[[host]]\nurl = "xen+ssh://root@h"\ntest_host = false\n',
    "test.toml": '[[host]]\nurl = "xen+ssh://root@h"\ntest_host = true\n',
    "local.toml": '[[host]]\nurl = "xen+ssh://root@127.0.0.1:1"\ntest_host = true\ndom0_faults = true\n',
    "hostile.toml": 'name = "x"\n[[domain]]\nname = "$(reboot)"\nroles = ["netback"]\n',
    "badrole.toml": 'name = "x"\n[[domain]]\nname = "dd"\nroles = ["netbak"]\n',
    "elsewhere.xml": ELSEWHERE,
}


@pytest.mark.parametrize("args, fragment", BAD_SUITE_ARGS, ids=[" ".join(a) for a, _ in BAD_SUITE_ARGS])
def test_bad_suite_option(args: list[str], fragment: str, tmp_path: Path) -> None:
    for name, text in INVENTORIES.items():
        (tmp_path / name).write_text(text)
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    argv = pytest_argv("suites", *args) if "--host" in args else pytest_argv(
        "suites", "--host", f"sim://?dir={tmp_path / 'runs'}", *args)
    done = run(*argv, timeout=60)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 4, lines
    want = fragment.replace("{dir}", str(tmp_path))
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and want in lines[0], lines
    assert not (tmp_path / "runs").exists()  # no host was ever booted
    assert not Path("/tmp/pwned").exists()


def test_malformed_topology_and_junit_files(tmp_path: Path) -> None:
    topo, junit = tmp_path / "t.toml", tmp_path / "j.xml"
    topo.write_text("name = [")
    junit.write_text("<testsuite><testcase")
    for args, fragment in ((["--topology", str(topo)], "not valid TOML"),
                           (["--baseline-junit", str(junit)], "not a JUnit XML file")):
        done = run(*pytest_argv("suites", *args), timeout=60)
        lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
        assert done.returncode == 4 and len(lines) == 1 and fragment in lines[0], lines


@pytest.mark.parametrize("args, fragment", [
    (["topology", "nope"], "unknown topology"),
    (["compare", "/no/such.xml"], "no such file"),
    (["frobnicate"], "invalid choice"),
    (["topology"], "required"),
    (["merge", "{dir}/out.xml", "/no/such.xml"], "no such file"),
    (["merge", "{dir}/out.xml", "{dir}/broken.toml"], "is not a JUnit XML file"),
    (["merge", "{dir}/out.xml"], "required"),
    (["report", "/no/such.xml", "--out", "{dir}/rep"], "no such file"),
    (["report", "{dir}/broken.toml", "--out", "{dir}/rep"], "is not a JUnit XML file"),
    (["report", "{dir}/ok.xml"], "required: --out"),
    (["report", "{dir}/ok.xml", "--out", "{dir}/broken.toml"], "is not a directory"),
    (["report", "{dir}/ok.xml", "--out", "{dir}/rep", "--previous", "/no/old.xml"], "no such file"),
    (["report", "{dir}/ok.xml", "--out", "{dir}/rep", "--tolerance", "lots"], "give numbers"),
    (["report", "{dir}/ok.xml", "--out", "{dir}/rep", "--min-drift", "-1"], "use 0-10000 %"),
    (["merge", "{dir}", "{dir}/ok.xml"], "the output '{dir}' is a directory"),
    (["merge", "{dir}/out.xml", "{dir}"], "is a directory, not a JUnit XML file"),
    (["merge", "{dir}/ok.xml", "{dir}/ok.xml", "{dir}/ok2.xml"], "the output '{dir}/ok.xml' is also an input"),
    (["merge", "{dir}/out.xml", "{dir}/ok.xml", "{dir}/../" + "{base}/ok.xml"], "is given twice"),
    (["merge", "/proc/1/nope/out.xml", "{dir}/ok.xml"], "cannot write in '/proc/1'"),
    (["report", "{dir}", "--out", "{dir}/rep"], "is a directory, not a JUnit XML file"),
    (["bench", "--accuracy", "--runs", "0"], "bench --runs 0: use 1 to 1000"),
    (["recover", "--host", "sim://?dir=/proc/1/nope"], "cannot write in '/proc/1'"),
    (["recover", "--host", "ftp://x"], "unknown host scheme"),
    (["recover", "--host", "xen+ssh://root@127.0.0.1:1"], "does not answer over ssh"),
])
def test_bad_cli_input(args: list[str], fragment: str, tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[[host]\n")
    (tmp_path / "ok.xml").write_text('<testsuites><testsuite name="s"><testcase classname="c" name="t"/></testsuite>'
                                     "</testsuites>")
    (tmp_path / "ok2.xml").write_text((tmp_path / "ok.xml").read_text())
    args = [a.replace("{dir}", str(tmp_path)).replace("{base}", tmp_path.name) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run("windsor", *args, timeout=60)
    lines = [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1 and fragment.replace("{dir}", str(tmp_path)) in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even half
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.xml").exists() and not (tmp_path / "rep").exists()  # nothing half-made either


def test_nothing_left_running() -> None:
    assert not sim_processes()


def test_a_damaged_lease_journal_is_quarantined_and_the_rest_goes_on(tmp_path: Path) -> None:
    """One bad file in a host's lease journal (an entry without an owner, a JSON list, not JSON at
    all) once made every later session die with INTERNALERROR: it is moved aside, said, and the
    session runs."""
    root = tmp_path / "root"
    leases = root / "leases"
    leases.mkdir(parents=True)
    damaged = {"w00000000000a.json": '{"id": "w00000000000a", "fault": "stall", "target": "netdd"}',
               "w00000000000b.json": "[1, 2, 3]", "w00000000000c.json": "{not json"}
    for name, text in damaged.items():
        (leases / name).write_text(text)
    done = run("windsor", "recover", "--host", f"sim://?dir={root}", timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    said = [x for x in done.stdout.splitlines() if "quarantined the damaged lease journal entry" in x]
    assert len(said) == 3, done.stdout
    assert "w00000000000a.json (no 'owner', 'pids', 'expires_wall')" in done.stdout
    assert "w00000000000b.json (a JSON list, not an object)" in done.stdout
    assert sorted(p.name for p in (leases / "quarantine").iterdir()) == sorted(damaged)
    assert list(leases.glob("*.json")) == []
    (leases / "w00000000000d.json").write_text('{"owner": {"machine": "m"}}')
    done = run(*pytest_argv("suites", "-q", "--no-baseline", "-k", "toolstack-kill", "--host", f"sim://?dir={root}"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "quarantined the damaged lease journal entry w00000000000d.json" in done.stderr
