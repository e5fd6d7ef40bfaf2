"""What the handlers share: thin handler modules, the partial batch response, counts as metrics, the sender's
API-key cache, and outcomes as enums."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from mmsbridge import observability
from mmsbridge.ingest import service as ingest
from mmsbridge.ingest.admission import Outcome, Refusal
from mmsbridge.observability.batch import partial_batch_response
from mmsbridge.sending.api_key import ApiKey
from mmsbridge.sending.reconcile_store import LinkOutcome, ReviewOutcome
from mmsbridge.sending.results import METRICS as SENDER_METRICS
from mmsbridge.sending.results import Outcome as SendOutcome
from tests.emitted_metrics import data

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
EVENT = ROOT / "events" / "consumer" / "postback-batch.json"
# A handler wires Logger, Metrics and the batch response around one call into its feature.
MOST_LINES = 30


@pytest.mark.parametrize("path", HANDLERS, ids=[path.parent.name for path in HANDLERS])
def test_handlers_stay_thin(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MOST_LINES
    tree = ast.parse(source)
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Global)]
    # Their settings come from the feature's settings object, read once: no os.environ[...] or .get(...).
    assert "os.environ[" not in source
    assert "os.environ.get" not in source
    assert "add_metric" not in source


# ---- the partial batch response ----------------------------------------------------------------------------


@pytest.fixture
def batch() -> dict:
    event = json.loads(EVENT.read_text())
    assert len(event["Records"]) >= 2
    return event


def test_only_the_failed_records_come_back(batch):
    first, *others = [record["messageId"] for record in batch["Records"]]
    assert partial_batch_response(batch, {first}, None) == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert partial_batch_response(batch, set(), None) == {"batchItemFailures": []}
    assert others


def test_a_batch_that_failed_whole_fails_the_invocation_unless_told_otherwise(batch):
    every = {record["messageId"] for record in batch["Records"]}
    with pytest.raises(BatchProcessingError):
        partial_batch_response(batch, every, None)
    response = partial_batch_response(batch, every, None, raise_on_entire_batch_failure=False)
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == every


# ---- counts -----------------------------------------------------------------------------------------------


def test_counts_become_count_metrics(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "unit")
    metrics = Metrics()
    observability.count(metrics, {"Sent": 2, "Nothing": 0})
    observability.count(metrics, {"Skipped": 0}, zeros=False)
    metrics.flush_metrics()
    points = {(point.name, point.unit): point.value for point in data(capsys.readouterr().out)}
    assert points == {("Sent", "Count"): 2, ("Nothing", "Count"): 0}


# ---- the API key -----------------------------------------------------------------------------------------


class Secrets:
    """Powertools' SecretsProvider.get, as the cache calls it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def get(self, name: str, *, max_age: int, force_fetch: bool) -> str:
        self.calls.append((name, max_age, force_fetch))
        return "key-1"


def test_the_api_key_is_cached_and_read_afresh_once_after_it_is_forgotten():
    secrets = Secrets()
    api_key = ApiKey(secrets, "arn:secret")  # type: ignore[arg-type]
    assert api_key() == "key-1"
    api_key.forget()
    api_key()
    api_key()
    assert secrets.calls == [
        ("arn:secret", 300, False),
        ("arn:secret", 300, True),
        ("arn:secret", 300, False),
    ]


def test_two_caches_do_not_share_a_forgotten_key():
    first, second = Secrets(), Secrets()
    forgotten, kept = ApiKey(first, "a"), ApiKey(second, "b")  # type: ignore[arg-type]
    forgotten.forget()
    forgotten(), kept()
    assert (first.calls[0][2], second.calls[0][2]) == (True, False)


# ---- outcomes ------------------------------------------------------------------------------------------


def test_every_ingest_outcome_has_its_metric_and_log_value():
    assert set(ingest.METRICS) == set(Outcome)
    assert {refusal.outcome for refusal in Refusal} | {Outcome.ACCEPTED, Outcome.UNAVAILABLE} == set(Outcome)
    assert Refusal.TOKEN_UNAVAILABLE.outcome == "token_unavailable"
    assert ingest.METRICS[Outcome.UNAVAILABLE] == "StoreFailed"


def test_every_send_outcome_has_its_metric():
    assert set(SENDER_METRICS) == set(SendOutcome)
    assert len(set(SENDER_METRICS.values())) == len(SendOutcome)


def test_every_link_outcome_is_a_review_outcome():
    assert {ReviewOutcome(outcome) for outcome in LinkOutcome} <= set(ReviewOutcome)
    assert ReviewOutcome.LINKED == "linked"
