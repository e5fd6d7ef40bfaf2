"""Postbacks speak only for our numbers: the own-side number of a postback must be one of the account's.

The provider posts from addresses it shares with every customer (docs/provider-protocol.md §5.3), so a
source-address check alone admits a postback another customer's account could have had posted (or a
forger on those addresses): an inbound STOP for a number that is not ours would put a mobile on our
suppression list, a SUB opt-in could lift one. Each ORIGIN names our side of the exchange in one field
(§3.3), and that field must hold one of the numbers the deployment lists (`OwnNumbers`):

    SMS_MO, MMS_MO   TO          our shortcode or longcode the mobile wrote to (required by the parser)
    SUB              SHORTCODE   the campaign's shortcode, when the postback carries one
    MMS_MT, SMS_MT   FROM        the number we sent from, when the postback carries one (§2.3: the provider
                                 swaps in a country's default shortcode for recipients abroad, so list
                                 those too if the account sends abroad)

The rule goes by ORIGIN, so an unrecognised CODE of these ORIGINs is checked too. EMAIL_SUB, GENERATE_PASS,
template codes without a FROM and unknown ORIGINs carry no number of ours: nothing to compare, they are
applied as before. An own-side field that is absent or empty is not compared either (TO never is: the
parser quarantines an inbound message without one as `missing-key`).

Everything here is pure: the own-number set is an input, so the consumer's handler only reads it from its
environment. Numbers are compared as digits after dropping the decorations §5.1 allows (spaces, `( ) - .`)
and one leading `+`; nothing else is guessed (no national format, no dialling prefix). An empty set turns
the check off: every postback is applied, as before the check existed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mmsbridge.postbacks.reader import Postback

__all__ = [
    "NOT_OUR_NUMBER",
    "OWN_SIDE_FIELD",
    "foreign_number",
    "mask",
    "normalise",
    "parse_own_numbers",
]

NOT_OUR_NUMBER: Final = "not-our-number"

OWN_SIDE_FIELD: Final = {
    "SMS_MO": "TO",
    "MMS_MO": "TO",
    "SUB": "SHORTCODE",
    "MMS_MT": "FROM",
    "SMS_MT": "FROM",
}

_DECORATIONS: Final = str.maketrans("", "", " ()-.\t\r\n")
_DIGITS: Final = re.compile(r"[0-9]+")
# Shortcodes have 5-6 digits, longcodes 8-15 with their country code, which never starts with 0 (§5.1).
_OWN_NUMBER: Final = re.compile(r"[0-9]{5,6}|[1-9][0-9]{7,14}")
_SHORTCODE_DIGITS: Final = 6
# The last digits a masked value keeps: enough to tell numbers apart in a list, too few to dial one.
_SHORTCODE_SHOWN: Final = 2
_LONGCODE_SHOWN: Final = 4


def normalise(value: str | None) -> str | None:
    """`value` as ASCII digits (decorations and one leading `+` dropped), or None if it is not a number."""
    if value is None:
        return None
    compact = value.translate(_DECORATIONS)
    if compact.startswith("+"):
        compact = compact[1:]
    return compact if _DIGITS.fullmatch(compact) else None


def parse_own_numbers(text: str | Iterable[str] | None) -> frozenset[str]:
    """The configured own numbers (comma-separated text, or an iterable) as a set of digit strings.

    Empty entries are skipped, so "" (or None) is the empty set: the check is off. An entry that is not a
    5-6 digit shortcode or an 8-15 digit international longcode raises ValueError: a misconfigured list
    must not quietly let everything in, nor quarantine every postback.
    """
    if text is None:
        return frozenset()
    entries = text.split(",") if isinstance(text, str) else list(text)
    numbers: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        if not entry.strip():
            continue
        digits = normalise(entry.strip())
        if digits is None or not _OWN_NUMBER.fullmatch(digits):
            raise ValueError(
                f"OwnNumbers entry {position} is not a 5-6 digit shortcode or an 8-15 digit international "
                "longcode (country code first, digits only)"
            )
        numbers.add(digits)
    return frozenset(numbers)


def foreign_number(postback: Postback, own_numbers: frozenset[str]) -> str | None:
    """Why `postback` speaks for a number that is not ours (the quarantine detail), or None to apply it.

    None also when the check is off (`own_numbers` empty), when the ORIGIN names no number of ours, and
    when its own-side field is absent or empty.
    """
    if not own_numbers:
        return None
    name = OWN_SIDE_FIELD.get(postback.origin)
    if name is None:
        return None
    value = postback.fields.get(name)
    if value is None:
        return None
    if normalise(value) in own_numbers:
        return None
    detail = f"{postback.origin} {postback.code} {name} {mask(value)} is not one of OwnNumbers"
    if name == "FROM":
        detail += (
            " (for a recipient abroad the provider may report its country's default shortcode as FROM: "
            "list it in OwnNumbers, then replay)"
        )
    return detail


def mask(value: str) -> str:
    """A number as messages may show it: the country code of a longcode and the last digits, the rest `*`
    (`13125550118` → `+1 ******0118`, `47215` → `***15`). Never the whole value: numbers are personal data
    and these messages are logged."""
    digits = normalise(value)
    if digits is None:
        return f"(not a number, {len(value)} characters)"
    if len(digits) <= _SHORTCODE_DIGITS:
        return _tail(digits, _SHORTCODE_SHOWN)
    country = _country_code(digits)
    if not country:
        return _tail(digits, _LONGCODE_SHOWN)
    return f"+{country} {_tail(digits[len(country) :], _LONGCODE_SHOWN)}"


def _tail(digits: str, shown: int) -> str:
    """`digits` with all but the last `shown` masked, and at least one digit masked whatever the length."""
    shown = max(0, min(shown, len(digits) - 1))
    return "*" * (len(digits) - shown) + (digits[len(digits) - shown :] if shown else "")


def _country_code(digits: str) -> str:
    """The country calling code `digits` start with, or "" when none is known. Imported here, not at the
    top: only a foreign longcode needs the numbering plans, and the consumer's cold start should not."""
    import phonenumbers

    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return ""
    return str(number.country_code) if number.country_code else ""
