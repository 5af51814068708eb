"""The code stays typed (mypy --strict) and clean (ruff)."""

import sys

from helpers import run


def test_ruff() -> None:
    done = run(sys.executable, "-m", "ruff", "check", ".")
    assert done.returncode == 0, done.stdout[-4000:]


def test_mypy_strict() -> None:
    done = run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout[-4000:]
