import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.sending.request import (
    Action,
    CustomText,
    InvalidSendRequest,
    SaveMMS,
    SendMMS,
    SendRequest,
    SendSavedMMS,
    SendSMS,
    Slide,
    parse_send_request_json,
    validate_save_mms,
    validate_send_request,
)

IMG = "https://media.example.com/mms/hero.jpg"
AUDIO = "https://media.example.com/mms/jingle.mp3"
VIDEO = "https://media.example.com/mms/clip.mp4"
VCARD = "https://media.example.com/mms/card.vcf"
ICAL = "https://media.example.com/mms/trip.ics"


def sms(**changes):
    payload = {
        "request_id": "req-0001",
        "action": "sendSMS",
        "to": "+1 (312) 555-0147",
        "from": "47215",
        "text": "Your order ships today.",
    }
    payload.update(changes)
    return payload


def saved(**changes):
    payload = {
        "request_id": "req-0002",
        "action": "sendSavedMMS",
        "to": "13125550147",
        "from": "47215",
        "mms_id": "48213",
        "fallback_sms_text": "Spring deals: see the offer",
    }
    payload.update(changes)
    return payload


def mms(**changes):
    payload = {
        "request_id": "req-0003",
        "action": "sendMMS",
        "to": "13125550152",
        "from": "47215",
        "name": "inline-0001",
        "subject": "Your boarding pass",
        "slides": [{"image_url": IMG, "text": "Show this at the gate.", "duration": 10}],
        "fallback_sms_text": "Your boarding pass is ready",
    }
    payload.update(changes)
    return payload


def slide_errors(slide, **changes):
    return errors_of(mms(slides=[slide], **changes))


def without(payload, *names):
    return {key: value for key, value in payload.items() if key not in names}


def errors_of(payload, **kwargs):
    with pytest.raises(InvalidSendRequest) as caught:
        validate_send_request(payload, **kwargs)
    return caught.value.errors


def assert_error(errors, field, fragment):
    matching = [reason for name, reason in errors if name == field and fragment in reason]
    assert matching, f"no error ({field!r}, ...{fragment!r}...) in {errors}"


# ------------------------------------------------------------------------------------------ valid


def test_valid_send_sms():
    request = validate_send_request(
        sms(action="SENDsms", campaign_ref=42, operator_id="0001890", from_mask="Northwind")
    )
    assert isinstance(request, SendSMS)
    assert isinstance(request, SendRequest)
    assert request.action is Action.SEND_SMS
    assert request.action == "sendSMS"
    assert request.request_id == "req-0001"
    assert request.to == "13125550147"
    assert request.from_ == "47215"
    assert request.text == "Your order ships today."
    assert request.campaign_ref == "42"
    assert request.operator_id == "0001890"
    assert request.from_mask == "Northwind"
    assert request.ignored_fields == ()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Campaign123", "Campaign123"),  # the provider's own example
        ("Spring Deals 2025", "Spring Deals 2025"),
        ("promo/2025-03#1 (A&B) <test>", "promo/2025-03#1 (A&B) <test>"),  # escaped in the XML
        ("Été-2025 🌸 春", "Été-2025 🌸 春"),  # any script, symbols and emoji are printable
        ("0077", "0077"),  # leading zeros kept in a string
        ("1001", "1001"),
        ("x", "x"),
        (0, "0"),
        (42, "42"),
    ],
)
def test_campaign_ref_is_printable_text_or_a_non_negative_integer(given, kept):
    for build in (sms, saved, mms):
        assert validate_send_request(build(campaign_ref=given)).campaign_ref == kept


@pytest.mark.parametrize("absent", [None, ""])
def test_an_empty_campaign_ref_is_absent(absent):
    assert validate_send_request(sms(campaign_ref=absent)).campaign_ref is None


def test_more_than_one_custom_text_is_refused_and_every_entry_still_checked():
    errors = errors_of(saved(custom_text={"1": "", "9": "x", "2": "fine"}))
    assert_error(errors, "custom_text", "got 3 entries")
    assert_error(errors, "custom_text.1", "is required")
    assert_error(errors, "custom_text.9", "slide number must be 1-8")
    assert len(errors) == 3
    assert validate_send_request(saved(custom_text={})).custom_text is None


def test_valid_send_saved_mms():
    request = validate_send_request(
        saved(
            action="sendsavedmms",
            mms_id=48213,
            custom_subject="Ana, Spring Deals are here",
            custom_text={2: "Second slide"},
            data={"firstname": "Ana", "City_2": "Lyon", "Nickname": ""},
            disable_fallback_sms=True,
            disable_fallback_sms_link=False,
            campaign_ref="0077",
        )
    )
    assert isinstance(request, SendSavedMMS)
    assert request.action is Action.SEND_SAVED_MMS
    assert request.mms_id == "48213"
    assert request.fallback_sms_text == "Spring deals: see the offer"
    assert request.custom_subject == "Ana, Spring Deals are here"
    assert request.custom_text == CustomText(slide=2, text="Second slide")
    assert request.data == (("FIRSTNAME", "Ana"), ("CITY_2", "Lyon"), ("NICKNAME", ""))
    assert request.disable_fallback_sms is True
    assert request.disable_fallback_sms_link is False
    assert request.campaign_ref == "0077"


def test_valid_send_mms():
    request = validate_send_request(
        mms(
            action="SendMms",
            fallback_sms_text="Your pass is ready",
            disable_fallback_sms_link=True,
            slides=[
                {"image_url": IMG, "audio_url": AUDIO, "text": "Hi {$firstname|there}", "duration": 1},
                {"video_url": VIDEO, "text": "Watch", "duration": 30},
                {"text": "Trip details", "ical_url": ICAL},
                {"vcard_url": VCARD},
                {"image_url": "http://media.example.com/v1.2/image", "text": None, "duration": None},
            ],
        )
    )
    assert isinstance(request, SendMMS)
    assert request.action is Action.SEND_MMS
    assert request.name == "inline-0001"
    assert request.subject == "Your boarding pass"
    assert request.fallback_sms_text == "Your pass is ready"
    assert request.disable_fallback_sms_link is True
    assert request.slides[0] == Slide(
        image_url=IMG, audio_url=AUDIO, text="Hi {$firstname|there}", duration=1
    )
    assert request.slides[1] == Slide(video_url=VIDEO, text="Watch", duration=30)
    assert request.slides[2] == Slide(ical_url=ICAL, text="Trip details")
    assert request.slides[3] == Slide(vcard_url=VCARD)
    assert request.slides[4] == Slide(image_url="http://media.example.com/v1.2/image")


def test_send_mms_needs_fallback_text_with_or_without_a_subject():
    request = validate_send_request(mms(subject=None, fallback_sms_text="Pass ready"))
    assert request.subject is None
    assert request.fallback_sms_text == "Pass ready"
    # The provider's sendMMS page makes FALLBACKSMSTEXT mandatory (E622), subject or not.
    for missing in (
        without(mms(), "fallback_sms_text"),
        mms(fallback_sms_text=None),
        mms(fallback_sms_text=""),
    ):
        assert missing["subject"] == "Your boarding pass"
        errors = errors_of(missing)
        assert errors == [("fallback_sms_text", "is required")]
    assert_error(
        errors_of(without(mms(), "subject", "fallback_sms_text")), "fallback_sms_text", "is required"
    )


def test_a_save_mms_template_with_a_subject_still_needs_no_fallback_text():
    template = validate_save_mms({"name": "n", "subject": "s", "slides": [{"text": "x"}]})
    assert template.fallback_sms_text is None


def test_limits_are_inclusive():
    request = validate_send_request(
        sms(
            request_id="r" * 64,
            text="é" * 160,
            from_mask="A" * 11,
            operator_id="1" * 10,
            campaign_ref="Ç" * 64,
        )
    )
    assert len(request.request_id) == 64
    assert len(request.text) == 160
    assert request.campaign_ref == "Ç" * 64
    assert validate_send_request(sms(campaign_ref=10**64 - 1)).campaign_ref == "9" * 64
    saved_request = validate_send_request(
        saved(custom_subject="s" * 80, fallback_sms_text="f" * 160, custom_text={"8": "t" * 5000})
    )
    assert saved_request.custom_text == CustomText(slide=8, text="t" * 5000)
    mms_request = validate_send_request(
        mms(name="n" * 255, subject="s" * 80, slides=[{"text": "t" * 5000}] * 8)
    )
    assert len(mms_request.slides) == 8


def test_request_id_allows_printable_ascii_punctuation():
    assert validate_send_request(sms(request_id="!~#:/{}[]")).request_id == "!~#:/{}[]"


def test_emoji_counts_as_one_character():
    assert validate_send_request(sms(text="🙂" * 160)).text == "🙂" * 160


def test_unknown_fields_are_ignored_and_listed():
    request = validate_send_request(sms(trace="t-1", customer={"id": 3}, **{"x y": 1}))
    assert request.ignored_fields == ("#7", "customer", "trace")


def test_fields_of_another_action_that_are_absent_are_tolerated():
    request = validate_send_request(sms(slides=None, mms_id="", subject=None))
    assert isinstance(request, SendSMS)


def test_default_country_code_applies_to_to_and_from():
    request = validate_send_request(
        sms(to="(774) 319-9144", **{"from": "312 555 0100"}), default_country_code="1"
    )
    assert request.to == "17743199144"
    assert request.from_ == "13125550100"


def test_requests_are_frozen():
    request = validate_send_request(sms())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.text = "changed"


# ------------------------------------------------------------------------------------- rejections


@pytest.mark.parametrize("payload", [[], "sendSMS", 42, None, True, 1.5])
def test_non_object_is_rejected(payload):
    with pytest.raises(InvalidSendRequest) as caught:
        validate_send_request(payload)
    assert caught.value.errors[0][0] == "$"
    assert "must be a JSON object" in caught.value.errors[0][1]
    assert caught.value.request_id is None


def test_non_string_keys_are_rejected():
    assert_error(errors_of({**sms(), 3: "x"}), "$", "field names must be strings")


COMMON_CASES = [
    ({"request_id": None}, "request_id", "is required"),
    ({"request_id": ""}, "request_id", "is required"),
    ({"request_id": 17}, "request_id", "must be a string, got a number"),
    ({"request_id": "r" * 65}, "request_id", "1-64 printable ASCII"),
    ({"request_id": "req 1"}, "request_id", "without spaces"),
    ({"request_id": "réq"}, "request_id", "printable ASCII"),
    ({"request_id": "req\n"}, "request_id", "printable ASCII"),
    ({"action": None}, "action", "is required"),
    ({"action": 1}, "action", "must be a string"),
    ({"action": "sendFax"}, "action", "must be one of sendSMS, sendMMS, sendSavedMMS"),
    ({"action": "saveMMS"}, "action", "must be one of"),
    ({"action": " sendSMS"}, "action", "must be one of"),
    ({"action": "\u017fendSMS"}, "action", "must be one of"),  # long s: casefolds to "s", still refused
    ({"to": None}, "to", "is required"),
    ({"to": 13125550147}, "to", "must be a string, got a number"),
    ({"to": "0044 7700 900123"}, "to", "00 dialling prefix"),
    ({"to": "47215"}, "to", "8-15 digits"),
    ({"to": "1312555014x"}, "to", "only digits"),
    ({"from": None}, "from", "is required"),
    ({"from": "4721"}, "from", "neither a 5-6 digit shortcode nor a valid longcode"),
    ({"from": "+47215"}, "from", "neither a 5-6 digit shortcode"),
    ({"from": 47215}, "from", "must be a string"),
    ({"campaign_ref": True}, "campaign_ref", "got a boolean"),
    ({"campaign_ref": -1}, "campaign_ref", "must not be negative"),
    ({"campaign_ref": 1.0}, "campaign_ref", "got a number"),
    ({"campaign_ref": {"id": 1}}, "campaign_ref", "must be text or a non-negative integer, got an object"),
    ({"campaign_ref": "C" * 65}, "campaign_ref", "at most 64 characters (got 65)"),
    ({"campaign_ref": "1" * 65}, "campaign_ref", "at most 64 characters (got 65)"),
    ({"campaign_ref": [1]}, "campaign_ref", "got an array"),
    ({"campaign_ref": 10**64}, "campaign_ref", "at most 64 digits"),
    ({"campaign_ref": 10**5000}, "campaign_ref", "at most 64 digits"),  # too big for str()
    ({"campaign_ref": "Spring\x00Deals"}, "campaign_ref", "must be printable characters only"),
    ({"campaign_ref": "Spring\x1bDeals"}, "campaign_ref", "no control characters"),
    ({"campaign_ref": "Spring\x7fDeals"}, "campaign_ref", "no control characters"),  # DEL
    ({"campaign_ref": "Spring\u0085Deals"}, "campaign_ref", "no control characters"),  # C1 NEL
    ({"campaign_ref": "Spring\tDeals"}, "campaign_ref", "must be printable characters only"),
    ({"campaign_ref": "Spring\nDeals"}, "campaign_ref", "must be printable characters only"),
    ({"campaign_ref": "Spring\u2028Deals"}, "campaign_ref", "must be printable"),  # line separator
    ({"campaign_ref": "Spring\u00a0Deals"}, "campaign_ref", "spaces other than the plain space"),  # NBSP
    ({"campaign_ref": "Spring\u200bDeals"}, "campaign_ref", "invisible formatting"),  # zero-width space
    ({"campaign_ref": "Spring\u202eDeals"}, "campaign_ref", "invisible formatting"),  # bidi override
    ({"campaign_ref": "Spring\ue000Deals"}, "campaign_ref", "must be printable"),  # private use
    ({"campaign_ref": "Spring\ud800Deals"}, "campaign_ref", "must be printable"),  # unpaired surrogate
    ({"campaign_ref": "Spring\uffffDeals"}, "campaign_ref", "must be printable"),  # not a character
    ({"campaign_ref": " Campaign123"}, "campaign_ref", "must not start or end with a space"),
    ({"campaign_ref": "Campaign123 "}, "campaign_ref", "must not start or end with a space"),
    ({"campaign_ref": "   "}, "campaign_ref", "must not start or end with a space"),
    ({"operator_id": 1890}, "operator_id", "not a number (leading zeros matter)"),
    ({"operator_id": "00018a0"}, "operator_id", "string of digits"),
    ({"operator_id": "1" * 11}, "operator_id", "at most 10 digits"),
    ({"from_mask": "A" * 12}, "from_mask", "at most 11 characters"),
    ({"from_mask": "North wind"}, "from_mask", "letters A-Z/a-z, digits, '_' and '-'"),
    ({"from_mask": "Nörth"}, "from_mask", "letters A-Z/a-z"),
    ({"from_mask": "12345"}, "from_mask", "must not be all digits"),
    ({"from_mask": 12345}, "from_mask", "must be a string"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), COMMON_CASES)
def test_common_field_rejections(changes, field, fragment):
    assert_error(errors_of(sms(**changes)), field, fragment)


@pytest.mark.parametrize("name", ["request_id", "action", "to", "from"])
def test_missing_required_common_field(name):
    assert_error(errors_of(without(sms(), name)), name, "is required")


SMS_CASES = [
    ({"text": None}, "text", "is required"),
    ({"text": ""}, "text", "is required"),
    ({"text": "x" * 161}, "text", "at most 160 characters (got 161)"),
    ({"text": 5}, "text", "must be a string, got a number"),
    ({"text": "a\x00b"}, "text", "characters XML cannot carry"),
    ({"text": "a\x1bb"}, "text", "characters XML cannot carry"),
    ({"text": "a\ud800b"}, "text", "unpaired surrogates"),
    ({"text": "a\ufffeb"}, "text", "characters XML cannot carry"),
    ({"slides": [{"text": "x"}]}, "slides", "is not a field of sendSMS requests"),
    ({"mms_id": "1"}, "mms_id", "is not a field of sendSMS requests"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), SMS_CASES)
def test_send_sms_rejections(changes, field, fragment):
    assert_error(errors_of(sms(**changes)), field, fragment)


def test_sms_text_may_hold_line_breaks_and_tabs():
    assert validate_send_request(sms(text="a\r\n\tb")).text == "a\r\n\tb"


SAVED_CASES = [
    ({"mms_id": None}, "mms_id", "is required"),
    ({"mms_id": "abc"}, "mms_id", "string of digits or a non-negative integer"),
    ({"mms_id": True}, "mms_id", "got a boolean"),
    ({"mms_id": -5}, "mms_id", "must not be negative"),
    ({"mms_id": 1.5}, "mms_id", "got a number"),
    ({"fallback_sms_text": None}, "fallback_sms_text", "is required"),
    ({"fallback_sms_text": "f" * 161}, "fallback_sms_text", "at most 160 characters"),
    ({"custom_subject": "s" * 81}, "custom_subject", "at most 80 characters"),
    ({"custom_subject": "Olá Ana"}, "custom_subject", "printable ASCII only"),
    ({"custom_subject": "Hi 🙂"}, "custom_subject", "printable ASCII only"),
    ({"custom_subject": "two\nlines"}, "custom_subject", "printable ASCII only"),
    ({"custom_text": ["x"]}, "custom_text", "must be an object mapping one slide number 1-8 to text"),
    ({"custom_text": {"0": "x"}}, "custom_text.0", "slide number must be 1-8"),
    ({"custom_text": {"9": "x"}}, "custom_text.9", "slide number must be 1-8"),
    ({"custom_text": {"01": "x"}}, "custom_text.01", "slide number must be 1-8"),
    ({"custom_text": {"one": "x"}}, "custom_text.one", "slide number must be 1-8"),
    ({"custom_text": {True: "x"}}, "custom_text.#0", "slide number must be 1-8"),
    ({"custom_text": {"1": ""}}, "custom_text.1", "is required"),
    ({"custom_text": {"1": 7}}, "custom_text.1", "must be a string, got a number"),
    ({"custom_text": {"1": "t" * 5001}}, "custom_text.1", "at most 5000 characters"),
    ({"custom_text": {"1": "a", "2": "b"}}, "custom_text", "may override the text of one slide only, got 2"),
    ({"custom_text": {"1": "a", 1: "b"}}, "custom_text", "may override the text of one slide only, got 2"),
    ({"custom_text": {str(n): "t" for n in range(1, 9)}}, "custom_text", "a single CUSTOMTEXT per request"),
    ({"data": "FIRSTNAME=Ana"}, "data", "must be an object mapping merge variable names to strings"),
    ({"data": {"1abc": "x"}}, "data.1abc", "start with neither a digit nor 'xml'"),
    ({"data": {"first-name": "x"}}, "data.first-name", "name must be 1-64 of A-Z"),
    ({"data": {"XmlThing": "x"}}, "data.XmlThing", "nor 'xml'"),
    ({"data": {"": "x"}}, "data.#0", "name must be"),
    ({"data": {"a" * 65: "x"}}, "data.#0", "name must be 1-64"),
    ({"data": {"first name": "x"}}, "data.#0", "name must be"),
    ({"data": {"NAME": 3}}, "data.NAME", "must be a string, got a number"),
    ({"data": {"NAME": None}}, "data.NAME", "must be a string, got null"),
    ({"data": {"NAME": "v" * 5001}}, "data.NAME", "at most 5000 characters"),
    ({"data": {"NAME": "a\x07"}}, "data.NAME", "characters XML cannot carry"),
    ({"data": {"name": "a", "NAME": "b"}}, "data.NAME", "same name as another entry once upper-cased"),
    ({"disable_fallback_sms": "yes"}, "disable_fallback_sms", "must be true or false, got a string"),
    ({"disable_fallback_sms_link": 1}, "disable_fallback_sms_link", "must be true or false, got a number"),
    ({"text": "hello"}, "text", "is not a field of sendSavedMMS requests"),
    ({"slides": [{"text": "x"}]}, "slides", "is not a field of sendSavedMMS requests"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), SAVED_CASES)
def test_send_saved_mms_rejections(changes, field, fragment):
    assert_error(errors_of(saved(**changes)), field, fragment)


@pytest.mark.parametrize("name", ["mms_id", "fallback_sms_text"])
def test_send_saved_mms_missing_required(name):
    assert_error(errors_of(without(saved(), name)), name, "is required")


MMS_CASES = [
    ({"name": None}, "name", "is required"),
    ({"name": "n" * 256}, "name", "at most 255 characters"),
    ({"subject": "s" * 81}, "subject", "at most 80 characters"),
    ({"subject": "Café"}, "subject", "printable ASCII only"),
    ({"fallback_sms_text": None}, "fallback_sms_text", "is required"),
    ({"fallback_sms_text": ""}, "fallback_sms_text", "is required"),
    ({"fallback_sms_text": "f" * 161}, "fallback_sms_text", "at most 160"),
    ({"slides": None}, "slides", "is required"),
    ({"slides": {"text": "x"}}, "slides", "must be an array of 1-8 slide objects, got an object"),
    ({"slides": []}, "slides", "at least one slide (E312)"),
    ({"slides": [{"text": "x"}] * 9}, "slides", "at most 8 slides, got 9 (E225)"),
    ({"slides": ["text"]}, "slides[0]", "must be an object, got a string"),
    ({"slides": [{"text": "x"}, {"txt": "y"}]}, "slides[1]", "unknown fields (txt)"),
    ({"disable_fallback_sms": True}, "disable_fallback_sms", "is not a field of sendMMS requests"),
    ({"disable_fallback_sms_link": "no"}, "disable_fallback_sms_link", "must be true or false"),
    ({"custom_text": {"1": "x"}}, "custom_text", "is not a field of sendMMS requests"),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), MMS_CASES)
def test_send_mms_rejections(changes, field, fragment):
    assert_error(errors_of(mms(**changes)), field, fragment)


@pytest.mark.parametrize("name", ["name", "slides", "fallback_sms_text"])
def test_send_mms_missing_required(name):
    assert_error(errors_of(without(mms(), name)), name, "is required")


SLIDE_CASES = [
    ({}, "slides[0]", "is empty"),
    ({"duration": 5}, "slides[0]", "is empty"),
    ({"text": "", "image_url": None}, "slides[0]", "is empty"),
    (
        {"audio_url": AUDIO, "video_url": VIDEO, "text": "x"},
        "slides[0]",
        "cannot combine audio and video (E226)",
    ),
    ({"video_url": VIDEO, "image_url": IMG}, "slides[0]", "video may be combined only with text (E227)"),
    ({"vcard_url": VCARD, "ical_url": ICAL}, "slides[0]", "at most one object"),
    ({"vcard_url": VCARD, "image_url": IMG}, "slides[0]", "an object may be combined only with text"),
    ({"ical_url": ICAL, "audio_url": AUDIO}, "slides[0]", "an object may be combined only with text"),
    ({"text": "t" * 5001}, "slides[0].text", "at most 5000 characters"),
    ({"text": 12}, "slides[0].text", "must be a string"),
    ({"text": "x", "duration": 0}, "slides[0].duration", "between 1 and 30"),
    ({"text": "x", "duration": 31}, "slides[0].duration", "between 1 and 30"),
    ({"text": "x", "duration": "10"}, "slides[0].duration", "must be an integer, got a string"),
    ({"text": "x", "duration": 10.0}, "slides[0].duration", "must be an integer, got a number"),
    ({"text": "x", "duration": True}, "slides[0].duration", "must be an integer, got a boolean"),
    ({"image": IMG}, "slides[0]", "unknown fields (image)"),
]


@pytest.mark.parametrize(("slide", "field", "fragment"), SLIDE_CASES)
def test_slide_rejections(slide, field, fragment):
    assert_error(slide_errors(slide), field, fragment)


URL_CASES = [
    ("image_url", "/mms/hero.jpg", "absolute http or https URL"),
    ("image_url", "ftp://media.example.com/hero.jpg", "absolute http or https URL"),
    ("image_url", "media.example.com/hero.jpg", "absolute http or https URL"),
    ("image_url", "https:///hero.jpg", "must include a host"),
    ("image_url", "https://user:pw@media.example.com/hero.jpg", "must not carry credentials"),
    ("image_url", "https://media.example.com/hero.jpg?v=2", "must not carry a query string"),
    ("image_url", "https://media.example.com/hero.jpg?", "must not carry a query string"),
    ("image_url", "https://media.example.com/hero.jpg#top", "must not carry a fragment"),
    ("image_url", "https://media.example.com", "must include the path to the file"),
    ("image_url", "https://media.example.com/", "must include the path to the file"),
    ("image_url", "https://media.example.com/héro.jpg", "printable ASCII without spaces"),
    ("image_url", "https://media.example.com/my hero.jpg", "printable ASCII without spaces"),
    ("image_url", "https://media.example.com:99999/hero.jpg", "invalid port"),
    ("image_url", "https://[::1/hero.jpg", "not a well-formed URL"),
    ("image_url", "https://media.example.com/" + "a" * 2040 + ".jpg", "at most 2048 characters"),
    ("image_url", 42, "must be a string, got a number"),
    ("image_url", "https://media.example.com/hero.mp3", "not a supported image type (gif, jpeg, jpg, png)"),
    ("image_url", "https://media.example.com/hero.tar.gz", "not a supported image type"),
    ("audio_url", "https://media.example.com/jingle.mp4", "not a supported audio type (mp3, wav)"),
    ("video_url", "https://media.example.com/clip.png", "not a supported video type"),
    ("vcard_url", "https://media.example.com/card.ics", "not a supported vcard type"),
    ("ical_url", "https://media.example.com/trip.vcf", "not a supported ical type"),
    ("pdf_url", "https://media.example.com/doc.docx", "not a supported pdf type"),
    ("passbook_url", "https://media.example.com/pass.zip", "not a supported passbook type"),
]


@pytest.mark.parametrize(("slot", "url", "fragment"), URL_CASES)
def test_media_url_rejections(slot, url, fragment):
    slide = {slot: url}
    if slot == "video_url":
        slide["text"] = "x"
    assert_error(slide_errors(slide), f"slides[0].{slot}", fragment)


@pytest.mark.parametrize(
    ("slot", "url"),
    [
        ("image_url", "https://media.example.com/HERO.JPG"),
        ("image_url", "https://media.example.com/a/b.gif"),
        ("image_url", "http://media.example.com:8080/img/123"),
        ("audio_url", "https://media.example.com/a.WAV"),
        ("video_url", "https://media.example.com/a.3gp"),
        ("pdf_url", "https://media.example.com/a.pdf"),
        ("passbook_url", "https://media.example.com/a.pkpass"),
        ("image_url", "https://media.example.com/a%20b.png"),
    ],
)
def test_media_urls_accepted(slot, url):
    request = validate_send_request(mms(slides=[{slot: url, "text": "x"}]))
    assert getattr(request.slides[0], slot) == url


def test_every_problem_is_reported_together():
    payload = {
        "request_id": "bad id",
        "action": "sendMMS",
        "to": "0044123",
        "from": "12",
        "from_mask": "1234",
        "name": "",
        "subject": "Olá",
        "slides": [{"audio_url": AUDIO, "video_url": VIDEO}, {}, {"image_url": "https://h/x.jpg?sig=1"}],
        "text": "stray",
    }
    errors = errors_of(payload)
    fields = {field for field, _ in errors}
    assert fields == {
        "request_id",
        "to",
        "from",
        "from_mask",
        "name",
        "subject",
        "slides[0]",
        "slides[1]",
        "slides[2].image_url",
        "fallback_sms_text",
        "text",
    }
    assert len(errors) == len(fields)


def test_common_errors_reported_even_when_action_is_unknown():
    errors = errors_of(sms(action="sendFax", to="12", request_id=""))
    assert {field for field, _ in errors} == {"action", "to", "request_id"}


def test_exception_carries_request_id_and_readable_message():
    with pytest.raises(InvalidSendRequest) as caught:
        validate_send_request(sms(text="", to="+44 7700 900 12x"))
    error = caught.value
    assert error.request_id == "req-0001"
    assert isinstance(error, ValueError)
    message = str(error)
    assert message.startswith("invalid send request req-0001: ")
    assert "text: is required" in message
    assert "7700" not in message  # reasons never echo values (numbers are personal data)


def test_exception_has_no_request_id_when_it_is_invalid():
    with pytest.raises(InvalidSendRequest) as caught:
        validate_send_request(sms(request_id="has space", text=""))
    assert caught.value.request_id is None
    assert "(no valid request_id)" in str(caught.value)


def test_action_is_fixed_per_type():
    assert SendSMS.action is Action.SEND_SMS
    assert SendMMS.action is Action.SEND_MMS
    assert SendSavedMMS.action is Action.SEND_SAVED_MMS
    assert SaveMMS.action is Action.SAVE_MMS


# ------------------------------------------------------------------------------------------- JSON


def test_parse_json_valid():
    request = parse_send_request_json(json.dumps(sms()).encode())
    assert isinstance(request, SendSMS)
    assert request.to == "13125550147"
    assert parse_send_request_json(json.dumps(sms())) == request


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "is not valid JSON"),
        (b"", "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b'{"campaign_ref": NaN}', "is not valid JSON"),
        (b'{"campaign_ref": Infinity}', "is not valid JSON"),
        (b"[" * 150_000 + b"]" * 150_000, "larger than"),
        ("[" * 300_000, "larger than"),
        (b"[" * 50_000 + b"]" * 50_000, "is not valid JSON (bad number or nested too deeply)"),
        (b'{"campaign_ref": ' + b"9" * 5000 + b"}", "is not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b'"sendSMS"', "must be a JSON object, got a string"),
        (b"null", "must be a JSON object, got null"),
    ],
)
def test_parse_json_rejections(raw, fragment):
    with pytest.raises(InvalidSendRequest) as caught:
        parse_send_request_json(raw)
    assert_error(caught.value.errors, "$", fragment)


def test_parse_json_rejects_non_text():
    with pytest.raises(InvalidSendRequest, match="must be JSON text"):
        parse_send_request_json(12)


def test_parse_json_duplicate_keys_are_reported_with_other_errors():
    raw = (
        '{"request_id": "r1", "action": "sendSMS", "to": "13125550147", "to": "13125550148", "from": "47215"}'
    )
    with pytest.raises(InvalidSendRequest) as caught:
        parse_send_request_json(raw)
    assert_error(caught.value.errors, "to", "appears more than once")
    assert_error(caught.value.errors, "text", "is required")
    assert caught.value.request_id == "r1"


# ---------------------------------------------------------------------------------------- saveMMS


def test_validate_save_mms():
    template = validate_save_mms(
        {
            "action": "SAVEMMS",
            "name": "spring",
            "subject": "Spring Deals",
            "disable_fallback_sms": True,
            "slides": [{"text": "Hello", "vcard_url": VCARD}],
            "owner": "marketing",
        }
    )
    assert isinstance(template, SaveMMS)
    assert template.disable_fallback_sms is True
    assert template.slides == (Slide(text="Hello", vcard_url=VCARD),)
    assert template.ignored_fields == ("owner",)


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ([], "$", "must be a JSON object"),
        ({"action": "sendMMS", "name": "n", "subject": "s", "slides": [{"text": "x"}]}, "action", "saveMMS"),
        ({"name": "n", "slides": [{"text": "x"}]}, "fallback_sms_text", "is required"),
        ({"name": "n", "subject": "s", "slides": []}, "slides", "at least one slide"),
        ({"subject": "s", "slides": [{"text": "x"}]}, "name", "is required"),
        (
            {"name": "n", "subject": "s", "slides": [{"text": "x"}], "disable_fallback_sms": 1},
            "disable_fallback_sms",
            "true or false",
        ),
    ],
)
def test_validate_save_mms_rejections(payload, field, fragment):
    with pytest.raises(InvalidSendRequest) as caught:
        validate_save_mms(payload)
    assert_error(caught.value.errors, field, fragment)


# ------------------------------------------------------------------------------------------- fuzz

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
known_fields = [
    "request_id", "action", "to", "from", "campaign_ref", "operator_id", "from_mask", "text", "mms_id",
    "fallback_sms_text", "custom_subject", "custom_text", "data", "disable_fallback_sms",
    "disable_fallback_sms_link", "subject", "name", "slides",
]  # fmt: skip
slide_values = st.dictionaries(
    st.sampled_from(["image_url", "audio_url", "video_url", "vcard_url", "text", "duration", "x"]),
    json_scalars | st.just(IMG) | st.just(VIDEO),
    max_size=4,
)
plausible_requests = st.fixed_dictionaries(
    {"action": st.sampled_from(["sendSMS", "sendMMS", "sendSavedMMS", "x"])},
    optional={
        **{name: json_values for name in known_fields if name != "action"},
        "slides": st.lists(slide_values | json_values, max_size=9),
    },
)


@settings(max_examples=200, deadline=None)
@given(json_values | plausible_requests)
def test_any_json_value_yields_a_request_or_reasons_never_another_error(payload):
    outcome = validate_or_error(payload)
    if isinstance(outcome, InvalidSendRequest):
        assert outcome.errors
        assert all(isinstance(field, str) and isinstance(reason, str) for field, reason in outcome.errors)
        assert str(outcome).startswith("invalid send request ")
    else:
        assert isinstance(outcome, SendSMS | SendMMS | SendSavedMMS)


def validate_or_error(payload):
    try:
        return validate_send_request(payload)
    except InvalidSendRequest as error:
        return error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_any_message_body_yields_a_request_or_reasons(raw):
    with pytest.raises(InvalidSendRequest):
        parse_send_request_json(raw)
