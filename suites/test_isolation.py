"""Security isolation: an attacker with code execution where a service lives (harness/isolation.py).

For each service it owns (netback, blkback, a device model), the attacker tries from that domain
what the host lets it try: other guests' and other services' xenstore nodes, their grant
references, a guest's memory, pausing a guest, another guest's disk and traffic. On the topology
under test it asserts that nothing outside the service's duties was reachable, that the attacker
could use its own duties (it really tried), and that every denial has a positive control (the same
attempt succeeded where it must). The monolithic baseline is measured beside it and recorded
(``baseline.*``), not asserted: there the attacker is dom0.
"""

import pytest

from harness.backend import host_class
from harness.isolation import inspect
from harness.plugin import Windsor


def test_compromised_service_contained(windsor_attacker: str, windsor: Windsor) -> None:
    """One case per role an attacker owns (harness/isolation.py's ROLES, narrowed by --roles)."""
    role, opts = windsor_attacker, windsor.options
    if role not in host_class(opts.host).attackers:
        pytest.skip(f"{opts.host}: no attacker can be put where {role} lives on this kind of host yet")
    candidate, _ = windsor.beside(lambda topology: inspect(opts, topology, role), opts.topology)
    print(f"{role}: reachable from {candidate.attacker} {len(candidate.reachable)} of {candidate.outside}"
          + "".join(f"\n  {t.row()}" for t in candidate.tried))
    failed = candidate.failures() + [f"reachable from {candidate.attacker}: {what}" for what in candidate.reachable]
    assert not failed, "; ".join(failed)
