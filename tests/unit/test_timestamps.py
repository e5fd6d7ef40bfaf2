"""Provider timestamps (docs/provider-protocol.md §3.6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.core.times import isoformat_utc, parse_timestamp, to_utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-14T10:02:11-04:00", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-14T10:02:11.482913-04:00", utc(2024, 3, 14, 14, 2, 11, 482913)),
        ("2024-03-14T10:02:11.4-04:00", utc(2024, 3, 14, 14, 2, 11, 400000)),
        ("2024-03-14T10:02:11.123-05:00", utc(2024, 3, 14, 15, 2, 11, 123000)),
        ("2024-03-14T10:02:11-04", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-12T09:15:02-04", utc(2024, 3, 12, 13, 15, 2)),
        ("2011-05-09 16:40:02.518224-04", utc(2011, 5, 9, 20, 40, 2, 518224)),
        ("2011-05-09 16:40:02-05", utc(2011, 5, 9, 21, 40, 2)),
        ("2024-03-14T14:02:11Z", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-14T14:02:11.5Z", utc(2024, 3, 14, 14, 2, 11, 500000)),
        ("2024-03-14T19:32:11+05:30", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-14T19:32:11+0530", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-14T14:02:11+00:00", utc(2024, 3, 14, 14, 2, 11)),
        ("2024-03-15T22:41:07-04:00", utc(2024, 3, 16, 2, 41, 7)),  # crosses midnight in UTC
        ("  \n2024-03-14T10:02:11-04:00\t ", utc(2024, 3, 14, 14, 2, 11)),  # trimmed first
    ],
)
def test_observed_forms_normalise_to_utc(raw, expected):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "2024-03-14T10:02:11",  # no offset: never guessed to be UTC
        "2024-03-14 10:02:11.518224",
        "2024-03-14",
        "10:02:11-04:00",
        "2024-03-14T10:02:11.1234567-04:00",  # more than 6 fractional digits
        "2024-03-14T10:02:11.-04:00",
        "2024-03-14T10:02-04:00",  # no seconds
        "2024-02-30T10:02:11-04:00",  # no such day
        "2024-13-01T10:02:11-04:00",
        "2024-03-14T24:02:11-04:00",
        "2024-03-14T10:60:11-04:00",
        "2024-03-14T10:02:61-04:00",
        "2024-03-14T10:02:11+24:00",  # offsets stop at ±23:59
        "2024-03-14T10:02:11-04:60",
        "2024-03-14T10:02:11-4",
        "2024-03-14T10:02:11 -04:00",
        "2024-03-14T10:02:11z",  # lower-case z and t are not provider forms
        "2024-03-14t10:02:11Z",
        "0001-01-01T00:00:00+01:00",  # before datetime's range in UTC
        "9999-12-31T23:59:59-01:00",  # after it
        "\uff12\uff10\uff12\uff14-03-14T10:02:11-04:00",  # fullwidth (non-ASCII) digits
        "1710424931",
        "yesterday",
        "2024-03-14T10:02:11-04:00 extra",
    ],
)
def test_missing_offset_or_unparseable_gives_none(raw):
    assert parse_timestamp(raw) is None


OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


@st.composite
def provider_timestamps(draw):
    """(string in one of the §3.6 forms, the instant it denotes)."""
    local = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
    digits = draw(st.integers(min_value=0, max_value=6))
    local = local.replace(microsecond=local.microsecond - local.microsecond % 10 ** (6 - digits))
    minutes = draw(OFFSETS)
    form = draw(st.sampled_from(["colon", "short", "compact", "zulu"]))
    if form == "short":
        minutes -= minutes % 60 if minutes >= 0 else -((-minutes) % 60)
    if form == "zulu":
        minutes = 0
    separator = draw(st.sampled_from(["T", " "]))
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    text += {
        "colon": f"{sign}{hours:02d}:{rest:02d}",
        "short": f"{sign}{hours:02d}",
        "compact": f"{sign}{hours:02d}{rest:02d}",
        "zulu": "Z",
    }[form]
    instant = local.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    return text, instant


@settings(max_examples=200, deadline=None)
@given(provider_timestamps())
def test_any_provider_form_parses_to_the_same_instant_in_utc(case):
    text, instant = case
    parsed = parse_timestamp(text)
    assert parsed == instant
    assert parsed.utcoffset() == timedelta(0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_never_raises(text):
    parsed = parse_timestamp(text)
    assert parsed is None or parsed.tzinfo is UTC


def test_to_utc_takes_naive_as_utc_and_converts_aware():
    assert to_utc(datetime(2024, 3, 14, 14, 2, 11)) == utc(2024, 3, 14, 14, 2, 11)
    eastern = timezone(timedelta(hours=-4))
    converted = to_utc(datetime(2024, 3, 14, 10, 2, 11, tzinfo=eastern))
    assert converted == utc(2024, 3, 14, 14, 2, 11)
    assert converted.tzinfo is UTC


def test_isoformat_utc_is_sortable_text():
    assert isoformat_utc(utc(2024, 3, 14, 14, 2, 11)) == "2024-03-14T14:02:11Z"
    assert isoformat_utc(parse_timestamp("2024-03-14T09:58:03.214870-04:00")) == "2024-03-14T13:58:03.214870Z"
