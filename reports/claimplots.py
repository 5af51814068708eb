"""The pictures of the claims beside availability: the QoS cases' latency CDFs (the other guests'
latency, quiet and loaded, under test and on the baseline) and the scalability cases'
guests-per-host curves (the median guest's rate against the guests on the host, per topology)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from reports import qos, scale
from reports.cases import Case
from reports.plots import png

PERCENTS = [5 * i for i in range(21)]
SIDES = ((False, "#2a9d8f"), (True, "#9c6644"))


def cdf_png(cases: Sequence[Case]) -> bytes:
    """One panel per QoS case: each side's CDF, quiet dashed and loaded solid (ms, log)."""
    fig = Figure(figsize=(max(6.0, 3.6 * len(cases)), 3.4))
    axes = fig.subplots(1, max(1, len(cases)), squeeze=False)[0]
    for ax, case in zip(axes, cases, strict=False):
        for baseline, colour in SIDES:
            quiet, loaded = qos.cdf(case, baseline)
            name = case.props.get("baseline.topology" if baseline else "topology", "?")
            for values, style, what in ((quiet, "--", "quiet"), (loaded, "-", "loaded")):
                if len(values) == len(PERCENTS):
                    ax.plot([max(v * 1e3, 1e-3) for v in values], PERCENTS, style, color=colour, lw=1.3,
                            label=f"{name}, {what}")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{case.props.get('qos_device', '?')} flood, {case.props.get('topology', '?')}: "
                     f"p99 {qos.times(qos.ratio(case))} / {qos.times(qos.ratio(case, True))}", fontsize=8)
        ax.set_xlabel("the other guests' operation latency, ms (log)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, frameon=False, loc="lower right")
    axes[0].set_ylabel("% of operations", fontsize=8)
    fig.suptitle("Latency CDFs under a noisy neighbour (dashed: quiet; solid: flooding)", fontsize=10,
                 x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return png(fig)


def curves_png(cases: Sequence[Case]) -> bytes:
    """The median guest's rate against the guests on the host: one line per topology measured."""
    fig = Figure(figsize=(7.6, 3.8))
    ax = fig.subplots()
    seen: set[str] = set()
    for case in cases:
        for baseline in (False, True):
            name = case.props.get("baseline.topology" if baseline else "topology", "?")
            points = scale.curve(case, baseline)
            if name in seen or not points:
                continue
            seen.add(name)
            ax.plot([p[0] for p in points], [p[1] * 100 for p in points], "o-", ms=3, lw=1.3,
                    label=f"{name}: {case.props.get(('baseline.' if baseline else '') + 'scale_guests', '?')} carried")
    ax.axhline(80, color="#c0392b", lw=1, ls=":", label="target: 80 % of the cadence")
    ax.set_xlabel("guests on the host", fontsize=8)
    ax.set_ylabel("median guest's rate, % of its cadence", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    budget = next((c.props.get("scale_cpu_pct") for c in cases), "?")
    ax.set_title(f"Guests per host at {budget} % of a CPU for dom0 and each service domain", fontsize=9)
    fig.tight_layout()
    return png(fig)
