"""Provider postback bytes → an immutable, classified `Postback` (docs/provider-protocol.md §3), or a
`PostbackError`.

`parse_postback` is pure: no I/O, no clock (the receipt time is passed in), and hostile input cannot make it
hang, recurse, expand entities, read a file or raise anything but `PostbackError`, whose `.reason` is a stable
machine-readable code (`REASONS`) for the quarantine record.

Safety, in the order the checks run:

* The body is capped (`max_bytes`, 64 KiB by default; genuine postbacks stay under 16 KiB) before any work.
* It must be valid UTF-8 whatever its XML declaration says; one leading UTF-8 BOM is allowed. A declaration
  naming another encoding is rejected (`encoding`) rather than silently reinterpreted.
* It is parsed by defusedxml's expat parser with DTDs, entity declarations and external references
  forbidden, so any DOCTYPE aborts the parse at its first token: nothing is expanded or fetched.
* No element tree is built. Two small element handlers count the depth on the way down and abort past
  `MAX_DEPTH` at once, without recursion; they keep light nodes only for the few levels a postback uses.
  Character data goes straight into one list (no Python call per text chunk).

Reading rules (§3.1, §3.4, §3.5):

* Roots: `POSTBACK` (any spelling that normalises to it, e.g. `postback`), a legacy `NOTIFICATION` root,
  and a `POSTBACK` whose only element child is `NOTIFICATION` (unwrapped). Root attributes are ignored,
  except a `NOTIFICATION` envelope's (`ID`, `CREATED`, ...), which become `extras` with trimmed values.
* Only direct children of the root (or of the unwrapped `NOTIFICATION`) are read, plus `CONTENT/FILE`, plus
  the legacy `BODY`, whose children are lifted to the top level. Nothing else is searched, so an unknown
  wrapper element cannot smuggle in a known name. An unknown element is kept in `fields` with its own text.
* Element names are normalised (`normalise_name`): namespace dropped, upper-cased, `-` and `_` removed, then
  the aliases `OPERATORID` → `SPID` and `MESSAGESUBJECT` → `SUBJECT`.
* Values are the element's own character data (child elements skipped), trimmed of XML whitespace (space,
  tab, CR, LF; other Unicode spaces are data); an empty value is None.
* A name that occurs twice with different values is rejected (`duplicate-field`) when it is one that
  classifies, correlates or changes state (`CONFLICT_CHECKED_FIELDS`); for any other name the first value
  wins (the raw body is archived anyway).

Decisions where the protocol is silent:

* Required keys (§3.1): delivery codes (incl. E011-E013, which end the message as FAILED), the DDM codes
  N501-E502 and N013 all belong to one outbound message, so they require `TRACKINGID`. E999 requires
  nothing: its meaning is undocumented and it must reach an operator (`alert`) even when uncorrelated.
  GENERATE_PASS and unrecognised postbacks require nothing.
* The event time is `TIMESTAMP`, or `RECEIVED` for SMS_MO; each falls back to the other field. Only when
  both are missing or empty is `received_at` used, with `timestamp_derived=True`. A present but
  unparseable value is kept raw with `timestamp_utc=None` and is not replaced by the receipt time.
* `files` are read from `CONTENT/FILE` whatever the ORIGIN (in practice MMS_MO). `CONTENT` and `BODY` are
  containers and do not appear in `fields`.
* `failure_reason` is set only for codes that report a failure (`CodeInfo.failure`).
* `dialect` is `v1` for a root spelled exactly `POSTBACK` (in any namespace), `hyphenated` for any other
  spelling (`postback`).
* The semantic key (§3.8 rule 5) uses the provider's raw timestamp, never the derived receipt time, so
  retries of a postback without a timestamp share one key. The price: an identical notification that
  genuinely repeats (EMAIL_SUB N303 → N304 → N303) is indistinguishable from a retry, by this key and by the
  body hash alike; bound such dedup records by the retry window (§5.2: about 25 minutes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Final, Literal

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from mmsbridge.core.states import CATALOGUE, MessageState, PostbackKind, TemplateState
from mmsbridge.core.times import parse_timestamp, to_utc

__all__ = [
    "CONFLICT_CHECKED_FIELDS",
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "REASONS",
    "STOP_KEYWORDS",
    "Dialect",
    "Postback",
    "PostbackError",
    "normalise_name",
    "parse_postback",
]

DEFAULT_MAX_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 32

Dialect = Literal["v1", "hyphenated", "notification", "wrapped-notification"]

REASONS: Final = frozenset(
    {
        "not-bytes",  # the body is not bytes (a caller bug)
        "too-large",  # over max_bytes
        "empty",  # nothing but whitespace
        "invalid-utf8",  # not decodable as UTF-8
        "encoding",  # the XML declaration names an encoding other than UTF-8 / ASCII
        "not-xml",  # does not start with '<' (JSON, a form body `xml=...`)
        "doctype",  # any DOCTYPE
        "entities",  # entity declarations or external references (a DOCTYPE with <!ENTITY ...> included)
        "not-well-formed",  # expat's verdict, truncated documents included
        "too-deep",  # nesting deeper than MAX_DEPTH
        "wrong-root",  # a root other than POSTBACK / NOTIFICATION
        "no-origin",
        "no-code",  # neither CODE nor STATUSCODE
        "missing-key",  # a correlation key the event is applied by; `.detail` names them
        "duplicate-field",  # a classifying/correlating field given twice with different values
        "internal",  # a bug in this module (never expected; kept so the contract holds)
    }
)

STOP_KEYWORDS: Final = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
)

CONFLICT_CHECKED_FIELDS: Final = frozenset(
    {
        "ORIGIN",
        "CODE",
        "STATUSCODE",
        "TRACKINGID",
        "MMSID",
        "TRANSACTIONID",
        "FROM",
        "TO",
        "MOBILE",
        "EMAIL",
        "CAMPAIGNID",
        "TIMESTAMP",
        "RECEIVED",
        "SENTAS",
        "STATUS",
        "TEXT",
        "KEYWORD",
    }
)

_XML_WHITESPACE: Final = " \t\r\n"
_ALIASES: Final = {"OPERATORID": "SPID", "MESSAGESUBJECT": "SUBJECT"}
_ASCII_COMPATIBLE: Final = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_XML_DECLARED_ENCODING: Final = re.compile(r"<\?xml\s[^>]*?\bencoding\s*=\s*([\"'])(.*?)\1")
_FAILURE_REASONS: Final = {
    "expired": "Expired",
    "rejected": "Rejected",
    "failed": "Failed",
    "notsupported": "NotSupported",
    "undelivered": "Undelivered",
}

# Tag spelling → normalised name. Bounded, so a stream of invented names cannot grow it without limit;
# the documented spellings are put in first (end of module), so junk can never crowd them out.
_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_LIMIT: Final = 1024
_DOCUMENTED_NAMES: Final = (  # §3.3-§3.5, as space-separated groups
    "POSTBACK NOTIFICATION BODY ORIGIN CODE STATUSCODE STATUS SENTAS MMSID FROM TO TRACKINGID SPID TIMESTAMP",
    "HANDSET AGGREGATORID STATUSDETAILS FROM_MASK AUDIONAME VIDEONAME TEXT RECEIVED TRANSACTIONID KEYWORD",
    "SUBJECT CONTENT FILE MOBILE CAMPAIGNID SHORTCODE CAMPAIGNTITLE BRANDNAME SOURCE EMAIL REFERENCEDBY",
    "REFERENCEVALUE CUSTOMPASSID PASSDATAID SERIALNUMBER HISTORYID SCHEDULEDID ID CREATED OPERATORID",
    "postback origin code status sent-as mms-id from to tracking-id operator-id timestamp handset keyword",
    "content file message-subject status-details audio-name video-name transaction-id received id created",
)


class PostbackError(ValueError):
    """A body that cannot be applied: quarantine it with `.reason` (one of `REASONS`) and the raw bytes.

    `.detail` holds the missing or conflicting field names for `missing-key` / `duplicate-field`; `.origin`
    and `.code` are set once they are known.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        detail: tuple[str, ...] = (),
        origin: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail
        self.origin = origin
        self.code = code

    def __repr__(self) -> str:
        return f"PostbackError({self.reason!r}, {str(self)!r})"


def normalise_name(tag: str) -> str:
    """`tracking-id`, `TRACKING_ID` and `TRACKINGID` → `TRACKINGID`; `operator-id` → `SPID` (§3.4)."""
    name = _NAME_CACHE.get(tag)
    if name is None:
        name = tag.rpartition("}")[2].upper().replace("-", "").replace("_", "")
        name = _ALIASES.get(name, name)
        if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
            _NAME_CACHE[tag] = name
    return name


@dataclass(frozen=True, slots=True)
class Postback:
    """One parsed postback.

    origin, code        ORIGIN and CODE (or STATUSCODE), trimmed and upper-cased.
    kind                how the event is applied (`PostbackKind`); UNRECOGNISED for a pair not in §3.2.
    dialect             `v1`, `hyphenated`, `notification` or `wrapped-notification`.
    fields              every element read, by normalised name (unknown ones too) → trimmed value or None.
    files               MMS_MO `CONTENT/FILE` URLs, in document order.
    extras              legacy envelope data: NOTIFICATION attributes (`ID`, `CREATED`), `HISTORYID`, and
                        an attribute-only STATUS element's attributes as `STATUS.<NAME>`.
    tracking_id, mms_id TRACKINGID and MMSID from `fields`.
    state               the message state a delivery code sets (§3.8), else None. N102/N202 set DELIVERED,
                        or UNDELIVERED when their STATUS names a failure (`Message Sent/Expired`).
    template_state      READY / BROKEN for N003 / E002, E003, E004, else None.
    failure_reason      for failure codes and failed N102/N202, the part of STATUS after `/` (`Expired`,
                        `NotSupported`, ...).
    via_link            MMS_MT N102/N202 reported for an SMS link (SENTAS=SMS), delivered or not.
    alert               E999: tell an operator.
    subscribed          SUB / EMAIL_SUB: True on N301/N303, False on N302/N304, else None.
    pass_ok             GENERATE_PASS: True on N801, False on N802/N803/N811, else None.
    timestamp_raw       the provider's time field as sent (TIMESTAMP; RECEIVED for SMS_MO), or None.
    timestamp_utc       that time in UTC; or the receipt time if the field is missing; None if unparseable.
    timestamp_derived   True when timestamp_utc is the receipt time.

    Treat `fields` and `extras` as read-only; they are left out of the hash.
    """

    origin: str
    code: str
    kind: PostbackKind
    dialect: Dialect
    fields: dict[str, str | None] = field(hash=False)
    files: tuple[str, ...]
    extras: dict[str, str] = field(hash=False)
    tracking_id: str | None
    mms_id: str | None
    state: MessageState | None
    template_state: TemplateState | None
    failure_reason: str | None
    via_link: bool
    alert: bool
    subscribed: bool | None
    pass_ok: bool | None
    timestamp_raw: str | None
    timestamp_utc: datetime | None
    timestamp_derived: bool

    @property
    def correlation_id(self) -> str | None:
        """The key the event is applied by (§3.8), or None if the postback carries none.

        TRACKINGID (MMS_MT/SMS_MT messages, MMS_MO; MMS_MT falls back to MMSID for template codes and for
        codes without a TRACKINGID), TRANSACTIONID (SMS_MO), `MOBILE#CAMPAIGNID` (SUB), `EMAIL#CAMPAIGNID`
        (EMAIL_SUB), CUSTOMPASSID / PASSDATAID / SERIALNUMBER (GENERATE_PASS). Other origins: the first of
        TRACKINGID, MMSID, TRANSACTIONID.
        """
        get = self.fields.get
        origin = self.origin
        if origin == "MMS_MT":
            if self.kind is PostbackKind.TEMPLATE:
                return get("MMSID")
            return get("TRACKINGID") or get("MMSID")
        if origin in ("SMS_MT", "MMS_MO"):
            return get("TRACKINGID")
        if origin == "SMS_MO":
            return get("TRANSACTIONID")
        if origin == "SUB":
            return _composite(get("MOBILE"), get("CAMPAIGNID"))
        if origin == "EMAIL_SUB":
            return _composite(get("EMAIL"), get("CAMPAIGNID"))
        if origin == "GENERATE_PASS":
            return get("CUSTOMPASSID") or get("PASSDATAID") or get("SERIALNUMBER")
        return get("TRACKINGID") or get("MMSID") or get("TRANSACTIONID")

    @property
    def semantic_parts(self) -> tuple[str, str, str, str]:
        """(ORIGIN, CODE, correlation id, raw provider timestamp) — §3.8 rule 5.

        Without a correlation id, a digest of all fields and files stands in for it, so two different
        uncorrelated events never share a key. A derived (receipt-time) timestamp is never part of it.
        """
        correlation = self.correlation_id
        if correlation is None:
            content = json.dumps([sorted(self.fields.items()), self.files], ensure_ascii=False)
            correlation = "fields-sha256:" + hashlib.sha256(content.encode()).hexdigest()
        return (self.origin, self.code, correlation, self.timestamp_raw or "")

    @property
    def semantic_key(self) -> str:
        """A stable 64-hex-digit digest of `semantic_parts`: fixed length whatever the field sizes."""
        canonical = json.dumps(self.semantic_parts, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def inbound_stop(self) -> bool:
        """An inbound SMS/MMS whose TEXT or KEYWORD, trimmed and case-folded, is a STOP-family keyword."""
        if self.origin not in ("SMS_MO", "MMS_MO"):
            return False
        get = self.fields.get
        return any(
            value is not None and value.strip().casefold() in STOP_KEYWORDS
            for value in (get("TEXT"), get("KEYWORD"))
        )


# The hot path builds a Postback without the frozen dataclass `__init__`, which pays an
# `object.__setattr__` lookup per field: the slots are set through their descriptors instead, at about a
# third of the cost. The tests check that both build equal objects, and this fails at import if a field is
# added, removed or reordered without updating `_new_postback`.
_SETTERS: Final = tuple(getattr(Postback, item.name).__set__ for item in dataclass_fields(Postback))
_new_object = object.__new__


def _new_postback(
    origin: object,
    code: object,
    kind: object,
    dialect: object,
    fields: object,
    files: object,
    extras: object,
    tracking_id: object,
    mms_id: object,
    state: object,
    template_state: object,
    failure_reason: object,
    via_link: object,
    alert: object,
    subscribed: object,
    pass_ok: object,
    timestamp_raw: object,
    timestamp_utc: object,
    timestamp_derived: object,
) -> Postback:
    """`Postback(...)`, positional arguments in field order."""
    postback = _new_object(Postback)
    _SETTERS[0](postback, origin)
    _SETTERS[1](postback, code)
    _SETTERS[2](postback, kind)
    _SETTERS[3](postback, dialect)
    _SETTERS[4](postback, fields)
    _SETTERS[5](postback, files)
    _SETTERS[6](postback, extras)
    _SETTERS[7](postback, tracking_id)
    _SETTERS[8](postback, mms_id)
    _SETTERS[9](postback, state)
    _SETTERS[10](postback, template_state)
    _SETTERS[11](postback, failure_reason)
    _SETTERS[12](postback, via_link)
    _SETTERS[13](postback, alert)
    _SETTERS[14](postback, subscribed)
    _SETTERS[15](postback, pass_ok)
    _SETTERS[16](postback, timestamp_raw)
    _SETTERS[17](postback, timestamp_utc)
    _SETTERS[18](postback, timestamp_derived)
    return postback


if tuple(_new_postback.__code__.co_varnames[: len(_SETTERS)]) != tuple(
    item.name for item in dataclass_fields(Postback)
):  # pragma: no cover
    raise ImportError("_new_postback does not match the Postback fields")


def _composite(first: str | None, second: str | None) -> str | None:
    return f"{first}#{second}" if first and second else None


# POSTBACK > NOTIFICATION > BODY > CONTENT > FILE is the deepest level anything is read from; one level
# more is kept so that a FILE's own text can leave out its children's.
_KEEP_DEPTH: Final = 6

# A kept element: [raw tag, attributes (expat's flat [name, value, ...] list), index of its first text
# chunk, index after its last text chunk, child elements]. Plain lists: one is built per element, and this
# is the hot path. All character data goes, in document order, into one list of chunks.
_Node = list
_TAG, _ATTRS, _FIRST, _END, _CHILDREN = 0, 1, 2, 3, 4


class _NoTree:
    """The XMLParser target: builds nothing; the element handlers are set on expat directly instead."""

    def close(self) -> None:
        return None


_NO_TREE: Final = _NoTree()


def parse_postback(
    body: bytes, *, received_at: datetime | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Postback:
    """Parse and classify one postback body (the raw HTTP request body). Raises `PostbackError` only.

    `received_at` (naive = UTC) stands in for the event time when the postback carries none; the result is
    then marked `timestamp_derived`. `max_bytes` caps the body before anything else is done with it.
    """
    try:
        root, chunks = _read_tree(body, max_bytes)
        fields, files, extras, dialect = _flatten(root, chunks)
        return _classify(fields, files, extras, dialect, received_at)
    except PostbackError:
        raise
    except Exception as error:  # the contract: nothing but PostbackError escapes, whatever the input
        raise PostbackError("internal", f"unexpected {type(error).__name__}: {error}") from error


def _classify(
    fields: dict[str, str | None],
    files: tuple[str, ...],
    extras: dict[str, str],
    dialect: Dialect,
    received_at: datetime | None,
) -> Postback:

    origin = fields.get("ORIGIN")
    if not origin:
        raise PostbackError("no-origin", "postback has no ORIGIN")
    origin = origin.upper()
    if origin == "GENERATE_PASS":
        code = fields.get("STATUSCODE") or fields.get("CODE")
    else:
        code = fields.get("CODE") or fields.get("STATUSCODE")
    if not code:
        raise PostbackError("no-code", f"{origin} postback has neither CODE nor STATUSCODE", origin=origin)
    code = code.upper()

    info = CATALOGUE.get((origin, code))
    if info is not None:
        for name in info.required:
            if not fields.get(name):
                missing = tuple(key for key in info.required if not fields.get(key))
                raise PostbackError(
                    "missing-key",
                    f"{origin} {code} lacks {', '.join(missing)}",
                    detail=missing,
                    origin=origin,
                    code=code,
                )

    if origin == "SMS_MO":
        timestamp_raw = fields.get("RECEIVED") or fields.get("TIMESTAMP")
    else:
        timestamp_raw = fields.get("TIMESTAMP") or fields.get("RECEIVED")
    timestamp_derived = False
    if timestamp_raw is not None:
        timestamp_utc = parse_timestamp(timestamp_raw)
    elif received_at is not None:
        timestamp_utc = to_utc(received_at)
        timestamp_derived = True
    else:
        timestamp_utc = None

    if info is None:
        return _new_postback(
            origin,
            code,
            PostbackKind.UNRECOGNISED,
            dialect,
            fields,
            files,
            extras,
            fields.get("TRACKINGID"),
            fields.get("MMSID"),
            None,
            None,
            None,
            False,
            False,
            None,
            None,
            timestamp_raw,
            timestamp_utc,
            timestamp_derived,
        )
    state, failure_reason = info.state, _failure_reason(fields.get("STATUS")) if info.failure else None
    via_link = False
    if info.by_status:
        reported = _reported_failure(fields.get("STATUS"))
        if reported is not None:
            state, failure_reason = MessageState.UNDELIVERED, reported
        if origin == "MMS_MT":
            sent_as = fields.get("SENTAS")
            via_link = sent_as is not None and sent_as.upper() == "SMS"
    return _new_postback(
        origin,
        code,
        info.kind,
        dialect,
        fields,
        files,
        extras,
        fields.get("TRACKINGID"),
        fields.get("MMSID"),
        state,
        info.template_state,
        failure_reason,
        via_link,
        info.alert,
        info.subscribed,
        info.pass_ok,
        timestamp_raw,
        timestamp_utc,
        timestamp_derived,
    )


def _read_tree(body: bytes, max_bytes: int) -> tuple[_Node, list[str]]:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise PostbackError("not-bytes", f"body must be bytes, not {type(body).__name__}")
    if isinstance(body, memoryview):
        body = body.tobytes()
    if len(body) > max_bytes:
        raise PostbackError("too-large", f"body is {len(body)} bytes; the cap is {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PostbackError("invalid-utf8", f"body is not UTF-8 (byte {error.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if text[:1] != "<":
        first = text.lstrip(_XML_WHITESPACE)[:1]
        if not first:
            raise PostbackError("empty", "body is empty")
        if first != "<":
            raise PostbackError("not-xml", f"body does not start with '<' but with {first!r}")
    elif text.startswith("<?xml") and "encoding" in text[: text.find(">")]:
        declared = _XML_DECLARED_ENCODING.match(text)
        if declared is not None and declared.group(2).strip().lower() not in _ASCII_COMPATIBLE:
            raise PostbackError("encoding", f"declared encoding {declared.group(2)[:40]!r} is not UTF-8")

    roots: list[_Node] = []
    # The open elements: kept nodes down to _KEEP_DEPTH, then None placeholders; its length is the depth.
    stack: list[_Node | None] = []
    chunks: list[str] = []

    def start(tag: str, attrs: list[str]) -> None:
        depth = len(stack)
        if depth < _KEEP_DEPTH:
            node = [tag, attrs, len(chunks), 0, None]
            if depth:
                parent: _Node = stack[-1]  # type: ignore[assignment]
                if parent[_CHILDREN] is None:
                    parent[_CHILDREN] = [node]  # most elements are leaves: no list for them
                else:
                    parent[_CHILDREN].append(node)
            else:
                roots.append(node)
            stack.append(node)
        elif depth < MAX_DEPTH:
            stack.append(None)
        else:  # abort before anything deeper is even read: no tree, no recursion
            raise PostbackError("too-deep", f"elements nested deeper than {MAX_DEPTH} levels")

    def end(tag: str) -> None:
        node = stack.pop()
        if node is not None:
            node[_END] = len(chunks)

    # defusedxml configures expat (DTD, entity declarations and external references forbidden); the
    # element handlers go straight onto expat, skipping the pure-Python XMLParser's per-element wrappers.
    # A str is parsed as UTF-8 whatever the XML declaration says (pyexpat sets the encoding explicitly).
    parser = DefusedXMLParser(target=_NO_TREE, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    expat = parser.parser
    expat.StartElementHandler = start
    expat.EndElementHandler = end
    expat.CharacterDataHandler = chunks.append  # C to C: no Python frame per text chunk
    try:
        parser.feed(text)
        parser.close()
    except DTDForbidden:
        if "<!ENTITY" in text:
            raise PostbackError("entities", "DOCTYPE with entity declarations") from None
        raise PostbackError("doctype", "DOCTYPE is not allowed") from None
    except (EntitiesForbidden, ExternalReferenceForbidden) as error:
        raise PostbackError("entities", f"entities are not allowed: {error}") from None
    except ParseError as error:
        raise PostbackError("not-well-formed", f"not well-formed XML: {error}") from None
    if not roots:  # unreachable: expat reports a document without an element as an error
        raise PostbackError("not-well-formed", "no root element")
    return roots[0], chunks


def _flatten(
    root: _Node, chunks: list[str]
) -> tuple[dict[str, str | None], tuple[str, ...], dict[str, str], Dialect]:
    root_tag = root[_TAG]
    root_name = _NAME_CACHE.get(root_tag) or normalise_name(root_tag)
    extras: dict[str, str] = {}
    dialect: Dialect
    container = root
    if root_name == "POSTBACK":
        children = root[_CHILDREN]
        if (
            children is not None
            and len(children) == 1
            and normalise_name(children[0][_TAG]) == "NOTIFICATION"
        ):
            dialect, container = "wrapped-notification", children[0]
        else:
            dialect = "v1" if root_tag.rpartition("}")[2] == "POSTBACK" else "hyphenated"
    elif root_name == "NOTIFICATION":
        dialect = "notification"
    else:
        raise PostbackError("wrong-root", f"root element {root_tag[:80]!r} is not a postback")

    nodes = container[_CHILDREN] or []
    legacy = container is not root or dialect == "notification"
    if legacy:
        _put_attributes(extras, "", container[_ATTRS])
        nodes = _lift_legacy_body(nodes, extras)

    names = _NAME_CACHE
    whitespace = _XML_WHITESPACE
    fields: dict[str, str | None] = {}
    files: list[str] = []
    conflicts: list[str] = []
    for node in nodes:
        tag, _, first, end, children = node
        name = names.get(tag) or normalise_name(tag)
        if name == "CONTENT":
            for child in children or ():
                if normalise_name(child[_TAG]) == "FILE":
                    url = _own_text(child, chunks)
                    if url is not None:
                        files.append(url)
            continue
        if children:
            value = _own_text(node, chunks)
        else:  # the common case, inlined
            text = chunks[first] if end - first == 1 else "".join(chunks[first:end])
            value = text.strip(whitespace) or None
        if name in fields:
            if fields[name] != value and name in CONFLICT_CHECKED_FIELDS and name not in conflicts:
                conflicts.append(name)
            continue
        fields[name] = value
    if conflicts:
        raise PostbackError(
            "duplicate-field", f"conflicting values for {', '.join(conflicts)}", detail=tuple(conflicts)
        )
    if legacy:
        history_id = fields.get("HISTORYID")
        if history_id is not None:
            extras["HISTORYID"] = history_id
    return fields, tuple(files), extras, dialect


def _own_text(node: _Node, chunks: list[str]) -> str | None:
    """The element's own character data (its children's left out), trimmed; None if empty."""
    position = node[_FIRST]
    parts: list[str] = []
    for child in node[_CHILDREN] or ():
        parts.extend(chunks[position : child[_FIRST]])
        position = child[_END]
    parts.extend(chunks[position : node[_END]])
    return "".join(parts).strip(_XML_WHITESPACE) or None


def _put_attributes(extras: dict[str, str], prefix: str, attrs: list[str]) -> None:
    for index in range(0, len(attrs) - 1, 2):
        extras[prefix + normalise_name(attrs[index])] = attrs[index + 1].strip(_XML_WHITESPACE)


def _lift_legacy_body(nodes: list[_Node], extras: dict[str, str]) -> list[_Node]:
    """§3.5: BODY's children move to the top level; an attribute-only STATUS element becomes extras."""
    lifted: list[_Node] = []
    for node in nodes:
        if normalise_name(node[_TAG]) == "BODY":
            lifted.extend(node[_CHILDREN] or ())
        else:
            lifted.append(node)
    for node in lifted:
        if node[_ATTRS] and normalise_name(node[_TAG]) == "STATUS":
            _put_attributes(extras, "STATUS.", node[_ATTRS])
    return lifted


def _reported_failure(status: str | None) -> str | None:
    """The failure a delivery report's STATUS names (`Message Sent/Expired` → `Expired`), or None.

    Only the documented failure texts count: `/Delivered`, an empty or missing STATUS and any text that is
    not one of them leave the report a delivery (§3.2).
    """
    if status is None:
        return None
    _, slash, after = status.partition("/")
    return _FAILURE_REASONS.get("".join((after if slash else status).split()).casefold())


def _failure_reason(status: str | None) -> str | None:
    """`Message Sent/Expired` → `Expired`; `/Not Supported` → `NotSupported`; a bare `Expired` counts too."""
    if status is None:
        return None
    _, slash, after = status.partition("/")
    text = after.strip(_XML_WHITESPACE) if slash else status
    if not text:
        return None
    known = _FAILURE_REASONS.get("".join(text.split()).casefold())
    if known is not None:
        return known
    return text if slash else None


for _group in _DOCUMENTED_NAMES:
    for _name in _group.split():
        normalise_name(_name)
