"""The send-request contract published as a JSON Schema (docs/send-request.schema.json) agrees with the
validator (mmsbridge.sending.request): every example in events/sender/ and a generated set of valid and
invalid requests get the same verdict from both, except where the schema's `x-known-gaps` name a rule JSON
Schema cannot express, and then only with the validator's reasons for exactly that rule."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mmsbridge.sending.request import InvalidSendRequest, validate_send_request
from tests.unit import test_send_request as cases

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "send-request.schema.json"
EXAMPLES = sorted((ROOT / "events" / "sender").glob("*.json"))


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


@cache
def checker() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _value_at(payload: Any, field: str) -> Any:
    """The value an error's field names (`slides[0].duration`, `data.NAME`), or None."""
    value = payload
    for part in re.findall(r"[^.\[\]]+", field):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


_CHARACTER_RULES = ("may contain only", "has no digits", "is empty", "must be a string", "is required")

# What each known gap lets the validator refuse that the schema accepts: (field, reason, payload) -> bool.
GAPS: dict[str, Callable[[str, str, Any], bool]] = {
    "numbering-plans": lambda field, reason, payload: (
        field in ("to", "from") and not any(rule in reason for rule in _CHARACTER_RULES)
    ),
    "unassigned-code-points": lambda field, reason, payload: (
        field == "campaign_ref"
        and "printable" in reason
        and any(unicodedata.category(ch) == "Cn" for ch in str(payload.get("campaign_ref")))
    ),
    "merge-names-equal-upper-cased": lambda field, reason, payload: (
        field.startswith("data.") and "same name as another entry once upper-cased" in reason
    ),
    "integers-written-with-a-fraction": lambda field, reason, payload: (
        "got a number" in reason
        and isinstance(value := _value_at(payload, field), float)
        and math.isfinite(value)
        and value.is_integer()
    ),
}


def verdicts(payload: Any) -> tuple[bool, list[tuple[str, str]]]:
    """(the schema's verdict, the validator's errors: none when it accepts)."""
    try:
        validate_send_request(payload)
    except InvalidSendRequest as error:
        errors = error.errors
    else:
        errors = []
    return checker().is_valid(payload), errors


def gaps_explaining(payload: Any, errors: list[tuple[str, str]]) -> set[str] | None:
    """The known gaps that explain every error, or None when some error is not one of them."""
    used = set()
    for field, reason in errors:
        names = {name for name, applies in GAPS.items() if applies(field, reason, payload)}
        if not names:
            return None
        used |= names
    return used


def decoded(payload: Any) -> Any | None:
    """The payload as a producer's JSON body decodes (None: JSON cannot carry it)."""
    try:
        return json.loads(json.dumps(payload, ensure_ascii=False))
    except (ValueError, TypeError):
        return None


def generated() -> Iterator[tuple[str, Any]]:
    yield from ((f"example:{path.name}", json.loads(path.read_text())) for path in EXAMPLES)
    bases = {"sms": cases.sms, "saved": cases.saved, "mms": cases.mms}
    for name, make in bases.items():
        yield f"{name}:valid", make()
        yield f"{name}:action-casing", make(action=make()["action"].upper())
        for field in make():
            yield f"{name}:without-{field}", cases.without(make(), field)
            yield f"{name}:{field}-null", make(**{field: None})
            yield f"{name}:{field}-empty", make(**{field: ""})
        for other in ("text", "mms_id", "slides", "custom_text", "disable_fallback_sms", "subject"):
            for value in (None, "", "x", 1, [], {}):
                yield f"{name}:{other}={value!r}", make(**{other: value})
    for number, (changes, _, _) in enumerate(cases.COMMON_CASES):
        yield f"common:{number}", cases.sms(**changes)
    for label, found, make in (
        ("sms", cases.SMS_CASES, cases.sms),
        ("saved", cases.SAVED_CASES, cases.saved),
        ("mms", cases.MMS_CASES, cases.mms),
    ):
        for number, (changes, _, _) in enumerate(found):
            yield f"{label}-case:{number}", make(**changes)
    for number, (slide, _, _) in enumerate(cases.SLIDE_CASES):
        yield f"slide-case:{number}", cases.mms(slides=[slide])
    for number, (slot, url, _) in enumerate(cases.URL_CASES):
        yield f"url-case:{number}", cases.mms(slides=[{slot: url, "text": "x"}])
    yield from _limits_and_more()


def _limits_and_more() -> Iterator[tuple[str, Any]]:
    sms, saved, mms = cases.sms, cases.saved, cases.mms
    for length in (1, 64, 65):
        yield f"request_id-{length}", sms(request_id="r" * length)
    for length in (160, 161):
        yield f"text-{length}", sms(text="t" * length)
        yield f"fallback-{length}", saved(fallback_sms_text="f" * length)
    yield "text-emoji", sms(text="🙂" * 160)
    yield "text-newline-at-end", sms(text="hello\n")
    yield "request_id-newline-at-end", sms(request_id="req\n")
    for ref in (
        0,
        42,
        10**64 - 1,
        10**64,
        -1,
        5.0,
        "Spring Deals 2025",
        "Früh",
        "A\u0378B",
        "x" * 64,
        "é" * 65,
    ):
        yield f"campaign_ref={ref!r:.20}", sms(campaign_ref=ref)
    for ref in ("A\U000e0001B", "A\U000f0000B", "A\u00adB", "A\u3000B", "A\u2029B", "A\U0001f600B"):
        yield f"campaign_ref-char-{ord(ref[1]):x}", sms(campaign_ref=ref)
    for operator in ("0", "0123456789", "01234567890", "12a"):
        yield f"operator_id={operator}", sms(operator_id=operator)
    for mask in ("Northwind", "N-W_1", "12345", "A" * 11, "A" * 12, "a b"):
        yield f"from_mask={mask}", sms(from_mask=mask)
    for mms_id in ("1", "0" * 20, "1" * 21, 0, 10**20 - 1, 10**20, 48213.0, -1):
        yield f"mms_id={mms_id!r:.20}", saved(mms_id=mms_id)
    for subject in ("s" * 80, "s" * 81, "Olá", "tab\there"):
        yield f"custom_subject={subject[:8]}-{len(subject)}", saved(custom_subject=subject)
        yield f"subject={subject[:8]}-{len(subject)}", mms(subject=subject)
    for custom in ({}, {"8": "x"}, {"1": "t" * 5000}, {"1": None}, None, ""):
        yield f"custom_text={custom!r:.20}", saved(custom_text=custom)
    for data in (
        {},
        {"FIRSTNAME": ""},
        {"_x": "v"},
        {"a" * 64: "v"},
        {"xmlish": "v"},
        {"XMLISH": "v"},
        {"name": "a", "NAME": "b"},
        {"ok": "v" * 5000},
        "",
    ):
        yield f"data={str(data)[:20]}", saved(data=data)
    for flag in (True, False, None, "", 0, "true"):
        yield f"disable_fallback_sms={flag!r}", saved(disable_fallback_sms=flag)
        yield f"disable_fallback_sms_link={flag!r}", mms(disable_fallback_sms_link=flag)
    for length in (255, 256):
        yield f"name-{length}", mms(name="n" * length)
    for count in (1, 8, 9):
        yield f"slides-{count}", mms(slides=[{"text": "x"}] * count)
    for duration in (1, 30, 0, 31, 10.0, None):
        yield f"duration={duration!r}", mms(slides=[{"text": "x", "duration": duration}])
    slides = [
        {"video_url": cases.VIDEO},
        {"audio_url": cases.AUDIO},
        {"image_url": cases.IMG, "audio_url": cases.AUDIO, "text": "x"},
        {"pdf_url": "https://media.example.com/a.pdf", "text": "x"},
        {"pdf_url": "https://media.example.com/a.pdf", "vcard_url": cases.VCARD},
        {"passbook_url": "https://media.example.com/p.pkpass", "video_url": cases.VIDEO},
        {"text": None, "image_url": ""},
        {"text": "", "image_url": cases.IMG},
        {"text": "x", "image_url": None, "audio_url": ""},
    ]
    for number, slide in enumerate(slides):
        yield f"composition-{number}", mms(slides=[slide])
    urls = [
        "https://media.example.com/hero.JPG",
        "https://media.example.com/hero.",
        "https://media.example.com/dir/",
        "https://media.example.com//x.png",
        "https://media.example.com/a.b/hero",
        "https://media.example.com/a.jpg/hero.exe",
        "https://media.example.com/hero.jpg.exe",
        "HTTPS://media.example.com/hero.png",
        "http://media.example.com:080/hero.png",
        "http://media.example.com:0/hero.png",
        "http://media.example.com:65535/hero.png",
        "http://media.example.com:65536/hero.png",
        "http://media.example.com:/hero.png",
        "http://media.example.com:8o/hero.png",
        "http://@media.example.com/hero.png",
        "http://[::1]/hero.png",
        "http://[::1]:8080/hero.png",
        "https://media.example.com/a@b.png",
        "https://media.example.com/a:b.png",
        "https://media.example.com/%E2%9C%93.png",
        "http:/media.example.com/hero.png",
        "http//media.example.com/hero.png",
        "https://media.example.com/hero.png ",
        "https://media.example.com/hero.png\n",
    ]
    for number, url in enumerate(urls):
        yield f"url-{number}", mms(slides=[{"image_url": url, "text": "x"}])
    yield "not-an-object", ["sendSMS"]
    yield "misplaced-absent", sms(slides=None, mms_id="", custom_text=None)
    yield "unknown-fields", sms(trace_id="abc", meta={"x": 1})


CASES = [(label, payload) for label, raw in generated() if (payload := decoded(raw)) is not None]


def test_the_schema_is_a_valid_draft_2020_12_schema_naming_its_gaps():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    names = [gap["name"] for gap in schema()["x-known-gaps"]]
    assert names == list(GAPS)
    for name in names:
        assert name in schema()["description"]


@pytest.mark.parametrize(("label", "payload"), CASES, ids=[label for label, _ in CASES])
def test_the_schema_and_the_validator_agree(label, payload):
    schema_accepts, errors = verdicts(payload)
    if schema_accepts == (not errors):
        return
    assert schema_accepts, (
        f"the schema refuses what the validator accepts: {list(checker().iter_errors(payload))}"
    )
    assert gaps_explaining(payload, errors) is not None, f"not a known gap: {errors}"


def test_the_set_holds_both_verdicts_and_exercises_every_known_gap():
    accepted = refused = 0
    exercised: set[str] = set()
    for _, payload in CASES:
        schema_accepts, errors = verdicts(payload)
        accepted += not errors
        refused += bool(errors)
        if schema_accepts and errors:
            exercised |= gaps_explaining(payload, errors) or set()
    assert accepted > 60
    assert refused > 150
    assert exercised == set(GAPS)


def test_every_example_is_judged_alike_or_by_a_named_gap():
    """The refused examples are refused by the schema too, except invalid-number (a numbering-plan rule)."""
    judged = {path.name: verdicts(json.loads(path.read_text())) for path in EXAMPLES}
    for name, (schema_accepts, errors) in judged.items():
        if name == "invalid-number.json":
            assert schema_accepts
            assert errors
            assert gaps_explaining(json.loads((ROOT / "events" / "sender" / name).read_text()), errors) == {
                "numbering-plans"
            }
        else:
            assert schema_accepts == (not errors), name


def test_the_committed_schema_is_the_generators_output_from_the_validators_field_sets_and_limits():
    """docs/send-request.schema.json is made by tools/send_request_schema.py from mmsbridge.sending.request's
    own constants: a limit changed in the validator and not regenerated fails here."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "send_request_schema.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
