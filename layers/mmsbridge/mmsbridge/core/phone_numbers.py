"""Phone numbers in the provider's international format (docs/provider-protocol.md §5.1): country code plus
national number, digits only, no `+`, no `00`/`011` dialling prefix.

Every number is checked against the real numbering plans (libphonenumber's metadata, through the
`phonenumberslite` distribution: the validation data without the geocoding and carrier tables). The rule is
"never guess": digits are read as international unless a default country code is configured, and a number
that is not valid for the country its digits name is refused, so `4155550178` (meant as a San Francisco
number, read as +41) is an error rather than a message to Switzerland. National formatting cues (an area
code in parentheses first, a leading trunk `0`) without a country code are refused unless a default country
code is configured.

Error messages never echo the input: numbers are personal data and these messages end up in logs. They
name the country code the digits were read with, which is what the writer needs to see.
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = [
    "MAX_DIGITS",
    "MIN_DIGITS",
    "InvalidNumber",
    "is_shortcode",
    "normalise_number",
    "normalise_sender",
]

MIN_DIGITS = 8
MAX_DIGITS = 15

# The decorations §5.1 says to strip. Tabs, slashes, letters etc. are not among them and are rejected.
_DECORATIONS = str.maketrans("", "", " ()-.")
_SURROUNDING_WHITESPACE = " \t\r\n"
_ASCII_DIGITS = re.compile(r"[0-9]+")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_SHORTCODE = re.compile(r"[0-9]{5,6}")
_UNKNOWN_REGION = "ZZ"


class InvalidNumber(ValueError):
    """The input is not a number the provider can route. The message says why, never what the input was."""


def _region(default_country_code: str | None) -> str | None:
    """The main region of a configured country calling code (`1` → `US`, `44` → `GB`), or None."""
    if default_country_code is None or default_country_code == "":
        return None
    if not isinstance(default_country_code, str) or not _COUNTRY_CODE.fullmatch(default_country_code):
        # A configuration error, not a bad number: plain ValueError so it is not mistaken for bad input.
        raise ValueError("default_country_code must be 1-3 digits not starting with 0, e.g. '1' or '44'")
    region = phonenumbers.region_code_for_country_code(int(default_country_code))
    if region == _UNKNOWN_REGION:
        raise ValueError(f"default_country_code {default_country_code} is not a country calling code")
    return region


def _compact(raw: object) -> tuple[bool, str, str]:
    """(had a leading +, the digits left after the decorations §5.1 allows, the stripped text)."""
    if not isinstance(raw, str):
        raise InvalidNumber("must be a string")
    text = raw.strip(_SURROUNDING_WHITESPACE)
    compact = text.translate(_DECORATIONS)
    if not compact:
        raise InvalidNumber("is empty")
    had_plus = compact.startswith("+")
    digits = compact[1:] if had_plus else compact
    if not digits:
        raise InvalidNumber("has no digits")
    if not _ASCII_DIGITS.fullmatch(digits):
        raise InvalidNumber("may contain only digits, spaces, ( ) - . and one leading +")
    return had_plus, digits, text


def _international(number: phonenumbers.PhoneNumber) -> str:
    digits = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:  # a few plans have shorter numbers the provider refuses
        raise InvalidNumber(f"must have {MIN_DIGITS}-{MAX_DIGITS} digits including the country code")
    return digits


def normalise_number(raw: str, *, default_country_code: str | None = None) -> str:
    """Return `raw` as international digits, e.g. `+1 (774) 319-9144` -> `17743199144`.

    Strip surrounding whitespace; remove spaces, `(`, `)`, `-` and `.`; one leading `+` means the country
    code follows. Then:
    - with `default_country_code` configured and no `+`, the digits are first read as that country's
      (national, or with its country code in front); if that is not a valid number of the country and the
      input carries no national cue, they are read as international;
    - otherwise the digits must be international (country code first). An area code in parentheses at the
      start (`(415) 555-0178`) or a leading trunk `0` is national format, refused without a default
      country code; a leading `00` is a dialling prefix, always refused.
    The result must be a valid number in the numbering plan of its country code.

    Raises InvalidNumber (a ValueError) with the reason; ValueError for a malformed default_country_code.
    """
    region = _region(default_country_code)
    had_plus, digits, text = _compact(raw)
    if digits.startswith("00"):
        raise InvalidNumber("must not start with the 00 dialling prefix: write the country code without it")
    national_cue = not had_plus and (text.startswith("(") or digits.startswith("0"))
    if region is not None and not had_plus:
        national = _parse(digits, region)
        if national is not None and phonenumbers.is_valid_number(national):
            return _international(national)
        if national_cue:
            raise InvalidNumber(f"is not a valid number for +{default_country_code} in national format")
    elif national_cue:
        raise InvalidNumber(
            "is in national format (an area code in parentheses or a leading 0): write the country code, "
            "e.g. +1 (415) ..., or configure DefaultCountryCode"
        )
    if digits.startswith("0"):
        raise InvalidNumber("country codes never start with 0")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidNumber(f"must have {MIN_DIGITS}-{MAX_DIGITS} digits including the country code")
    number = _parse("+" + digits, None)
    if number is None:
        raise InvalidNumber("does not start with a known country code")
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"is not a valid number for +{number.country_code}; write the country code")
    return _international(number)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def is_shortcode(value: str) -> bool:
    """True for a 5-6 digit shortcode (already compact: digits only)."""
    return isinstance(value, str) and _SHORTCODE.fullmatch(value) is not None


def normalise_sender(raw: str, *, default_country_code: str | None = None) -> str:
    """A `FROM` value: a 5-6 digit shortcode (returned as its digits), or a longcode (`normalise_number`).

    A `+` always means an international longcode, so `+47215` is rejected rather than read as a shortcode.
    """
    _region(default_country_code)
    had_plus, digits, _ = _compact(raw)
    if not had_plus and is_shortcode(digits):
        return digits
    return normalise_number(raw, default_country_code=default_country_code)
