"""`ProviderSimulator`: the provider's API and postback sender for one account, on loopback.

The simulated account has one API key, one postback URL (plus an optional MO URL), one throughput limit and
one postback queue. Everything it does is in its audit log (`log()`, `GET /_sim/log`).
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from local.simulator import postbacks as documents
from local.simulator.audit import Audit
from local.simulator.delivery import PostbackQueue
from local.simulator.handler import Answer, SimulatorHandler
from local.simulator.postbacks import Message, Postback, PostbackSettings
from local.simulator.protocol import (
    SEND_ACTIONS,
    Accepted,
    ApiError,
    Request,
    TemplateState,
    action_of,
    canonical_action,
    check_credentials,
    check_elements,
    echoed_to,
    failure_response,
    parse_document,
    read_request,
    success_response,
    validate,
)
from local.simulator.provider_faults import ProviderFault, ProviderFaultPlan, e113_storm
from local.simulator.throughput import MinimumInterval, RequestQuota, SlidingWindowLimiter
from mmsbridge.sending.provider_xml import normalise_name
from mmsbridge.sending.request import Action

__all__ = ["DEFAULT_API_PATH", "ProviderSimulator"]

DEFAULT_API_PATH: Final = "/API/wxml/1.3/"
XML_TYPE: Final = "text/xml; charset=utf-8"
UNKNOWN_ACTION: Final = "(unknown)"


@dataclass(frozen=True)
class _Template:
    ready_at: float  # the simulator's clock at which encoding ends
    outcome: str  # N003 (ready), E002/E003 (broken)
    slides: int | None = None  # None: not known (a template the account had before), 1-8 allowed


@dataclass(frozen=True)
class _Outcome:
    """What processing a call produced (before any fault replaces the answer)."""

    body: bytes
    error_code: str | None = None
    tracking_id: str | None = None
    mms_id: str | None = None
    send_key: tuple[str, str] | None = None  # (TO, content digest) of an accepted send


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent clients must queue, not be reset (default: 5)


def _retry_after(fault: ProviderFault) -> tuple[tuple[str, str], ...]:
    return () if fault.retry_after_s is None else (("Retry-After", str(fault.retry_after_s)),)


def _html_error(status: int) -> bytes:
    title = f"{status} {HTTPStatus(status).phrase}"
    return (
        f"<html>\n<head><title>{title}</title></head>\n<body>\n<center><h1>{title}</h1></center>\n"
        "<hr><center>nginx</center>\n</body>\n</html>\n"
    ).encode()


class ProviderSimulator:
    """The Skycore v1 API for one account. See the package docstring for the HTTP control API."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str,
        postback_url: str | None = None,
        mo_postback_url: str | None = None,
        throughput_per_s: int | None = None,
        throughput_per_action: bool = False,
        min_interval_s: float | None = None,
        request_quota: int | None = None,
        postbacks: PostbackSettings | None = None,
        faults: Iterable[ProviderFault] = (),
        seed: int | None = None,
        api_path: str = DEFAULT_API_PATH,
        senders: Iterable[str] | None = None,
        templates: Iterable[str] = (),
        campaign_check: bool = False,
        first_id: int | None = None,
        log_limit: int = 100_000,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self._api_key = api_key
        self._api_path = "/" + api_path.strip("/") + "/" if api_path.strip("/") else "/"
        self.postback_url = postback_url
        self.mo_postback_url = mo_postback_url
        self._settings = postbacks or PostbackSettings()
        self._senders = frozenset(senders) if senders is not None else None
        self._campaign_check = campaign_check
        self._preloaded = tuple(templates)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Random start: ids stay fresh across simulator restarts against a long-lived state table.
        self._numbers = itertools.count(
            first_id if first_id is not None else 10**8 + secrets.randbelow(8 * 10**8)
        )
        self._templates: dict[str, _Template] = {}
        self._load_templates()
        # The simulator's own time (throughput window, minimum interval, fault durations, template encoding,
        # postback due times): monotonic seconds; a test may pass a clock it moves itself.
        self._clock = clock
        self._limiter = SlidingWindowLimiter(throughput_per_s, per_action=throughput_per_action, clock=clock)
        self._interval = MinimumInterval(min_interval_s, clock=clock)
        self._quota = RequestQuota(request_quota)
        self._pacing_lock = threading.Lock()  # the three limits admit a call together or not at all
        self._faults = ProviderFaultPlan(list(faults), seed=seed, clock=clock)
        self._audit = Audit(secret=api_key, limit=log_limit)
        self._queue = PostbackQueue(
            audit=self._audit, settings=lambda: self._settings, stopping=self._stopping, clock=clock
        )
        self._server = _Server((host, port), SimulatorHandler.bound_to(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> ProviderSimulator:
        self._queue.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="simulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and sending; returns promptly (a postback in flight is abandoned after 5 s)."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        self._queue.stop()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_path(self) -> str:
        return self._api_path

    @property
    def api_url(self) -> str:
        """Where clients POST requests (the account's API URL)."""
        return self.base_url + self._api_path

    def is_api_path(self, path: str) -> bool:
        return path in (self._api_path, self._api_path + "index.php")

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def postback_settings(self) -> PostbackSettings:
        return self._settings

    def configure_postbacks(self, **changes: Any) -> PostbackSettings:
        """Change postback behaviour at runtime (fields of PostbackSettings); validated before applied."""
        self._settings = replace(self._settings, **changes)
        return self._settings

    @property
    def throughput_per_s(self) -> int | None:
        return self._limiter.limit

    @throughput_per_s.setter
    def throughput_per_s(self, limit: int | None) -> None:
        self._limiter.limit = limit

    @property
    def min_interval_s(self) -> float | None:
        """Seconds that must pass between two admitted calls (E106 otherwise); None: no minimum."""
        return self._interval.interval_s

    @min_interval_s.setter
    def min_interval_s(self, seconds: float | None) -> None:
        with self._pacing_lock:
            self._interval.interval_s = seconds

    @property
    def request_quota(self) -> int | None:
        """Admitted calls the account may make (E120 afterwards); setting it starts a new quota period."""
        return self._quota.limit

    @request_quota.setter
    def request_quota(self, limit: int | None) -> None:
        with self._pacing_lock:
            self._quota.limit = limit

    def add_fault(self, fault: ProviderFault | None = None, /, **fields: Any) -> ProviderFault:
        """Add a fault (a ProviderFault, or its fields as keywords: `add_fault(kind="drop", count=1)`)."""
        fault = fault if fault is not None else ProviderFault(**fields)
        self._faults.add(fault)
        return fault

    def e113_storm(self, seconds: float) -> ProviderFault:
        """Answer every call with E113 for `seconds`."""
        return self.add_fault(e113_storm(seconds))

    def clear_faults(self) -> None:
        self._faults.clear()

    def reseed_faults(self, seed: int | None) -> None:
        self._faults.reseed(seed)

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def add_template(
        self, mms_id: str, *, ready_in_s: float = 0.0, outcome: str = "N003", slides: int | None = None
    ) -> None:
        """Know template `mms_id` (ready now, or after `ready_in_s`), as if saved earlier. No postback.
        `slides`: how many it has, which bounds CUSTOMTEXT's SLIDE (None: 1-8)."""
        if not mms_id.isdigit() or outcome not in documents.TEMPLATE_OUTCOMES:
            raise ValueError("mms_id must be digits and outcome one of N003, E002, E003")
        if slides is not None and (
            isinstance(slides, bool) or not isinstance(slides, int) or not 1 <= slides <= 8
        ):
            raise ValueError("slides must be 1-8 or None")
        with self._lock:
            self._templates[mms_id] = _Template(self._clock() + ready_in_s, outcome, slides)

    def template_state(self, mms_id: str) -> str | None:
        """ENCODING, READY, BROKEN, or None for a template the account does not have."""
        with self._lock:
            template = self._templates.get(mms_id)
        if template is None:
            return None
        if self._clock() < template.ready_at:
            return TemplateState.ENCODING
        return TemplateState.READY if template.outcome == "N003" else TemplateState.BROKEN

    def template_slides(self, mms_id: str) -> int | None:
        """How many slides template `mms_id` has, when the simulator knows (saved through it, or told)."""
        with self._lock:
            template = self._templates.get(mms_id)
        return template.slides if template is not None else None

    def _load_templates(self) -> None:
        with self._lock:
            self._templates = {mms_id: _Template(0.0, "N003") for mms_id in self._preloaded}

    # -- observation --------------------------------------------------------------------------------------
    def log(self, since: int = 0) -> list[dict[str, Any]]:
        """Audit entries after sequence number `since` (API calls and postback attempts), oldest first."""
        return self._audit.entries(since)

    def stats(self) -> dict[str, Any]:
        stats = self._audit.stats()
        stats["postbacks"]["pending"] = self._queue.pending()
        with self._lock:
            stats["templates"] = len(self._templates)
        stats["throughput_per_s"] = self._limiter.limit
        with self._pacing_lock:
            stats["min_interval_s"] = self._interval.interval_s
            stats["request_quota"] = self._quota.limit
            stats["quota_used"] = self._quota.used
        return stats

    def wait_for_postbacks(self, timeout_s: float = 5.0) -> bool:
        """Wait until no postback is queued, due for a retry, or in flight."""
        return self._queue.wait_idle(timeout_s)

    def reset(self) -> None:
        """Forget calls, statistics, faults, throughput window, minimum-interval mark, quota use, queued
        postbacks and saved templates (the constructor's `templates` come back). Configuration and the id
        sequence are kept."""
        self._faults.clear()
        self._limiter.reset()
        with self._pacing_lock:
            self._interval.reset()
            self._quota.reset()
        self._queue.clear()
        self._load_templates()
        self._audit.reset()

    # -- the control API ----------------------------------------------------------------------------------
    def control(self, method: str, route: str, raw_path: str, payload: Any) -> tuple[int, object]:
        """One `/_sim/<route>` call (`raw_path` for its query, `payload` its JSON body): (HTTP status, JSON
        result). Raises ValueError (or TypeError) for a request it cannot carry out."""
        return _control(self, method, route, raw_path, payload)

    # -- the API ------------------------------------------------------------------------------------------
    def handle_api_call(self, body: bytes | None, content_type: str, client: str) -> Answer:
        """One POST to the API URL: parse, pick a fault, process, record. `body` None: unreadable."""
        request: Request | None = None
        read_error: ApiError | None = None
        try:
            if body is None:
                raise ApiError("E100", "Request too large or without a Content-Length.")
            request = read_request(body, content_type)
        except ApiError as error:
            read_error = error
        action = canonical_action(request.value("ACTION")) if request is not None else None
        fault = self._faults.pick(action)
        processed = fault is None or fault.accept or fault.kind == "delay"
        outcome = self._process(request, read_error) if processed else None
        if fault is None or fault.kind == "delay":
            assert outcome is not None
            headers = _retry_after(fault) if fault else ()
            answer = Answer(
                200, outcome.body, XML_TYPE, delay_s=fault.delay_s if fault else 0.0, headers=headers
            )
            label = outcome.error_code or "Success"
        else:
            answer, label = self._fault_answer(fault, request)
        self._record_call(request, action, client, outcome, answer, label, fault)
        return answer

    def _process(self, request: Request | None, read_error: ApiError | None) -> _Outcome:
        if request is None:
            assert read_error is not None
            return _Outcome(failure_response(read_error), error_code=read_error.code)
        try:
            check_credentials(request, self._api_key)
            action = action_of(request)
            check_elements(request, action)
            refused = self._admit(action)
            if refused is not None:
                raise ApiError(refused)
            accepted = validate(
                request,
                action,
                template_state=self.template_state,
                template_slides=self.template_slides,
                senders=self._senders,
                campaign_check=self._campaign_check,
            )
        except ApiError as error:
            return _Outcome(failure_response(error, to=echoed_to(request, error.code)), error_code=error.code)
        return self._accept(request, accepted)

    def _admit(self, action: Action) -> str | None:
        """The pacing code refusing this call (E120 quota, E106 interval, E113 throughput), or None (counted
        against all three). A refused call uses up none of them."""
        with self._pacing_lock:
            if not self._quota.available():
                return "E120"
            if not self._interval.ready():
                return "E106"
            if not self._limiter.admit(action.value):
                return "E113"
            self._interval.record()
            self._quota.record()
        return None

    def _fault_answer(self, fault: ProviderFault, request: Request | None) -> tuple[Answer, str]:
        headers = _retry_after(fault)
        if fault.kind == "http_error":
            body = _html_error(fault.status)
            return Answer(fault.status, body, "text/html", headers=headers), f"http_{fault.status}"
        if fault.kind == "drop":
            return Answer(0, b"", "", drop=True), "dropped"
        if fault.kind == "malformed":
            return Answer(200, fault.body.encode(), XML_TYPE, headers=headers), "malformed"
        body = failure_response(ApiError(fault.code), to=echoed_to(request, fault.code))
        return Answer(200, body, XML_TYPE, headers=headers), fault.code

    def _record_call(
        self,
        request: Request | None,
        action: Action | None,
        client: str,
        outcome: _Outcome | None,
        answer: Answer,
        label: str,
        fault: ProviderFault | None,
    ) -> None:
        if action is not None:
            action_name: str | None = action.value
        elif request is not None and request.value("ACTION") is not None:
            action_name = UNKNOWN_ACTION
        else:
            action_name = None
        accepted = outcome is not None and outcome.error_code is None
        entry = {
            "client": client,
            "action": action_name,
            "to": request.value("TO") if request is not None else None,
            "fields": request.fields() if request is not None else None,
            "processed": outcome is not None,
            "accepted": accepted,
            "error_code": outcome.error_code if outcome else None,
            "tracking_id": outcome.tracking_id if outcome else None,
            "mms_id": outcome.mms_id if outcome else None,
            "answer": label,
            "http_status": None if answer.drop else answer.status,
            "fault": fault.label() if fault else None,
        }
        self._audit.api_call(entry, send_key=outcome.send_key if outcome else None)

    def record_refused(self, method: str, client: str) -> None:
        """A non-POST call to the API URL (refused with 405; its query string is never recorded)."""
        entry = {
            "client": client,
            "action": None,
            "method": method,
            "to": None,
            "fields": None,
            "processed": False,
            "accepted": False,
            "error_code": "E100",
            "answer": "http_405",
            "http_status": 405,
            "fault": None,
        }
        self._audit.api_call(entry)

    # -- accepting ----------------------------------------------------------------------------------------
    def _next_number(self) -> int:
        with self._lock:
            return next(self._numbers)

    def _accept(self, request: Request, accepted: Accepted) -> _Outcome:
        number = self._next_number()
        action = accepted.action
        if action is Action.SAVE_MMS:
            mms_id = str(number)
            self._save_template(mms_id, accepted)
            return _Outcome(success_response(action, mms_id=mms_id), mms_id=mms_id)
        assert action in SEND_ACTIONS
        assert accepted.to is not None
        assert accepted.from_ is not None
        prefix = "SMS" if action is Action.SEND_SMS else "MMS"
        tracking_id = base64.b64encode(f"{prefix}_{number}".encode()).decode()
        mms_id = accepted.mms_id if action is Action.SEND_SAVED_MMS else None
        if action is Action.SEND_MMS:
            mms_id = str(number)
        message = Message(
            action, tracking_id, accepted.to, accepted.from_, number, mms_id, accepted.operator_id
        )
        self._schedule_delivery(message)
        body = success_response(
            action, to=accepted.to, from_=accepted.from_, mms_id=mms_id, tracking_id=tracking_id
        )
        return _Outcome(
            body, tracking_id=tracking_id, mms_id=mms_id, send_key=(accepted.to, request.content_key(action))
        )

    def _save_template(self, mms_id: str, accepted: Accepted) -> None:
        settings = self._settings
        with self._lock:
            self._templates[mms_id] = _Template(
                self._clock() + settings.template_delay_s, settings.template_outcome, accepted.slides
            )
        result = documents.template_result(
            mms_id, settings.template_outcome, audio_url=accepted.audio_url, video_url=accepted.video_url
        )
        self._enqueue(result, delay_s=settings.template_delay_s)

    def _schedule_delivery(self, message: Message) -> None:
        settings = self._settings
        outcome = settings.outcome_for(message.action, message.to)
        now = datetime.now(UTC)
        for offset, code in documents.delivery_steps(message, settings):
            # Timestamps tell when the event happened, even when its postback is sent late or out of order.
            at = now + timedelta(seconds=documents.event_offset(code, settings))
            postback = documents.delivery_postback(
                message, code, at, outcome=outcome, status_text=settings.status_text
            )
            self._enqueue(postback, delay_s=offset)

    def _enqueue(self, postback: Postback, *, delay_s: float) -> int | None:
        """Queue `postback` for the account's URL; None if there is no URL or the queue is full."""
        url = (self.mo_postback_url or self.postback_url) if postback.inbound else self.postback_url
        if url is None:
            return None
        settings = self._settings
        body = documents.render(postback, settings.dialect)
        return self._queue.put(
            postback, body, url=url, due=self._clock() + delay_s, copies=settings.duplicates
        )

    # -- inbound and raw postbacks ------------------------------------------------------------------------
    def _inject(self, postback: Postback) -> dict[str, Any]:
        if (self.mo_postback_url or self.postback_url) is None:
            raise RuntimeError("no postback URL is configured")
        delivery_id = self._enqueue(postback, delay_s=0.0)
        return {
            "origin": postback.origin,
            "code": postback.code,
            "delivery_id": delivery_id,
            "fields": {
                name: value if isinstance(value, str) else list(value) for name, value in postback.fields
            },
        }

    def inject_sms_mo(
        self, *, from_: str, to: str, text: str, transaction_id: str | None = None
    ) -> dict[str, Any]:
        """Send SMS_MO N211 (an inbound SMS) now. Returns what was queued, with the TRANSACTIONID."""
        number = self._next_number()
        transaction_id = transaction_id or f"7K2QD-{number % 100000:05d}-SIM{number % 1000:03d}"
        return self._inject(
            documents.sms_mo(
                from_=from_, to=to, text=text, transaction_id=transaction_id, at=datetime.now(UTC)
            )
        )

    def inject_mms_mo(
        self,
        *,
        from_: str,
        to: str,
        files: Iterable[str],
        keyword: str = "",
        subject: str = "",
        tracking_id: str | None = None,
    ) -> dict[str, Any]:
        """Send MMS_MO N401 (an inbound MMS with `files` as CONTENT/FILE URLs) now."""
        tracking_id = tracking_id or f"MMS_MO_{self._next_number():x}"
        postback = documents.mms_mo(
            from_=from_,
            to=to,
            files=tuple(files),
            tracking_id=tracking_id,
            at=datetime.now(UTC),
            keyword=keyword,
            subject=subject,
        )
        return self._inject(postback)

    def inject_subscription(
        self,
        *,
        mobile: str,
        campaign_id: str,
        subscribed: bool = True,
        shortcode: str = "",
        source: str = "MO",
    ) -> dict[str, Any]:
        """Send SUB N301 (subscribed) or N302 (unsubscribed) now."""
        postback = documents.subscription(
            mobile=mobile,
            campaign_id=campaign_id,
            subscribed=subscribed,
            at=datetime.now(UTC),
            shortcode=shortcode,
            campaign_title="Simulated campaign",
            brand_name="Simulated brand",
            source=source,
        )
        return self._inject(postback)

    def inject_postback(self, body: bytes) -> dict[str, Any]:
        """Send `body` as it is (a sample file, a hostile document) through the postback queue now."""
        if self.postback_url is None:
            raise RuntimeError("no postback URL is configured")
        postback = _describe_raw(body)
        delivery_id = self._queue.put(
            postback, body, url=self.postback_url, due=self._clock(), copies=self._settings.duplicates
        )
        return {"origin": postback.origin, "code": postback.code, "delivery_id": delivery_id}


def _describe_raw(body: bytes) -> Postback:
    """ORIGIN, CODE and TRACKINGID/MMSID of a raw body for the log, as far as it can be read."""
    try:
        root = parse_document(body)
    except ApiError:
        return Postback("RAW", "RAW")
    found = {
        normalise_name(child.tag): (child.text or "").strip() for child in root if isinstance(child.tag, str)
    }
    fields = tuple((name, found[name]) for name in ("TRACKINGID", "MMSID") if name in found)
    return Postback(found.get("ORIGIN") or "RAW", found.get("CODE") or "RAW", fields)


# ---------------------------------------------------------------------------------------- control API
# `ProviderSimulator.control`: the JSON routes under /_sim/ (the package docstring lists them).

_INBOUND_KINDS: Final = ("sms_mo", "mms_mo", "subscribe", "unsubscribe", "raw")


class ControlError(ValueError):
    """A control request the simulator cannot carry out: HTTP 400 with the message."""


def _control(
    simulator: ProviderSimulator, method: str, route: str, raw_path: str, payload: Any
) -> tuple[int, object]:
    """One `/_sim/<route>` call: (HTTP status, JSON result)."""
    query = parse_qs(urlsplit(raw_path).query)
    match method, route.strip("/"):
        case "GET", "health":
            return 200, {"ok": True, "api_url": simulator.api_url}
        case "GET", "log":
            since = int(query.get("since", ["0"])[0])
            entries = simulator.log(since)
            return 200, {"entries": entries, "last_seq": entries[-1]["seq"] if entries else since}
        case "GET", "stats":
            return 200, simulator.stats()
        case "GET", "faults":
            return 200, {"faults": simulator.faults()}
        case "POST", "faults":
            return 200, {"faults": _set_faults(simulator, payload)}
        case "DELETE", "faults":
            simulator.clear_faults()
            return 200, {"faults": []}
        case "POST", "reset":
            simulator.reset()
            return 200, {"ok": True}
        case "GET", "config":
            return 200, _config(simulator)
        case "POST", "config":
            _configure(simulator, payload)
            return 200, _config(simulator)
        case "POST", "inbound":
            return 200, _inbound(simulator, payload)
        case "POST", "templates":
            _object(payload)
            simulator.add_template(
                str(payload.get("mms_id", "")),
                ready_in_s=float(payload.get("ready_in_s", 0.0)),
                outcome=payload.get("outcome", "N003"),
                slides=payload.get("slides"),
            )
            return 200, {
                "mms_id": str(payload["mms_id"]),
                "state": simulator.template_state(str(payload["mms_id"])),
            }
    return 404, {"error": f"no control route {method} /_sim/{route}"}


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ControlError("the body must be a JSON object")
    return payload


def _set_faults(simulator: ProviderSimulator, payload: Any) -> list[dict[str, Any]]:
    """Body: one fault object, or {"faults": [...], "clear": bool, "seed": int}."""
    payload = _object(payload)
    if "kind" in payload:
        payload = {"faults": [payload]}
    # All valid before any is applied.
    faults = [ProviderFault.from_json(item) for item in payload.get("faults", [])]
    if payload.get("clear"):
        simulator.clear_faults()
    if "seed" in payload:
        simulator.reseed_faults(payload["seed"])
    for fault in faults:
        simulator.add_fault(fault)
    return simulator.faults()


def _config(simulator: ProviderSimulator) -> dict[str, Any]:
    return {
        "api_url": simulator.api_url,
        "postback_url": simulator.postback_url,
        "mo_postback_url": simulator.mo_postback_url,
        "throughput_per_s": simulator.throughput_per_s,
        "min_interval_s": simulator.min_interval_s,
        "request_quota": simulator.request_quota,
        "postbacks": asdict(simulator.postback_settings),
    }


def _configure(simulator: ProviderSimulator, payload: Any) -> None:
    payload = _object(payload)
    unknown = set(payload) - {
        "postback_url",
        "mo_postback_url",
        "throughput_per_s",
        "min_interval_s",
        "request_quota",
        "postbacks",
    }
    if unknown:
        raise ControlError(f"unknown config fields: {sorted(unknown)}")
    if "postbacks" in payload:
        simulator.configure_postbacks(**_object(payload["postbacks"]))
    if "throughput_per_s" in payload:
        simulator.throughput_per_s = payload["throughput_per_s"]
    if "min_interval_s" in payload:
        simulator.min_interval_s = payload["min_interval_s"]
    if "request_quota" in payload:
        simulator.request_quota = payload["request_quota"]
    if "postback_url" in payload:
        simulator.postback_url = payload["postback_url"]
    if "mo_postback_url" in payload:
        simulator.mo_postback_url = payload["mo_postback_url"]


def _inbound(simulator: ProviderSimulator, payload: Any) -> dict[str, Any]:
    """Body: {"kind": "sms_mo" | "mms_mo" | "subscribe" | "unsubscribe" | "raw", ...fields}."""
    payload = dict(_object(payload))
    kind = payload.pop("kind", None)
    if kind not in _INBOUND_KINDS:
        raise ControlError(f"kind must be one of {_INBOUND_KINDS}")
    if "from" in payload:
        payload["from_"] = payload.pop("from")
    if kind == "sms_mo":
        return simulator.inject_sms_mo(**payload)
    if kind == "mms_mo":
        return simulator.inject_mms_mo(**payload)
    if kind == "raw":
        return simulator.inject_postback(str(payload.get("body", "")).encode("utf-8"))
    return simulator.inject_subscription(**payload, subscribed=kind == "subscribe")
