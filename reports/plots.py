"""The report's pictures (matplotlib, no display needed): a scenario's timelines — every guest
device's progress around the fault, the fault window shaded, the restart and the recovery marked —
and the summary of max guest downtime by role, topology under test beside its baseline."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.model import ROLES
from harness.timeline import Timeline
from reports.cases import Case

# a device's xenbus state changes, drawn on its row: ▼ its backend's, ▲ its frontend's, with the
# state (b5: the backend went Closing); connected (4) in green, closing and closed in red
STATE_COLOURS = {1: "#999999", 2: "#ff7f0e", 3: "#ff7f0e", 4: "#2ca02c", 5: "#d62728", 6: "#d62728"}
MAX_ROWS = 48  # guest devices drawn per timeline; beyond, the impacted and exposed ones first
COLOURS = {"impacted": "#c0392b", "exposed": "#e6a23c", "unaffected": "#4c72b0"}
FAULT_SHADE = "#7f7f7f"
DPI = 90


def segments(times: Sequence[float], cadence: float) -> list[tuple[float, float]]:
    """Runs of progress: consecutive operations closer than a gap that would be noticed."""
    if not times:
        return []
    gap = cadence + max(0.05, 4 * cadence)
    out, start, last = [], times[0], times[0]
    for t in times[1:]:
        if t - last > gap:
            out.append((start, max(last - start, cadence)))
            start = t
        last = t
    out.append((start, max(last - start, cadence)))
    return out


def rows_of(t: Timeline) -> tuple[list[str], int]:
    keys = list(t.ops)
    if len(keys) <= MAX_ROWS:
        return keys, 0
    first = [k for k in keys if k in t.impacted] + [k for k in keys if k in t.expected and k not in t.impacted]
    rest = [k for k in keys if k not in first]
    chosen = (first + rest)[:MAX_ROWS]
    return [k for k in keys if k in chosen], len(keys) - MAX_ROWS


def draw_timeline(ax: Axes, t: Timeline, title: str) -> None:
    keys, hidden = rows_of(t)
    for y, key in enumerate(reversed(keys)):
        kind = "impacted" if key in t.impacted else "exposed" if key in t.expected else "unaffected"
        ax.broken_barh(segments(t.ops[key], t.cadence_s), (y - 0.35, 0.7), facecolors=COLOURS[kind])
        for t_s, end, state in t.states.get(key, ()):  # why it was down: its xenbus state changes
            ax.plot([t_s], [y + (0.42 if end == "be" else -0.42)], marker="v" if end == "be" else "^", ms=3,
                    color=STATE_COLOURS.get(state, "#555555"), lw=0)
            if state != 4:
                ax.annotate(f"{end[0]}{state}", (t_s, y + (0.42 if end == "be" else -0.42)), fontsize=4,
                            xytext=(1, 0), textcoords="offset points", va="center")
    ax.set_yticks(range(len(keys)), list(reversed(keys)), fontsize=7)
    ax.set_ylim(-0.8, len(keys) - 0.2)
    ax.axvspan(0, max(t.fault_end_s, 0.0), color=FAULT_SHADE, alpha=0.25, lw=0)
    ax.axvline(0, color="black", lw=1.2)
    marks = []
    if t.restart_s is not None:
        ax.axvline(t.restart_s, color="#1f77b4", lw=1.2, ls="--")
        marks.append(f"restart {t.restart_s:.2f}s (dashed)")
    else:
        marks.append("no restart")
    if t.recovery_s:
        ax.axvline(t.recovery_s, color="#2ca02c", lw=1.2, ls=":")
        marks.append(f"recovered {t.recovery_s:.2f}s (dotted)")
    elif t.recovery_s is None:
        marks.append("not recovered")
    ends = [v[-1] for v in t.ops.values() if v] + [t.fault_end_s, t.restart_s or 0.0, t.recovery_s or 0.0]
    starts = [v[0] for v in t.ops.values() if v] + [0.0]
    ax.set_xlim(min(starts) - 0.05, max(ends) + 0.05)
    ax.set_xlabel("seconds from the fault" + (f"  ({hidden} more devices not shown)" if hidden else ""), fontsize=8)
    ax.set_title(f"{title}\n{', '.join(marks)}", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def timeline_png(case: Case, timelines: Sequence[Timeline]) -> bytes:
    rows = max(len(rows_of(t)[0]) for t in timelines)
    fig = Figure(figsize=(6.2 * len(timelines), 1.6 + 0.2 * rows))
    axes = fig.subplots(1, len(timelines), squeeze=False)[0]
    for ax, t in zip(axes, timelines, strict=True):
        side = "under test" if t.topology == case.props.get("topology") else "baseline"
        draw_timeline(ax, t, f"{t.topology} ({side})")
    handles: list[Any] = [Patch(color=c) for c in COLOURS.values()]
    labels = ["impacted", "in blast radius, not impacted", "outside blast radius"]
    if any(t.states for t in timelines):
        handles += [Line2D([], [], marker=m, color=STATE_COLOURS[5], lw=0, ms=4) for m in ("v", "^")]
        labels += ["backend's xenbus state (b5: Closing; green: Connected)", "frontend's (f1: Initialising)"]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{case.scenario}: every guest device's completed operations (fault window shaded)", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return png(fig)


def summary_png(cases: Sequence[Case]) -> bytes:
    """Max guest downtime by role, one panel per fault; bars: under test and baseline."""
    faults = sorted({c.props["fault"] for c in cases if "fault" in c.props})
    fig = Figure(figsize=(max(6.0, 4.2 * len(faults)), 3.6))
    axes = fig.subplots(1, max(1, len(faults)), squeeze=False)[0]
    top = max([1.0] + [v for c in cases for b in (False, True) if (v := c.value("max_guest_downtime_s", b))])
    for ax, fault in zip(axes, faults, strict=False):
        mine = {c.props.get("target_role"): c for c in cases if c.props.get("fault") == fault}
        roles = [r for r in ROLES if r in mine] + sorted(r for r in mine if r not in ROLES and r)
        for i, role in enumerate(roles):
            c = mine[role]
            for dx, baseline, colour in ((-0.2, False, "#2a9d8f"), (0.2, True, "#9c6644")):
                value = c.value("max_guest_downtime_s", baseline)
                if value is None:
                    continue
                ax.bar(i + dx, max(value, 1e-3), width=0.38, color=colour)
                ax.annotate(f"{value:.2f}", (i + dx, max(value, 1e-3)), ha="center", va="bottom", fontsize=6,
                            xytext=(0, 1), textcoords="offset points")
        ax.set_xticks(range(len(roles)), [r or "?" for r in roles], rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 10 ** math.ceil(math.log10(top) + 0.3))
        ax.set_title(fault, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("max guest downtime, s (log)", fontsize=8)
    topo = next((c.props.get("topology") for c in cases), "under test")
    base = next((c.props.get("baseline.topology") for c in cases if c.has_baseline), "baseline")
    handles = [Patch(color=colour) for colour in ("#2a9d8f", "#9c6644")]
    fig.legend(handles, [f"{topo} (under test)", f"{base} (baseline)"], loc="upper right", fontsize=8, frameon=False)
    fig.suptitle("Max guest downtime by role", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return png(fig)
