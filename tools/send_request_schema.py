"""The send request's JSON Schema (docs/send-request.schema.json), generated from the validator's own field sets
and limits (mmsbridge.sending.request), for producers to validate against before they send.

    python tools/send_request_schema.py           # writes docs/send-request.schema.json
    python tools/send_request_schema.py --check   # exits 1 when the committed file is not this output

tests/unit/test_send_request_schema.py holds the schema's verdicts to the validator's, example by example.
"""

# ruff: noqa: E501

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

from mmsbridge.sending import request as contract

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "send-request.schema.json"

END = (
    "(?![\\s\\S])"  # end of string: JSON Schema patterns are searched, and `$` also matches before a final \n
)
XML_BAD = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ud800-\\udfff\\ufffe\\uffff"


def cls_escape(c: int) -> str:
    return f"\\u{c:04x}" if c <= 0xFFFF else "".join(f"\\u{u:04x}" for u in _surrogates(c))


def _surrogates(c: int) -> tuple[int, int]:
    c -= 0x10000
    return (0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF))


# Non-printable (str.isprintable) code points other than unassigned ones: Cc, Cf, Cs, Co, Zl, Zp, Zs but space.
bad = []
for c in range(sys.maxunicode + 1):
    ch = chr(c)
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") or (cat == "Zs" and ch != " "):
        bad.append(c)
ranges = []
for c in bad:
    if ranges and ranges[-1][1] == c - 1:
        ranges[-1][1] = c
    else:
        ranges.append([c, c])


# Python's re works on code points: astral ranges go in the class as code points (JSON \uXXXX pairs decode to them).
def rng(a: int, b: int) -> str:
    def lit(c: int) -> str:
        return chr(c)

    return lit(a) if a == b else f"{lit(a)}-{lit(b)}"


NONPRINT = "".join(rng(a, b) for a, b in ranges)

absent = {"enum": [None, ""], "description": 'null or "": the field is absent'}
null_only = {"type": "null"}


def xml_text(lo: int, hi: int) -> dict[str, Any]:
    s = {"type": "string", "pattern": f"^[^{XML_BAD}]*{END}", "maxLength": hi}
    if lo:
        s["minLength"] = lo
    return s


def optional(rule: dict[str, Any], absent_rule: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"anyOf": [{"$ref": "#/$defs/absent"} if absent_rule is None else absent_rule, rule]}


def ci(word: str) -> str:
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() else ch for ch in word)


ACTION = {a: f"^{ci(a)}{END}" for a in ("sendSMS", "sendMMS", "sendSavedMMS")}
PRINTABLE_ASCII_80 = {"type": "string", "maxLength": contract.SUBJECT_MAX, "pattern": f"^[ -~]*{END}"}
number_chars = {
    "type": "string",
    "pattern": f"^[ \\t\\r\\n]*\\+?[0-9 ().-]*[0-9][0-9 ().-]*[ \\t\\r\\n]*{END}",
    "description": "Digits, spaces, ( ) - . and one leading +. Which numbers are valid is the numbering plans' (see the gaps).",
}

EXT = {slot: sorted(extensions) for slot, extensions in contract.MEDIA_EXTENSIONS.items()}


def ascii_class(exclude: str) -> str:
    """A character class of printable ASCII but `exclude`, in ranges (specials escaped)."""
    codes = [c for c in range(0x21, 0x7F) if chr(c) not in exclude]
    runs = []
    for c in codes:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])

    def esc(c: int) -> str:
        ch = chr(c)
        return "\\" + ch if ch in "\\]^-[" else ch

    parts = []
    for a, b in runs:
        if b - a >= 2:
            parts.append(f"{esc(a)}-{esc(b)}")
        else:
            parts.extend(esc(c) for c in range(a, b + 1))
    return "[" + "".join(parts) + "]"


HOST = "(?:" + ascii_class("/?#@:[]") + "+|\\[[0-9A-Fa-f:.]+\\])"
PORT = "(?::(?:0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?)?"
SEG = ascii_class("/?#")


def url(slot: str) -> dict[str, Any]:
    exts = "|".join(ci(e) for e in EXT[slot])
    last = f"(?:{ascii_class('/?#.')}*|{SEG}*\\.(?:{exts})?)"
    return {
        "type": "string",
        "maxLength": contract.URL_MAX,
        "pattern": f"^{ci('http')}[sS]?://{HOST}{PORT}/(?=.)(?:{SEG}*/)*{last}{END}",
        "description": f"An absolute http(s) URL of printable ASCII: a host, no credentials, a path to the file, no query string or fragment; a file extension, if any, one of {', '.join(EXT[slot])}.",
    }


MEDIA = contract.MEDIA_SLOTS
OBJECTS = contract.OBJECT_SLOTS


def given(k: str) -> dict[str, Any]:
    return {"required": [k], "properties": {k: {"not": {"enum": [None, ""]}}}}


def not_both(a: str, b: str) -> dict[str, Any]:
    return {"not": {"allOf": [given(a), given(b)]}}


slide = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{slot: optional(url(slot)) for slot in (*MEDIA, *OBJECTS)},
        "text": optional(xml_text(1, contract.SLIDE_TEXT_MAX)),
        "duration": {
            "anyOf": [
                null_only,
                {"type": "integer", "minimum": contract.DURATION_MIN, "maximum": contract.DURATION_MAX},
            ]
        },
    },
    "allOf": [
        {
            "description": "Not empty: text, an image, audio or video URL, or an object URL (E313).",
            "anyOf": [given(k) for k in (*MEDIA, *OBJECTS, "text")],
        },
        {"description": "No audio with video (E226).", **not_both("audio_url", "video_url")},
        {
            "description": "Video only with text, not with an image (E227).",
            **not_both("video_url", "image_url"),
        },
        {
            "description": "At most one object (E223).",
            "allOf": [not_both(a, b) for i, a in enumerate(OBJECTS) for b in OBJECTS[i + 1 :]],
        },
        {
            "description": "An object only with text (E224).",
            "allOf": [not_both(o, m) for o in OBJECTS for m in MEDIA],
        },
    ],
}

SMS_FIELDS = set(contract.ACTION_FIELDS[contract.Action.SEND_SMS])
SAVED_FIELDS = set(contract.ACTION_FIELDS[contract.Action.SEND_SAVED_MMS])
MMS_FIELDS = set(contract.ACTION_FIELDS[contract.Action.SEND_MMS])
ALL = SMS_FIELDS | SAVED_FIELDS | MMS_FIELDS


def others(mine: set[str]) -> dict[str, Any]:
    return {
        k: {"$ref": "#/$defs/absent", "description": "a field of another action: absent here"}
        for k in sorted(ALL - mine)
    }


boolean = {"type": ["boolean", "null"]}
branches = [
    {
        "if": {"properties": {"action": {"pattern": ACTION["sendSMS"]}}, "required": ["action"]},
        "then": {
            "required": ["text"],
            "properties": {"text": xml_text(1, contract.SMS_TEXT_MAX), **others(SMS_FIELDS)},
        },
    },
    {
        "if": {"properties": {"action": {"pattern": ACTION["sendSavedMMS"]}}, "required": ["action"]},
        "then": {
            "required": ["mms_id", "fallback_sms_text"],
            "properties": {
                "mms_id": {
                    "anyOf": [
                        {"type": "string", "pattern": f"^[0-9]{{1,20}}{END}"},
                        {"type": "integer", "minimum": 0, "maximum": 10**20 - 1},
                    ]
                },
                "fallback_sms_text": xml_text(1, contract.FALLBACK_SMS_TEXT_MAX),
                "custom_subject": optional(PRINTABLE_ASCII_80),
                "custom_text": optional(
                    {
                        "type": "object",
                        "maxProperties": contract.CUSTOM_TEXTS_MAX,
                        "description": "One slide's text (the v1 API takes a single CUSTOMTEXT per request).",
                        "propertyNames": {"pattern": f"^[1-{contract.SLIDES_MAX}]{END}"},
                        "additionalProperties": xml_text(1, contract.SLIDE_TEXT_MAX),
                    },
                    null_only,
                ),
                "data": optional(
                    {
                        "type": "object",
                        "propertyNames": {"pattern": f"^(?![xX][mM][lL])[A-Za-z_][A-Za-z0-9_]{{0,63}}{END}"},
                        "additionalProperties": xml_text(0, contract.DATA_VALUE_MAX),
                    },
                    null_only,
                ),
                "disable_fallback_sms": boolean,
                "disable_fallback_sms_link": boolean,
                **others(SAVED_FIELDS),
            },
        },
    },
    {
        "if": {"properties": {"action": {"pattern": ACTION["sendMMS"]}}, "required": ["action"]},
        "then": {
            "required": ["name", "slides", "fallback_sms_text"],
            "properties": {
                "name": xml_text(1, contract.NAME_MAX),
                "slides": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": contract.SLIDES_MAX,
                    "items": {"$ref": "#/$defs/slide"},
                },
                "subject": optional(PRINTABLE_ASCII_80),
                "fallback_sms_text": xml_text(1, contract.FALLBACK_SMS_TEXT_MAX),
                "disable_fallback_sms_link": boolean,
                **others(MMS_FIELDS),
            },
        },
    },
]

GAPS = [
    {
        "name": "numbering-plans",
        "fields": ["to", "from"],
        "rule": "A number must be valid in the numbering plan of the country its digits name (libphonenumber's metadata), have 8-15 digits with its country code, not start with a 00 dialling prefix, and be written in national format only when a default country code is configured; a sender is a 5-6 digit shortcode or such a number. The schema checks the characters only.",
    },
    {
        "name": "unassigned-code-points",
        "fields": ["campaign_ref"],
        "rule": "campaign_ref refuses unassigned code points (Unicode category Cn, as of the validator's Python); the schema refuses the other non-printable categories (Cc, Cf, Cs, Co, Zl, Zp, and spaces other than U+0020).",
    },
    {
        "name": "merge-names-equal-upper-cased",
        "fields": ["data.<name>"],
        "rule": "Two data names that are equal once upper-cased (`name` and `NAME`) are refused.",
    },
    {
        "name": "integers-written-with-a-fraction",
        "fields": ["campaign_ref", "mms_id", "slides[i].duration"],
        "rule": "A JSON number written with a fraction (5.0) is refused where an integer is taken; JSON Schema counts 5.0 as an integer.",
    },
]

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:mmsbridge:send-request",
    "title": "Send request: one message body on the send queue",
    "description": (
        "The contract producers write to (docs/send-requests.md; the validator is mmsbridge.sending.request). "
        'Validate a decoded body against it before sending. null and "" mean absent for optional fields; '
        "unknown top-level fields are ignored; a field of another action is refused unless absent. "
        "Body-level rules apply before this schema: UTF-8, at most 256 KiB, no NaN or Infinity, no key twice in one object. "
        "Known gaps, rules the validator enforces that JSON Schema cannot express (x-known-gaps): "
        + "; ".join(f"{g['name']}: {g['rule']}" for g in GAPS)
    ),
    "x-known-gaps": GAPS,
    "type": "object",
    "required": ["request_id", "action", "to", "from"],
    "properties": {
        "request_id": {
            "type": "string",
            "pattern": f"^[!-~]{{1,{contract.REQUEST_ID_MAX}}}{END}",
            "description": f"1-{contract.REQUEST_ID_MAX} printable ASCII characters, no spaces; the idempotency key.",
        },
        "action": {
            "type": "string",
            "pattern": f"^(?:{ci('sendSMS')}|{ci('sendMMS')}|{ci('sendSavedMMS')}){END}",
            "description": "sendSMS, sendMMS or sendSavedMMS, in any casing.",
        },
        "to": number_chars,
        "from": number_chars,
        "campaign_ref": optional(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 10**contract.CAMPAIGN_REF_MAX - 1},
                    {
                        "type": "string",
                        "maxLength": contract.CAMPAIGN_REF_MAX,
                        "pattern": f"^[^ {NONPRINT}](?:[^{NONPRINT}]*[^ {NONPRINT}])?{END}",
                    },
                ]
            }
        ),
        "operator_id": optional({"type": "string", "pattern": f"^[0-9]{{1,10}}{END}"}),
        "from_mask": optional(
            {"type": "string", "pattern": f"^(?![0-9]+{END})[A-Za-z0-9_-]{{1,{contract.FROM_MASK_MAX}}}{END}"}
        ),
    },
    "allOf": branches,
    "$defs": {"absent": absent, "slide": slide},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    args = parser.parse_args(argv)
    text = json.dumps(schema, indent=2, ensure_ascii=True) + "\n"
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.name} is not the generator's output: run python tools/send_request_schema.py")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
