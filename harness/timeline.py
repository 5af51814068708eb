"""A case's raw per-guest timeline: every guest device's completed operations around the fault, in
seconds from the injection, with the fault window, the restart and the recovery marked. Written
beside the JUnit file as a JSON artifact, named in the testcase's system-out as
``[[ATTACHMENT|path]]`` (Jenkins' junit-attachments and GitLab both show it), and read back by
``windsor report`` to draw the case's timeline plot. With each device's operations go its
frontend's and backend's xenstore state changes (XenbusState 1–6): why a device was down, not
only that it was."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.backend.base import DeviceState
from harness.errors import UsageError
from harness.model import Pair

FORMAT = "windsor-timeline/1"
BEFORE_S = 5.0  # at most this much of the steady state before the fault is kept
ATTACHMENT_RE = re.compile(r"\[\[ATTACHMENT\|([^\]\n]+)\]\]")


@dataclass(frozen=True)
class Timeline:
    case: str  # the scenario, e.g. netback-kill
    topology: str
    host: str
    cadence_s: float
    fault_end_s: float  # the fault window is [0, fault_end_s]
    restart_s: float | None  # the role healthy again (None: it was not)
    recovery_s: float | None  # every impacted device progressing again
    ops: Mapping[str, tuple[float, ...]]  # "guest/device" -> completion times
    impacted: tuple[str, ...]
    expected: tuple[str, ...]  # the fault's blast radius
    run: str = ""  # the session that wrote it (the run_id property of its testcase)
    # "guest/device" -> its frontend's and backend's state changes: (time, "fe"|"be", XenbusState)
    states: Mapping[str, tuple[tuple[float, str, int], ...]] = field(default_factory=dict)

    @staticmethod
    def key(pair: Pair) -> str:
        return f"{pair[0]}/{pair[1]}"

    @classmethod
    def cut(cls, case: str, topology: str, host: str, cadence_s: float, progress: Mapping[Pair, list[float]],
            all_pairs: frozenset[Pair], t_from: float, t0: float, t_to: float, fault_end_s: float,
            restart_s: float | None, recovery_s: float | None, impacted: frozenset[Pair],
            expected: frozenset[Pair], states: Sequence[DeviceState] = ()) -> Timeline:
        """From the host's progress (host clock) to times from the injection at `t0`, keeping
        [max(t_from, t0 - BEFORE_S), t_to]."""
        start = max(t_from, t0 - BEFORE_S)
        ops = {cls.key(p): tuple(round(t - t0, 4) for t in progress.get(p, []) if start <= t <= t_to)
               for p in sorted(all_pairs)}
        changes: dict[str, list[tuple[float, str, int]]] = {}
        for s in states:
            if start <= s.t <= t_to and (s.guest, s.device) in all_pairs:
                changes.setdefault(cls.key((s.guest, s.device)), []).append((round(s.t - t0, 4), s.end, s.state))
        return cls(case, topology, host, cadence_s, round(fault_end_s, 4), restart_s, recovery_s, ops,
                   tuple(cls.key(p) for p in sorted(impacted)), tuple(cls.key(p) for p in sorted(expected)),
                   states={k: tuple(v) for k, v in sorted(changes.items())})

    def to_json(self) -> str:
        doc: dict[str, Any] = {"format": FORMAT, **{k: getattr(self, k) for k in (
            "case", "topology", "host", "cadence_s", "fault_end_s", "restart_s", "recovery_s", "run")},
            "impacted": list(self.impacted), "expected": list(self.expected),
            "ops": {k: list(v) for k, v in self.ops.items()},
            "states": {k: [list(x) for x in v] for k, v in self.states.items()}}
        return json.dumps(doc, separators=(",", ":")) + "\n"

    def write(self, path: Path) -> None:
        write_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        """Read a timeline artifact back; UsageError (naming the file) if it is not one."""
        try:
            doc = json.loads(Path(path).read_text())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, not {FORMAT!r}")
            opt = {k: None if doc[k] is None else float(doc[k]) for k in ("restart_s", "recovery_s")}
            return cls(str(doc["case"]), str(doc["topology"]), str(doc["host"]), float(doc["cadence_s"]),
                       float(doc["fault_end_s"]), opt["restart_s"], opt["recovery_s"],
                       {str(k): tuple(float(t) for t in v) for k, v in doc["ops"].items()},
                       tuple(map(str, doc["impacted"])), tuple(map(str, doc["expected"])), str(doc.get("run", "")),
                       {str(k): tuple((float(t), str(e), int(s)) for t, e, s in v)
                        for k, v in doc.get("states", {}).items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path}: not a windsor timeline ({exc})") from None


def file_name(case: str, topology: str, run: str) -> str:
    """A portable file name for a case's timeline, unique to its run (two runs writing into one
    directory keep each other's): test_fault_contained[netback-kill] on disaggregated in run R ->
    test_fault_contained-netback-kill.disaggregated.R.timeline.json"""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{case}.{topology}.{run}").replace("-.", ".").strip("-.")
    return f"{stem}.timeline.json"


def attachment_line(path: Path) -> str:
    """The system-out line that attaches `path`: relative to the working directory when it is
    under it (what GitLab wants, and Jenkins takes relative to its workspace), else absolute."""
    full = path.resolve()
    try:
        shown = str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(full)
    return f"[[ATTACHMENT|{shown}]]"


def attachments(system_out: str) -> list[str]:
    return ATTACHMENT_RE.findall(system_out)
