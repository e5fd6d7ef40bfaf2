"""Phone numbers in the provider's international format (docs/provider-protocol.md §5.1): country code plus
national number,
digits only, no `+`, no `00`/`011` dialling prefix.

The rule is "never guess": input that cannot be read as an international number without inventing a
country code is rejected. A national number is accepted only when the caller configures a default country
code, and only in a shape that cannot also be an international number (see `normalise_number`).

Error messages never echo the input: numbers are personal data and these messages end up in logs.
"""

from __future__ import annotations

import re

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
# NANP (country code 1) has no trunk prefix: a national number is 10 digits, area code and exchange
# each starting with 2-9.
_NANP_NATIONAL = re.compile(r"[2-9][0-9]{2}[2-9][0-9]{6}")
# Elsewhere a national number starts with a single trunk `0`; no international number starts with 0.
_TRUNK_PREFIXED = re.compile(r"0[1-9][0-9]*")
_SHORTCODE = re.compile(r"[0-9]{5,6}")


class InvalidNumber(ValueError):
    """The input is not a number the provider can route. The message says why, never what the input was."""


def _check_country_code(default_country_code: str | None) -> str | None:
    if default_country_code is None:
        return None
    if not isinstance(default_country_code, str) or not _COUNTRY_CODE.fullmatch(default_country_code):
        # A configuration error, not a bad number: plain ValueError so it is not mistaken for bad input.
        raise ValueError("default_country_code must be 1-3 digits not starting with 0, e.g. '1' or '44'")
    return default_country_code


def _compact(raw: object) -> tuple[bool, str]:
    """(had a leading +, the remaining characters) after stripping the decorations §5.1 allows."""
    if not isinstance(raw, str):
        raise InvalidNumber("must be a string")
    compact = raw.strip(_SURROUNDING_WHITESPACE).translate(_DECORATIONS)
    if not compact:
        raise InvalidNumber("is empty")
    if compact.startswith("+"):
        return True, compact[1:]
    return False, compact


def _national_significant_number(digits: str, country_code: str) -> str | None:
    """The national significant number if `digits` is in national format for `country_code`, else None."""
    if country_code == "1":
        return digits if _NANP_NATIONAL.fullmatch(digits) else None
    if _TRUNK_PREFIXED.fullmatch(digits):
        return digits[1:]
    return None


def normalise_number(raw: str, *, default_country_code: str | None = None) -> str:
    """Return `raw` as international digits, e.g. `+1 (774) 319-9144` -> `17743199144`.

    Steps (§5.1): strip surrounding whitespace; remove spaces, `(`, `)`, `-` and `.`; drop one leading `+`.
    What is left must be 8-15 ASCII digits that do not start with `0` (no country code starts with 0, so a
    leading `00` is a dialling prefix and a single leading `0` is a national trunk prefix).

    National format is recognised only when `default_country_code` is configured, the input has no `+`,
    and it has one of these shapes, none of which can be read as an international number:
    - country code `1` (NANP): exactly 10 digits shaped like a North American number (area code and
      exchange starting 2-9), e.g. `(774) 319-9144` -> `17743199144`;
    - any other country code: a single trunk `0` followed by a non-zero digit, e.g. with `44`,
      `07700 900123` -> `447700900123`.
    Everything else without `+` is read as international (as if it had one). With country code `1`, a
    10-digit international number of NANP shape must therefore be written with `+` to be read as such.

    Raises InvalidNumber (a ValueError) with the reason; ValueError for a malformed default_country_code.
    """
    country_code = _check_country_code(default_country_code)
    had_plus, digits = _compact(raw)
    if not digits:
        raise InvalidNumber("has no digits")
    if not _ASCII_DIGITS.fullmatch(digits):
        raise InvalidNumber("may contain only digits, spaces, ( ) - . and one leading +")
    if digits.startswith("00"):
        raise InvalidNumber("must not start with the 00 dialling prefix: write the country code without it")
    if not had_plus and country_code is not None:
        national = _national_significant_number(digits, country_code)
        if national is not None:
            digits = country_code + national
    if digits.startswith("0"):
        if had_plus:
            raise InvalidNumber("country codes never start with 0")
        raise InvalidNumber(
            "starts with 0, so it is not international; national numbers need a configured "
            "default country code (and, for country code 1, must be 10 digits)"
        )
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidNumber(f"must have {MIN_DIGITS}-{MAX_DIGITS} digits including the country code")
    return digits


def is_shortcode(value: str) -> bool:
    """True for a 5-6 digit shortcode (already compact: digits only)."""
    return isinstance(value, str) and _SHORTCODE.fullmatch(value) is not None


def normalise_sender(raw: str, *, default_country_code: str | None = None) -> str:
    """A `FROM` value: a 5-6 digit shortcode (returned as its digits), or a longcode (`normalise_number`).

    A `+` always means an international longcode, so `+47215` is rejected rather than read as a shortcode.
    """
    country_code = _check_country_code(default_country_code)
    had_plus, digits = _compact(raw)
    if not had_plus and is_shortcode(digits):
        return digits
    return normalise_number(raw, default_country_code=country_code)
