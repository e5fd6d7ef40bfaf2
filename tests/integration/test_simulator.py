"""The provider simulator over real HTTP on loopback: the API's answers and error codes, its strictness
(content type, v1 element names, CUSTOMTEXT, FALLBACKSMSTEXT), throughput, minimum interval and quota, faults
(a proxy's 429/408), postbacks to a local receiver (order, dialect, failure texts, duplicates, retries),
templates, the audit log, the CLI."""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from defusedxml.ElementTree import fromstring

from local.moto import free_port
from local.simulator import PostbackSettings, ProviderFault, ProviderSimulator
from mmsbridge.postbacks.reader import parse_postback
from mmsbridge.sending.provider_http import ProviderClient
from mmsbridge.sending.provider_xml import (
    ErrorClass,
    TransportFailure,
    build_request_xml,
    classify_error_code,
    parse_response,
)
from mmsbridge.sending.request import validate_save_mms, validate_send_request
from tests.conftest import ROOT, SAMPLES
from tests.xml_work import count_parses

KEY = "FIXTURE-KEY-c83a51e0d7f24b96"  # the key in the fixtures' requests
REQUESTS = SAMPLES / "requests"
RESPONSES = SAMPLES / "responses"
FAST = PostbackSettings(
    first_delay_s=0.02, outcome_delay_s=0.08, template_delay_s=0.4, retry_interval_s=0.15, timeout_s=2.0
)
EASTERN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?-0[45]:00")


# -- a postback receiver -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    at: float
    path: str
    content_type: str | None
    body: bytes
    answered: int


class Receiver:
    """Records every POST; answers the statuses in `script` first, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[int] = deque()
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._condition:
                    status = receiver.script.popleft() if receiver.script else 200
                    item = Received(
                        time.monotonic(), self.path, self.headers.get("Content-Type"), body, status
                    )
                    receiver.received.append(item)
                    receiver._condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/postback/token"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} postbacks, got {len(self.received)}")
                self._condition.wait(remaining)
            return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def make_sim():
    started = []

    def make(**kwargs) -> ProviderSimulator:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("postbacks", FAST)
        simulator = ProviderSimulator(**kwargs).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture(scope="module")
def shared_sim():
    with ProviderSimulator(api_key=KEY, postbacks=FAST, templates=["48213", "51876"]) as simulator:
        yield simulator


@pytest.fixture
def sim(shared_sim):
    """A simulator without postbacks, reset for each test: calls, stats and saved templates start empty."""
    shared_sim.reset()
    return shared_sim


# -- helpers -------------------------------------------------------------------------------------------------
class Clock:
    """The simulator's clock (`ProviderSimulator(clock=...)`), moved by the test only: windows, intervals,
    fault durations and template encoding are then judged on the simulator's own time, whatever the load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def post(simulator: ProviderSimulator, body: str | bytes, *, timeout: float = 5.0) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(
        simulator.api_url, data=data, headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=timeout
    )


def children(body: bytes) -> list[tuple[str, str]]:
    root = fromstring(body)
    assert root.tag == "RESPONSE"
    return [(child.tag, (child.text or "").strip()) for child in root]


def answer(response: requests.Response) -> dict[str, str]:
    return dict(children(response.content))


def request(action: str | None, *, key: str | None = KEY, slides: tuple[str, ...] = (), **fields: str) -> str:
    parts = [f"<ACTION>{action}</ACTION>"] if action is not None else []
    if key is not None:
        parts.append(f"<API_KEY>{key}</API_KEY>")
    parts += [f"<{name}>{value}</{name}>" for name, value in fields.items()]
    parts += [f"<SLIDE>{slide}</SLIDE>" for slide in slides]
    return '<?xml version="1.0" encoding="UTF-8"?>\n<REQUEST>' + "".join(parts) + "</REQUEST>"


def sms(to: str = "13125550147", text: str = "hello", **extra: str) -> str:
    return request("sendSMS", TO=to, FROM="47215", TEXT=text, **extra)


def control(
    simulator: ProviderSimulator, method: str, route: str, payload: object = None
) -> requests.Response:
    return requests.request(method, f"{simulator.base_url}/_sim/{route}", json=payload, timeout=5)


IMAGE = "<IMAGE><URL>https://media.example/a.jpg</URL></IMAGE>"
AUDIO = "<AUDIO><URL>https://media.example/a.mp3</URL></AUDIO>"
VIDEO = "<VIDEO><URL>https://media.example/a.mp4</URL></VIDEO>"
VCARD = "<VCARD><URL>https://media.example/a.vcf</URL></VCARD>"
ICAL = "<ICAL><URL>https://media.example/a.ics</URL></ICAL>"
TEXT = "<TEXT>hi</TEXT>"
ADDRESS = {"TO": "13125550147", "FROM": "47215"}
SAVED = {"MMSID": "48213", **ADDRESS, "FALLBACKSMSTEXT": "see the offer"}
CONTENT = {"NAME": "promo", "SUBJECT": "Deals"}


# -- the API -------------------------------------------------------------------------------------------------
SAMPLE_PAIRS = [
    ("send_sms.xml", "send_sms_success.xml", "SMS_"),
    ("send_mms.xml", "send_mms_success.xml", "MMS_"),
    ("send_saved_mms.xml", "send_saved_mms_success.xml", "MMS_"),
    ("save_mms.xml", "save_mms_success.xml", None),
]


@pytest.mark.parametrize(("request_file", "response_file", "prefix"), SAMPLE_PAIRS)
def test_sample_requests_get_the_documented_success_shape(sim, request_file, response_file, prefix):
    response = post(sim, (REQUESTS / request_file).read_bytes())

    assert response.status_code == 200
    got = children(response.content)
    expected = children((RESPONSES / response_file).read_bytes())
    assert [tag for tag, _ in got] == [tag for tag, _ in expected]
    values = dict(got)
    sent = {
        child.tag: (child.text or "").strip() for child in fromstring((REQUESTS / request_file).read_bytes())
    }
    assert values["STATUS"] == "Success"
    for echoed in ("TO", "FROM"):
        if echoed in values:
            assert values[echoed] == sent[echoed]
    if "STATUSDETAILS" in values:
        assert values["STATUSDETAILS"] == dict(expected)["STATUSDETAILS"]
    if prefix:
        assert base64.b64decode(values["TRACKINGID"]).decode().startswith(prefix)
    if "MMSID" in values:
        assert values["MMSID"].isdigit()
    if request_file == "send_saved_mms.xml":
        assert values["MMSID"] == "51876"
        assert values["FROM"] == "63184"
    result = parse_response(response.content, http_status=200)
    assert result.ok
    assert result.tracking_id == values.get("TRACKINGID")


@pytest.mark.parametrize("field", ["xml", "XML"])
def test_the_older_form_body_works(sim, field):
    document = (REQUESTS / "send_sms.xml").read_text()
    response = requests.post(sim.api_url, data={field: document}, timeout=5)

    assert answer(response)["STATUS"] == "Success"
    assert sim.log()[-1]["fields"]["TEXT"].startswith("Lakeshore")


def test_tracking_ids_and_mms_ids_are_fresh(sim):
    tracking_ids = {answer(post(sim, sms(text=f"message {n}")))["TRACKINGID"] for n in range(5)}
    mms_ids = {answer(post(sim, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"] for _ in range(3)}

    assert len(tracking_ids) == 5
    assert len(mms_ids) == 3


def test_action_values_are_case_insensitive(sim):
    # The provider's own pages spell actions in several casings (docs/provider-protocol.md §1).
    for body in (request("sendsms", **ADDRESS, TEXT="hi"), request("SENDSAVEDMMS", **SAVED)):
        assert answer(post(sim, body))["STATUS"] == "Success", body


# -- strictness: a request-builder regression fails a test instead of passing it -----------------------------
def post_as(simulator: ProviderSimulator, body: str, content_type: str | None) -> requests.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return requests.post(simulator.api_url, data=body.encode(), headers=headers, timeout=5)


def refused(response: requests.Response, code: str) -> dict[str, str]:
    """The failure answer's fields, after checking it is `code` over HTTP 200 and the client reads it so."""
    assert response.status_code == 200
    values = answer(response)
    assert (values["STATUS"], values["ERRORCODE"]) == ("Failure", code), values
    assert values["ERRORINFO"]
    assert parse_response(response.content, http_status=200).error_code == code
    return values


@pytest.mark.parametrize(
    "content_type",
    ["text/xml", "text/xml; charset=utf-8", "Text/XML;charset=UTF-8", 'text/xml; charset="utf-8"'],
)
def test_text_xml_is_taken_with_or_without_its_charset(sim, content_type):
    assert answer(post_as(sim, sms(), content_type))["STATUS"] == "Success"


CONTENT_TYPE_CASES = [
    ("json", "application/json"),
    ("json-with-charset", "application/json; charset=utf-8"),
    ("application-xml", "application/xml"),
    ("text-plain", "text/plain"),
    ("other-charset", "text/xml; charset=iso-8859-1"),
    ("no-content-type", None),
]


@pytest.mark.parametrize(
    "content_type", [case[1] for case in CONTENT_TYPE_CASES], ids=[case[0] for case in CONTENT_TYPE_CASES]
)
def test_a_body_not_sent_as_text_xml_is_refused_with_e100(sim, content_type):
    values = refused(post_as(sim, sms(), content_type), "E100")

    assert "TO" not in values  # refused as a request, before its fields are read
    entry = sim.log()[-1]
    assert (entry["error_code"], entry["fields"], entry["accepted"]) == ("E100", None, False)
    assert sim.stats()["accepted_sends"] == 0


def test_a_json_request_is_refused_with_e100(sim):
    payload = {"action": "sendSMS", "api_key": KEY, "to": "13125550147", "from": "47215", "text": "hi"}

    refused(requests.post(sim.api_url, json=payload, timeout=5), "E100")

    assert sim.stats()["accepted_sends"] == 0


HYPHENATED_SMS = (
    "<request><action>sendSMS</action><api-key>" + KEY + "</api-key><to>13125550147</to>"
    "<from>47215</from><text>hi</text></request>"
)
NAME_CASES = [
    ("lower-case-document", HYPHENATED_SMS.replace("api-key", "api_key")),
    ("lower-case-root", sms().replace("REQUEST>", "request>")),
    ("lower-case-to", sms().replace("TO>", "to>")),
    ("lower-case-action-element", sms().replace("ACTION>", "action>")),
    (
        "lower-case-slide-text",
        request("sendMMS", **ADDRESS, **CONTENT, FALLBACKSMSTEXT="f", slides=("<text>hi</text>",)),
    ),
    (
        "lower-case-url",
        request("saveMMS", **CONTENT, slides=("<IMAGE><url>https://media.example/a.jpg</url></IMAGE>",)),
    ),
    ("hyphenated-document", HYPHENATED_SMS),
    ("hyphenated-api-key", request("sendSMS", key=None, **{"api-key": KEY}, **ADDRESS, TEXT="hi")),
    (
        "hyphenated-upper-case",
        request("sendSavedMMS", **ADDRESS, MMSID="48213", **{"FALLBACK-SMS-TEXT": "f"}),
    ),
    ("hyphenated-message-text", request("saveMMS", **CONTENT, slides=("<message-text>hi</message-text>",))),
    ("api-key-without-underscore", request("sendSMS", key=None, APIKEY=KEY, **ADDRESS, TEXT="hi")),
    ("from-mask-without-underscore", sms(FROMMASK="Northwind")),
    ("underscore-added", request("sendSavedMMS", **ADDRESS, MMSID="48213", FALLBACK_SMS_TEXT="f")),
    (
        "personalized-image-with-underscore",
        request(
            "saveMMS",
            **CONTENT,
            slides=("<PERSONALIZED_IMAGE><TEMPLATE-ID>7</TEMPLATE-ID></PERSONALIZED_IMAGE>",),
        ),
    ),
    ("unknown-element", sms(COLOR="red")),
    ("another-actions-element", sms(MMSID="48213")),
    ("slide-in-sendsms", request("sendSMS", **ADDRESS, TEXT="hi", slides=(TEXT,))),
    (
        "disablefallbacksms-in-sendmms",
        request(
            "sendMMS", **ADDRESS, **CONTENT, FALLBACKSMSTEXT="f", DISABLEFALLBACKSMS="yes", slides=(TEXT,)
        ),
    ),
    ("elements-in-a-text-element", sms(text="<B>hi</B>")),
    ("elements-in-a-data-value", request("sendSavedMMS", **SAVED, DATA="<FIRSTNAME><B>Ana</B></FIRSTNAME>")),
]


@pytest.mark.parametrize("body", [case[1] for case in NAME_CASES], ids=[case[0] for case in NAME_CASES])
def test_names_that_are_not_the_v1_ones_are_refused_with_e100(sim, body):
    values = refused(post(sim, body), "E100")

    assert "TO" not in values
    assert sim.stats()["accepted_sends"] == 0


def test_the_key_is_checked_before_the_names(sim):
    # A wrong key is E104 whatever its element is called: a caller without the key learns no rule.
    body = request("sendSMS", key=None, **{"api-key": "WRONG-KEY-0000"}, **ADDRESS, TEXT="hi")

    refused(post(sim, body), "E104")


def test_every_documented_element_is_taken(sim):
    slides = (
        "<IMAGE><URL>https://media.example/a.jpg</URL></IMAGE><AUDIO><URL>https://media.example/a.mp3</URL></AUDIO>"
        "<TEXT>hi</TEXT><DURATION>5</DURATION>",
        "<PERSONALIZED-IMAGE><TEMPLATE-ID>7</TEMPLATE-ID></PERSONALIZED-IMAGE><TEXT>hi</TEXT>",
        VCARD,
        ICAL,
        "<PDF><URL>https://media.example/a.pdf</URL></PDF>",
        "<PASSBOOK><URL>https://media.example/a.pkpass</URL></PASSBOOK>",
        VIDEO + TEXT,
    )
    routing = {
        "SERVICEID": "svc-00417",
        "FROM_MASK": "Northwind",
        "OPERATORID": "0001890",
        "CAMPAIGNREF": "Spring Deals 2025",
    }
    bodies = [
        sms(**routing),
        request(
            "sendSavedMMS",
            **SAVED,
            **routing,
            DISABLEFALLBACKSMS="yes",
            DISABLEFALLBACKSMSLINK="yes",
            CUSTOMSUBJECT="Hello",
            CUSTOMTEXT="<VALUE>Hi Ana</VALUE><SLIDE>2</SLIDE>",
            DATA="<FIRSTNAME>Ana</FIRSTNAME><store>Clark St</store>",  # DATA names are the client's own
            DDMTITLE="Get ready",
            DDMTEXT="An MMS is coming",
            DDMTIMEOUT="5",
            DDMFORCE="true",
            FORCEPASSASLINK="yes",
        ),
        request(
            "sendMMS",
            **ADDRESS,
            **routing,
            **CONTENT,
            FALLBACKSMSTEXT="f",
            DISABLEFALLBACKSMSLINK="yes",
            slides=slides,
        ),
        request(
            "saveMMS",
            SERVICEID="svc-00417",
            **CONTENT,
            FALLBACKSMSTEXT="f",
            DISABLEFALLBACKSMS="yes",
            DISABLEFALLBACKSMSLINK="yes",
            slides=slides,
        ),
    ]
    for body in bodies:
        assert answer(post(sim, body))["STATUS"] == "Success", body


def test_the_projects_request_builder_passes_every_check(sim):
    """What mmsbridge.sending.provider_xml builds and mmsbridge.sending.provider_http sends, for the four
    actions with every field they carry: the strict checks above must never refuse it."""
    common = {
        "to": "13125550147",
        "from": "47215",
        "campaign_ref": "Spring Deals 2025",
        "operator_id": "0001890",
    }
    media = "https://media.example/"
    sends = [
        {"action": "sendSMS", **common, "from_mask": "Northwind", "text": "Your order has shipped."},
        {
            "action": "sendSavedMMS",
            **common,
            "mms_id": "48213",
            "fallback_sms_text": "See the offer",
            "custom_subject": "Ana, Spring Deals",
            "custom_text": {"2": "Hi Ana"},
            "data": {"firstname": "Ana", "store": "Clark St"},
            "disable_fallback_sms": True,
            "disable_fallback_sms_link": True,
        },
        {
            "action": "sendMMS",
            **common,
            "campaign_ref": 42,
            "name": "promo",
            "subject": "Promo",
            "fallback_sms_text": "See the promo",
            "disable_fallback_sms_link": True,
            "slides": [
                {"image_url": f"{media}a.jpg", "audio_url": f"{media}a.mp3", "text": "Look", "duration": 5},
                {"vcard_url": f"{media}a.vcf", "text": "Save us"},
                {"ical_url": f"{media}a.ics"},
                {"pdf_url": f"{media}a.pdf"},
                {"passbook_url": f"{media}a.pkpass"},
                {"video_url": f"{media}a.mp4", "text": "Watch"},
            ],
        },
    ]
    built = [validate_send_request({"request_id": f"strict-{n}", **send}) for n, send in enumerate(sends)]
    template = validate_save_mms(
        {
            "name": "spring",
            "subject": "Spring",
            "fallback_sms_text": "Spring Deals",
            "disable_fallback_sms": True,
            "slides": [{"image_url": f"{media}a.jpg", "text": "Hello"}, {"text": "Bye"}],
        }
    )
    client = ProviderClient(sim.api_url)
    for service_id in (None, "svc-00417"):
        for item in (*built, template):
            reply = client.call(build_request_xml(item, KEY, service_id=service_id), api_key=KEY)
            assert reply.result.ok, (item.action, reply.result.error_code, reply.result.error_info)
    assert sim.stats()["calls"] == sim.stats()["accepted_sends"] + 2  # every call taken (saveMMS is no send)


def custom_text(inner: str, mms_id: str = "48213") -> str:
    return request("sendSavedMMS", **{**SAVED, "MMSID": mms_id}, CUSTOMTEXT=inner)


CUSTOMTEXT_CASES = [
    ("no-value", "<SLIDE>1</SLIDE>", "E100"),
    ("empty-value", "<VALUE></VALUE><SLIDE>1</SLIDE>", "E100"),
    ("no-slide", "<VALUE>Hi</VALUE>", "E100"),
    ("empty-slide", "<VALUE>Hi</VALUE><SLIDE> </SLIDE>", "E100"),
    ("slide-zero", "<VALUE>Hi</VALUE><SLIDE>0</SLIDE>", "E100"),
    ("slide-nine", "<VALUE>Hi</VALUE><SLIDE>9</SLIDE>", "E100"),
    ("slide-negative", "<VALUE>Hi</VALUE><SLIDE>-1</SLIDE>", "E100"),
    ("slide-not-a-number", "<VALUE>Hi</VALUE><SLIDE>one</SLIDE>", "E100"),
    ("two-values", "<VALUE>Hi</VALUE><VALUE>Ho</VALUE><SLIDE>1</SLIDE>", "E100"),
    ("unknown-child", "<VALUE>Hi</VALUE><SLIDE>1</SLIDE><COLOR>red</COLOR>", "E100"),
    ("lower-case-child", "<value>Hi</value><SLIDE>1</SLIDE>", "E100"),
    ("long-value", f"<VALUE>{'x' * 5001}</VALUE><SLIDE>1</SLIDE>", "E228"),
]


@pytest.mark.parametrize(
    ("inner", "code"), [case[1:] for case in CUSTOMTEXT_CASES], ids=[case[0] for case in CUSTOMTEXT_CASES]
)
def test_customtext_needs_a_value_and_a_slide_number(sim, inner, code):
    values = refused(post(sim, custom_text(inner)), code)

    assert ("TO" in values) is (code != "E100")  # E100 is about the request, not its recipient
    assert sim.stats()["accepted_sends"] == 0


@pytest.mark.parametrize("slide", ["1", "8"])
def test_customtext_of_a_template_of_unknown_length_takes_slides_1_to_8(sim, slide):
    assert answer(post(sim, custom_text(f"<VALUE>Hi</VALUE><SLIDE>{slide}</SLIDE>")))["STATUS"] == "Success"


def test_customtext_slide_must_exist_in_a_template_of_known_length(sim):
    assert control(sim, "POST", "templates", {"mms_id": "60002", "slides": 2}).status_code == 200

    last = answer(post(sim, custom_text("<VALUE>Hi</VALUE><SLIDE>2</SLIDE>", "60002")))
    past_the_end = refused(post(sim, custom_text("<VALUE>Hi</VALUE><SLIDE>3</SLIDE>", "60002")), "E241")

    assert last["STATUS"] == "Success"
    assert "2 slide" in past_the_end["ERRORINFO"]
    assert classify_error_code("E241") is ErrorClass.PERMANENT  # this message fails, the account goes on


def test_customtext_slide_of_a_template_saved_through_the_simulator(sim):
    mms_id = answer(post(sim, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"]  # two slides, encoding

    # The slide count is known from saveMMS, so the range is checked before the template's state.
    refused(post(sim, custom_text("<VALUE>Hi</VALUE><SLIDE>3</SLIDE>", mms_id)), "E241")
    refused(post(sim, custom_text("<VALUE>Hi</VALUE><SLIDE>2</SLIDE>", mms_id)), "E626")


def test_more_than_one_customtext_is_refused(sim):
    # The v1 schema takes at most one (docs/provider-protocol.md §2.3); the client never sends more.
    body = request("sendSavedMMS", **SAVED, CUSTOMTEXT="<VALUE>Hi</VALUE><SLIDE>1</SLIDE>").replace(
        "</REQUEST>", "<CUSTOMTEXT><VALUE>Ho</VALUE><SLIDE>2</SLIDE></CUSTOMTEXT></REQUEST>"
    )

    values = refused(post(sim, body), "E100")

    assert "one slide" in values["ERRORINFO"]
    assert sim.stats()["accepted_sends"] == 0


def test_sendmms_without_fallbacksmstext_is_e622_even_with_a_subject(sim):
    values = refused(post(sim, request("sendMMS", **ADDRESS, **CONTENT, slides=(TEXT,))), "E622")

    assert values["TO"] == "13125550147"
    assert classify_error_code("E622") is ErrorClass.PERMANENT
    assert (
        answer(post(sim, request("sendMMS", **ADDRESS, **CONTENT, FALLBACKSMSTEXT="f", slides=(TEXT,))))[
            "STATUS"
        ]
        == "Success"
    )


@pytest.mark.parametrize(
    ("campaign_ref", "code"),
    [
        ("Spring Deals 2025", None),
        ("x" * 64, None),
        ("x" * 65, "E714"),
        ("Spring\tDeals", "E714"),
        (" Spring", "E714"),
    ],
)
def test_campaignref_is_text_of_1_to_64_printable_characters(sim, campaign_ref, code):
    values = answer(post(sim, sms(CAMPAIGNREF=campaign_ref)))

    assert values.get("ERRORCODE") == code


VALIDATION_CASES = [
    ("not-a-request", "<RESPONSE><STATUS>Success</STATUS></RESPONSE>", "E100"),
    ("empty-body", "", "E100"),
    ("repeated-to", sms(to="13125550147").replace("</REQUEST>", "<TO>13125550148</TO></REQUEST>"), "E100"),
    ("malformed", "<REQUEST><ACTION>sendSMS</REQUEST>", "E108"),
    ("not-xml", "action=sendSMS&to=13125550147", "E108"),
    ("no-key", request("sendSMS", key=None, **ADDRESS, TEXT="hi"), "E102"),
    ("wrong-key", request("sendSMS", key="WRONG-KEY-0000", **ADDRESS, TEXT="hi"), "E104"),
    ("no-action", request(None, **ADDRESS, TEXT="hi"), "E101"),
    ("unknown-action", request("sendFax", **ADDRESS, TEXT="hi"), "E107"),
    ("sms-no-to", request("sendSMS", FROM="47215", TEXT="hi"), "E201"),
    ("sms-plus-to", sms(to="+13125550147"), "E110"),
    ("sms-short-to", sms(to="1312555"), "E110"),
    ("sms-long-to", sms(to="1312555014712345"), "E110"),
    ("sms-00-to", sms(to="0013125550147"), "E110"),
    ("sms-no-from", request("sendSMS", TO="13125550147", TEXT="hi"), "E111"),
    ("sms-bad-from", request("sendSMS", TO="13125550147", FROM="NORTHWIND", TEXT="hi"), "E111"),
    ("sms-no-text", request("sendSMS", **ADDRESS), "E712"),
    ("sms-long-text", sms(text="x" * 161), "E712"),
    ("saved-no-to", request("sendSavedMMS", MMSID="48213", FROM="47215", FALLBACKSMSTEXT="f"), "E621"),
    ("saved-no-mmsid", request("sendSavedMMS", **ADDRESS, FALLBACKSMSTEXT="f"), "E620"),
    ("saved-no-fallback", request("sendSavedMMS", MMSID="48213", **ADDRESS), "E622"),
    ("saved-unknown", request("sendSavedMMS", **{**SAVED, "MMSID": "99999"}), "E241"),
    ("saved-not-numeric", request("sendSavedMMS", **{**SAVED, "MMSID": "abc"}), "E625"),
    ("saved-long-subject", request("sendSavedMMS", **SAVED, CUSTOMSUBJECT="s" * 81), "E314"),
    ("save-no-name", request("saveMMS", SUBJECT="s", slides=(IMAGE,)), "E311"),
    ("save-no-slide", request("saveMMS", **CONTENT), "E312"),
    ("save-nine-slides", request("saveMMS", **CONTENT, slides=(TEXT,) * 9), "E225"),
    ("save-two-objects", request("saveMMS", **CONTENT, slides=(VCARD + ICAL,)), "E223"),
    ("save-object-and-media", request("saveMMS", **CONTENT, slides=(IMAGE + VCARD,)), "E224"),
    ("save-audio-and-video", request("saveMMS", **CONTENT, slides=(AUDIO + VIDEO,)), "E226"),
    ("save-video-and-image", request("saveMMS", **CONTENT, slides=(TEXT, VIDEO + IMAGE)), "E227"),
    ("save-two-images", request("saveMMS", **CONTENT, slides=(IMAGE + IMAGE,)), "E229"),
    ("save-unknown-child", request("saveMMS", **CONTENT, slides=("<GIF>x</GIF>",)), "E229"),
    ("save-long-text", request("saveMMS", **CONTENT, slides=(f"<TEXT>{'x' * 5001}</TEXT>",)), "E228"),
    ("save-bad-duration", request("saveMMS", **CONTENT, slides=(TEXT + "<DURATION>ten</DURATION>",)), "E230"),
    ("save-empty-slide", request("saveMMS", **CONTENT, slides=(TEXT, "")), "E313"),
    ("save-no-url", request("saveMMS", **CONTENT, slides=(TEXT, TEXT, "<IMAGE></IMAGE>")), "E353"),
    ("save-long-subject", request("saveMMS", NAME="n", SUBJECT="s" * 81, slides=(TEXT,)), "E314"),
    ("save-no-subject-no-fallback", request("saveMMS", NAME="n", slides=(TEXT,)), "E314"),
    ("mms-no-to", request("sendMMS", FROM="47215", **CONTENT, slides=(TEXT,)), "E621"),
    ("mms-no-subject-no-fallback", request("sendMMS", **ADDRESS, NAME="n", slides=(TEXT,)), "E622"),
    ("mms-composition", request("sendMMS", **ADDRESS, **CONTENT, slides=(VIDEO + IMAGE,)), "E227"),
    ("mms-bad-to", request("sendMMS", TO="12", FROM="47215", **CONTENT, slides=(TEXT,)), "E110"),
]


@pytest.mark.parametrize(
    ("body", "code"), [case[1:] for case in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_validation_errors_carry_the_providers_code(sim, body, code):
    response = post(sim, body)

    assert response.status_code == 200
    values = answer(response)
    assert values["STATUS"] == "Failure"
    assert values["ERRORCODE"] == code
    assert values["ERRORINFO"]
    result = parse_response(response.content, http_status=200)
    assert not result.ok
    assert result.error_code == code
    assert result.error_class == classify_error_code(code)
    assert sim.stats()["accepted_sends"] == 0


def test_failures_echo_to_except_for_request_level_errors(sim):
    assert answer(post(sim, sms(to="1312555014")))["TO"] == "1312555014"
    assert "TO" not in answer(post(sim, request("sendSMS", key="WRONG", **ADDRESS, TEXT="hi")))


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10))
    + "]>\n<REQUEST><ACTION>sendSMS</ACTION><API_KEY>"
    + KEY
    + "</API_KEY><TO>13125550147</TO><FROM>47215</FROM><TEXT>&lol9;</TEXT></REQUEST>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<REQUEST><ACTION>sendSMS</ACTION><TEXT>&x;</TEXT></REQUEST>"
)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-bomb", "external-entity"])
def test_doctype_is_refused_with_e108_without_expansion(sim, body, monkeypatch):
    work = count_parses(monkeypatch, "local.simulator.protocol")
    response = post(sim, body)

    assert answer(response)["ERRORCODE"] == "E108"
    # Work counted, not timed: refused by a byte scan or, at the latest, by the parser at the DOCTYPE,
    # before its first entity declaration, with no element and no text handed on.
    for parse in work:
        assert (parse.elements, parse.characters) == (0, 0)
        assert parse.stopped_at < body.encode().index(b"<!ENTITY")
    assert b"lol" not in response.content
    assert b"root:" not in response.content
    entry = sim.log()[-1]
    assert entry["fields"] is None
    assert entry["error_code"] == "E108"


def test_get_is_refused_and_its_query_never_logged(sim):
    response = requests.get(sim.api_url, params={"api_key": KEY, "action": "sendSMS"}, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert answer(response)["ERRORCODE"] == "E100"
    assert KEY not in requests.get(f"{sim.base_url}/_sim/log", timeout=5).text
    assert sim.log()[-1]["answer"] == "http_405"


# -- throughput ----------------------------------------------------------------------------------------------
def test_throughput_limit_rejects_the_excess_with_e113_then_recovers(make_sim):
    limit = 5
    clock = Clock()  # the burst lands in one window however long its calls take
    simulator = make_sim(throughput_per_s=limit, clock=clock)
    barrier = threading.Barrier(3 * limit)

    def call(number: int) -> dict[str, str]:
        barrier.wait(5)
        return answer(post(simulator, sms(text=f"burst {number}")))

    with ThreadPoolExecutor(3 * limit) as pool:
        answers = list(pool.map(call, range(3 * limit)))

    codes = [item.get("ERRORCODE", "Success") for item in answers]
    assert codes.count("Success") == limit
    assert codes.count("E113") == 2 * limit
    assert all(item["TO"] == "13125550147" for item in answers)
    assert simulator.stats()["e113"] == 2 * limit
    assert classify_error_code("E113") is ErrorClass.THROTTLE

    clock.advance(0.95)  # the window still holds the burst
    assert answer(post(simulator, sms(text="too soon")))["ERRORCODE"] == "E113"
    clock.advance(0.1)  # a second after the burst: the window is empty again
    later = [
        answer(post(simulator, sms(text=f"later {n}"))).get("ERRORCODE", "Success") for n in range(limit + 1)
    ]
    assert later == ["Success"] * limit + ["E113"]


def test_throughput_limit_can_be_changed_at_runtime(make_sim):
    simulator = make_sim(clock=Clock())  # the three calls fall in one window
    assert control(simulator, "POST", "config", {"throughput_per_s": 1}).json()["throughput_per_s"] == 1

    codes = [answer(post(simulator, sms(text=str(n)))).get("ERRORCODE", "Success") for n in range(3)]

    assert codes == ["Success", "E113", "E113"]
    assert control(simulator, "POST", "config", {"throughput_per_s": 0}).status_code == 400


def test_minimum_interval_rejects_a_call_that_comes_too_soon_with_e106(make_sim):
    clock = Clock()
    simulator = make_sim(clock=clock)
    config = control(simulator, "POST", "config", {"min_interval_s": 0.3}).json()
    assert config["min_interval_s"] == 0.3

    first = answer(post(simulator, sms(text="interval 0")))
    clock.advance(0.1)
    second = answer(post(simulator, sms(text="interval 1")))
    clock.advance(0.25)  # 0.35 s after the first call, 0.25 s after the refused one
    later = answer(post(simulator, sms(text="interval later")))

    assert first["STATUS"] == "Success"
    assert (second["ERRORCODE"], second["TO"]) == ("E106", "13125550147")
    assert later["STATUS"] == "Success"  # the refused call did not move the mark
    assert (simulator.stats()["e106"], simulator.stats()["accepted_sends"]) == (1, 2)
    assert classify_error_code("E106") is ErrorClass.THROTTLE
    assert control(simulator, "POST", "config", {"min_interval_s": 0}).status_code == 400


def test_request_quota_rejects_every_call_past_it_with_e120(make_sim):
    simulator = make_sim(request_quota=2)

    codes = [answer(post(simulator, sms(text=f"quota {n}"))).get("ERRORCODE", "Success") for n in range(4)]

    assert codes == ["Success", "Success", "E120", "E120"]
    assert (simulator.stats()["e120"], simulator.stats()["quota_used"]) == (2, 2)
    assert classify_error_code("E120") is ErrorClass.THROTTLE
    # A quota set anew is a new period; so is a reset.
    assert control(simulator, "POST", "config", {"request_quota": 1}).json()["request_quota"] == 1
    assert answer(post(simulator, sms(text="new period")))["STATUS"] == "Success"
    assert answer(post(simulator, sms(text="over again")))["ERRORCODE"] == "E120"
    simulator.reset()
    assert answer(post(simulator, sms(text="after reset")))["STATUS"] == "Success"
    assert control(simulator, "POST", "config", {"request_quota": -1}).status_code == 400


def test_quota_comes_before_interval_and_throughput(make_sim):
    simulator = make_sim(request_quota=1, min_interval_s=60, throughput_per_s=1)

    codes = [answer(post(simulator, sms(text=f"order {n}"))).get("ERRORCODE", "Success") for n in range(2)]
    simulator.request_quota = None
    after_quota = answer(post(simulator, sms(text="interval")))["ERRORCODE"]

    assert codes == ["Success", "E120"]
    assert after_quota == "E106"


# -- faults --------------------------------------------------------------------------------------------------
def test_http_error_fault_answers_html_and_processes_nothing(make_sim):
    simulator = make_sim(faults=[ProviderFault("http_error", status=503, count=1)])

    failed = post(simulator, sms())
    succeeded = post(simulator, sms())

    assert failed.status_code == 503
    assert failed.headers["Content-Type"].startswith("text/html")
    assert b"<html>" in failed.content
    result = parse_response(failed.content, http_status=503)
    assert result.error_class is ErrorClass.TRANSIENT
    assert result.outcome_unknown
    assert answer(succeeded)["STATUS"] == "Success"
    first = simulator.log()[0]
    assert (first["fault"], first["processed"], first["http_status"]) == ("http_error:503", False, 503)
    assert simulator.stats()["accepted_sends"] == 1


def test_a_proxys_429_has_no_xml_and_a_retry_after(make_sim):
    simulator = make_sim()
    fault = {"kind": "http_error", "status": 429, "retry_after_s": 7, "count": 1}
    assert control(simulator, "POST", "faults", fault).json()["faults"][0]["retry_after_s"] == 7

    throttled = post(simulator, sms())
    after = post(simulator, sms())

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert throttled.headers["Content-Type"].startswith("text/html")
    assert b"<RESPONSE" not in throttled.content
    result = parse_response(throttled.content, http_status=429)
    assert (result.error_class, result.error_code, result.transport_error) == (
        ErrorClass.THROTTLE,
        None,
        TransportFailure.HTTP_429,
    )
    assert not result.outcome_unknown  # the proxy refused it: the API never saw the call
    assert answer(after)["STATUS"] == "Success"
    assert "Retry-After" not in after.headers
    first = simulator.log()[0]
    assert (first["answer"], first["http_status"], first["processed"]) == ("http_429", 429, False)
    assert simulator.stats()["accepted_sends"] == 1


@pytest.mark.parametrize("accept", [False, True])
def test_a_proxys_408_has_no_xml_and_leaves_the_outcome_unknown(make_sim, receiver, accept):
    simulator = make_sim(
        postback_url=receiver.url, faults=[ProviderFault("http_error", status=408, count=1, accept=accept)]
    )

    response = post(simulator, sms())

    assert response.status_code == 408
    assert "Retry-After" not in response.headers
    result = parse_response(response.content, http_status=408)
    assert (result.error_class, result.transport_error, result.outcome_unknown) == (
        ErrorClass.TRANSIENT,
        TransportFailure.HTTP_408,
        True,
    )
    entry = simulator.log()[0]
    assert (entry["answer"], entry["accepted"]) == ("http_408", accept)
    if accept:  # the API read and took it before the proxy gave up: its postbacks still come
        assert parse_postback(receiver.wait_for(2)[-1].body).tracking_id == entry["tracking_id"]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": 429, "retry_after_s": -1},
        {"kind": "http_error", "status": 429, "retry_after_s": 1.5},
        {"kind": "drop", "retry_after_s": 5},
    ],
)
def test_an_unusable_retry_after_is_refused(make_sim, fault):
    assert control(make_sim(), "POST", "faults", fault).status_code == 400


def test_delay_fault_times_the_client_out_after_accepting(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url, faults=[ProviderFault("delay", delay_s=0.8, count=1)])

    with pytest.raises(requests.ReadTimeout):
        post(simulator, sms(), timeout=0.3)

    entry = simulator.log()[0]
    assert entry["accepted"]
    assert entry["fault"] == "delay:0.8s"
    assert parse_postback(receiver.wait_for(1)[0].body).tracking_id == entry["tracking_id"]


@pytest.mark.parametrize("accept", [False, True])
def test_drop_fault_closes_the_connection(make_sim, accept):
    simulator = make_sim(faults=[ProviderFault("drop", count=1, accept=accept)])

    with pytest.raises(requests.ConnectionError):
        post(simulator, sms())

    entry = simulator.log()[0]
    assert entry["answer"] == "dropped"
    assert entry["http_status"] is None
    assert entry["accepted"] is accept
    assert simulator.stats()["accepted_sends"] == int(accept)
    assert answer(post(simulator, sms()))["STATUS"] == "Success"


def test_malformed_fault_answers_200_with_a_body_that_is_not_xml(make_sim):
    simulator = make_sim(faults=[ProviderFault("malformed", count=1)])

    response = post(simulator, sms())

    assert response.status_code == 200
    result = parse_response(response.content, http_status=200)
    assert result.transport_error is TransportFailure.NOT_XML
    assert result.outcome_unknown


@pytest.mark.parametrize("code", ["E503", "E113", "E106", "E120", "E104", "E626", "E112"])
def test_answer_fault_gives_the_api_failure_on_demand(make_sim, code):
    simulator = make_sim(faults=[ProviderFault("answer", code=code, count=1, actions=("sendSMS",))])

    values = answer(post(simulator, sms()))

    assert (values["STATUS"], values["ERRORCODE"]) == ("Failure", code)
    assert values["ERRORINFO"] != "Request failed."  # the provider's own text for every code it names
    assert answer(post(simulator, sms()))["STATUS"] == "Success"


def test_faults_can_target_one_action(make_sim):
    simulator = make_sim(
        faults=[ProviderFault("answer", code="E626", actions=("sendSavedMMS",))], templates=["48213"]
    )

    assert answer(post(simulator, sms()))["STATUS"] == "Success"
    assert answer(post(simulator, request("sendSavedMMS", **SAVED)))["ERRORCODE"] == "E626"


def test_rate_faults_are_deterministic_with_a_seed(make_sim):
    def run() -> list[str]:
        simulator = make_sim(faults=[ProviderFault("answer", code="E503", rate=0.5)], seed=7)
        return [answer(post(simulator, sms(text=str(n)))).get("ERRORCODE", "Success") for n in range(16)]

    first, second = run(), run()

    assert first == second
    assert 0 < first.count("E503") < 16


def test_e113_storm_lasts_its_duration(make_sim):
    clock = Clock()
    simulator = make_sim(clock=clock)
    simulator.e113_storm(0.5)

    during = []
    for n in range(3):
        during.append(answer(post(simulator, sms(text=str(n)))).get("ERRORCODE"))
        clock.advance(0.15)  # 0, 0.15 and 0.3 s into the storm
    clock.advance(0.15)  # 0.6 s: over

    assert during == ["E113"] * 3
    assert answer(post(simulator, sms()))["STATUS"] == "Success"
    assert simulator.stats()["e113"] == 3


def test_faults_are_controlled_over_http(make_sim):
    simulator = make_sim()

    added = control(simulator, "POST", "faults", {"kind": "answer", "code": "E104", "count": 2})
    assert added.status_code == 200
    assert added.json()["faults"][0]["remaining"] == 2
    assert [answer(post(simulator, sms())).get("ERRORCODE") for _ in range(3)] == ["E104", "E104", None]

    storm = {"faults": [{"kind": "answer", "code": "E113", "duration_s": 30}], "clear": True, "seed": 3}
    assert len(control(simulator, "POST", "faults", storm).json()["faults"]) == 1
    assert answer(post(simulator, sms()))["ERRORCODE"] == "E113"
    assert control(simulator, "DELETE", "faults").json() == {"faults": []}
    assert answer(post(simulator, sms()))["STATUS"] == "Success"

    assert control(simulator, "POST", "faults", {"kind": "explode"}).status_code == 400
    assert control(simulator, "POST", "faults", {"kind": "drop", "colour": "red"}).status_code == 400
    assert control(simulator, "GET", "faults").json() == {"faults": []}


# -- postbacks -----------------------------------------------------------------------------------------------
def test_sms_postbacks_arrive_in_order_in_the_v1_dialect(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    tracking_id = answer(post(simulator, sms()))["TRACKINGID"]

    first, second = receiver.wait_for(2)

    assert [parse_postback(item.body).code for item in (first, second)] == ["N201", "N202"]
    for item in (first, second):
        assert item.body.startswith(b"<?xml version='1.0'?>\n<POSTBACK>")
        assert item.content_type == "text/xml"
        assert item.path == "/postback/token"
        parsed = parse_postback(item.body)
        assert (parsed.origin, parsed.dialect, parsed.tracking_id) == ("SMS_MT", "v1", tracking_id)
        assert EASTERN_TIME.fullmatch(parsed.timestamp_raw)
    assert parse_postback(second.body).state.name == "DELIVERED"
    assert simulator.wait_for_postbacks(2)
    assert simulator.stats()["postbacks"]["delivered"] == 2


def test_mms_postbacks_carry_the_template_and_tracking_id(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url, templates=["51876"])
    values = answer(post(simulator, (REQUESTS / "send_saved_mms.xml").read_bytes()))

    sent, delivered = (parse_postback(item.body) for item in receiver.wait_for(2))

    assert (sent.code, sent.state.name, delivered.code, delivered.state.name) == (
        "N101",
        "SENT",
        "N102",
        "DELIVERED",
    )
    for parsed in (sent, delivered):
        assert (parsed.tracking_id, parsed.mms_id) == (values["TRACKINGID"], "51876")
        assert parsed.fields["TO"] == "13125550118"
        assert parsed.fields["SENTAS"] == "MMS"


def test_hyphenated_dialect_when_configured(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url, postbacks=FAST, templates=["48213"])
    simulator.configure_postbacks(dialect="hyphenated", mms_outcome="N202")
    tracking_id = answer(post(simulator, request("sendSavedMMS", **SAVED)))["TRACKINGID"]

    bodies = [item.body for item in receiver.wait_for(2)]

    assert all(body.startswith(b"<?xml version='1.0'?>\n<postback>") for body in bodies)
    assert all(b"<tracking-id>" in body and b"TRACKINGID" not in body for body in bodies)
    parsed = [parse_postback(body) for body in bodies]
    assert [(p.dialect, p.code, p.tracking_id) for p in parsed] == [
        ("hyphenated", "N101", tracking_id),
        ("hyphenated", "N102", tracking_id),  # link delivery is N102 + sent-as SMS in this dialect
    ]
    assert parsed[1].via_link


OUTCOME_CASES = [
    ("sms", "E202", ["N201", "E202"], "UNDELIVERED"),
    ("sms", "E201", ["E201"], "FAILED"),
    ("mms", "E102", ["N101", "E102"], "UNDELIVERED"),
    ("mms", "E101", ["E101"], "FAILED"),
    ("mms", "N202", ["N101", "N202"], "DELIVERED"),
    ("mms", "E202", ["N101", "E202"], "UNDELIVERED"),
    ("mms", None, ["N101"], "SENT"),
]


@pytest.mark.parametrize(("kind", "outcome", "codes", "final"), OUTCOME_CASES)
def test_configured_outcomes(make_sim, receiver, kind, outcome, codes, final):
    simulator = make_sim(postback_url=receiver.url, templates=["48213"])
    simulator.configure_postbacks(**{f"{kind}_outcome": outcome})
    body = sms() if kind == "sms" else request("sendSavedMMS", **SAVED)
    answer(post(simulator, body))

    parsed = [parse_postback(item.body) for item in receiver.wait_for(len(codes))]
    simulator.wait_for_postbacks(2)

    assert [p.code for p in parsed] == codes
    assert len(receiver.received) == len(codes)
    assert parsed[-1].state.name == final
    if outcome == "E102":
        assert parsed[-1].fields["STATUS"] == "Message Sent/Expired"
        assert parsed[-1].failure_reason == "Expired"
    if outcome in ("N202", "E202") and kind == "mms":
        assert parsed[-1].fields["SENTAS"] == "SMS"


def test_outcome_per_recipient_and_status_text(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(
        outcome_by_to={"13125550199": "E202"}, status_text="Message Sent/NotSupported"
    )
    answer(post(simulator, sms(to="13125550199")))

    parsed = [parse_postback(item.body) for item in receiver.wait_for(2)]

    assert [p.code for p in parsed] == ["N201", "E202"]
    assert parsed[1].failure_reason == "NotSupported"


FAILURE_TEXT_CASES = [
    # (dialect, kind, outcome, configured STATUS, STATUS on the wire, reason the parser reads)
    ("v1", "mms", "N102", "Message Sent/Expired", "Message Sent/Expired", "Expired"),
    ("v1", "mms", "N102", "Message Sent/Rejected", "Message Sent/Rejected", "Rejected"),
    ("v1", "mms", "N102", "Message Sent/Failed", "Message Sent/Failed", "Failed"),
    ("v1", "mms", "N202", "Message Sent/Expired", "Message Sent/Expired", "Expired"),
    ("v1", "sms", "N202", "Message Sent/Failed", "Message Sent/Failed", "Failed"),
    ("v1", "sms", "N202", "Message Sent/Not Supported", "Message Sent/NotSupported", "NotSupported"),
    ("hyphenated", "mms", "N102", "Message Sent/NotSupported", "Message Sent/Not Supported", "NotSupported"),
    ("hyphenated", "mms", "N102", "Message Sent/Rejected", "Message Sent/Rejected", "Rejected"),
]


@pytest.mark.parametrize(
    ("dialect", "kind", "outcome", "status_text", "on_the_wire", "reason"),
    FAILURE_TEXT_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[5]}" for c in FAILURE_TEXT_CASES],
)
def test_delivery_reports_carry_a_failure_text_when_configured(
    make_sim, receiver, dialect, kind, outcome, status_text, on_the_wire, reason
):
    simulator = make_sim(postback_url=receiver.url, templates=["48213"])
    settings = {"dialect": dialect, f"{kind}_outcome": outcome, "status_text": status_text}
    assert control(simulator, "POST", "config", {"postbacks": settings}).status_code == 200
    body = sms() if kind == "sms" else request("sendSavedMMS", **SAVED)
    tracking_id = answer(post(simulator, body))["TRACKINGID"]

    first, report = receiver.wait_for(2)
    parsed = [parse_postback(item.body) for item in (first, report)]

    assert [p.code for p in parsed] == ["N201" if kind == "sms" else "N101", outcome]
    # The report carries the failure in its STATUS, spelled as the dialect spells it; N101/N201 do not.
    tag = "status" if dialect == "hyphenated" else "STATUS"
    assert f"<{tag}>{on_the_wire}</{tag}>".encode() in report.body
    assert f"<{tag}>Message Sent</{tag}>".encode() in first.body
    assert (parsed[1].tracking_id, parsed[1].state.name, parsed[1].failure_reason) == (
        tracking_id,
        "UNDELIVERED",
        reason,
    )
    assert parsed[1].dialect == dialect
    if kind == "mms":
        assert b"HANDSET" not in report.body.upper()  # a failed report names no handset
        assert parsed[1].fields["SENTAS"] == ("SMS" if outcome == "N202" else "MMS")


def test_duplicates_send_the_same_body_k_times(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(duplicates=3)
    answer(post(simulator, sms()))

    received = receiver.wait_for(6)
    simulator.wait_for_postbacks(2)

    assert len(receiver.received) == 6
    bodies = [item.body for item in received]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[3] == bodies[4] == bodies[5]
    assert [parse_postback(body).code for body in bodies] == ["N201"] * 3 + ["N202"] * 3


def test_reverse_order_sends_the_outcome_first(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(reverse_order=True)
    answer(post(simulator, sms()))

    assert [parse_postback(item.body).code for item in receiver.wait_for(2)] == ["N202", "N201"]


def test_delayed_first_postback_arrives_after_the_outcome(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url, templates=["48213"])
    simulator.configure_postbacks(delay_first_s=0.3)
    answer(post(simulator, request("sendSavedMMS", **SAVED)))

    outcome, first = receiver.wait_for(2)

    assert [parse_postback(item.body).code for item in (outcome, first)] == ["N102", "N101"]
    assert first.at - outcome.at >= 0.25
    # Sent late, but its TIMESTAMP still says when it happened: before the delivery.
    assert parse_postback(first.body).timestamp_utc <= parse_postback(outcome.body).timestamp_utc


def test_unanswered_postbacks_are_retried_with_the_same_body(make_sim, receiver):
    receiver.script.extend([503, 503])
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(sms_outcome=None)
    answer(post(simulator, sms()))

    attempts = receiver.wait_for(3)
    assert simulator.wait_for_postbacks(2)

    assert [item.answered for item in attempts] == [503, 503, 200]
    assert len({item.body for item in attempts}) == 1
    assert all(later.at - earlier.at >= 0.12 for earlier, later in itertools.pairwise(attempts))
    logged = [entry for entry in simulator.log() if entry["type"] == "postback"]
    assert [(e["attempt"], e["http_status"], e["outcome"]) for e in logged] == [
        (1, 503, "retry"),
        (2, 503, "retry"),
        (3, 200, "delivered"),
    ]


def test_retries_stop_after_five(make_sim, receiver):
    receiver.script.extend([500] * 20)
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(sms_outcome=None, retry_interval_s=0.05)
    answer(post(simulator, sms()))

    assert simulator.wait_for_postbacks(5)
    time.sleep(0.2)

    assert len(receiver.received) == 6
    logged = [entry for entry in simulator.log() if entry["type"] == "postback"]
    assert [entry["outcome"] for entry in logged] == ["retry"] * 5 + ["gave_up"]
    assert simulator.stats()["postbacks"]["gave_up"] == 1


def test_unreachable_receiver_counts_as_a_failed_attempt(make_sim):
    simulator = make_sim(postback_url=f"http://127.0.0.1:{free_port()}/postback")
    simulator.configure_postbacks(sms_outcome=None, max_retries=1, retry_interval_s=0.05)
    answer(post(simulator, sms()))

    assert simulator.wait_for_postbacks(5)

    logged = [entry for entry in simulator.log() if entry["type"] == "postback"]
    assert [(entry["http_status"], entry["outcome"]) for entry in logged] == [
        (None, "retry"),
        (None, "gave_up"),
    ]
    assert logged[0]["error"] == "ConnectionError"


def test_the_queue_is_bounded(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(queue_limit=2, first_delay_s=60)  # nothing leaves the queue meanwhile
    for n in range(3):
        answer(post(simulator, sms(text=str(n))))

    assert simulator.stats()["postbacks"]["dropped"] == 4  # the first message's two fill the queue
    assert simulator.stats()["postbacks"]["pending"] == 2


def test_stop_is_prompt_with_postbacks_pending(receiver):
    before = set(threading.enumerate())
    simulator = ProviderSimulator(api_key=KEY, postback_url=receiver.url, postbacks=FAST).start()
    threads = set(threading.enumerate()) - before
    receiver.script.extend([503] * 10)
    for n in range(5):
        answer(post(simulator, sms(text=str(n))))
    receiver.wait_for(1)

    simulator.stop()
    attempts = len(receiver.received)

    # Prompt, judged by what it did rather than by a stopwatch: it did not deliver (or retry) what was still
    # queued, its threads have ended, and nothing reaches the receiver or the API afterwards.
    assert simulator.stats()["postbacks"]["pending"] > 0
    assert not [thread.name for thread in threads if thread.is_alive()]
    with pytest.raises(requests.ConnectionError):
        post(simulator, sms(), timeout=5)
    assert len(receiver.received) == attempts


def test_inbound_messages_from_python_and_http(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)

    sms_mo = simulator.inject_sms_mo(from_="14155550178", to="47215", text="STOP")
    mms_mo = control(
        simulator,
        "POST",
        "inbound",
        {"kind": "mms_mo", "from": "17735550102", "to": "47215", "files": ["https://mo.example/a.jpg"]},
    ).json()
    control(
        simulator, "POST", "inbound", {"kind": "subscribe", "mobile": "13125550147", "campaign_id": "2291"}
    )
    simulator.inject_subscription(mobile="13125550147", campaign_id="2291", subscribed=False)

    parsed = [parse_postback(item.body) for item in receiver.wait_for(4)]

    assert [(p.origin, p.code) for p in parsed] == [
        ("SMS_MO", "N211"),
        ("MMS_MO", "N401"),
        ("SUB", "N301"),
        ("SUB", "N302"),
    ]
    assert parsed[0].correlation_id == sms_mo["fields"]["TRANSACTIONID"]
    assert parsed[0].inbound_stop
    assert parsed[1].tracking_id == mms_mo["fields"]["TRACKINGID"]
    assert parsed[1].files == ("https://mo.example/a.jpg",)
    assert [p.subscribed for p in parsed[2:]] == [True, False]
    assert EASTERN_TIME.fullmatch(parsed[0].timestamp_raw)


def test_inbound_uses_the_mo_url_and_raw_bodies_pass_through(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url + "-main", mo_postback_url=receiver.url + "-mo")
    simulator.inject_sms_mo(from_="14155550178", to="47215", text="HELP")
    sample = (SAMPLES / "postbacks" / "mms_mt_n101.xml").read_text()
    assert control(simulator, "POST", "inbound", {"kind": "raw", "body": sample}).json()["code"] == "N101"

    first, second = receiver.wait_for(2)

    assert (first.path, second.path) == ("/postback/token-mo", "/postback/token-main")
    assert second.body == sample.encode()
    assert control(simulator, "POST", "inbound", {"kind": "fax"}).status_code == 400


# -- templates -----------------------------------------------------------------------------------------------
def test_saved_template_is_e626_until_n003_then_sendable(make_sim, receiver):
    clock = Clock()  # encoding ends when the test says so, not when a busy machine gets round to the call
    simulator = make_sim(postback_url=receiver.url, clock=clock)
    mms_id = answer(post(simulator, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"]
    send = request("sendSavedMMS", **{**SAVED, "MMSID": mms_id})

    early = answer(post(simulator, send))
    assert receiver.received == []
    clock.advance(FAST.template_delay_s)  # encoding done: N003 is due
    (n003,) = receiver.wait_for(1)
    ready = answer(post(simulator, send))

    assert (early["ERRORCODE"], early["TO"]) == ("E626", "13125550147")
    assert classify_error_code("E626") is ErrorClass.TRANSIENT
    parsed = parse_postback(n003.body)
    assert (parsed.code, parsed.mms_id, parsed.template_state.name) == ("N003", mms_id, "READY")
    assert (
        n003.body
        == (
            "<?xml version='1.0'?>\n<POSTBACK>\n    <ORIGIN>MMS_MT</ORIGIN>\n    <CODE>N003</CODE>\n"
            f"    <MMSID>{mms_id}</MMSID>\n</POSTBACK>\n"
        ).encode()
    )
    assert (ready["STATUS"], ready["MMSID"]) == ("Success", mms_id)


def test_failed_encoding_breaks_the_template(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    simulator.configure_postbacks(template_outcome="E002", template_delay_s=0.05)
    mms_id = answer(post(simulator, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"]

    parsed = parse_postback(receiver.wait_for(1)[0].body)

    assert (parsed.code, parsed.template_state.name) == ("E002", "BROKEN")
    assert parsed.fields["AUDIONAME"] == "https://media.lakeshore.example/mms/winter/espresso-pull.mp3"
    assert (
        answer(post(simulator, request("sendSavedMMS", **{**SAVED, "MMSID": mms_id})))["ERRORCODE"] == "E625"
    )


def test_template_becomes_ready_without_a_postback_url(make_sim):
    clock = Clock()
    simulator = make_sim(clock=clock)
    simulator.configure_postbacks(template_delay_s=0.1)
    mms_id = answer(post(simulator, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"]

    assert simulator.template_state(mms_id) == "ENCODING"
    clock.advance(0.15)
    assert simulator.template_state(mms_id) == "READY"
    assert control(simulator, "POST", "templates", {"mms_id": "777"}).json()["state"] == "READY"


# -- audit log and statistics --------------------------------------------------------------------------------
def test_audit_log_counts_duplicates_and_never_holds_the_key(make_sim, receiver):
    simulator = make_sim(postback_url=receiver.url)
    post(simulator, sms(text="same"))
    post(simulator, sms(text="same"))  # the same message to the same number: a duplicate
    post(simulator, sms(text="other"))
    post(simulator, sms(to="13125550148", text="same"))
    post(simulator, request("sendSMS", key="SOME-OTHER-KEY-1234", **ADDRESS, TEXT="hi"))
    post(simulator, sms(text=f"quoting the key {KEY}"))
    simulator.wait_for_postbacks(3)

    stats = control(simulator, "GET", "stats").json()
    log = control(simulator, "GET", "log")

    # Postbacks share the log's sequence: one delivered between two calls takes a number between theirs.
    api_calls = [entry for entry in log.json()["entries"] if entry["type"] == "api"]
    seqs = [entry["seq"] for entry in api_calls]
    assert len(seqs) == 6
    assert seqs == sorted(set(seqs))
    assert stats["duplicates"] == 1
    assert stats["duplicate_sends"] == [{"seq": seqs[1], "first_seq": seqs[0], "to": "13125550147"}]
    assert stats["accepted_sends"] == 5
    assert stats["calls_by_action"]["sendSMS"] == {"Success": 5, "E104": 1}
    assert stats["postbacks"]["delivered"] == 10
    assert KEY not in log.text
    assert KEY not in json.dumps(stats)
    assert "SOME-OTHER-KEY-1234" not in log.text
    first = api_calls[0]
    assert first["fields"]["APIKEY"] == "[REDACTED]"
    assert (first["action"], first["to"], first["answer"], first["http_status"]) == (
        "sendSMS",
        "13125550147",
        "Success",
        200,
    )
    postbacks = [entry for entry in log.json()["entries"] if entry["type"] == "postback"]
    assert {entry["code"] for entry in postbacks} == {"N201", "N202"}
    assert {entry["tracking_id"] for entry in postbacks} == {
        e["tracking_id"] for e in api_calls if e["accepted"]
    }
    assert all(entry["attempt"] == 1 and entry["http_status"] == 200 for entry in postbacks)


def test_log_since_and_reset(make_sim):
    simulator = make_sim(templates=["48213"])
    post(simulator, sms())
    post(simulator, sms(to="1"))
    mms_id = answer(post(simulator, (REQUESTS / "save_mms.xml").read_bytes()))["MMSID"]

    entries = control(simulator, "GET", "log?since=1").json()["entries"]
    assert [(e["seq"], e["answer"]) for e in entries] == [(2, "E110"), (3, "Success")]

    assert control(simulator, "POST", "reset").json() == {"ok": True}

    assert control(simulator, "GET", "log").json() == {"entries": [], "last_seq": 0}
    assert simulator.stats()["calls"] == 0
    assert simulator.template_state(mms_id) is None
    assert simulator.template_state("48213") == "READY"
    post(simulator, sms())
    assert simulator.log()[0]["seq"] == 4  # sequence numbers are never reused


# -- the command line ----------------------------------------------------------------------------------------
def test_command_line_entry_point(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local.simulator", "--port", str(port), "--api-key", KEY, "--throughput", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                health = requests.get(f"{base_url}/_sim/health", timeout=1).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        assert health["api_url"] == f"{base_url}/API/wxml/1.3/"
        response = requests.post(
            health["api_url"],
            data=(REQUESTS / "send_sms.xml").read_bytes(),
            headers={"Content-Type": "text/xml"},
            timeout=5,
        )
        assert answer(response)["STATUS"] == "Success"
        assert requests.get(f"{base_url}/_sim/config", timeout=5).json()["throughput_per_s"] == 2
    finally:
        process.terminate()
        process.wait(10)
    output = process.stdout.read().decode()
    assert f"API URL:       http://127.0.0.1:{port}/API/wxml/1.3/" in output
    assert KEY not in output
