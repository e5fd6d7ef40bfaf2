"""The hostile-input corpus: what an attacker, a broken provider or a misconfigured client may send to the
postback URL, each with the answer docs/postbacks.md documents and what the consumer must make of it.

Pure data. A case says how it is sent (method, source address, path with or without the token, headers,
body bytes), the ingest's answer (status and JSON body), and, for an admitted body, the consumer's outcome:
quarantined with a reason, or applied (and to what). A refused case (outcome None) stores nothing.

Two placeholders are filled in when the case is sent, so bodies can point at things the test watches:
`@LISTENER@` (the base URL of a loopback HTTP listener that counts connections) and `@CANARY@` (the
file:// URL of a file whose contents and access time the test checks).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes

LISTENER = b"@LISTENER@"
CANARY = b"@CANARY@"

TOKEN_PATH = "/postback/{token}"
XML = (("Content-Type", "text/xml; charset=utf-8"),)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """The ingest's HTTP answer. body: the JSON it returns; ACCEPTED's is computed from the body's hash;
    None for an answer without a body (HEAD)."""

    status: int
    body: dict | None


ACCEPTED = Answer(200, {"status": "accepted"})  # plus "sha256": the body's SHA-256
FORBIDDEN = Answer(403, {"message": "Forbidden"})
NO_ROUTE = Answer(403, {"message": "Missing Authentication Token"})
EMPTY = Answer(400, {"message": "Empty body"})
TOO_LARGE = Answer(413, {"message": "Body too large"})


@dataclass(frozen=True)
class Quarantined:
    reason: str


@dataclass(frozen=True)
class AppliedMessage:
    """Applied as a report on an outbound message: its state, and fields its history event holds."""

    tracking_id: str
    state: str
    fields: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class AppliedInbound:
    """Applied as an inbound message `IN#<origin>#<id>`, with these attributes."""

    origin: str
    id: str
    values: dict[str, object] = field(default_factory=dict)


type Outcome = Quarantined | AppliedMessage | AppliedInbound


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    answer: Answer
    outcome: Outcome | None  # None: refused, nothing stored
    what: str  # one line for the table in docs/testing.md, Hostile input
    method: str = "POST"
    source: str = "127.0.0.1"
    path: str = TOKEN_PATH  # {token}: the configured token, {wrong_token}: one character off
    headers: tuple[tuple[str, str], ...] = XML

    @property
    def admitted(self) -> bool:
        return self.answer.status == 200


def n101(tracking_id: str, *, inside: bytes = b"", root: bytes = b"<POSTBACK>", prolog: bytes = b"") -> bytes:
    """A genuine MMS_MT N101 (binary send started) for `tracking_id`; `inside` goes before the end tag."""
    return (
        prolog
        + root
        + b"<ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE><STATUS>Message Sent</STATUS><MMSID>48213</MMSID>"
        + b"<FROM>47215</FROM><TO>13125550147</TO><TRACKINGID>"
        + tracking_id.encode()
        + b"</TRACKINGID><TIMESTAMP>2024-03-14T10:02:11-04:00</TIMESTAMP>"
        + inside
        + b"</POSTBACK>"
    )


def sms_mo(transaction_id: str, text: bytes) -> bytes:
    """An inbound SMS (SMS_MO N211) with `text` as the TEXT element's raw content."""
    return (
        b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>14155550178</FROM><TO>47215</TO><TEXT>"
        + text
        + b"</TEXT><RECEIVED>2024-03-14T11:20:45-04:00</RECEIVED><TRANSACTIONID>"
        + transaction_id.encode()
        + b"</TRANSACTIONID></POSTBACK>"
    )


def padded(size: int, marker: bytes) -> bytes:
    """A postback-shaped body of exactly `size` bytes: a genuine N101 with a padding element."""
    head = n101("HOSTILE-PAD-" + marker.decode(), inside=b"<PAD>")
    tail = b"</PAD></POSTBACK>"
    head = head[: -len(b"</POSTBACK>")]
    return head + b"p" * (size - len(head) - len(tail)) + tail


def billion_laughs() -> bytes:
    """Ten levels of ten references each: 10^9 'lol's if anything expanded it."""
    entities = [b'<!ENTITY lol0 "lol">']
    entities += [b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10) for level in range(1, 10)]
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE POSTBACK [\n'
        + b"\n".join(entities)
        + b"\n]>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE>"
        + b"<TRACKINGID>&lol9;</TRACKINGID></POSTBACK>"
    )


def quadratic_blowup() -> bytes:
    """One 30 KB entity referenced 10,000 times: 300 MB if expanded; under the parser's 64 KiB cap."""
    return (
        b'<!DOCTYPE POSTBACK [<!ENTITY a "'
        + b"a" * 30_000
        + b'">]><POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TEXT>'
        + b"&a;" * 10_000
        + b"</TEXT></POSTBACK>"
    )


def external_entity(url: bytes, name: str) -> bytes:
    """An inbound SMS whose TEXT is an external entity: the URL's contents, if anything resolved it."""
    return (
        b'<?xml version="1.0"?><!DOCTYPE POSTBACK [<!ENTITY x SYSTEM "'
        + url
        + b'">]>'
        + sms_mo("HOSTILE-XXE-" + name, b"&x;")
    )


def many_unknown_elements(count: int) -> bytes:
    return n101("HOSTILE-MANY-FIELDS", inside=b"".join(b"<X%04d>v</X%04d>" % (i, i) for i in range(count)))


_FORM_BODY = b"xml=" + quote_from_bytes(n101("HOSTILE-FORM")).encode()

CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- refused before anything is stored
    Case("empty-body", b"", EMPTY, None, "empty body"),
    Case(
        "over-the-1-MiB-cap",
        padded(MIB + 1, b"over"),
        TOO_LARGE,
        None,
        "1 MiB + 1 byte (MaxBodyBytes is 1 MiB)",
    ),
    Case(
        "refused-address",
        n101("HOSTILE-STRANGER"),
        FORBIDDEN,
        None,
        "genuine postback, right token, from 127.0.0.2 (not in AllowedSourceCidrs)",
        source="127.0.0.2",
    ),
    Case(
        "refused-address-with-spoofed-forwarding-headers",
        n101("HOSTILE-SPOOFED"),
        FORBIDDEN,
        None,
        "from 127.0.0.2 with X-Forwarded-For / X-Real-IP / Forwarded naming 127.0.0.1",
        source="127.0.0.2",
        headers=(
            *XML,
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Real-IP", "127.0.0.1"),
            ("Forwarded", "for=127.0.0.1"),
        ),
    ),
    Case(
        "refused-address-empty-body",
        b"",
        FORBIDDEN,
        None,
        "empty body from 127.0.0.2 (the address is checked first)",
        source="127.0.0.2",
    ),
    Case(
        "bad-token",
        n101("HOSTILE-BAD-TOKEN"),
        FORBIDDEN,
        None,
        "genuine postback, token one character off",
        path="/postback/{wrong_token}",
    ),
    # Without a token in the path there is no route: API Gateway's own answer, the function never runs.
    Case(
        "missing-token",
        n101("HOSTILE-NO-TOKEN"),
        NO_ROUTE,
        None,
        "genuine postback to /postback (no token)",
        path="/postback",
    ),
    Case(
        "empty-token",
        n101("HOSTILE-EMPTY-TOKEN"),
        NO_ROUTE,
        None,
        "genuine postback to /postback/ (an empty token)",
        path="/postback/",
    ),
    Case(
        "token-in-query-string",
        n101("HOSTILE-QUERY-TOKEN"),
        NO_ROUTE,
        None,
        "token as ?token= instead of in the path",
        path="/postback?token={token}",
    ),
    Case(
        "token-in-header",
        n101("HOSTILE-HEADER-TOKEN"),
        NO_ROUTE,
        None,
        "token in an Authorization / X-Postback-Token header instead of in the path",
        path="/postback",
        headers=(*XML, ("Authorization", "Bearer {token}"), ("X-Postback-Token", "{token}")),
    ),
    Case("method-get", b"", NO_ROUTE, None, "GET on the postback URL", method="GET"),
    Case("method-put", n101("HOSTILE-PUT"), NO_ROUTE, None, "PUT with a genuine postback", method="PUT"),
    Case("method-delete", b"", NO_ROUTE, None, "DELETE on the postback URL", method="DELETE"),
    Case("method-patch", n101("HOSTILE-PATCH"), NO_ROUTE, None, "PATCH with a postback", method="PATCH"),
    Case("method-options", b"", NO_ROUTE, None, "OPTIONS (CORS preflight)", method="OPTIONS"),
    Case("method-head", b"", Answer(403, None), None, "HEAD (status only, no body)", method="HEAD"),
    Case(
        "path-below-the-token",
        n101("HOSTILE-SUBPATH"),
        NO_ROUTE,
        None,
        "POST to /postback/<token>/extra",
        path="/postback/{token}/extra",
    ),
    # ---------------------------------------------------- admitted and stored, then quarantined by reason
    Case("billion-laughs", billion_laughs(), ACCEPTED, Quarantined("entities"), "billion laughs (10^9)"),
    Case(
        "quadratic-blowup",
        quadratic_blowup(),
        ACCEPTED,
        Quarantined("entities"),
        "one 30 KB entity referenced 10,000 times",
    ),
    Case(
        "xxe-file-etc-passwd",
        external_entity(b"file:///etc/passwd", "PASSWD"),
        ACCEPTED,
        Quarantined("entities"),
        "external entity file:///etc/passwd",
    ),
    Case(
        "xxe-file-canary",
        external_entity(CANARY, "CANARY"),
        ACCEPTED,
        Quarantined("entities"),
        "external entity naming a local file the test watches (contents and access time)",
    ),
    Case(
        "xxe-http-loopback",
        external_entity(LISTENER + b"/xxe", "HTTP"),
        ACCEPTED,
        Quarantined("entities"),
        "external entity http://127.0.0.1:<port>/ (a listener that counts connections)",
    ),
    Case(
        "parameter-entity",
        b'<!DOCTYPE POSTBACK [<!ENTITY % remote SYSTEM "'
        + LISTENER
        + b'/evil.dtd"> %remote; %payload;]>'
        + n101("HOSTILE-PARAMETER-ENTITY"),
        ACCEPTED,
        Quarantined("entities"),
        "parameter entity loading a DTD from loopback",
    ),
    Case(
        "external-dtd",
        b'<!DOCTYPE POSTBACK SYSTEM "' + LISTENER + b'/postback.dtd">' + n101("HOSTILE-EXTERNAL-DTD"),
        ACCEPTED,
        Quarantined("doctype"),
        "DOCTYPE with a SYSTEM DTD on loopback, no entities",
    ),
    Case(
        "internal-dtd-default-attribute",
        b'<!DOCTYPE POSTBACK [<!ELEMENT POSTBACK ANY><!ATTLIST POSTBACK xmlns CDATA #FIXED "urn:x">]>'
        + n101("HOSTILE-INTERNAL-DTD"),
        ACCEPTED,
        Quarantined("doctype"),
        "internal DTD subset (ELEMENT, ATTLIST default) on a genuine postback",
    ),
    Case(
        "deep-nesting",
        b"<POSTBACK>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</POSTBACK>",
        ACCEPTED,
        Quarantined("too-deep"),
        "5,000 nested elements",
    ),
    Case(
        "invalid-utf8-latin1-text",
        sms_mo("HOSTILE-LATIN1", b"caf\xe9 cr\xe8me"),
        ACCEPTED,
        Quarantined("invalid-utf8"),
        "Latin-1 bytes in TEXT",
    ),
    Case(
        "invalid-utf8-overlong-and-surrogate",
        n101("HOSTILE-OVERLONG").replace(b"OVERLONG", b"OVER\xc0\xafLONG\xed\xa0\x80"),
        ACCEPTED,
        Quarantined("invalid-utf8"),
        "overlong encoding of '/' and an encoded surrogate",
    ),
    Case(
        "utf16-bytes",
        n101("HOSTILE-UTF16").decode().encode("utf-16"),
        ACCEPTED,
        Quarantined("invalid-utf8"),
        "a genuine postback encoded as UTF-16 (with its BOM)",
    ),
    Case(
        "declared-utf16",
        n101("HOSTILE-DECLARED-UTF16", prolog=b'<?xml version="1.0" encoding="UTF-16"?>'),
        ACCEPTED,
        Quarantined("encoding"),
        'UTF-8 bytes declared encoding="UTF-16"',
    ),
    Case(
        "declared-latin1",
        n101("HOSTILE-DECLARED-LATIN1", prolog=b'<?xml version="1.0" encoding="ISO-8859-1"?>'),
        ACCEPTED,
        Quarantined("encoding"),
        'ASCII bytes declared encoding="ISO-8859-1"',
    ),
    Case(
        "two-boms",
        b"\xef\xbb\xbf\xef\xbb\xbf" + n101("HOSTILE-TWO-BOMS"),
        ACCEPTED,
        Quarantined("not-xml"),
        "two UTF-8 BOMs before a genuine postback",
    ),
    Case(
        "gzip-body",
        gzip.compress(n101("HOSTILE-GZIP"), mtime=0),
        ACCEPTED,
        Quarantined("invalid-utf8"),
        "gzip-compressed postback (Content-Encoding: gzip)",
        headers=(*XML, ("Content-Encoding", "gzip")),
    ),
    Case(
        "truncated",
        n101("HOSTILE-TRUNCATED")[:90],
        ACCEPTED,
        Quarantined("not-well-formed"),
        "a genuine postback cut off mid-element",
    ),
    Case(
        "mismatched-tags",
        b"<POSTBACK><ORIGIN>MMS_MT</CODE><CODE>N101</ORIGIN></POSTBACK>",
        ACCEPTED,
        Quarantined("not-well-formed"),
        "mismatched end tags",
    ),
    Case(
        "nul-byte",
        n101("HOSTILE-NUL\x00BYTE"),
        ACCEPTED,
        Quarantined("not-well-formed"),
        "a NUL byte inside TRACKINGID",
    ),
    Case(
        "nul-character-reference",
        n101("HOSTILE-NUL&#0;REF"),
        ACCEPTED,
        Quarantined("not-well-formed"),
        "&#0; inside TRACKINGID",
    ),
    Case(
        "undefined-entity",
        n101("HOSTILE-&xxe;"),
        ACCEPTED,
        Quarantined("not-well-formed"),
        "&xxe; with no DTD at all",
    ),
    Case("whitespace-only", b" \r\n\t \n", ACCEPTED, Quarantined("empty"), "only whitespace"),
    Case(
        "json-body",
        b'{"ORIGIN": "MMS_MT", "CODE": "N101", "TRACKINGID": "HOSTILE-JSON"}',
        ACCEPTED,
        Quarantined("not-xml"),
        "a JSON object (the v2 product's shape)",
        headers=(("Content-Type", "application/json"),),
    ),
    Case(
        "form-encoded",
        _FORM_BODY,
        ACCEPTED,
        Quarantined("not-xml"),
        "xml=<url-encoded postback> (the older form post)",
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
    ),
    Case(
        "wrong-root-response",
        b"<RESPONSE><STATUS>Success</STATUS><TRACKINGID>HOSTILE-RESPONSE</TRACKINGID></RESPONSE>",
        ACCEPTED,
        Quarantined("wrong-root"),
        "an API response (RESPONSE root) posted back",
    ),
    Case(
        "wrong-root-request-with-api-key",
        b"<REQUEST><ACTION>sendSMS</ACTION><API_KEY>not-a-real-key</API_KEY><TO>13125550147</TO></REQUEST>",
        ACCEPTED,
        Quarantined("wrong-root"),
        "an API request (REQUEST root)",
    ),
    Case(
        "wrong-root-html",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        ACCEPTED,
        Quarantined("wrong-root"),
        "an HTML error page",
    ),
    Case(
        "wrong-root-soap-envelope",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        + n101("HOSTILE-SOAP")
        + b"</soap:Body></soap:Envelope>",
        ACCEPTED,
        Quarantined("wrong-root"),
        "a genuine postback wrapped in a SOAP envelope",
    ),
    Case(
        "conflicting-duplicate-tracking-id",
        n101("HOSTILE-FIRST", inside=b"<TRACKINGID>HOSTILE-SECOND</TRACKINGID>"),
        ACCEPTED,
        Quarantined("duplicate-field"),
        "a second TRACKINGID with another value",
    ),
    Case(
        "fields-smuggled-in-a-wrapper",
        b"<POSTBACK><WRAP><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE>"
        b"<TRACKINGID>HOSTILE-WRAPPED</TRACKINGID></WRAP></POSTBACK>",
        ACCEPTED,
        Quarantined("no-origin"),
        "ORIGIN/CODE inside an unknown wrapper element",
    ),
    Case(
        "over-the-parser-cap-inline",
        padded(100 * 1024, b"inline"),
        ACCEPTED,
        Quarantined("too-large"),
        "100 KiB (over the parser's 64 KiB, travels inline on the queue)",
    ),
    Case(
        "at-the-1-MiB-cap",
        padded(MIB, b"cap"),
        ACCEPTED,
        Quarantined("too-large"),
        "exactly 1 MiB (admitted; travels by S3 key, over the parser's 64 KiB)",
    ),
    # ------------------------------------------------------------------ admitted and applied as documented
    Case(
        "utf8-bom",
        b"\xef\xbb\xbf" + n101("HOSTILE-BOM"),
        ACCEPTED,
        AppliedMessage("HOSTILE-BOM", "SENT"),
        "one UTF-8 BOM before a genuine postback",
    ),
    Case(
        "xinclude",
        n101(
            "HOSTILE-XINCLUDE",
            root=b'<POSTBACK xmlns:xi="http://www.w3.org/2001/XInclude">',
            inside=b'<xi:include href="file:///etc/passwd" parse="text"/>'
            b'<xi:include href="' + LISTENER + b'/xinclude"/>',
        ),
        ACCEPTED,
        AppliedMessage("HOSTILE-XINCLUDE", "SENT", {"INCLUDE": None}),
        "xi:include of file:///etc/passwd and of loopback (kept as an empty unknown field)",
    ),
    Case(
        "processing-instructions",
        n101(
            "HOSTILE-PI",
            prolog=b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="' + LISTENER + b'/x.xsl"?>',
            inside=b"<?php system('id'); ?>",
        ),
        ACCEPTED,
        AppliedMessage("HOSTILE-PI", "SENT"),
        "xml-stylesheet PI pointing at loopback and a <?php ...?> PI (ignored)",
    ),
    Case(
        "schema-location-on-loopback",
        n101(
            "HOSTILE-SCHEMA",
            root=b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x '
            + LISTENER
            + b'/postback.xsd">',
        ),
        ACCEPTED,
        AppliedMessage("HOSTILE-SCHEMA", "SENT"),
        "xsi:schemaLocation pointing at loopback (never fetched)",
    ),
    Case(
        "comment-hiding-a-doctype",
        n101("HOSTILE-COMMENT", prolog=b'<!-- <!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]> -->'),
        ACCEPTED,
        AppliedMessage("HOSTILE-COMMENT", "SENT"),
        "a DOCTYPE with an external entity inside a comment",
    ),
    Case(
        "cdata-tracking-id",
        n101("<![CDATA[HOSTILE-CDATA]]>"),
        ACCEPTED,
        AppliedMessage("HOSTILE-CDATA", "SENT"),
        "TRACKINGID given as CDATA",
    ),
    Case(
        "cdata-markup-in-text",
        sms_mo("HOSTILE-CDATA-TEXT", b"<![CDATA[</TEXT><ORIGIN>SUB</ORIGIN><!DOCTYPE x>&amp;]]>"),
        ACCEPTED,
        AppliedInbound(
            "SMS_MO", "HOSTILE-CDATA-TEXT", {"text": "</TEXT><ORIGIN>SUB</ORIGIN><!DOCTYPE x>&amp;"}
        ),
        "CDATA in TEXT holding end tags, a DOCTYPE and an entity (kept as literal text)",
    ),
    Case(
        "huge-attribute",
        n101("HOSTILE-ATTRIBUTE", root=b'<POSTBACK padding="' + b"A" * 60_000 + b'">'),
        ACCEPTED,
        AppliedMessage("HOSTILE-ATTRIBUTE", "SENT"),
        "a 60 KB attribute on the root (attributes are ignored)",
    ),
    Case(
        "many-unknown-elements",
        many_unknown_elements(2500),
        ACCEPTED,
        AppliedMessage("HOSTILE-MANY-FIELDS", "SENT", {"X0000": "v", "X2499": "v"}),
        "2,500 distinct unknown elements (kept as fields)",
    ),
    Case(
        "wrong-content-type",
        n101("HOSTILE-CONTENT-TYPE"),
        ACCEPTED,
        AppliedMessage("HOSTILE-CONTENT-TYPE", "SENT"),
        "a genuine postback labelled Content-Type: application/json",
        headers=(("Content-Type", "application/json"),),
    ),
    Case(
        "no-content-type",
        n101("HOSTILE-NO-CONTENT-TYPE"),
        ACCEPTED,
        AppliedMessage("HOSTILE-NO-CONTENT-TYPE", "SENT"),
        "a genuine postback with no Content-Type",
        headers=(),
    ),
)
