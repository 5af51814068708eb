"""Waiting on a condition with a deadline (tenacity), never a fixed sleep."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

log = logging.getLogger("windsor")


def wait_until(what: str, probe: Callable[[], bool], timeout: float, quiet: bool = False,
               interval: float = 0.02) -> bool:
    """Poll `probe` (backing off from 2 ms to `interval`) until true or `timeout`; False at the
    deadline. A costly probe (an ssh command) takes a longer `interval`."""
    if not quiet:
        log.info("waiting up to %.1fs for %s", timeout, what)
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.002, max=interval),
        retry=retry_if_result(lambda ok: not ok) | retry_if_exception_type(OSError),
        reraise=False,
    )
    try:
        return bool(retrying(probe))
    except RetryError:
        log.warning("gave up after %.1fs waiting for %s", timeout, what)
        return False
