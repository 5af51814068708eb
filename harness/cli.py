"""``windsor``: everything that is not running tests.

  windsor faults              installed fault plugins, roles and topologies
  windsor topology NAME|FILE  where each role lives in a topology
  windsor compare JUNIT...    candidate vs baseline, per scenario, from JUnit files
  windsor merge OUT JUNIT...  join shard reports into one; every testcase kept, duplicates flagged
  windsor report JUNIT... --out DIR [--previous OLD...] [--png FILE]
                              sign-off report: index.html (offline) + report.md, verdict, plots,
                              regressions and drifts against earlier runs
  windsor recover [--host U]  revert what killed runs left on a host (its lease journal)
  windsor host prepare|status|remove URL
                              the harness's tools and images on a stock Xen host, over ssh
  windsor lab up|status|down [--dom0 stock]
                              the real-Xen lab: build (cached) and boot Xen 4.17 under QEMU
  windsor bench [--quick]     this machine's figures (matrix time, stall accuracy, restarts, scaling)
  windsor bench --accuracy    the verdicts' accuracy: false alarms, planted leaks caught, late outages
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NoReturn

from harness.errors import HarnessError, UsageError
from harness.fault import installed_faults
from harness.model import ROLES
from harness.topology import builtin_names, load_topology


def cmd_faults(_: argparse.Namespace) -> int:
    """Every installed fault with what it declares: its target kind and roles, what it needs
    from a host, and so which kinds of host can run it (derived, never listed by hand)."""
    from harness.backend import BACKENDS, host_class
    from harness.fault import TARGET_KINDS

    print("faults (entry-point group harness.faults):")
    kinds = {scheme: host_class(f"{scheme}://x") for scheme in BACKENDS}
    for name, cls in installed_faults().items():
        params = ", ".join(f"{k}={v}" for k, v in vars(cls.Params()).items()) or "no parameters"
        hosts = [f"{scheme}://" for scheme, host in kinds.items() if any(host.cannot(r, name) is None
                                                                         for r in cls.roles())]
        print(f"  {name}  ({cls.__module__})\n      {cls.summary}\n"
              f"      target: {cls.target_kind} ({', '.join(cls.roles())}); needs: {', '.join(sorted(cls.needs))}; "
              f"hosts: {', '.join(hosts) or 'none installed'}\n      parameters: {params}")
    print("target kinds:")
    for kind, (roles, guest) in TARGET_KINDS.items():
        print(f"  {kind:11s} roles {', '.join(roles)}; guest: {guest}")
    print("roles:")
    print("  " + ", ".join(ROLES))
    print("topologies:")
    for name in builtin_names():
        topo = load_topology(name)
        print(f"  {name:14s} {topo.description}")
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    topo = load_topology(args.name)
    print(f"{topo.name}: {topo.description}")
    for role in ROLES:
        where = topo.domain_of(role, "<guest>")
        kind = "dom0 kernel" if topo.in_dom0_kernel(role) else ("dom0 process" if where == "dom0" else "domain")
        print(f"  {role:13s} {where:16s} ({kind})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from reports.compare import compare

    print(compare(args.junit))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from reports.merge import merge

    result = merge(args.junit, args.out)
    print(f"merged {result.cases} testcases from {len(args.junit)} files into {args.out}")
    for line in result.duplicates:
        print(f"duplicate: {line}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from reports.history import Tolerance
    from reports.render import make

    tolerance = Tolerance.parse(args.tolerance, args.min_drift)
    if args.png:
        from reports.browser import executable

        if executable() is None:
            raise UsageError("report --png needs chromium on PATH: apt-get install chromium")
    written = make(args.junit, args.out, args.previous or (), tolerance)
    report = written.report
    print(report.headline)
    for why in report.reasons[1:]:
        print(f"  also: {why}")
    print(f"wrote {written.html} and {written.markdown} ({len(report.rows)} scenarios, {written.pictures} pictures)")
    if args.png:
        from reports.browser import screenshot

        print(f"wrote {screenshot(written.html, Path(args.png))} (the page in headless Chromium)")
    return 0 if report.ready or not args.strict else 1


def cmd_recover(args: argparse.Namespace) -> int:
    from harness.backend import get_host

    host = get_host(args.host)
    for line in host.preflight():
        print(f"{args.host}: {line}")
    said = host.recover()
    for line in said:
        print(f"{args.host}: {line}")
    if not said:
        print(f"{args.host}: nothing to recover")
    return 0


def cmd_host(args: argparse.Namespace) -> int:
    import logging

    from harness.backend import get_host
    from harness.backend.xen import XenHost
    from harness.xen import prepare as host_tools

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    host = get_host(args.url)
    if not isinstance(host, XenHost):
        raise UsageError(f"windsor host works on Xen hosts (xen+ssh://, xen+local://, lab://), not {args.url!r}")
    url = host.prepare_url()
    if args.action == "prepare":
        from harness.lab.build import payload
        from harness.lab.machine import DEFAULT_DIR
        from harness.xen.payload import sources

        done = host_tools.prepare(host.remote, url,
                                  lambda: sources(payload(Path(args.lab_dir) if args.lab_dir else DEFAULT_DIR)),
                                  lambda line: print(line, flush=True))
        print(f"{url}: tools {done.version} ready: uploaded {len(done.uploaded)} files "
              f"({done.uploaded_bytes / 1e6:.1f} MB) in {done.seconds:.1f}s")
        return 0
    if args.action == "status":
        ok, lines = host_tools.status(host.remote, url)
        print("\n".join(lines))
        return 0 if ok else 1
    for line in host_tools.remove(host.remote, url):
        print(f"{url}: {line}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    import logging

    from harness.lab.machine import Lab
    from harness.lab.watchdog import idle_seconds

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    lab = Lab(dom0=args.dom0)
    idle_s = idle_seconds(args.idle, "--idle ")
    if args.action == "up":
        state = lab.up(keep=True, idle_s=idle_s)
        print(f"lab up ({state.dom0} dom0): pid {state.pid}, ssh root@127.0.0.1 -p {state.port} -i {lab.files.key}, "
              f"dom0 ready {state.ready_s:.1f}s after QEMU start")
        print(f"as a Xen host: {state.url}?identity={lab.files.key}")
        print(lab.lifetime(state))
    elif args.action == "down":
        print("lab stopped" if lab.down() else "lab was not running")
    else:
        running = lab.state()
        if running is None:
            print("lab is not running")
            return 1
        xl = lab.ssh("xl list")
        print(f"lab running ({running.dom0} dom0): pid {running.pid}, ssh port {running.port}, "
              f"up {time.time() - running.started:.0f}s, as a Xen host: {running.url}?identity={lab.files.key}")
        print(lab.lifetime(running))
        print(xl.stdout.rstrip() or f"xl list failed: {xl.stderr.strip()}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.bench import main as bench_main

    if not 1 <= args.runs <= 1000:
        raise UsageError(f"bench --runs {args.runs}: use 1 to 1000")

    return bench_main([*(["--quick"] if args.quick else []),
                       *(["--accuracy", "--runs", str(args.runs)] if args.accuracy else [])])


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``windsor: error: ...``), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see windsor --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="windsor", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    sub.add_parser("faults", help="list fault plugins, roles, topologies").set_defaults(func=cmd_faults)
    topo = sub.add_parser("topology", help="show a topology's placement")
    topo.add_argument("name")
    topo.set_defaults(func=cmd_topology)
    comp = sub.add_parser("compare", help="candidate vs baseline table from JUnit files")
    comp.add_argument("junit", nargs="+")
    comp.set_defaults(func=cmd_compare)
    merge = sub.add_parser("merge", help="join shard JUnit files; every testcase kept, duplicates flagged")
    merge.add_argument("out")
    merge.add_argument("junit", nargs="+")
    merge.set_defaults(func=cmd_merge)
    report = sub.add_parser("report", help="sign-off report (HTML + Markdown) from JUnit files")
    report.add_argument("junit", nargs="+", help="JUnit files of this run (shards are fine)")
    report.add_argument("--out", required=True, metavar="DIR", help="where index.html, report.md and img/ go")
    report.add_argument("--previous", nargs="+", metavar="OLD", help="earlier runs' JUnit files, oldest first: "
                        "classify each case (REGR., fixed, still failing, never passed) and find metric drifts")
    report.add_argument("--tolerance", default="50%",
                        help="a time drifts when it grows by more than this (default 50%%)")
    report.add_argument("--min-drift", default="0.1", metavar="SECONDS",
                        help="... and by more than this many seconds (default 0.1)")
    report.add_argument("--png", metavar="FILE", help="also a PNG of the whole page, as headless Chromium shows it")
    report.add_argument("--strict", action="store_true", help="exit 1 unless the report says sign-off ready")
    report.set_defaults(func=cmd_report)
    recover = sub.add_parser("recover", help="revert what killed runs left on a host (from its lease journal)")
    recover.add_argument("--host", default="sim://", help="host URL (default sim://)")
    recover.set_defaults(func=cmd_recover)
    hostp = sub.add_parser("host", help="install, check or remove the harness's tools on a Xen host")
    hostp.add_argument("action", choices=("prepare", "status", "remove"))
    hostp.add_argument("url", help="xen+ssh://root@HOST[:PORT][?identity=KEY], xen+local://, lab://")
    hostp.add_argument("--lab-dir", metavar="DIR", help="where the images are built and cached "
                       "(default ~/.cache/windsor/lab, or $WINDSOR_LAB_DIR)")
    hostp.set_defaults(func=cmd_host)
    lab = sub.add_parser("lab", help="the real-Xen lab on this machine (Xen 4.17 under QEMU)")
    lab.add_argument("action", choices=("up", "status", "down"))
    lab.add_argument("--dom0", choices=("windsor", "stock"), default="windsor",
                     help="windsor: our dom0 with the tools baked in (default); stock: a plain Debian Xen "
                          "install with nothing of ours (prepare it with windsor host prepare)")
    lab.add_argument("--idle", default="30", metavar="MIN",
                     help="up: the lab stops by itself once unused for MIN minutes (default 30)")
    lab.set_defaults(func=cmd_lab)
    bench = sub.add_parser("bench", help="measure this machine")
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--accuracy", action="store_true",
                       help="false alarms over loaded matrices, planted leaks caught, the smallest late outage caught")
    bench.add_argument("--runs", type=int, default=10, help="with --accuracy: runs of each (default 10)")
    bench.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except HarnessError as exc:
        print(f"windsor: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
