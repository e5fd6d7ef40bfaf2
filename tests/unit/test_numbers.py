import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.numbers import InvalidNumber, is_shortcode, normalise_number, normalise_sender

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (774) 319-9144", "17743199144"),  # the brief's example
        ("1 (774)-319-9144", "17743199144"),  # §5.1's US example with its country code
        ("17743199144", "17743199144"),
        ("642111111", "642111111"),  # §5.1 New Zealand
        ("+642111111", "642111111"),  # "not +642111111": the plus is dropped
        ("+44 7700.900.123", "447700900123"),
        ("  +1 312 555 0147\n", "13125550147"),  # surrounding whitespace
        ("12345678", "12345678"),  # 8 digits: the minimum
        ("123456789012345", "123456789012345"),  # 15 digits: the maximum
    ],
)
def test_international_examples(raw, expected):
    assert normalise_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0044 7700 900123", "00 dialling prefix"),
        ("+0044 7700 900123", "00 dialling prefix"),
        ("001 774 319 9144", "00 dialling prefix"),
        ("07700 900123", "starts with 0"),  # national, no default country code: never guessed
        ("011 44 7700 900123", "starts with 0"),  # NANP dialling prefix
        ("+07700900123", "country codes never start with 0"),
        ("1234567", "8-15 digits"),
        ("1234567890123456", "8-15 digits"),
        ("+", "has no digits"),
        ("+ ( )", "has no digits"),
        ("", "is empty"),
        ("  () - . ", "is empty"),
        ("++17743199144", "only digits"),
        ("1+7743199144", "only digits"),
        ("1774319914x", "only digits"),
        ("1774\t3199144", "only digits"),
        ("1774/319/9144", "only digits"),
        ("17743199144,17743199145", "only digits"),  # no recipient lists
        ("١٢٣٤٥٦٧٨٩", "only digits"),  # non-ASCII digits are not digits here
        ("\uff0b17743199144", "only digits"),  # full-width plus
    ],
)
def test_rejections(raw, reason):
    with pytest.raises(InvalidNumber, match=reason):
        normalise_number(raw)


@pytest.mark.parametrize("raw", [None, 17743199144, 1.5, b"17743199144", ["1"]])
def test_non_strings_rejected_not_type_error(raw):
    with pytest.raises(InvalidNumber, match="must be a string"):
        normalise_number(raw)


def test_message_never_echoes_the_input():
    with pytest.raises(InvalidNumber) as caught:
        normalise_number("0044 7700 900123")
    assert "7700" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "country_code", "expected"),
    [
        ("(774)-319-9144", "1", "17743199144"),  # §5.1: the US number becomes 17743199144
        ("774.319.9144", "1", "17743199144"),
        ("+1 774 319 9144", "1", "17743199144"),  # international input is untouched
        ("17743199144", "1", "17743199144"),  # 11 digits: already international
        ("07700 900123", "44", "447700900123"),  # trunk 0 replaced by the country code
        ("0117 496 0123", "44", "441174960123"),
        ("021 111 111", "64", "6421111111"),
        ("+64 21 111 111", "44", "6421111111"),  # '+' always means international
        ("642111111", "44", "642111111"),  # no trunk 0: read as international
    ],
)
def test_national_format_with_default_country_code(raw, country_code, expected):
    assert normalise_number(raw, default_country_code=country_code) == expected


@pytest.mark.parametrize(
    ("raw", "country_code", "reason"),
    [
        ("011 44 7700 900123", "1", "starts with 0"),  # NANP has no trunk 0; 011 is its dialling prefix
        ("0774 319 9144", "1", "starts with 0"),
        ("00 44 7700 900123", "44", "00 dialling prefix"),
        ("0123", "44", "8-15 digits"),  # too short even with the country code
        ("+07700900123", "44", "never start with 0"),
    ],
)
def test_national_format_rejections(raw, country_code, reason):
    with pytest.raises(InvalidNumber, match=reason):
        normalise_number(raw, default_country_code=country_code)


def test_without_default_country_code_a_nanp_national_number_is_read_as_international():
    # Ten digits are a valid international length: §5.1's builder rule keeps them as they are.
    assert normalise_number("(774) 319-9144") == "7743199144"


@pytest.mark.parametrize("bad", ["", "0", "+1", "1234", "4a", 44])
def test_malformed_default_country_code_is_a_configuration_error(bad):
    with pytest.raises(ValueError, match="default_country_code") as caught:
        normalise_number("17743199144", default_country_code=bad)
    assert not isinstance(caught.value, InvalidNumber)


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


@pytest.mark.parametrize("raw", ["4721", "+47215", "1234567", "4721x"])
def test_sender_rejections(raw):
    with pytest.raises(InvalidNumber):
        normalise_sender(raw)


def test_is_shortcode():
    assert is_shortcode("47215")
    assert is_shortcode("472150")
    assert not is_shortcode("4721")
    assert not is_shortcode("4721500")
    assert not is_shortcode("47 215")


valid_numbers = st.from_regex(r"\A[1-9][0-9]{7,14}\Z")
decoration = st.text(alphabet=" ()-.", max_size=3)


@st.composite
def decorated(draw):
    digits = draw(valid_numbers)
    pieces = [draw(decoration) + digit for digit in digits]
    plus = "+" if draw(st.booleans()) else ""
    return digits, draw(decoration) + plus + "".join(pieces) + draw(decoration)


@FAST
@given(decorated())
def test_decorated_valid_numbers_normalise_back_to_themselves(case):
    digits, raw = case
    assert normalise_number(raw) == digits


@FAST
@given(st.text(max_size=24))
def test_anything_else_is_rejected_never_guessed(raw):
    compact = raw.strip(" \t\r\n").translate(str.maketrans("", "", " ()-."))
    compact = compact.removeprefix("+")
    well_formed = compact.isascii() and compact.isdigit() and 8 <= len(compact) <= 15 and compact[0] != "0"
    if well_formed:
        assert normalise_number(raw) == compact
    else:
        with pytest.raises(InvalidNumber):
            normalise_number(raw)


@FAST
@given(st.from_regex(r"\A0[0-9]{7,14}\Z"))
def test_leading_zero_is_never_accepted_without_a_country_code(raw):
    with pytest.raises(InvalidNumber):
        normalise_number(raw)


@FAST
@given(st.text(alphabet="0123456789+()-. x", max_size=20), st.sampled_from(["1", "44", "64", "353"]))
def test_result_is_always_international_digits(raw, country_code):
    try:
        result = normalise_number(raw, default_country_code=country_code)
    except InvalidNumber:
        return
    assert result.isascii()
    assert result.isdigit()
    assert 8 <= len(result) <= 15
    assert result[0] != "0"
