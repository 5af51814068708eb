"""``windsor report``: JUnit files (and, with --previous, earlier runs' files) to a sign-off
report in DIR — ``index.html``, one page that works offline (its CSS and pictures inline, nothing
fetched), and ``report.md`` with its pictures in ``img/``. Every file is written beside its final
name and renamed into place, pictures first and the HTML last."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness.atomic import write_atomic
from harness.errors import UsageError
from reports import claimplots, plots, qos
from reports.cases import collapse, load, load_all
from reports.history import Tolerance, classify
from reports.summary import METRICS, Report, Row, build, shown

log = logging.getLogger("windsor")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Picture:
    name: str  # img/NAME.png
    title: str
    data: bytes

    @property
    def uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.data).decode()


@dataclass(frozen=True)
class Written:
    html: Path
    markdown: Path
    report: Report
    pictures: int


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def row_slug(row: Row, many_hosts: bool) -> str:
    host = slug(row.case.host.split("?")[0]) if many_hosts and row.case.host else ""
    return (f"{host}-" if host else "") + slug(row.case.scenario)


def claim_pictures(report: Report) -> dict[str, Picture]:
    """The QoS section's latency CDFs and the scalability section's curves, where cases ran."""
    out = {}
    if report.qos.cases:
        out["qos"] = Picture("qos-cdf", "Latency CDFs under a noisy neighbour", claimplots.cdf_png(report.qos.cases))
    if report.scale.cases:
        out["scale"] = Picture("scale-curves", "Guests per host", claimplots.curves_png(report.scale.cases))
    return out


def pictures(report: Report, many_hosts: bool) -> tuple[list[Picture], dict[int, Picture]]:
    summary = []
    hosts = sorted({r.case.host for r in report.rows if r.case.is_windsor})
    for host in hosts:
        cases = [r.case for r in report.rows if r.case.host == host and r.case.is_windsor]
        if any(c.value("max_guest_downtime_s") is not None for c in cases):
            name = f"summary-{slug(host.split('?')[0])}" if len(hosts) > 1 else "summary"
            summary.append(Picture(name, f"Max guest downtime by role on {host}", plots.summary_png(cases)))
    per_row = {}
    for i, row in enumerate(report.rows):
        if row.timelines:
            name = f"timeline-{row_slug(row, many_hosts)}"
            per_row[i] = Picture(name, f"{row.case.scenario}: timelines", plots.timeline_png(row.case, row.timelines))
    return summary, per_row


def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def mark(answer: str) -> str:
    """An isolation attempt's cell: allowed ✓, denied ✗, not made —."""
    return {"allowed": "✓", "denied": "✗"}.get(answer, "—")


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = md_cell
    env.globals.update(shown=shown, METRICS=METRICS, mark=mark, ms=qos.ms, times=qos.times, ratio=qos.ratio)
    return env


def make(junit: Sequence[str], out: str, previous: Sequence[str] = (),
         tolerance: Tolerance | None = None) -> Written:
    if not junit:
        raise UsageError("report: give at least one JUnit file")
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise UsageError(f"report: --out {out!r} exists and is not a directory")
    cases, repeats = collapse(load_all(list(junit)))
    history = None
    if previous:
        runs = [(p, collapse(load(p))[0]) for p in previous]
        history = classify(cases, runs, tolerance or Tolerance())
    report = build(cases, repeats, list(junit), history)
    many_hosts = len({r.case.host for r in report.rows}) > 1
    log.info("report: %d scenarios, drawing pictures", len(report.rows))
    summary, per_row = pictures(report, many_hosts)
    claims = claim_pictures(report)
    context = dict(r=report, summary=summary, per_row=per_row, many_hosts=many_hosts, claims=claims,
                   slugs={i: row_slug(row, many_hosts) for i, row in enumerate(report.rows)})
    env = environment()
    html = env.get_template("report.html.j2").render(**context)
    markdown = env.get_template("report.md.j2").render(**context)
    for pic in [*summary, *per_row.values(), *claims.values()]:
        write_atomic(target / "img" / f"{pic.name}.png", pic.data)
    write_atomic(target / "report.md", markdown)
    write_atomic(target / "index.html", html)
    return Written(target / "index.html", target / "report.md", report, len(summary) + len(per_row) + len(claims))
