"""Fixtures for the harness's own tests: real sim:// hosts, shut down whatever happens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest
from helpers import CADENCE

from harness import reuse
from harness.backend import get_host
from harness.backend.sim import SimHost
from harness.lab.machine import Lab
from harness.model import GuestSpec, fleet
from harness.topology import load_topology


@pytest.fixture(autouse=True)
def no_host_kept_between_tests() -> Iterator[None]:
    """A test that runs cases in this process leaves no booted topology to the next test."""
    yield
    reuse.close()


@pytest.fixture
def booted() -> Iterator[tuple[SimHost, tuple[GuestSpec, ...]]]:
    """A disaggregated sim:// host with 6 guests, shut down after the test."""
    host = get_host("sim://")
    assert isinstance(host, SimHost)
    guests = fleet(6, 0)
    with host:
        host.boot(load_topology("disaggregated"), guests, CADENCE, 0)
        yield host, guests


@pytest.fixture(scope="session")
def matrix_junit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pytest suites` as the quick start runs it: the whole matrix on sim://, with its JUnit file
    and windsor-artifacts/ beside it (shared by the end-to-end and the report tests)."""
    junit = tmp_path_factory.mktemp("matrix") / "junit.xml"
    done = helpers.run(*helpers.pytest_argv("suites", "--junitxml", str(junit), "-q"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return junit


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The real-Xen lab (booted, or rebuilt and booted, if needed), stopped after the last lab test."""
    lab = Lab()
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


NIGHTLY = "WINDSOR_NIGHTLY"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"nightly: a slow lab case run only with {NIGHTLY}=1 (the nightly lab job); "
                                       "CI runs its cheaper siblings")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests last: a 4 GB QEMU guest booting or shutting down stalls this 2-core machine for
    hundreds of milliseconds, which the timing-precise sim:// tests would measure. Nightly-only
    cases are skipped unless $WINDSOR_NIGHTLY is 1."""
    items.sort(key=lambda item: item.get_closest_marker("lab") is not None)
    if os.environ.get(NIGHTLY) != "1":
        for item in items:
            if item.get_closest_marker("nightly"):
                item.add_marker(pytest.mark.skip(reason=f"nightly only ({NIGHTLY}=1): CI keeps CI under 30 min"))
