"""QoS under a noisy neighbour (harness/qos.py).

One case per flooded device (disk, net; narrowed by --roles: blkback, netback) and topology
(disaggregated; per-tenant, where each guest has its own driver domains), with the run's baseline
(monolithic) measured beside it and recorded as ``baseline.*``. Every domain has the same CPU
budget. Where the noisy tenant's device has a domain of its own, the claim is asserted: the others'
p99 latency, loaded over quiet, stays within `GOAL_RATIO` (2×). Where it shares its driver domain
with them, the figures are recorded, not asserted: sharing is what that topology is. Either way the
flood must have taken (the noisy guest's own request rate rose), or the case fails.
"""

import pytest

from harness.backend import host_class
from harness.plugin import Windsor
from harness.qos import GOAL_RATIO, measure


def test_noisy_neighbour(windsor_noisy: tuple[str, str], windsor: Windsor) -> None:
    device, topology = windsor_noisy
    opts = windsor.options
    if "flood" not in host_class(opts.host).capabilities:
        pytest.skip(f"{opts.host}: no guest can be made a noisy neighbour on this kind of host yet")
    candidate, baseline = windsor.beside(lambda name: measure(opts, name, device), topology)
    for r in (candidate, baseline):
        if r is not None:
            print(f"{r.topology}: {r.noisy} flooding its {device}: the others' p99 {r.quiet.p99_s * 1e3:.2f} → "
                  f"{r.loaded.p99_s * 1e3:.2f} ms (×{r.ratio:.2f}), max {r.loaded.max_s * 1e3:.2f} ms; "
                  f"its own requests ×{r.speedup:.1f}" + ("" if r.isolated else " (shares its driver domain)"))
    if candidate.isolated:
        assert candidate.ratio <= GOAL_RATIO, (
            f"{topology}: with {candidate.noisy} flooding its own {device} domain, the others' p99 rose "
            f"×{candidate.ratio:.2f} (goal: at most ×{GOAL_RATIO:g})")
