"""The postback token's cache: what is accepted, how often the secret is read (never more than once per
recheck interval, whatever arrives), rotation seen by a container that cached the old document, failures
that keep the copy held, and every comparison made by hmac.compare_digest."""

from __future__ import annotations

import hmac
import json

import pytest

from mmsbridge.ingest.tokens import PostbackTokens, TokenUnavailable, parse_document

OLD = "old0" * 10  # 40 characters
NEW = "New1-_" * 7  # 42 characters
WRONG = "wrong" * 8


class Secret:
    """A secret whose string the test sets, counting reads; `fail` makes the next reads raise."""

    def __init__(self, document: dict | str) -> None:
        self.value = document if isinstance(document, str) else json.dumps(document)
        self.reads = 0
        self.fail: Exception | None = None

    def put(self, document: dict | str) -> None:
        self.value = document if isinstance(document, str) else json.dumps(document)

    def read(self) -> str:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def cache(secret: Secret, clock: Clock, **options) -> PostbackTokens:
    errors: list[Exception] = []
    tokens = PostbackTokens(
        secret.read, max_age_s=300, recheck_s=10, clock=clock, on_error=errors.append, **options
    )
    tokens.errors = errors  # type: ignore[attr-defined]
    return tokens


def test_the_current_token_is_accepted_and_the_secret_read_once(clock):
    secret = Secret({"current": OLD})
    tokens = cache(secret, clock)
    for _ in range(100):
        assert tokens.accepts(OLD)
        clock.now += 1
    assert secret.reads == 1  # 100 s: inside the maximum age


@pytest.mark.parametrize("given", ["", WRONG, OLD[:-1], OLD + "0", OLD.upper(), " " + OLD, "é" * 40])
def test_anything_else_is_refused(clock, given):
    assert not cache(Secret({"current": OLD}), clock).accepts(given)


def test_a_flood_of_wrong_tokens_reads_the_secret_at_most_once_per_recheck_interval(clock):
    secret = Secret({"current": OLD})
    tokens = cache(secret, clock)
    assert tokens.accepts(OLD)
    for _ in range(10_000):
        assert not tokens.accepts(WRONG)
        clock.now += 0.01  # 10,000 wrong tokens over 100 s
    assert secret.reads <= 1 + 100 / 10 + 1
    assert tokens.reads == secret.reads


def test_a_container_that_cached_the_old_document_accepts_the_new_token_after_a_rotation(clock):
    secret = Secret({"current": OLD})
    tokens = cache(secret, clock)
    assert tokens.accepts(OLD)
    clock.now += 10  # the copy is now at least the recheck interval old
    secret.put({"current": NEW, "previous": OLD})  # rotation, step 1
    assert tokens.accepts(NEW)  # the mismatch made it read again
    assert tokens.accepts(OLD)  # and the previous token stays accepted
    assert secret.reads == 2


def test_a_new_token_right_after_a_read_waits_for_the_recheck_interval(clock):
    # Why the rotation waits a minute between setting the new token and giving it to the provider.
    secret = Secret({"current": OLD})
    tokens = cache(secret, clock)
    assert tokens.accepts(OLD)
    secret.put({"current": NEW, "previous": OLD})
    clock.now += 5
    assert not tokens.accepts(NEW)  # read 5 s ago: not again yet
    clock.now += 5
    assert tokens.accepts(NEW)


def test_a_dropped_previous_token_is_refused_once_the_copy_is_max_age_old(clock):
    secret = Secret({"current": NEW, "previous": OLD})
    tokens = cache(secret, clock)
    assert tokens.accepts(OLD)
    secret.put({"current": NEW})  # rotation, last step
    clock.now += 299
    assert tokens.accepts(OLD)  # the container's copy is not yet 300 s old
    clock.now += 1
    assert not tokens.accepts(OLD)
    assert tokens.accepts(NEW)


def test_a_failed_read_keeps_the_copy_held(clock):
    secret = Secret({"current": OLD})
    tokens = cache(secret, clock)
    assert tokens.accepts(OLD)
    secret.fail = ConnectionError("Secrets Manager unreachable")
    clock.now += 400  # expired: it tries to read again, fails, and keeps the copy
    assert tokens.accepts(OLD)
    assert not tokens.accepts(WRONG)
    assert [type(e) for e in tokens.errors] == [ConnectionError]
    clock.now += 1
    assert tokens.accepts(OLD)
    assert secret.reads == 2  # not again within the recheck interval, though the copy is old
    secret.fail = None
    clock.now += 10
    assert tokens.accepts(OLD)
    assert secret.reads == 3


def test_without_any_copy_the_token_cannot_be_checked_and_reads_stay_bounded(clock):
    secret = Secret({"current": OLD})
    secret.fail = ConnectionError("Secrets Manager unreachable")
    tokens = cache(secret, clock)
    for _ in range(1000):
        with pytest.raises(TokenUnavailable):
            tokens.accepts(OLD)
        clock.now += 0.01
    assert secret.reads == 1
    secret.fail = None
    clock.now += 10
    assert tokens.accepts(OLD)


@pytest.mark.parametrize(
    "document",
    [
        "",
        "not json",
        OLD,  # a bare token, not the document
        json.dumps([OLD]),
        json.dumps({}),
        json.dumps({"current": ""}),
        json.dumps({"current": None}),
        json.dumps({"current": "short-token"}),
        json.dumps({"current": OLD + " "}),
        json.dumps({"current": OLD + "/x"}),
        json.dumps({"current": "x" * 129}),
        json.dumps({"current": 12345678901234567890123456789012345}),
        json.dumps({"current": OLD, "previous": "short"}),
        json.dumps({"previous": OLD}),
    ],
)
def test_a_malformed_secret_is_unusable_and_its_error_never_quotes_it(clock, document):
    with pytest.raises(TokenUnavailable) as raised:
        parse_document(document)
    assert OLD not in str(raised.value)
    with pytest.raises(TokenUnavailable):
        cache(Secret(document), clock).accepts(OLD)


def test_a_document_with_extra_keys_or_an_empty_previous_is_usable():
    assert parse_document(json.dumps({"current": NEW, "previous": "", "note": "rotated"})) == (NEW.encode(),)
    assert parse_document(json.dumps({"current": NEW, "previous": None})) == (NEW.encode(),)
    assert parse_document(json.dumps({"current": NEW, "previous": OLD})) == (NEW.encode(), OLD.encode())


def test_every_accepted_token_is_compared_with_compare_digest(monkeypatch, clock):
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    tokens = cache(Secret({"current": NEW, "previous": OLD}), clock)
    assert tokens.accepts(NEW)
    # Both tokens are compared even when the first matches: no early exit that timing could reveal.
    assert calls == [(NEW.encode(), NEW.encode()), (NEW.encode(), OLD.encode())]
    calls.clear()
    assert not tokens.accepts(WRONG)
    assert calls == [(WRONG.encode(), NEW.encode()), (WRONG.encode(), OLD.encode())]


@pytest.mark.parametrize("verdict", [True, False])
def test_the_decision_is_compare_digests(monkeypatch, clock, verdict):
    # Behaviour, not source: if compare_digest says no, the right token is refused; if yes, a wrong one
    # passes. Nothing else (==, startswith) decides.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: verdict)
    tokens = cache(Secret({"current": OLD}), clock)
    assert tokens.accepts(OLD) is verdict
    assert tokens.accepts(WRONG) is verdict


def test_settings_out_of_order_are_refused():
    with pytest.raises(ValueError, match="recheck_s"):
        PostbackTokens(lambda: "", max_age_s=5, recheck_s=10)
