"""Scalability at equal CPU (harness/scale.py).

One case per topology (disaggregated; two-netdds, where two network driver domains share the
guests), with the run's baseline (monolithic) measured beside it (``baseline.*``): guests are added
in steps until the median guest falls under 80 % of its cadence or a domain is at its CPU cap,
every domain (dom0 included) with the same budget. The claim asserted: the topology carries more
guests than the baseline. Runs when no --faults and no --roles narrow the run.
"""

import pytest

from harness.backend import host_class
from harness.plugin import Windsor
from harness.scale import measure


def test_guests_per_host(windsor_scale: str, windsor: Windsor) -> None:
    opts = windsor.options
    if not host_class(opts.host).cpu_accounting:
        pytest.skip(f"{opts.host}: this kind of host cannot give its domains a CPU budget and report their use yet")
    candidate, baseline = windsor.beside(lambda name: measure(opts, name), windsor_scale)
    for r in (candidate, baseline):
        if r is not None:
            print(f"{r.topology}: {r.guests} guests carried (then {r.limit}); "
                  + ", ".join(f"{s.guests}: {s.median_rate:.0%} ({s.busiest} {s.busiest_share:.0%})" for s in r.steps))
    if baseline is not None:
        assert candidate.guests > baseline.guests, (
            f"{windsor_scale} carried {candidate.guests} guests, no more than {baseline.topology}'s {baseline.guests} "
            f"at the same CPU budget")
