"""Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):

    sleep = random_between(0, min(cap, base * 2 ** attempt))

Full jitter spreads retries of many throttled senders evenly instead of letting them return in waves.
Pure: the random source is a parameter.
"""

from __future__ import annotations

import math
import random
from typing import Final

__all__ = [
    "SQS_MAX_VISIBILITY_TIMEOUT",
    "backoff_ceiling",
    "backoff_seconds",
    "visibility_timeout_seconds",
]

SQS_MAX_VISIBILITY_TIMEOUT: Final = 43_200  # 12 hours, the SQS limit
_DEFAULT_RNG: Final = random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311


def _check(attempt: int, base: float, cap: float) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError("attempt must be an integer >= 0")
    for name, value in (("base", base), ("cap", cap)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{name} must be a finite number >= 0")


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """min(cap, base * 2**attempt): the upper bound of the jittered delay. Non-decreasing in `attempt`."""
    _check(attempt, base, cap)
    try:
        exponential = math.ldexp(float(base), attempt)
    except OverflowError:
        return float(cap)
    return float(min(cap, exponential))


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """A full-jitter delay for retry number `attempt` (0 for the first retry): uniform in [0, ceiling].

    Never negative, never above `cap`. Raises ValueError for a negative attempt or a negative or
    non-finite base or cap.
    """
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    source = rng if rng is not None else _DEFAULT_RNG
    return min(ceiling, max(0.0, source.random() * ceiling))


def visibility_timeout_seconds(
    receive_count: int | str,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
    minimum: int = 0,
) -> int:
    """A visibility timeout for a message to be redelivered after a full-jitter backoff.

    `receive_count` is the message's `ApproximateReceiveCount` (1 on first delivery; the SQS attribute is
    a string), so the first retry uses attempt 0. The delay is rounded up to whole seconds and kept within
    [minimum, min(cap, 43200)] (`minimum` lets a caller avoid an immediate redelivery; it never exceeds
    the upper bound).
    """
    if isinstance(receive_count, str) and receive_count.isascii() and receive_count.isdigit():
        receive_count = int(receive_count)
    if isinstance(receive_count, bool) or not isinstance(receive_count, int) or receive_count < 1:
        raise ValueError("receive_count must be a positive integer (or its decimal string)")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ValueError("minimum must be an integer >= 0")
    seconds = backoff_seconds(receive_count - 1, base=base, cap=cap, rng=rng)
    upper = min(math.floor(cap), SQS_MAX_VISIBILITY_TIMEOUT)
    return max(min(minimum, upper), min(math.ceil(seconds), upper))
