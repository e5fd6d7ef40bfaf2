"""Phone numbers against the real numbering plans (docs/provider-protocol.md §5.1): international digits out,
nothing guessed, a number invalid for the country its digits name refused with that country code."""

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.core.phone_numbers import InvalidNumber, is_shortcode, normalise_number, normalise_sender

FAST = settings(max_examples=200, deadline=None)

# Per country: how people write a mobile number nationally, the country calling code a deployment would
# configure, the same number written internationally, and the provider's format.
COUNTRIES = [
    # country, national input, country code, international input, provider format
    ("US", "(415) 555-0178", "1", "+1 415-555-0178", "14155550178"),
    ("US", "774.319.9144", "1", "+1 (774) 319-9144", "17743199144"),
    ("CA", "(604) 555-0119", "1", "+1 604 555 0119", "16045550119"),
    ("GB", "07400 123456", "44", "+44 7400 123456", "447400123456"),
    ("DE", "01512 3456789", "49", "+49 1512 3456789", "4915123456789"),
    ("FR", "06 12 34 56 78", "33", "+33 6 12 34 56 78", "33612345678"),
    ("NZ", "021 123 4567", "64", "+64 21 123 4567", "64211234567"),
    ("AU", "0412 345 678", "61", "+61 412 345 678", "61412345678"),
    ("IN", "081234 56789", "91", "+91 81234 56789", "918123456789"),
    ("BR", "(11) 96123-4567", "55", "+55 11 96123-4567", "5511961234567"),
    ("CH", "078 123 45 67", "41", "+41 78 123 45 67", "41781234567"),
    ("RU", "8 (912) 345-67-89", "7", "+7 912 345-67-89", "79123456789"),
    ("JP", "090-1234-5678", "81", "+81 90-1234-5678", "819012345678"),
    ("IE", "085 012 3456", "353", "+353 85 012 3456", "353850123456"),
    ("ZA", "071 123 4567", "27", "+27 71 123 4567", "27711234567"),
]


@pytest.mark.parametrize(("country", "national", "code", "international", "expected"), COUNTRIES)
def test_national_input_with_its_default_country_code(country, national, code, international, expected):
    assert normalise_number(national, default_country_code=code) == expected


@pytest.mark.parametrize(("country", "national", "code", "international", "expected"), COUNTRIES)
def test_international_input_with_or_without_a_default(country, national, code, international, expected):
    assert normalise_number(international) == expected
    assert normalise_number(international, default_country_code="1") == expected
    assert normalise_number(expected) == expected  # the provider's own format reads back as itself
    assert normalise_number(international.replace("+", "", 1), default_country_code="44") == expected


@pytest.mark.parametrize(("country", "national", "code", "international", "expected"), COUNTRIES)
def test_the_table_agrees_with_the_numbering_plan(country, national, code, international, expected):
    # The table is not self-confirming: each expected number is valid for its country by the plan itself.
    number = phonenumbers.parse("+" + expected)
    assert phonenumbers.region_code_for_number(number) == country


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Ten digits of a US number without the 1: the digits name +41 (Switzerland) and +7, where they are
        # not valid numbers. Before the plans were checked, they were sent there.
        ("4155550178", "not a valid number for +41; write the country code"),
        ("7743199144", "not a valid number for +7; write the country code"),
        ("(415) 555-0178", "national format"),  # an area code in parentheses needs a country code
        ("(11) 96123-4567", "national format"),
        ("07400 123456", "national format"),  # a trunk 0: national
        ("011 44 7400 123456", "national format"),  # NANP's dialling prefix is no country code either
        ("0044 7400 123456", "00 dialling prefix"),
        ("+0044 7400 123456", "00 dialling prefix"),
        ("+07400123456", "country codes never start with 0"),
        ("+1 555 555 0123", "not a valid number for +1"),  # 555 is no area code
        ("+44 7700 900123", "not a valid number for +44"),  # a range kept for drama, never assigned
        ("642111111", "not a valid number for +64"),  # one digit short of a NZ mobile
        ("+999 1234 5678", "known country code"),
        ("1234567", "8-15 digits"),
        ("1234567890123456", "8-15 digits"),
        ("+", "has no digits"),
        ("+ ( )", "has no digits"),
        ("", "is empty"),
        ("  () - . ", "is empty"),
        ("++14155550178", "only digits"),
        ("1+4155550178", "only digits"),
        ("1415555017x", "only digits"),
        ("1415\t5550178", "only digits"),
        ("1415/555/0178", "only digits"),
        ("14155550178,14155550179", "only digits"),  # no recipient lists
        ("١٤١٥٥٥٥٠١٧٨", "only digits"),  # non-ASCII digits are not digits here
        ("\uff0b14155550178", "only digits"),  # full-width plus
    ],
)
def test_rejections_without_a_default_country_code(raw, reason):
    with pytest.raises(InvalidNumber, match=re.escape(reason)):
        normalise_number(raw)


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        ("(415) 555-01", "1", "not a valid number for +1 in national format"),
        ("0774 319 9144", "1", "not a valid number for +1 in national format"),  # NANP has no trunk 0
        ("07700 900123", "44", "not a valid number for +44 in national format"),
        ("00 44 7400 123456", "44", "00 dialling prefix"),
        ("4155550178", "44", "not a valid number for +41"),  # not British, then not Swiss either
    ],
)
def test_rejections_with_a_default_country_code(raw, code, reason):
    with pytest.raises(InvalidNumber, match=re.escape(reason)):
        normalise_number(raw, default_country_code=code)


def test_with_a_default_a_number_valid_there_is_national_else_international():
    assert normalise_number("4155550178", default_country_code="1") == "14155550178"
    assert normalise_number("447400123456", default_country_code="1") == "447400123456"
    assert normalise_number("+64 21 123 4567", default_country_code="44") == "64211234567"


@pytest.mark.parametrize("raw", [None, 14155550178, 1.5, b"14155550178", ["1"]])
def test_non_strings_rejected_not_type_error(raw):
    with pytest.raises(InvalidNumber, match="must be a string"):
        normalise_number(raw)


@pytest.mark.parametrize("raw", ["0044 7400 123456", "4155550178", "(415) 555-0178", "+1 555 555 0123"])
def test_message_never_echoes_the_input(raw):
    with pytest.raises(InvalidNumber) as caught:
        normalise_number(raw)
    digits = "".join(c for c in raw if c.isdigit())
    assert digits[-7:] not in str(caught.value)


@pytest.mark.parametrize("bad", ["0", "+1", "1234", "4a", 44, "999"])
def test_malformed_default_country_code_is_a_configuration_error(bad):
    with pytest.raises(ValueError, match="default_country_code") as caught:
        normalise_number("14155550178", default_country_code=bad)
    assert not isinstance(caught.value, InvalidNumber)


def test_an_empty_default_country_code_means_none():
    with pytest.raises(InvalidNumber, match="national format"):
        normalise_number("(415) 555-0178", default_country_code="")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("47215", "47215"),
        ("472150", "472150"),
        ("47-215", "47215"),
        ("+1 774 319 9144", "17743199144"),  # a longcode
        ("17743199144", "17743199144"),
    ],
)
def test_sender_shortcode_or_longcode(raw, expected):
    assert normalise_sender(raw) == expected


@pytest.mark.parametrize("raw", ["4721", "+47215", "1234567", "4721x", "4155550178"])
def test_sender_rejections(raw):
    with pytest.raises(InvalidNumber):
        normalise_sender(raw)


def test_is_shortcode():
    assert is_shortcode("47215")
    assert is_shortcode("472150")
    assert not is_shortcode("4721")
    assert not is_shortcode("4721500")
    assert not is_shortcode("47 215")


decoration = st.text(alphabet=" -.", max_size=2)


@st.composite
def decorated(draw):
    """A valid number of the table, written with its + and random spaces, dashes and dots."""
    expected = draw(st.sampled_from([row[-1] for row in COUNTRIES]))
    return expected, "+" + "".join(draw(decoration) + digit for digit in expected) + draw(decoration)


@FAST
@given(decorated())
def test_decorated_valid_numbers_normalise_back_to_themselves(case):
    expected, raw = case
    assert normalise_number(raw) == expected


@FAST
@given(st.text(max_size=24))
def test_anything_accepted_is_a_valid_number_of_its_plan(raw):
    try:
        result = normalise_number(raw)
    except InvalidNumber:
        return
    assert phonenumbers.is_valid_number(phonenumbers.parse("+" + result))
    compact = raw.strip(" \t\r\n").translate(str.maketrans("", "", " ()-.")).removeprefix("+")
    assert result == compact  # without a default country code, nothing is added or removed


@FAST
@given(st.from_regex(r"\A0[0-9]{7,14}\Z"))
def test_leading_zero_is_never_accepted_without_a_country_code(raw):
    with pytest.raises(InvalidNumber):
        normalise_number(raw)


@FAST
@given(st.text(alphabet="0123456789+()-. x", max_size=20), st.sampled_from(["1", "44", "64", "353"]))
def test_result_is_always_a_valid_international_number(raw, country_code):
    try:
        result = normalise_number(raw, default_country_code=country_code)
    except InvalidNumber:
        return
    assert result.isascii()
    assert result.isdigit()
    assert 8 <= len(result) <= 15
    assert phonenumbers.is_valid_number(phonenumbers.parse("+" + result))
