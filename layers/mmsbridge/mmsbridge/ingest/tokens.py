"""The postback URL's token: read from its Secrets Manager secret, cached per container, compared in constant
time, the current and the previous value accepted while a rotation is under way.

The secret's string is a JSON document: ``{"current": "<token>"}``, plus ``"previous": "<token>"`` during a
rotation (docs/deploying.md, The postback token). Each token is 16 to 128 characters of
``A-Z a-z 0-9 _ -``, so that it travels in a URL path as it is (the stack generates 48 letters and digits; 16
admits a token of the former PostbackToken parameter as the previous one while a deployment moves to the
secret).

Reads are bounded whatever arrives: the document is read on first use, again once it is ``max_age_s`` old (so
a dropped previous token stops being accepted), and again when a token does not match a copy at least
``recheck_s`` old (so a container that cached the document before a rotation accepts the new token). No
more than one read per ``recheck_s`` per container, however many wrong tokens are posted. A read that fails
keeps the copy already held; without one, the token cannot be checked (:class:`TokenUnavailable`).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections.abc import Callable

DEFAULT_MAX_AGE_S = 300.0
DEFAULT_RECHECK_S = 10.0
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
CURRENT = "current"
PREVIOUS = "previous"


class TokenUnavailable(RuntimeError):
    """The token cannot be checked: the secret was never read, or holds no usable document. Its message
    never holds the secret's value."""


def parse_document(secret_string: str) -> tuple[bytes, ...]:
    """The tokens a secret's string accepts, the current one first. TokenUnavailable if it is not a document
    of the documented shape (the message says what is wrong, never the value)."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise TokenUnavailable("the secret is not a JSON document") from None
    if not isinstance(document, dict):
        raise TokenUnavailable("the secret is not a JSON object")
    tokens = [_token(document.get(CURRENT), CURRENT, required=True)]
    previous = _token(document.get(PREVIOUS), PREVIOUS, required=False)
    if previous is not None:
        tokens.append(previous)
    return tuple(token for token in tokens if token is not None)


def _token(value: object, key: str, *, required: bool) -> bytes | None:
    if value is None or value == "":
        if required:
            raise TokenUnavailable(f'the secret has no "{key}" token')
        return None
    if not isinstance(value, str) or not TOKEN_PATTERN.fullmatch(value):
        raise TokenUnavailable(f'the secret\'s "{key}" is not 16-128 characters of A-Z a-z 0-9 _ -')
    return value.encode()


class PostbackTokens:
    """The accepted tokens of one container, read through `read` (the secret's string) as the module
    docstring describes. Safe to share between threads; one read at a time."""

    def __init__(
        self,
        read: Callable[[], str],
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        recheck_s: float = DEFAULT_RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if max_age_s < recheck_s or recheck_s < 0:
            raise ValueError("0 <= recheck_s <= max_age_s")
        self._read = read
        self._max_age_s = max_age_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._on_error = on_error
        self._lock = threading.Lock()
        self._tokens: tuple[bytes, ...] | None = None
        self._read_at: float | None = None  # last successful read
        self._attempted_at: float | None = None  # last read, successful or not
        self.reads = 0  # GetSecretValue calls made (for tests and benchmarks)

    def accepts(self, given: str) -> bool:
        """Whether `given` is the current or the previous token. TokenUnavailable if no usable document
        has been read (and none may be read yet)."""
        candidate = given.encode()
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._max_age_s:
                self._reload(now)
            if self._tokens is None:
                raise TokenUnavailable("the postback token's secret could not be read")
            if self._matches(candidate):
                return True
            # The copy may predate a rotation: read again, unless it was (tried) lately.
            if self._reload(now):
                return self._matches(candidate)
            return False

    def _matches(self, candidate: bytes) -> bool:
        # Every accepted token is compared, each in constant time: how long a refusal takes says nothing
        # about which token came close.
        matched = False
        for token in self._tokens or ():
            matched |= hmac.compare_digest(candidate, token)
        return matched

    def _reload(self, now: float) -> bool:
        """Read the secret unless a read was tried less than recheck_s ago; True if a new copy was read."""
        if self._attempted_at is not None and now - self._attempted_at < self._recheck_s:
            return False
        self._attempted_at = now
        self.reads += 1
        try:
            tokens = parse_document(self._read())
        except Exception as error:  # any failure keeps the copy held; the caller is told
            if self._on_error is not None:
                self._on_error(error)
            return False
        self._tokens = tokens
        self._read_at = now
        return True
