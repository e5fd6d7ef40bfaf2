"""Provider faults: what the simulated API injects into its answers, chosen per call, deterministic with a
seed. (Failures of AWS calls are another thing, AWS faults: local/aws_faults.py.)

A `ProviderFault` has a kind and a selection: a share of calls (`rate`), the next `count` matching calls, a
time window (`duration_s` from when it is added), optionally only some actions. The first active fault that
fires answers the call. Kinds:

| kind | the client sees |
|---|---|
| `http_error` | HTTP `status` (500 by default) with an HTML body, no XML: a proxy in front of the API |
| `delay` | the normal answer, `delay_s` late (processed first: a timed-out client cannot know) |
| `drop` | the connection closed without an answer |
| `malformed` | HTTP 200 with `body` (truncated XML by default) |
| `answer` | HTTP 200 with an API failure `code` (E503, E113, E106, E120, E104, E626, E112, ...) |

With `accept=True` the call is processed as usual first (a send is accepted and its postbacks follow), and
only the answer is replaced: the "provider accepted it but the client never learned" case (a proxy's 408
after the API read the request). `retry_after_s` adds a `Retry-After: <seconds>` header to the answer (a
proxy's 429 says when calls may resume: `ProviderFault("http_error", status=429, retry_after_s=7)`).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from mmsbridge.sending.request import Action

__all__ = ["KINDS", "ProviderFault", "ProviderFaultPlan", "e113_storm"]

KINDS: Final = ("http_error", "delay", "drop", "malformed", "answer")
DEFAULT_MALFORMED: Final = '<?xml version="1.0"?>\n<RESPONSE>\n    <STATUS>Succ'
_CODE: Final = re.compile(r"E[0-9]{3}")
_ACTIONS: Final = {action.value for action in Action}


@dataclass(frozen=True)
class ProviderFault:
    kind: str
    rate: float = 1.0
    count: int | None = None
    duration_s: float | None = None
    actions: tuple[str, ...] = ()  # canonical action names; empty means every call, parsable or not
    status: int = 500
    delay_s: float = 5.0
    code: str = "E503"
    body: str = DEFAULT_MALFORMED
    accept: bool = False
    retry_after_s: int | None = None  # whole seconds, the Retry-After header's delay-seconds form

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            problems.append("rate must be between 0 and 1")
        if self.count is not None and self.count < 1:
            problems.append("count must be >= 1")
        if self.duration_s is not None and self.duration_s <= 0:
            problems.append("duration_s must be > 0")
        if not set(self.actions) <= _ACTIONS:
            problems.append(f"actions must be among {sorted(_ACTIONS)}")
        if not 400 <= self.status <= 599:
            problems.append("status must be 400-599")
        if not 0 <= self.delay_s <= 600:
            problems.append("delay_s must be 0-600")
        if not _CODE.fullmatch(self.code):
            problems.append("code must look like E503")
        if self.retry_after_s is not None and (
            isinstance(self.retry_after_s, bool)
            or not isinstance(self.retry_after_s, int)
            or not 0 <= self.retry_after_s <= 86400
        ):
            problems.append("retry_after_s must be whole seconds 0-86400")
        if self.retry_after_s is not None and self.kind == "drop":
            problems.append("a drop has no answer to carry retry_after_s")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_json(cls, data: object) -> ProviderFault:
        """A ProviderFault from a JSON object with the same field names. Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {item.name for item in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(f"unknown fault fields: {unknown}")
        values = dict(data)
        if "actions" in values:
            values["actions"] = tuple(values["actions"])
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(str(error)) from None

    def label(self) -> str:
        """How the audit log names this fault: `http_error:503`, `answer:E113`, `drop`, ..."""
        detail = {"http_error": str(self.status), "answer": self.code, "delay": f"{self.delay_s:g}s"}
        return f"{self.kind}:{detail[self.kind]}" if self.kind in detail else self.kind


def e113_storm(seconds: float) -> ProviderFault:
    """Every call answered E113 for `seconds`."""
    return ProviderFault("answer", code="E113", duration_s=seconds)


@dataclass
class _Active:
    fault: ProviderFault
    remaining: int | None
    expires_at: float | None


class ProviderFaultPlan:
    """The active faults, in the order they were added. Thread-safe."""

    def __init__(
        self,
        faults: tuple[ProviderFault, ...] | list[ProviderFault] = (),
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock  # durations run on it
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - fault placement, not security  # nosec B311
        self._active: list[_Active] = []
        for fault in faults:
            self.add(fault)

    def add(self, fault: ProviderFault) -> None:
        expires_at = self._clock() + fault.duration_s if fault.duration_s is not None else None
        with self._lock:
            self._active.append(_Active(fault, fault.count, expires_at))

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._random = random.Random(seed)  # noqa: S311 - fault placement, not security  # nosec B311

    def pick(self, action: Action | None) -> ProviderFault | None:
        """The fault that answers this call, if any (counting it against its `count`)."""
        now = self._clock()
        with self._lock:
            self._active = [item for item in self._active if item.expires_at is None or item.expires_at > now]
            for item in self._active:
                if item.fault.actions and (action is None or action.value not in item.fault.actions):
                    continue
                if item.fault.rate < 1.0 and self._random.random() >= item.fault.rate:
                    continue
                if item.remaining is not None:
                    item.remaining -= 1
                    if item.remaining == 0:
                        self._active.remove(item)
                return item.fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The active faults as JSON, with what is left of their count and time."""
        now = self._clock()
        with self._lock:
            return [
                {
                    **asdict(item.fault),
                    "remaining": item.remaining,
                    "expires_in_s": None if item.expires_at is None else round(item.expires_at - now, 3),
                }
                for item in self._active
                if item.expires_at is None or item.expires_at > now
            ]
