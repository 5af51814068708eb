"""The checks a case of the topology under test must pass, as objects the suites and the report
both use: each judges a case from its JUnit properties alone (so a report judges an archived run
as the suite judged it live) and says, when it fails, why, in one line. `CHECKS` is the order
they are judged in; a fault that hits K times (a crash loop) gets K times each budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.vocabulary import NONE

Props = Mapping[str, str]


def num(props: Props, key: str) -> float | None:
    value = props.get(key, NONE)
    try:
        return None if value == NONE else float(value)
    except ValueError:
        return None


def hits(props: Props) -> int:
    return max(1, len(props.get("fault_hits_s", "").split()))


@dataclass(frozen=True)
class Check:
    name: str
    claim: str  # what holds when it passes (the report's words)
    needs: tuple[str, ...]  # the properties it reads: a case without them (an older run) is not judged by it
    why_not: Callable[[Props], str | None]

    def judge(self, props: Props) -> str | None:
        """None when it holds, or cannot be judged from `props`; else why it does not."""
        if any(k not in props for k in self.needs):
            return None
        return self.why_not(props)


def _budget(key: str, budget: str, what: str) -> Callable[[Props], str | None]:
    def why_not(p: Props) -> str | None:
        took, limit, n = num(p, key), num(p, budget), hits(p)
        if took is None or limit is None or took <= limit * n:
            return None
        return f"{what} took {took:.3f}s" + (f" after {n} hits (budget {limit:g}s each)" if n > 1 else "")
    return why_not


def _host(p: Props) -> str | None:
    crash = p["expected_host_crash"] == "true"
    if (p["host_survived"] == "true") != crash:
        return None
    return "host survived a fault that crashes it" if crash else "host rebooted"


CHECKS: tuple[Check, ...] = (
    Check("contained", "every impact stayed within the fault's blast radius", ("escaped",),
          lambda p: None if p["escaped"] == NONE else
          f"impact escaped the blast radius of {p.get('target_domain')}: {p['escaped']}"),
    Check("undisturbed", "nothing outside the blast radius restarted", ("disturbed",),
          lambda p: None if p["disturbed"] == NONE else f"restarted outside the blast radius: {p['disturbed']}"),
    Check("no-write-lost", "no acknowledged write lost", ("acked_writes_lost",),
          lambda p: None if p["acked_writes_lost"] == "0" else
          f"{p['acked_writes_lost']} acknowledged write{'s' * (p['acked_writes_lost'] != '1')} lost: the guests' "
          "disks do not hold what blkback acknowledged"),
    Check("host", "the host survived unless the fault crashes it by design", ("host_survived", "expected_host_crash"),
          _host),
    Check("restarted", "the service came back", ("service_restart_s",),
          lambda p: None if num(p, "service_restart_s") is not None else
          f"{p.get('target_role')} never became healthy again"),
    Check("restart-budget", "it came back within its restart budget", ("service_restart_s", "restart_budget_s"),
          _budget("service_restart_s", "restart_budget_s", "restart")),
    Check("recovered", "every impacted guest device progressed again", ("guest_recovery_s",),
          lambda p: None if num(p, "guest_recovery_s") is not None or num(p, "service_restart_s") is None else
          f"{p.get('target_role')} answered its health probe {p['service_restart_s']}s after the fault, but "
          f"impacted guest devices never progressed again: {p.get('impacted')}"),
    Check("recovery-budget", "the guests recovered within their budget", ("guest_recovery_s", "recovery_budget_s"),
          _budget("guest_recovery_s", "recovery_budget_s", "guest recovery")),
)


def failures(props: Props) -> list[str]:
    """Why the case fails, one line per check that does not hold, in `CHECKS` order."""
    return [why for check in CHECKS if (why := check.judge(props)) is not None]
