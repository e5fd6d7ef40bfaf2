"""Property tests for parse_postback: round trips in every dialect; no input escapes the contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsbridge.core.states import CATALOGUE, PostbackKind
from mmsbridge.postbacks.reader import REASONS, Postback, PostbackError, parse_postback
from tests.conftest import SAMPLES

SAMPLE_BODIES = [path.read_bytes() for path in sorted((SAMPLES / "postbacks").rglob("*.xml"))]
RECEIVED_AT = datetime(2024, 3, 14, 15, 0, tzinfo=UTC)

BUDGET = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
XML_WHITESPACE = " \t\r\n"
# Names with container or alias meaning, which a "plain field" must not use.
RESERVED = {"ORIGIN", "CODE", "STATUSCODE", "BODY", "CONTENT", "NOTIFICATION", "OPERATORID", "MESSAGESUBJECT"}


def is_xml_char(char: str) -> bool:
    code = ord(char)
    return (
        char in "\t\n\r" or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF
    )


XML_CHARS = st.characters(exclude_categories=("Cs",)).filter(is_xml_char)
TRICKY = ["&", "<", ">", "&amp;", "]]>", "<![CDATA[", "a\r\nb", " padded\t", "\n", "é", "🎉", "&#233;"]
VALUES = st.one_of(
    st.text(st.one_of(XML_CHARS, st.sampled_from("&<>\"' \t\r\n")), max_size=16), st.sampled_from(TRICKY)
)
KEY_VALUES = VALUES.filter(lambda value: value.strip(XML_WHITESPACE) != "")
NAMES = st.from_regex(r"[A-Z][A-Z0-9]{0,11}", fullmatch=True).filter(lambda name: name not in RESERVED)
UNKNOWN_PAIRS = st.tuples(
    st.sampled_from(["VOICE", "MMS_MT", "SMS_MO", "FAX"]), st.from_regex(r"[NE][0-9]{3}", fullmatch=True)
)
PAIRS = st.one_of(st.sampled_from(sorted(CATALOGUE)), UNKNOWN_PAIRS)
DIALECTS = st.sampled_from(["v1", "hyphenated", "notification", "wrapped-notification"])


def escape(value: str) -> str:
    # \r is escaped so that expat's line-end normalisation cannot turn it into \n.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def expected_value(value: str) -> str | None:
    return value.strip(XML_WHITESPACE) or None


@st.composite
def spellings(draw, name: str, dialect: str) -> str:
    """How a dialect may spell a normalised name: case, and `-` / `_` anywhere after the first letter."""
    spelled = name.lower() if dialect == "hyphenated" else name
    separator = "-" if dialect == "hyphenated" else "_"
    positions = (
        draw(st.sets(st.integers(min_value=1, max_value=len(spelled) - 1), max_size=2))
        if len(spelled) > 1
        else set()
    )
    for position in sorted(positions, reverse=True):
        spelled = spelled[:position] + separator + spelled[position:]
    return spelled


@st.composite
def documents(draw):
    """A postback in a random dialect, element order and content, with what it must parse to."""
    origin, code = draw(PAIRS)
    info = CATALOGUE.get((origin, code))
    dialect = draw(DIALECTS)
    code_name = "STATUSCODE" if origin == "GENERATE_PASS" and draw(st.booleans()) else "CODE"
    raw_origin = draw(st.sampled_from([origin, origin.lower(), f" {origin}\n"]))
    raw_code = draw(st.sampled_from([code, code.lower(), f"\t{code} "]))

    fields: dict[str, str] = {"ORIGIN": raw_origin, code_name: raw_code}
    for name in info.required if info else ():
        fields[name] = draw(KEY_VALUES)
    for name, value in draw(st.dictionaries(NAMES, VALUES, max_size=8)).items():
        fields.setdefault(name, value)
    files = draw(st.lists(VALUES, max_size=3)) if draw(st.booleans()) else None

    def render(name: str, value: str) -> str:
        spelled = draw(spellings(name, dialect))
        if value == "" and draw(st.booleans()):
            return f"<{spelled}/>"
        return f"<{spelled}>{escape(value)}</{spelled}>"

    header = draw(st.sampled_from(["", "<?xml version='1.0'?>\n", '<?xml version="1.0" encoding="UTF-8"?>']))
    envelope = [name for name in fields if name in ("ORIGIN", code_name)]
    rest = [name for name in fields if name not in envelope]

    def assemble(order: list[str], separator: str) -> bytes:
        top = [render(name, fields[name]) for name in envelope]
        inner = [render(name, fields[name]) for name in order]
        if files is not None:
            file_name, content = ("file", "content") if dialect == "hyphenated" else ("FILE", "CONTENT")
            listed = "".join(f"<{file_name}>{escape(url)}</{file_name}>" for url in files)
            inner.append(f"<{content}>{listed}</{content}>")
        if dialect == "notification":
            children = separator.join(draw(st.permutations([*top, f"<BODY>{separator.join(inner)}</BODY>"])))
            text = f"{header}<NOTIFICATION ID=' 42' CREATED='x'>{children}</NOTIFICATION>"
        else:
            children = separator.join(draw(st.permutations(top + inner)))
            if dialect == "wrapped-notification":
                wrapped = f"<NOTIFICATION>{children}</NOTIFICATION>"
                text = f"{header}<POSTBACK>{separator}{wrapped}{separator}</POSTBACK>"
            else:
                root = "postback" if dialect == "hyphenated" else "POSTBACK"
                schema = "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'"
                text = f"{header}<{root} {schema}>{separator}{children}{separator}</{root}>"
        return text.encode("utf-8")

    order = draw(st.permutations(rest))
    body = assemble(order, "\n  ")
    retry = assemble(order[::-1], "\t")  # the same notification re-rendered: other order, spelling, layout
    expected_files = tuple(url.strip(XML_WHITESPACE) for url in files or () if url.strip(XML_WHITESPACE))
    expected_fields = {name: expected_value(value) for name, value in fields.items()}
    return body, retry, dialect, origin, code, expected_fields, expected_files


@BUDGET
@given(documents())
def test_round_trip_in_every_dialect(case):
    body, retry, dialect, origin, code, fields, files = case
    parsed = parse_postback(body, received_at=RECEIVED_AT)

    assert parsed.fields == fields
    assert parsed.files == files
    assert parsed.dialect == dialect
    assert (parsed.origin, parsed.code) == (origin, code)
    info = CATALOGUE.get((origin, code))
    if info is None:
        assert parsed.kind is PostbackKind.UNRECOGNISED
        assert parsed.state is None
    else:
        assert parsed.kind is info.kind
        assert parsed.state is info.state
        assert parsed.template_state is info.template_state
        assert parsed.pass_ok is info.pass_ok
        assert parsed.subscribed is info.subscribed
        assert all(parsed.fields[name] for name in info.required)
    assert parsed.tracking_id == fields.get("TRACKINGID")
    assert parsed.mms_id == fields.get("MMSID")
    if dialect == "notification":
        assert parsed.extras["ID"] == "42"
    assert re.fullmatch(r"[0-9a-f]{64}", parsed.semantic_key)

    # The same notification re-rendered (other order, spelling, layout) is the same event: same key.
    again = parse_postback(retry, received_at=RECEIVED_AT + timedelta(minutes=5))
    assert again.fields == parsed.fields
    assert again.files == parsed.files
    assert again.semantic_key == parsed.semantic_key


def check_contract(body: bytes) -> Postback | None:
    """Either a well-formed Postback or a PostbackError with a documented reason; nothing else."""
    try:
        parsed = parse_postback(body, received_at=RECEIVED_AT)
    except PostbackError as error:
        failure = error
    else:
        failure = None
    if failure is not None:
        assert failure.reason in REASONS
        assert failure.reason != "internal", repr(failure.__cause__)
        return None
    assert isinstance(parsed, Postback)
    assert parsed.origin
    assert parsed.code
    assert all(
        value is None or (value and value == value.strip(XML_WHITESPACE)) for value in parsed.fields.values()
    )
    assert parsed.timestamp_utc is None or parsed.timestamp_utc.utcoffset() == timedelta(0)
    assert re.fullmatch(r"[0-9a-f]{64}", parsed.semantic_key)
    assert parsed.correlation_id is None or isinstance(parsed.correlation_id, str)
    assert isinstance(parsed.inbound_stop, bool)
    return parsed


@BUDGET
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_postback_errors(body):
    check_contract(body)


MARKUP_TOKENS = [*"<>/!?=&;#x[]-'\" \n\t", "POSTBACK", "ORIGIN", "CODE", "MMS_MT", "N101", "<!--", "-->"]
XMLISH = st.lists(st.sampled_from(MARKUP_TOKENS), max_size=80).map("".join)


@BUDGET
@given(XMLISH)
def test_random_markup_raises_only_postback_errors(text):
    check_contract(text.encode("utf-8"))


INSERTS = st.one_of(
    st.sampled_from(
        [
            b"<",
            b"</",
            b">",
            b"&",
            b"&#0;",
            b"&#x10FFFF;",
            b"&lol;",
            b"<!DOCTYPE x>",
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
            b"<![CDATA[",
            b"]]>",
            b"\xff",
            b"\xc3",
            b"\xef\xbb\xbf",
            b"<a>" * 40,
            b"<NOTIFICATION>",
            b"<BODY>",
            b"<CONTENT><FILE>x</FILE>",
            b"<TRACKINGID>dup</TRACKINGID>",
            b"<?pi x?>",
            b"\x00",
        ]
    ),
    st.binary(min_size=1, max_size=8),
)


@st.composite
def mutated_samples(draw):
    body = bytearray(draw(st.sampled_from(SAMPLE_BODIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(body)))
        operation = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        if operation == "flip" and position < len(body):
            body[position] ^= draw(st.integers(min_value=1, max_value=255))
        elif operation == "delete":
            del body[position : position + draw(st.integers(min_value=1, max_value=20))]
        elif operation == "insert":
            body[position:position] = draw(INSERTS)
        elif operation == "truncate":
            del body[position:]
        elif operation == "duplicate":
            body[position:position] = body[position : position + draw(st.integers(min_value=1, max_value=40))]
    return bytes(body)


@BUDGET
@given(mutated_samples())
def test_mutated_samples_raise_only_postback_errors(body):
    check_contract(body)


ELEMENT_NAMES = st.sampled_from(
    [
        *("POSTBACK", "postback", "NOTIFICATION", "BODY", "CONTENT", "FILE", "ORIGIN", "CODE", "STATUSCODE"),
        *("STATUS", "TRACKINGID", "tracking-id", "MMSID", "FROM", "TO", "MOBILE", "CAMPAIGNID", "TIMESTAMP"),
        *("X", "a-b_c"),
    ]
)
LEAF_TEXT = st.one_of(
    st.sampled_from(["MMS_MT", "N101", "SMS_MO", "N211", "GENERATE_PASS", "N802", ""]), VALUES
)
TREES = st.recursive(
    st.tuples(ELEMENT_NAMES, LEAF_TEXT),
    lambda children: st.tuples(ELEMENT_NAMES, st.lists(children, max_size=6)),
    max_leaves=15,
)
ATTRIBUTES = st.sampled_from(
    ["", " ID=' 1'", " id='2' created=' 2011-05-09 16:40:02-04'", " PROTOCOL='4' STATUS='0'"]
)


@st.composite
def random_trees(draw):
    def render(tree) -> str:
        name, content = tree
        attributes = draw(ATTRIBUTES)
        if isinstance(content, str):
            return f"<{name}{attributes}>{escape(content)}</{name}>"
        return f"<{name}{attributes}>{''.join(render(child) for child in content)}</{name}>"

    return render(draw(TREES)).encode("utf-8")


@BUDGET
@given(random_trees())
def test_random_element_trees_raise_only_postback_errors(body):
    check_contract(body)
