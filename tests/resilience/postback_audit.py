"""The receive path's resilience matrix, its three parts: a corpus of postbacks as the provider sends them,
the provider's side of the HTTP exchange (retry until 200, bounded as in docs/provider-protocol.md §5.2), and
the audit of what went in against what came out (S3 archive, DynamoDB state, postback queue and its DLQ).

The audit has two oracles. The exact one is the fault-free table: every item the consumer's own planner
(`plan_batch`) makes of the corpus, compared with the table item for item, so a missing, extra or altered
item shows whatever its kind. The independent one is the protocol reference itself: §3.8's ranks give each
message's final
state, every report is one history event, every inbound message one record, the latest SUB change the
subscription and the suppression.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse

from local.aws_faults import _error_response
from local.simulator.postbacks import (
    DEFAULT_SPID,
    HYPHENATED,
    V1,
    Message,
    Postback,
    delivery_postback,
    eastern,
    mms_mo,
    render,
    sms_mo,
    subscription,
)
from mmsbridge.aws.state_table import StateTable, from_dynamo
from mmsbridge.core import envelope
from mmsbridge.core.table_model import UNDATED
from mmsbridge.postbacks.consume import consume
from mmsbridge.postbacks.planner import Received, Rejected, plan_batch
from mmsbridge.postbacks.reader import PostbackError, parse_postback
from mmsbridge.sending.request import Action

SHORTCODE = "47215"
CAMPAIGN = "2291"
# The provider's first attempt and its five retries (§5.2); a postback still refused after them is lost
# at the provider, which the audit counts like any other loss.
PROVIDER_ATTEMPTS = 6
# §3.8: the state each delivery code sets, and its rank. N202 is DELIVERED for MMS (via link) and SMS alike.
STATE_OF_CODE = {
    "N101": ("SENT", 1),
    "N201": ("SENT", 1),
    "E101": ("FAILED", 2),
    "E201": ("FAILED", 2),
    "E102": ("UNDELIVERED", 3),
    "E202": ("UNDELIVERED", 3),
    "N102": ("DELIVERED", 4),
    "N202": ("DELIVERED", 4),
    # A delivery report whose STATUS names a failure (§3.2): `<code>/<failure>` in a plan.
    "N102/Expired": ("UNDELIVERED", 3),
    "N202/Failed": ("UNDELIVERED", 3),
}
# Report sequences per message, in the provider's sending order; "N501" is a device-discovery report
# (history only). The conflicting one is a second, different final report (§3.8 rule 1).
MMS_PLANS = (
    ("N101", "N102"),
    ("N101", "N501", "N202"),
    ("N101", "E102"),
    ("N101", "E202"),
    ("E101",),
    ("N101",),
    ("N101", "E102", "N102"),
    ("N101", "N102/Expired"),
)
SMS_PLANS = (("N201", "N202"), ("N201", "E202"), ("E201",), ("N201",), ("N201", "N202/Failed"))
BASE_TIME = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ corpus


@dataclass(frozen=True)
class Corpus:
    """Distinct postbacks; their ids carry `tag`, so corpora sharing a table never share an item."""

    tag: str
    bodies: tuple[bytes, ...]  # every distinct postback, in the provider's order
    reports: dict[str, tuple[bytes, ...]]  # delivery reports per TRACKINGID, in the provider's order
    report_codes: dict[str, tuple[str, ...]]
    inbound: dict[str, bytes]  # IN#<origin>#<id> -> body
    subscriptions: dict[str, tuple[bytes, ...]]  # mobile -> its SUB changes, oldest first
    hostile: tuple[bytes, ...]  # bodies the consumer must quarantine (and nothing else)

    def __len__(self) -> int:
        return len(self.bodies)


def _ddm(message: Message, code: str, at: datetime) -> Postback:
    """A device-discovery report (N501): the simulator does not send DDMs, so it is built here."""
    return Postback(
        "MMS_MT",
        code,
        (
            ("SENTAS", "MMS"),
            ("STATUS", "Message Sent"),
            ("MMSID", message.mms_id or ""),
            ("FROM", message.from_),
            ("TO", message.to),
            ("TRACKINGID", message.tracking_id),
            ("SPID", DEFAULT_SPID),
            ("TIMESTAMP", eastern(at)),
        ),
    )


def build_corpus(tag: str, *, messages: int = 37, inbound: int = 20, mobiles: int = 7) -> Corpus:
    """Delivery reports for `messages` TRACKINGIDs (MMS and SMS, several reports each), `inbound` SMS/MMS
    MO, SUB opt-ins and opt-outs for `mobiles` numbers, and two hostile bodies; both dialects throughout.
    Everything follows from `tag`: corpora sharing a table need different tags (their ids and numbers)."""
    number_block = int(hashlib.sha256(tag.encode()).hexdigest(), 16) % 10_000
    bodies: list[bytes] = []
    reports: dict[str, tuple[bytes, ...]] = {}
    report_codes: dict[str, tuple[str, ...]] = {}
    inbound_items: dict[str, bytes] = {}
    subscriptions: dict[str, tuple[bytes, ...]] = {}

    for i in range(messages):
        dialect = HYPHENATED if (i // 3) % 2 else V1
        sms = i % 3 == 1
        plan = SMS_PLANS[i % len(SMS_PLANS)] if sms else MMS_PLANS[i % len(MMS_PLANS)]
        tracking_id = f"{tag}-{'SMS' if sms else 'MMS'}{i:03d}"
        message = Message(
            action=Action.SEND_SMS if sms else Action.SEND_SAVED_MMS,
            tracking_id=tracking_id,
            to=f"1{number_block:04d}{i:06d}",
            from_=SHORTCODE,
            number=i,
            mms_id=None if sms else "48213",
        )
        outcome, _, failure = plan[-1].partition("/")
        status_text = f"Message Sent/{failure}" if failure else None
        sent_at = BASE_TIME + timedelta(minutes=i)
        own: list[bytes] = []
        for step, token in enumerate(plan):
            code = token.partition("/")[0]
            at = sent_at + timedelta(seconds=20 * step)
            postback = _ddm(message, code, at) if code == "N501" else None
            if postback is None:
                postback = delivery_postback(message, code, at, outcome=outcome, status_text=status_text)
            own.append(render(postback, dialect))
        reports[tracking_id] = tuple(own)
        report_codes[tracking_id] = plan
        bodies += own

    for k in range(inbound):
        dialect = HYPHENATED if k % 2 else V1
        at = BASE_TIME + timedelta(hours=2, minutes=k)
        sender = f"1{number_block:04d}{500 + k:06d}"
        if k % 3 == 2:
            identifier = f"MMS_MO_{tag}{k:03d}"
            files = tuple(f"https://mo-media.provider.example/{tag}/{k}/{n}.jpg" for n in range(1 + k % 2))
            postback = mms_mo(
                from_=sender, to=SHORTCODE, files=files, tracking_id=identifier, at=at, keyword="WIN"
            )
        else:
            identifier = f"{tag}-MO{k:03d}"
            text = "STOP" if k % 4 == 0 else f"reply {k} from {tag}"
            postback = sms_mo(from_=sender, to=SHORTCODE, text=text, transaction_id=identifier, at=at)
        body = render(postback, dialect)
        inbound_items[f"IN#{postback.origin}#{identifier}"] = body
        bodies.append(body)

    for m in range(mobiles):
        dialect = HYPHENATED if m % 2 else V1
        mobile = f"1{number_block:04d}{900 + m:06d}"
        at = BASE_TIME + timedelta(hours=3, minutes=m)
        changes = [True] if m % 3 == 0 else [True, False] if m % 3 == 1 else [False, True]
        own = [
            render(
                subscription(
                    mobile=mobile,
                    campaign_id=CAMPAIGN,
                    subscribed=subscribed,
                    at=at + timedelta(hours=step),
                    shortcode=SHORTCODE,
                    campaign_title=f"Offers {tag}",
                    brand_name="Northwind Outfitters",
                    source="MO" if not subscribed else "WEB",
                ),
                dialect,
            )
            for step, subscribed in enumerate(changes)
        ]
        subscriptions[mobile] = tuple(own)
        bodies += own

    hostile = (
        f'<!DOCTYPE x [<!ENTITY a "{tag}">]><POSTBACK>&a;</POSTBACK>'.encode(),
        f"<RESPONSE><STATUS>Success</STATUS><TRACKINGID>{tag}</TRACKINGID></RESPONSE>".encode(),
    )
    bodies += hostile
    if len(set(bodies)) != len(bodies):
        raise AssertionError("the corpus repeats a body")
    return Corpus(tag, tuple(bodies), reports, report_codes, inbound_items, subscriptions, hostile)


def archive_key(body: bytes, prefix: str = "raw/") -> str:
    return f"{prefix}{hashlib.sha256(body).hexdigest()}.xml"


# ---------------------------------------------------------------------------------------- provider


@dataclass
class Provider:
    """The provider's side: one POST per notification, a non-200 answer retried later (§5.2), at most
    PROVIDER_ATTEMPTS times. `answers[body]` lists every HTTP status that body got, in order."""

    url: str
    workers: int = 6
    retry_pause_s: float = 0.05
    answers: dict[bytes, list[int]] = field(default_factory=dict)

    def post(self, body: bytes) -> int:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("POST", parts.path, body=body, headers={"Content-Type": "text/xml"})
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:  # no answer at all is a failed attempt too
            return 0
        finally:
            connection.close()

    def send(self, bodies: Sequence[bytes], *, attempts: int = PROVIDER_ATTEMPTS) -> list[bytes]:
        """Post every notification in `bodies` (concurrently, in the given order; a body listed twice is two
        notifications), retrying each refused one, `attempts` posts at most; returns those never accepted."""
        pending = list(bodies)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for attempt in range(attempts):
                if attempt:
                    time.sleep(self.retry_pause_s)
                statuses = list(pool.map(self.post, pending))
                for body, status in zip(pending, statuses, strict=True):
                    self.answers.setdefault(body, []).append(status)
                pending = [body for body, status in zip(pending, statuses, strict=True) if status != 200]
                if not pending:
                    break
        return pending

    def accepted(self, body: bytes) -> bool:
        return 200 in self.answers.get(body, ())

    def refusals(self) -> Counter[int]:
        return Counter(s for statuses in self.answers.values() for s in statuses if s != 200)


# ------------------------------------------------------------------------------ consumer write faults


class RuntimeExited(RuntimeError):
    """The function's process died in the middle of an invocation."""


class TaskTimedOut(BaseException):
    """The invocation ran past the function's timeout and the runtime ended it. A BaseException, as no
    `except Exception` in the handler (or in Powertools) can catch the runtime's kill."""


@dataclass
class AwsWriteFaults:
    """AWS faults on the consumer's DynamoDB writes, through botocore's hooks, decided once per API call (a
    call's retries are its attempts; `amz-sdk-request` numbers them):

    - every `fail_every`-th call fails on every attempt, with `errors` in turn, so the client's retries are
      exhausted and the call raises: its records are reported failed and come back through the queue;
    - a `blip_share` of the other calls fails on its first attempt only: the client's retry absorbs it;
    - every `end_every`-th BatchWriteItem writes only the first half of its items, then the invocation
      ends before anything is acknowledged, with `endings` in turn (a crash, the runtime's kill at the
      timeout: the kill is raised where the deadline falls, rather than waited for).

    At most `budget` calls fail or end, fewer than the queue's maxReceiveCount, so that no record is
    redriven to the DLQ by the faults alone (that path is the DLQ's, not this audit's).
    """

    errors: Sequence[tuple[int, str]] = ((400, "ThrottlingException"),)
    fail_every: int = 0
    blip_share: float = 0.0
    end_every: int = 0
    endings: Sequence[type[BaseException]] = (RuntimeExited,)
    budget: int = 4
    seed: int = 0
    calls: int = 0
    failed_calls: Counter[str] = field(default_factory=Counter)
    blips: Counter[str] = field(default_factory=Counter)
    ended: Counter[str] = field(default_factory=Counter)
    half_written: int = 0  # items written by the calls that ended their invocation

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._current = threading.local()  # a call's fate, from building its parameters to its answer
        self._spent = 0

    @contextmanager
    def on(self, clients: Iterable[Any]) -> Iterator[AwsWriteFaults]:
        hooks = [
            ("before-parameter-build.dynamodb.BatchWriteItem", self._decide),
            ("before-parameter-build.dynamodb.PutItem", self._decide),
            ("before-send.dynamodb.BatchWriteItem", self._send),
            ("before-send.dynamodb.PutItem", self._send),
            ("after-call.dynamodb.BatchWriteItem", self._answered),
        ]
        registered = []
        try:
            for client in clients:
                for event, hook in hooks:
                    if hook == self._send:
                        hook = partial(self._send, client)  # its error answer is shaped by the client
                    unique_id = f"postback-audit-{id(self)}-{id(client)}-{event}"
                    client.meta.events.register(event, hook, unique_id=unique_id)
                    registered.append((client, event, unique_id))
            yield self
        finally:
            for client, event, unique_id in registered:
                client.meta.events.unregister(event, unique_id=unique_id)

    def _decide(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls += 1
            number, fate, error = self.calls, None, self.errors[self._spent % len(self.errors)]
            if self._spent < self.budget:
                if self.end_every and model.name == "BatchWriteItem" and number % self.end_every == 0:
                    fate = "end"
                elif self.fail_every and number % self.fail_every == 0:
                    fate = "fail"
                self._spent += fate is not None
            if fate is None and self._rng.random() < self.blip_share:
                fate, error = "blip", self._rng.choice(list(self.errors))
        self._current.fate, self._current.error = fate, error
        if fate == "end":
            (requests,) = params["RequestItems"].values()
            del requests[(len(requests) + 1) // 2 :]
            self._current.written = len(requests)

    def _send(self, client: Any, request: Any, **_: Any) -> AWSResponse | None:
        fate = getattr(self._current, "fate", None)
        header = request.headers.get("amz-sdk-request", b"")
        header = header.decode() if isinstance(header, bytes) else header
        attempt = int(re.search(r"attempt=(\d+)", header)[1]) if "attempt=" in header else 1
        if fate == "fail" or (fate == "blip" and attempt == 1):
            status, code = self._current.error
            with self._lock:
                (self.failed_calls if fate == "fail" else self.blips)[code] += attempt == 1
            return _error_response(client, request, status, code)
        return None

    def _answered(self, **_: Any) -> None:
        if getattr(self._current, "fate", None) == "end":
            self._current.fate = None
            with self._lock:
                ending = self.endings[sum(self.ended.values()) % len(self.endings)]
                self.ended[ending.__name__] += 1
                self.half_written += self._current.written
            raise ending("the invocation ended after part of its batch was written")

    def summary(self) -> dict[str, Any]:
        return {
            "write_calls": self.calls,
            "failed_calls": dict(self.failed_calls),
            "blips": dict(self.blips),
            "ended": dict(self.ended),
            "half_written": self.half_written,
        }


# -------------------------------------------------------------------------------------- expectation

Key = tuple[str, str]


@dataclass(frozen=True)
class Expectation:
    """The fault-free table: each item the corpus makes, and which postback's effect it is."""

    items: dict[Key, dict[str, Any]]
    owners: dict[bytes, set[Key]]  # postback -> the keys of its items
    quarantined: dict[bytes, str]  # hostile postback -> its quarantine reason

    @property
    def partitions(self) -> set[str]:
        return {pk for pk, _ in self.items}


def expectation(corpus: Corpus, *, retention_days: int) -> Expectation:
    received_at = BASE_TIME  # any receipt time: fields that depend on it are left out of comparisons
    items: dict[Key, dict[str, Any]] = {}
    owners: dict[bytes, set[Key]] = {}
    quarantined: dict[bytes, str] = {}
    for body in corpus.bodies:
        sha = hashlib.sha256(body).hexdigest()
        try:
            postback = parse_postback(body, received_at=received_at)
        except PostbackError as error:
            detail = f"{error} ({', '.join(error.detail)})" if error.detail else str(error)  # as the consumer
            rejected = Rejected(sha, sha, archive_key(body), error.reason, detail, received_at)
            plan = plan_batch([], [rejected])
            puts = {(item["pk"], item["sk"]): item for item, _ in plan.quarantine}
            quarantined[body] = error.reason
        else:
            received = Received(sha, postback, archive_key(body), sha, received_at)
            puts = plan_batch([received], retention_days=retention_days).puts
            if postback.timestamp_derived:  # the consumer records an undated postback's first sighting
                seen = {"pk": f"SEEN#{postback.semantic_key}", "sk": "SEEN", "type": "first_seen"}
                puts[(seen["pk"], seen["sk"])] = seen
        clash = set(puts) & set(items)
        if clash:
            raise AssertionError(f"two postbacks of the corpus make the same item: {sorted(clash)[:3]}")
        items.update(puts)
        owners[body] = set(puts)
    return Expectation(items, owners, quarantined)


def comparable(item: dict[str, Any]) -> dict[str, Any]:
    """An item without the fields that record when a copy arrived rather than what happened: the receipt
    time stands in for a missing TIMESTAMP (E101) and dates the expiry of such items, and a quarantine
    record keeps its first sighting. A provider retry legitimately arrives later."""
    kept = dict(item)
    if kept.get("timestamp_derived") or UNDATED in (kept.get("at"), kept.get("time")):
        kept.pop("timestamp_utc", None)
        kept.pop("expires_at", None)
        kept.pop("gsi2sk", None)  # an outbound report's place by time on the OUT#<to> index
    if kept["pk"].startswith("QUARANTINE#"):
        kept.pop("first_seen", None)
        kept.pop("gsi1sk", None)
    if kept["pk"].startswith("SEEN#"):  # an undated postback's first sighting: when, and when to forget it
        kept.pop("first_seen", None)
        kept.pop("expires_at", None)
    return kept


# -------------------------------------------------------------------------------------------- audit


@dataclass
class Audit:
    """What went in against what came out. Lost: accepted, but its bytes or its effect are missing or
    wrong. Duplicated: an item no postback accounts for (a second copy of an event, a second record)."""

    sent: int = 0
    accepted: int = 0
    stored: int = 0
    applied: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # items that differ from the fault-free table
    semantics: list[str] = field(default_factory=list)  # disagreements with the protocol reference's rules
    wrongly_quarantined: list[str] = field(default_factory=list)
    queue_left: int = 0
    dlq_left: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return (
            self.sent == self.accepted == self.stored == self.applied
            and not (self.lost or self.duplicated or self.wrong or self.semantics)
            and not self.wrongly_quarantined
            and self.queue_left == self.dlq_left == 0
        )

    def __str__(self) -> str:
        counts = (
            f"in={self.sent} accepted={self.accepted} stored={self.stored} applied={self.applied} "
            f"lost={len(self.lost)} duplicated={len(self.duplicated)} wrong={len(self.wrong)} "
            f"semantics={len(self.semantics)} wrongly_quarantined={len(self.wrongly_quarantined)} "
            f"queue_left={self.queue_left} dlq_left={self.dlq_left}"
        )
        notes = " ".join(f"{k}={v}" for k, v in self.notes.items())
        details = [
            f"{name}: {values[:5]}"
            for name, values in (
                ("lost", self.lost),
                ("duplicated", self.duplicated),
                ("wrong", self.wrong),
                ("semantics", self.semantics),
                ("wrongly_quarantined", self.wrongly_quarantined),
            )
            if values
        ]
        return "; ".join([counts, notes, *details]).strip("; ")


def _label(body: bytes) -> str:
    found = re.search(
        rb"<(?:TRACKINGID|tracking-id|TRANSACTIONID|transaction-id|MOBILE|mobile)>([^<]*)<", body
    )
    code = re.search(rb"<(?:CODE|code)>([^<]*)<", body)
    what = found[1].decode() if found else hashlib.sha256(body).hexdigest()[:12]
    return f"{what}/{code[1].decode() if code else '?'}"


def queue_depth(sqs: Any, url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, "0")) for name in names)


class TableSnapshot(StateTable):
    """The whole state table, read once (a consistent Scan), answering StateTable's own reads from memory:
    the audit judges one moment, with the project's read model, in a few calls. Each test starts with an
    empty table, so everything in it is the test's doing."""

    def __init__(self, table: StateTable) -> None:
        super().__init__(table.client, table.name)
        pages = table.client.get_paginator("scan").paginate(TableName=table.name, ConsistentRead=True)
        items = [from_dynamo(item) for page in pages for item in page.get("Items", [])]
        self.partitions: dict[str, list[dict[str, Any]]] = {}
        for item in sorted(items, key=lambda i: (i["pk"], i["sk"])):
            self.partitions.setdefault(item["pk"], []).append(item)

    @property
    def keys(self) -> set[Key]:
        return {(item["pk"], item["sk"]) for items in self.partitions.values() for item in items}

    def query(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        index: str | None = None,
        sk_between: tuple[str, str] | None = None,
        forward: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        if index is not None:
            raise NotImplementedError("the snapshot answers base-table reads only")
        items = [
            item
            for item in self.partitions.get(pk, [])
            if (sk_prefix is None or item["sk"].startswith(sk_prefix))
            and (sk_between is None or sk_between[0] <= item["sk"] <= sk_between[1])
        ]
        if not forward:
            items.reverse()
        return iter(items if limit is None else items[:limit])

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return next((item for item in self.partitions.get(pk, []) if item["sk"] == sk), None)

    def items(self, partitions: Iterable[str]) -> dict[Key, dict[str, Any]]:
        return {(i["pk"], i["sk"]): i for pk in partitions for i in self.partitions.get(pk, [])}


def archive_versions(s3: Any, bucket: str, prefix: str = "raw/") -> dict[str, list[dict[str, Any]]]:
    """Every stored version under `prefix` (ETag, Size, IsLatest ...), by key: the archive in a few calls."""
    versions: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            versions.setdefault(version["Key"], []).append(version)
    return versions


def holds(versions: Sequence[dict[str, Any]], body: bytes) -> bool:
    """True if every stored version is exactly `body` (S3's ETag of a single-part put is its MD5)."""
    digest = f'"{hashlib.md5(body).hexdigest()}"'
    return bool(versions) and all(v["ETag"] == digest and v["Size"] == len(body) for v in versions)


def audit(
    corpus: Corpus,
    provider: Provider,
    *,
    table: StateTable,
    s3: Any,
    bucket: str,
    sqs: Any,
    queue_url: str,
    dlq_url: str,
    retention_days: int,
    snapshot: TableSnapshot | None = None,
    alongside: Sequence[Corpus] = (),
) -> Audit:
    """The audit of `corpus` (posted through `provider`). `alongside`: other corpora whose items share the
    table legitimately; any item that neither they nor `corpus` account for counts as duplicated."""
    expected = expectation(corpus, retention_days=retention_days)
    snapshot = snapshot or TableSnapshot(table)
    actual = snapshot.items(expected.partitions)
    archived = archive_versions(s3, bucket)
    result = Audit(sent=len(corpus))
    for body in corpus.bodies:
        label = _label(body)
        if not provider.accepted(body):
            result.lost.append(f"{label}: never answered 200 ({provider.answers.get(body)})")
            continue
        result.accepted += 1
        if holds(archived.get(archive_key(body), []), body):
            result.stored += 1
        else:
            result.lost.append(f"{label}: not in S3 under {archive_key(body)}")
        missing = [key for key in expected.owners[body] if key not in actual]
        differing = [
            key
            for key in expected.owners[body]
            if key in actual and comparable(actual[key]) != comparable(expected.items[key])
        ]
        if missing:
            result.lost.append(f"{label}: no item {missing[0]}")
        result.wrong += [f"{label}: item {key} differs" for key in differing]
        if not missing and not differing:
            result.applied += 1
        sha = hashlib.sha256(body).hexdigest()
        if body not in expected.quarantined and snapshot.get(f"QUARANTINE#{sha}", "Q") is not None:
            result.wrongly_quarantined.append(label)
    accounted = set(expected.items)
    for other in alongside:
        accounted |= set(expectation(other, retention_days=retention_days).items)
    result.duplicated = [f"{pk} {sk}" for pk, sk in sorted(snapshot.keys - accounted)]
    result.semantics = semantic_disagreements(corpus, snapshot)
    result.queue_left = queue_depth(sqs, queue_url)
    result.dlq_left = queue_depth(sqs, dlq_url)
    return result


def semantic_disagreements(corpus: Corpus, table: StateTable) -> list[str]:
    """Where the table disagrees with the protocol reference's own rules for the corpus (independent of the
    planner)."""
    problems: list[str] = []
    for tracking_id, codes in corpus.report_codes.items():
        message = table.message(tracking_id)
        ranked = [STATE_OF_CODE[c] for c in codes if c in STATE_OF_CODE]
        state = max(ranked, key=lambda s: s[1])[0]
        finals = {c for c in codes if c in STATE_OF_CODE and STATE_OF_CODE[c][1] >= 2}
        if message is None:
            problems.append(f"{tracking_id}: no message")
            continue
        seen = (message["state"], len(message["history"]), message["conflict"])
        if seen != (state, len(codes), len(finals) > 1):
            problems.append(f"{tracking_id}: (state, events, conflict) {seen}, expected {state, len(codes)}")
    for key, body in corpus.inbound.items():
        item = table.get(key, "MSG")
        if item is None or item["raw_key"] != archive_key(body):
            problems.append(f"{key}: no inbound record for its body")
        elif item["stop"] != (b">STOP<" in body) or (item["stop"] and not table.suppressed(item["from"])):
            problems.append(f"{key}: STOP not applied as an opt-out")
    for mobile, changes in corpus.subscriptions.items():
        latest = table.current(f"SUB#{mobile}", f"CAMPAIGN#{CAMPAIGN}#")
        last = changes[-1]  # the newest by TIMESTAMP: the corpus lists each number's changes oldest first
        subscribed = b"<CODE>N301<" in last or b"<code>N301<" in last
        if latest is None or latest["subscribed"] != subscribed:
            seen = latest and latest["subscribed"]
            problems.append(f"SUB#{mobile}: subscribed={seen}, expected {subscribed}")
        if table.suppressed(mobile) == subscribed:
            problems.append(f"SUPPRESS#{mobile}: suppressed={not subscribed} expected")
        history = table.history(f"SUB#{mobile}")
        if len(history) != len(changes):
            problems.append(f"SUB#{mobile}: {len(history)} history events for {len(changes)} changes")
    return problems


def shuffled_reports(corpus: Corpus, seed: int) -> list[list[bytes]]:
    """Waves of postbacks: wave n holds each message's n-th report in a seeded random order per message
    (and each number's n-th SUB change, shuffled the same way); MO and hostile bodies come in wave 0."""
    rng = random.Random(seed)
    return _waves(corpus, lambda reports: rng.sample(list(reports), len(reports)))


def ordered_reports(corpus: Corpus) -> list[list[bytes]]:
    """The same waves in the provider's order."""
    return _waves(corpus, list)


def _waves(corpus: Corpus, order: Callable[[Sequence[bytes]], list[bytes]]) -> list[list[bytes]]:
    waves: list[list[bytes]] = [[*corpus.inbound.values(), *corpus.hostile]]
    for sequence in [*corpus.reports.values(), *corpus.subscriptions.values()]:
        for position, body in enumerate(order(sequence)):
            while len(waves) <= position:
                waves.append([])
            waves[position].append(body)
    return waves


def message_views(table: StateTable, corpus: Corpus) -> dict[str, str]:
    """Each message's state, facts and history with its TRACKINGID taken out: comparable across twins
    (corpora built alike under different tags)."""
    views = {}
    for tracking_id in corpus.report_codes:
        message = table.message(tracking_id) or {}
        # Raw keys and recipients differ between twins by construction (other bytes, other numbers).
        facts = {k: v for k, v in message.items() if k not in ("history", "state_raw_key", "to")}
        history = [
            (e["code"], e["timestamp_raw"], e["state"], e["failure_reason"], e["via_link"], e["dialect"])
            for e in message.get("history", [])
        ]
        view = repr((sorted(facts.items()), history)).replace(corpus.tag, "<tag>")
        views[tracking_id.replace(corpus.tag, "<tag>")] = view
    return views


def apply_in_waves(waves: Sequence[Sequence[bytes]], *, table: StateTable, retention_days: int) -> None:
    """The consumer's own apply (`consume`) of each wave in turn, without ingest or queue: a reference run
    whose arrival order is exactly the waves' order."""
    for wave in waves:
        records = [
            {
                "messageId": hashlib.sha256(body).hexdigest(),
                "body": envelope.encode(
                    key=archive_key(body),
                    sha256=hashlib.sha256(body).hexdigest(),
                    body=body,
                    received_at=BASE_TIME,
                    source_ip="127.0.0.1",
                    request_id="reference",
                ),
            }
            for body in wave
        ]
        outcome = consume(records, table=table, fetch=_never_fetched, retention_days=retention_days)
        if outcome.failed:
            raise AssertionError(f"the reference run failed to apply {len(outcome.failed)} records")


def _never_fetched(key: str) -> bytes:
    raise AssertionError(f"an inline body was fetched from {key}")
