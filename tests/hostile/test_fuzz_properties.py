"""Property fuzzing of the three parsers of outside input (the contracts are in fuzz/targets.py).

In the test suite each property runs the `hostile` hypothesis profile (200 examples). `make fuzz` sets
FUZZ_SECONDS, and each property then runs round after round of the `fuzz` profile (300 examples, a fresh
random start each) until that many seconds have passed, printing how many examples it tried.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("hostile", max_examples=200, deadline=None, suppress_health_check=HEALTH)
# Rounds short enough that a budget of FUZZ_SECONDS is overrun by a few seconds at most.
settings.register_profile("fuzz", max_examples=300, deadline=None, suppress_health_check=HEALTH)
PROFILE = settings.get_profile("fuzz" if os.environ.get("FUZZ_SECONDS") else "hostile")

POSTBACK_SEEDS = targets.postback_seeds()
RESPONSE_SEEDS = targets.response_seeds()
REQUEST_SEEDS = targets.send_request_seeds()
REQUEST_OBJECTS = [json.loads(seed) for seed in REQUEST_SEEDS]

examples: dict[str, int] = {}


def fuzz_budget(name: str, rounds: Callable[[], None]) -> None:
    """One round (the profile's examples), or rounds until FUZZ_SECONDS have passed."""
    seconds = float(os.environ.get("FUZZ_SECONDS") or 0)
    started = time.monotonic()
    examples[name] = 0
    rounds()
    while time.monotonic() - started < seconds:
        rounds()
    if seconds:
        elapsed = time.monotonic() - started
        sys.stdout.write(f"\nhypothesis {name}: {examples[name]} examples in {elapsed:.0f} s, no failure\n")


def counted(name: str) -> None:
    examples[name] = examples.get(name, 0) + 1


# --------------------------------------------------------------------------------------------- bytes


@st.composite
def mutated(draw, seeds: list[bytes], tokens: tuple[bytes, ...]) -> bytes:
    """A seed with 1-6 edits: a token spliced in, a range deleted, duplicated or overwritten, a cut."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 64)))
        edit = draw(st.sampled_from(["insert", "delete", "duplicate", "overwrite", "truncate", "repeat"]))
        if edit == "insert":
            data[at:at] = draw(st.sampled_from(tokens))
        elif edit == "delete":
            del data[at:end]
        elif edit == "duplicate":
            data[at:at] = data[at:end]
        elif edit == "overwrite":
            data[at:end] = draw(st.binary(min_size=end - at, max_size=end - at))
        elif edit == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from(tokens)) * draw(st.integers(2, 50))
    return bytes(data)


NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
NAMES = st.sampled_from(
    [
        "POSTBACK",
        "postback",
        "NOTIFICATION",
        "BODY",
        "CONTENT",
        "FILE",
        "ORIGIN",
        "CODE",
        "STATUSCODE",
        "STATUS",
        "SENTAS",
        "MMSID",
        "FROM",
        "TO",
        "TRACKINGID",
        "tracking-id",
        "TRACKING_ID",
        "SPID",
        "OPERATORID",
        "TIMESTAMP",
        "RECEIVED",
        "TEXT",
        "KEYWORD",
        "TRANSACTIONID",
        "MOBILE",
        "CAMPAIGNID",
        "EMAIL",
        "CUSTOMPASSID",
        "HISTORYID",
        "RESPONSE",
        "ERRORCODE",
        "ERRORINFO",
        "x:POSTBACK",
        "X",
    ]
) | st.builds(str.__add__, st.sampled_from("AZaz_"), st.text(NAME_CHARS, max_size=8))
VALUES = st.sampled_from(
    [
        *[
            "MMS_MT",
            "SMS_MT",
            "MMS_MO",
            "SMS_MO",
            "SUB",
            "EMAIL_SUB",
            "GENERATE_PASS",
            "N101",
            "N102",
            "E102",
            "N003",
            "E999",
            "N211",
            "N301",
            "N302",
            "N801",
            "stop",
            "Message Sent/Expired",
            "SMS",
            "Success",
            "Failure",
            "E113",
            "2024-03-14T10:02:11-04:00",
            "2011-05-09 16:40:02.518224-04",
            "9999-12-31T23:59:59-12:00",
            "&amp;",
            "&#233;",
            "<![CDATA[x]]>",
            "&a;",
            "&#0;",
        ],
        targets.API_KEY,
        "",
    ]
) | st.text(max_size=12).map(lambda text: text.replace("&", "&amp;").replace("<", "&lt;"))
ATTRIBUTES = st.lists(st.tuples(NAMES, VALUES), max_size=2)
# A tree: text (a str) or an element (name, attributes, children).
TREES = st.recursive(
    VALUES, lambda children: st.tuples(NAMES, ATTRIBUTES, st.lists(children, max_size=4)), max_leaves=12
)


def render(tree: str | tuple) -> str:
    if isinstance(tree, str):
        return tree
    name, attributes, children = tree
    attributes_text = "".join(f' {key}="{value.replace(chr(34), "&quot;")}"' for key, value in attributes)
    return f"<{name}{attributes_text}>{''.join(render(child) for child in children)}</{name}>"


PROLOGS = st.sampled_from(["", '<?xml version="1.0"?>', "\ufeff", '<?xml version="1.0" encoding="utf8"?>'])
DOCUMENTS = st.builds(
    lambda prolog, name, attributes, children: prolog + render((name, attributes, children)),
    PROLOGS,
    NAMES,
    ATTRIBUTES,
    st.lists(TREES, max_size=4),
)


@st.composite
def xml_bodies(draw) -> bytes:
    """An element with random names, attributes, text and children: often a postback, not always valid;
    half the time edited further."""
    body = draw(DOCUMENTS).encode()
    return draw(mutated([body], targets.XML_TOKENS)) if draw(st.booleans()) else body


ANY_BYTES = st.binary(max_size=2048)


# ------------------------------------------------------------------------------------------- postback


def test_postback_parser_keeps_its_contract_on_random_bytes():
    @PROFILE
    @given(st.one_of(ANY_BYTES, mutated(POSTBACK_SEEDS, targets.XML_TOKENS), xml_bodies()))
    def property_(data):
        counted("postback")
        targets.postback(data)

    fuzz_budget("postback", property_)


# --------------------------------------------------------------------------------------- send request

STRINGS = st.sampled_from(
    [
        *[
            " ",
            "req-1",
            "sendSMS",
            "SENDMMS",
            "sendsavedmms",
            "saveMMS",
            "+1 (312) 555-0147",
            "13125550147",
            "0013125550147",
            "47215",
            "123",
            "١٢٣٤٥٦٧٨٩٠",
            "²³⁴⁵⁶",
            "48213",
            "https://media.example.com/a.jpg",
            "https://media.example.com/a.mp3",
            "http://[::1]/v.mp4",
            "https://[bad/a.jpg",
            "https://x:99999/a.png",
            "https://u:p@x/a.gif?x=1#y",
            "HTTPS://X/A.JPG",
            "javascript:alert(1)",
            "Ana",
            "xmlFoo",
            "FIRSTNAME",
            "firstname",
            "1",
            "9",
            "01",
            "A-Z_mask",
            "99999999999",
        ],
        *("", "\x00", "\ud800", "\x1b[31m", "a" * 161, "é" * 81),
    ]
) | st.text(max_size=20)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2, 40), st.floats(), STRINGS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(STRINGS, children, max_size=5),
    max_leaves=20,
)
FIELDS = [
    "request_id",
    "action",
    "to",
    "from",
    "campaign_ref",
    "operator_id",
    "from_mask",
    "text",
    "mms_id",
    "fallback_sms_text",
    "custom_subject",
    "custom_text",
    "data",
    "disable_fallback_sms",
    "disable_fallback_sms_link",
    "name",
    "subject",
    "slides",
    "image_url",
    "audio_url",
    "video_url",
    "vcard_url",
    "ical_url",
    "pdf_url",
    "passbook_url",
    "duration",
]


@st.composite
def request_objects(draw) -> object:
    """A seed request with fields deleted, replaced by any JSON value, or added; slides edited too."""
    payload = json.loads(json.dumps(draw(st.sampled_from(REQUEST_OBJECTS))))
    for _ in range(draw(st.integers(1, 5))):
        name = draw(st.sampled_from(FIELDS))
        edit = draw(st.sampled_from(["delete", "replace", "slide"]))
        if edit == "delete":
            payload.pop(name, None)
        elif edit == "replace":
            payload[name] = draw(JSON_VALUES)
        else:
            slides = payload.get("slides") if isinstance(payload.get("slides"), list) else []
            slide = {draw(st.sampled_from(FIELDS)): draw(JSON_VALUES) for _ in range(draw(st.integers(0, 3)))}
            payload["slides"] = [*slides, slide][: draw(st.integers(0, 9))]
    return payload


def test_send_request_validator_keeps_its_contract_on_any_json_value_or_text():
    @PROFILE
    @given(
        st.one_of(
            st.tuples(st.just("object"), st.one_of(JSON_VALUES, request_objects())),
            st.tuples(st.just("json"), st.one_of(ANY_BYTES, mutated(REQUEST_SEEDS, targets.JSON_TOKENS))),
        )
    )
    def property_(given_):
        counted("send-request")
        form, payload = given_
        if form == "object":
            targets.send_request(payload)
        else:
            targets.send_request_json(payload)

    fuzz_budget("send-request", property_)


# ---------------------------------------------------------------------------------- provider response

STATUSES = st.sampled_from([200, 200, 200, 201, 204, 302, 400, 403, 404, 429, 500, 503])
STATUSES |= st.integers(-1, 1000)
API_KEYS = st.none() | st.just(targets.API_KEY) | st.from_regex(r"[A-Za-z0-9_-]{16,40}", fullmatch=True)


def test_provider_response_parser_keeps_its_contract_on_any_answer():
    @PROFILE
    @given(
        st.one_of(ANY_BYTES, mutated(RESPONSE_SEEDS, targets.XML_TOKENS), xml_bodies()),
        STATUSES,
        API_KEYS,
    )
    def property_(data, status, api_key):
        counted("provider-response")
        targets.provider_response(data, status, api_key)

    fuzz_budget("provider-response", property_)
