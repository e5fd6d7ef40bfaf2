"""Bounded waiting for the tests: poll a check until it answers something true, or give up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """`check()` until it returns something true or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
