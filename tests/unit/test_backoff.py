import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.core.backoff import (
    SQS_MAX_VISIBILITY_TIMEOUT,
    backoff_ceiling,
    backoff_seconds,
    visibility_timeout_seconds,
)

FAST = settings(max_examples=200, deadline=None)

attempts = st.integers(min_value=0, max_value=5000)
bases = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
caps = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


class FixedRandom(random.Random):
    """A random source that always returns the same value in [0, 1)."""

    def __init__(self, value):
        super().__init__(0)
        self.value = value

    def random(self):
        return self.value


def test_ceiling_doubles_until_the_cap():
    assert [backoff_ceiling(n, base=0.5, cap=10) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff_ceiling(10_000, base=1, cap=900) == 900  # no overflow for huge attempts
    assert backoff_ceiling(10_000, base=0, cap=900) == 0


def test_full_jitter_spans_zero_to_ceiling():
    assert backoff_seconds(3, base=1, cap=100, rng=FixedRandom(0.0)) == 0.0
    assert backoff_seconds(3, base=1, cap=100, rng=FixedRandom(0.5)) == 4.0
    assert backoff_seconds(3, base=1, cap=100, rng=FixedRandom(0.999999)) == pytest.approx(8.0, rel=1e-5)
    assert backoff_seconds(30, base=1, cap=100, rng=FixedRandom(0.5)) == 50.0


def test_deterministic_with_a_seeded_rng():
    first = [backoff_seconds(n, base=0.2, cap=30, rng=random.Random(42)) for n in range(10)]
    second = [backoff_seconds(n, base=0.2, cap=30, rng=random.Random(42)) for n in range(10)]
    assert first == second
    shared = random.Random(7)
    sequence = [backoff_seconds(5, base=1, cap=30, rng=shared) for _ in range(5)]
    assert len(set(sequence)) == 5  # the injected source is actually used


def test_default_rng_works_and_stays_in_bounds():
    for attempt in range(20):
        assert 0 <= backoff_seconds(attempt, base=1, cap=60) <= backoff_ceiling(attempt, base=1, cap=60)


def test_jitter_is_spread_over_the_whole_range():
    rng = random.Random(1)
    samples = [backoff_seconds(4, base=1, cap=1000, rng=rng) for _ in range(2000)]
    assert min(samples) < 0.5
    assert max(samples) > 15.5
    assert 7 < sum(samples) / len(samples) < 9  # uniform on [0, 16]: mean 8


@pytest.mark.parametrize(
    ("attempt", "base", "cap"),
    [
        (-1, 1, 10),
        (1.5, 1, 10),
        (True, 1, 10),
        ("2", 1, 10),
        (1, -1, 10),
        (1, 1, -1),
        (1, math.nan, 10),
        (1, 1, math.inf),
        (1, "1", 10),
        (1, None, 10),
    ],
)
def test_invalid_arguments(attempt, base, cap):
    with pytest.raises(ValueError, match=r"attempt|base|cap"):
        backoff_seconds(attempt, base=base, cap=cap)


@FAST
@given(attempts, bases, caps, st.integers(min_value=0, max_value=2**32))
def test_never_negative_never_above_cap(attempt, base, cap, seed):
    delay = backoff_seconds(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= cap
    assert delay <= backoff_ceiling(attempt, base=base, cap=cap)


@FAST
@given(attempts, bases, caps)
def test_ceiling_is_monotone_and_capped(attempt, base, cap):
    here = backoff_ceiling(attempt, base=base, cap=cap)
    assert here <= backoff_ceiling(attempt + 1, base=base, cap=cap)
    assert here <= cap
    if attempt < 1000:
        assert here == min(cap, base * 2.0**attempt)


@FAST
@given(attempts, bases, caps, caps)
def test_ceiling_is_monotone_in_the_cap(attempt, base, cap_a, cap_b):
    low, high = sorted((cap_a, cap_b))
    assert backoff_ceiling(attempt, base=base, cap=low) <= backoff_ceiling(attempt, base=base, cap=high)


# --------------------------------------------------------------------------------- visibility timeout


def test_visibility_timeout_from_receive_count():
    # Receive count 1 is the first delivery: its retry waits up to `base`.
    assert visibility_timeout_seconds(1, base=4, cap=900, rng=FixedRandom(0.5)) == 2
    assert visibility_timeout_seconds("3", base=4, cap=900, rng=FixedRandom(0.5)) == 8
    assert visibility_timeout_seconds(3, base=4, cap=900, rng=FixedRandom(0.6)) == 10  # 9.6 rounded up
    assert visibility_timeout_seconds(50, base=4, cap=900, rng=FixedRandom(0.999999)) == 900


def test_visibility_timeout_within_sqs_limits():
    assert (
        visibility_timeout_seconds(100, base=60, cap=10**9, rng=FixedRandom(0.999999))
        == SQS_MAX_VISIBILITY_TIMEOUT
    )
    assert visibility_timeout_seconds(1, base=1, cap=10, rng=FixedRandom(0.0)) == 0
    assert visibility_timeout_seconds(1, base=1, cap=10, rng=FixedRandom(0.0), minimum=5) == 5
    assert visibility_timeout_seconds(1, base=1, cap=10, rng=FixedRandom(0.0), minimum=50) == 10  # cap wins
    assert visibility_timeout_seconds(40, base=1, cap=9.5, rng=FixedRandom(0.99)) == 9  # whole seconds <= cap


@pytest.mark.parametrize("count", [0, -1, "0", "", "x", "1.5", None, True, 2.0, "\u0661"])
def test_visibility_timeout_rejects_bad_receive_counts(count):
    with pytest.raises(ValueError, match="receive_count"):
        visibility_timeout_seconds(count, base=1, cap=10)


@pytest.mark.parametrize("minimum", [-1, 1.5, True])
def test_visibility_timeout_rejects_bad_minimum(minimum):
    with pytest.raises(ValueError, match="minimum"):
        visibility_timeout_seconds(1, base=1, cap=10, minimum=minimum)


@FAST
@given(
    st.integers(min_value=1, max_value=10_000),
    bases,
    st.floats(min_value=0, max_value=1e7, allow_nan=False),
    st.integers(min_value=0, max_value=2**32),
)
def test_visibility_timeout_is_whole_seconds_in_range(count, base, cap, seed):
    seconds = visibility_timeout_seconds(count, base=base, cap=cap, rng=random.Random(seed))
    assert isinstance(seconds, int)
    assert 0 <= seconds <= min(cap, SQS_MAX_VISIBILITY_TIMEOUT)
