"""The receive path under AWS faults: postbacks posted over HTTP to the real ingest handler, the real consumer
driven by the template's SQS mapping, AWS faults injected into the handlers' own boto3 clients; then an audit
of every postback in against S3, DynamoDB, the postback queue and its DLQ: nothing lost, nothing doubled,
the state the same as without the fault.

The stack is the template's, on its own stack name (its own bucket, queues and table on the session's
moto). One deliberate difference: the postback queue's VisibilityTimeout. The template's 190 s is six
times the consumer's 30 s timeout; here an invocation takes well under a second, and a record that failed
must come back within the test, so the queue hides a received message for VISIBILITY_TIMEOUT_S. Each
test starts with an empty table and archive (`fresh_state`), so everything its audit finds is its doing.

What the audit leaves out (postback_audit.comparable): the receipt time that stands in for a missing
TIMESTAMP (E101) and the expiry dated from it. A later delivery of such a postback rewrites both with its
own receipt time; every other field of every item stays exactly as the first delivery wrote it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from local import aws_faults
from local import stack as local_stack
from local.gateway import Gateway
from local.runtime import LocalFunction, patched_environ
from local.sqs_mapping import SqsEventSourceMapping, mappings_from_stack
from local.template.specs import LocalStack
from mmsbridge.aws.state_table import StateTable
from tests.resilience.postback_audit import (
    PROVIDER_ATTEMPTS,
    Audit,
    AwsWriteFaults,
    Corpus,
    Provider,
    RuntimeExited,
    TableSnapshot,
    TaskTimedOut,
    apply_in_waves,
    archive_key,
    archive_versions,
    audit,
    build_corpus,
    comparable,
    expectation,
    holds,
    message_views,
    ordered_reports,
    semantic_disagreements,
    shuffled_reports,
)

VISIBILITY_TIMEOUT_S = 3
# Lambda runs one container per concurrent API request; locally the ingest gets a few, so that posts
# (and identical posts) really run at the same time.
INGEST_CONTAINERS = 4
SETTLE_S = 40.0
DYNAMODB_ERRORS = (
    (400, "ThrottlingException"),
    (400, "ProvisionedThroughputExceededException"),
    (500, "InternalServerError"),
)


def every_container(function: LocalFunction) -> list[ModuleType]:
    """Start all the containers the function may use now, so that a fault reaches every one's clients."""
    held = [function._acquire() for _ in range(function.max_containers)]
    for container in held:
        function._release(container)
    return function.modules


@dataclass
class Pipeline:
    stack: LocalStack
    ingest: LocalFunction
    consumer: LocalFunction
    gateway: Gateway
    mapping: SqsEventSourceMapping
    s3: Any
    sqs: Any
    table: StateTable
    bucket: str
    queue_url: str
    dlq_url: str
    retention_days: int
    endpoint_url: str

    def provider(self) -> Provider:
        """The provider, posting to the URL it is given: /postback/<the token in the stack's secret>."""
        return Provider(self.gateway.base_url + local_stack.postback_path(self.stack, self.endpoint_url))

    @property
    def archive_clients(self) -> list[Any]:
        return [module.INGEST.archive._s3 for module in self.ingest.modules]

    @property
    def queue_clients(self) -> list[Any]:
        return [module.INGEST.queue._sqs for module in self.ingest.modules]

    @property
    def table_clients(self) -> list[Any]:
        return [module.CONSUMER.table.client for module in self.consumer.modules]

    def settle(self) -> bool:
        """True once the postback queue is empty and no batch is in flight (bounded)."""
        return self.mapping.wait_idle(timeout=SETTLE_S)

    def audit(self, corpus: Corpus, provider: Provider, **options: Any) -> Audit:
        return audit(
            corpus,
            provider,
            table=self.table,
            s3=self.s3,
            bucket=self.bucket,
            sqs=self.sqs,
            queue_url=self.queue_url,
            dlq_url=self.dlq_url,
            retention_days=self.retention_days,
            **options,
        )

    @contextmanager
    def counting(self) -> Iterator[dict[str, int]]:
        """The mapping's counters for the block: batches, records received, deleted, failures reported..."""
        before = self.mapping.stats.snapshot()
        delta: dict[str, int] = {}
        yield delta
        after = self.mapping.stats.snapshot()
        delta.update({k: after[k] - before.get(k, 0) for k in after if isinstance(after[k], int)})


@pytest.fixture(scope="module")
def pipeline(moto_server, aws_stack):  # aws_stack first: it resets moto, which would wipe this stack
    endpoint = moto_server.endpoint_url
    stack = local_stack.load_local_stack(endpoint, stack_name=f"postback-faults-{uuid.uuid4().hex[:8]}")
    local_stack.provision(stack, endpoint)
    environment = local_stack.aws_environment(endpoint, stack.region)
    with patched_environ(environment):
        s3, sqs, dynamodb = (boto3.client(name) for name in ("s3", "sqs", "dynamodb"))
    queues = stack.queues()
    queue_url = queues["PostbackQueue"].url
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)})

    ingest = local_stack.function_for(stack, "IngestFunction", endpoint, max_containers=INGEST_CONTAINERS)
    consumer = local_stack.function_for(stack, "ConsumerFunction", endpoint)
    every_container(ingest)
    every_container(consumer)
    routes, binary = local_stack.api_routes(stack, {"IngestFunction": ingest})
    gateway = Gateway(routes, binary_media_types=binary, account_id=stack.account_id).start()
    (mapping,) = mappings_from_stack(stack, {"ConsumerFunction": consumer})
    with patched_environ(environment):
        mapping.start()
    try:
        yield Pipeline(
            stack=stack,
            ingest=ingest,
            consumer=consumer,
            gateway=gateway,
            mapping=mapping,
            s3=s3,
            sqs=sqs,
            table=StateTable(dynamodb, stack.tables()["StateTable"].name),
            bucket=stack.buckets()["ArchiveBucket"].name,
            queue_url=queue_url,
            dlq_url=queues["PostbackDLQ"].url,
            retention_days=int(consumer.environment.get("HISTORY_RETENTION_DAYS", "0")),
            endpoint_url=endpoint,
        )
    finally:
        mapping.stop()
        gateway.stop()


@pytest.fixture(autouse=True)
def fresh_state(pipeline):
    """Each test starts with an empty state table and archive: its audit reads only its own postbacks, and
    moto's queries, which take longer the more the table holds, stay quick. The consumer keeps working
    across the swap: it addresses the table by name, and the queue is drained between tests."""
    assert pipeline.settle()
    spec = pipeline.stack.tables()["StateTable"]
    client = pipeline.table.client
    # The template protects the table from deletion: a deliberate delete turns the protection off first.
    client.update_table(TableName=spec.name, DeletionProtectionEnabled=False)
    client.delete_table(TableName=spec.name)
    client.create_table(**spec.create_table_kwargs)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=spec.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )
    versions = [
        {"Key": version["Key"], "VersionId": version["VersionId"]}
        for versions in archive_versions(pipeline.s3, pipeline.bucket).values()
        for version in versions
    ]
    for start in range(0, len(versions), 1000):
        pipeline.s3.delete_objects(Bucket=pipeline.bucket, Delete={"Objects": versions[start : start + 1000]})


def tag(name: str) -> str:
    """The ids of a test's corpus: fixed, so that a run is reproducible (each test has a fresh table)."""
    return f"PBF-{name}"


@contextmanager
def inject_all(clients: list[Any], operation: str, *, seed: int, **fault: Any) -> Iterator[list[Any]]:
    """aws_faults.inject on each client (one per container), each with its own seeded placement."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(aws_faults.inject(client, operation, seed=seed + n, **fault))
            for n, client in enumerate(clients)
        ]


def injected(stats: list[Any]) -> int:
    return sum(s.injected for s in stats)


def assert_clean(result: Audit) -> None:
    assert result.clean, f"audit: {result}"


# ------------------------------------------------------------------------------------------ ingest


def test_s3_put_failures_answer_503_and_the_providers_retries_land_everything(pipeline):
    corpus = build_corpus(tag("s3-fails"))
    provider = pipeline.provider()
    with (
        pipeline.counting() as queue,
        inject_all(pipeline.archive_clients, "PutObject", rate=0.5, seed=11) as stats,
    ):
        never = provider.send(corpus.bodies)
        settled = pipeline.settle()
    result = pipeline.audit(corpus, provider)
    result.notes.update(
        injected=injected(stats), refused=dict(provider.refusals()), deliveries=queue["records"]
    )
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)
    # Each refusal was a 503, after the client's own retries were spent, and the provider retried it. The
    # queue message sent alongside the failed PutObject was applied too, and changed nothing.
    assert set(provider.refusals()) == {503}, f"audit: {result}"
    assert queue["records"] > len(corpus), f"audit: {result}"


def test_slow_s3_puts_still_answer_200_and_everything_lands(pipeline):
    corpus = build_corpus(tag("s3-slow"))
    provider = pipeline.provider()
    with inject_all(pipeline.archive_clients, "PutObject", delay_s=0.05, seed=12) as stats:
        never = provider.send(corpus.bodies)
        settled = pipeline.settle()
    result = pipeline.audit(corpus, provider)
    result.notes.update(delayed=sum(s.calls for s in stats), refused=dict(provider.refusals()))
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)
    assert provider.refusals() == {}, f"audit: {result}"  # every first attempt answered 200
    assert sum(s.calls for s in stats) >= len(corpus), f"audit: {result}"


def test_sqs_send_failures_answer_503_leave_an_object_only_and_the_retry_enqueues_it(pipeline):
    corpus = build_corpus(tag("sqs-fails"))
    expected = expectation(corpus, retention_days=pipeline.retention_days)
    provider = pipeline.provider()
    with inject_all(pipeline.queue_clients, "SendMessage", rate=0.5, seed=13) as stats:
        refused = provider.send(corpus.bodies, attempts=1)
        assert pipeline.settle()
        # Before the provider retries: a refused postback's bytes are in S3, but no message was queued,
        # so nothing applied it. That is not a loss: the provider retries a 503.
        snapshot = TableSnapshot(pipeline.table)
        archived = archive_versions(pipeline.s3, pipeline.bucket)
        orphans = [
            body
            for body in refused
            if holds(archived.get(archive_key(body), []), body)
            and not any(snapshot.get(*key) for key in expected.owners[body])
        ]
        never = provider.send(refused, attempts=PROVIDER_ATTEMPTS - 1)
        settled = pipeline.settle()
    result = pipeline.audit(corpus, provider)
    result.notes.update(
        injected=injected(stats),
        refused_first=len(refused),
        orphans_before_retry=len(orphans),
        refused=dict(provider.refusals()),
    )
    assert refused, f"audit: {result}"
    assert len(orphans) == len(refused), f"audit: {result}"
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)


# ---------------------------------------------------------------------------------------- consumer


def test_dynamodb_throttles_and_server_errors_send_records_back_through_the_queue(pipeline):
    corpus = build_corpus(tag("ddb-fails"))
    provider = pipeline.provider()
    faulty = AwsWriteFaults(errors=DYNAMODB_ERRORS, fail_every=3, blip_share=0.3, budget=4, seed=14)
    with pipeline.counting() as queue, faulty.on(pipeline.table_clients):
        never = provider.send(corpus.bodies)
        settled = pipeline.settle()
    result = pipeline.audit(corpus, provider)
    result.notes.update(**faulty.summary(), **_failures(queue))
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)
    # Every kind failed a call outright; its records were reported failed (or, when a whole batch failed,
    # the invocation failed) and came back after the visibility timeout.
    assert set(faulty.failed_calls) == {code for _, code in DYNAMODB_ERRORS}, f"audit: {result}"
    assert queue["failures_reported"] + queue["function_errors"] > 0, f"audit: {result}"


def test_invocations_that_crash_or_time_out_mid_batch_are_redelivered_and_reapplied_once(pipeline):
    corpus = build_corpus(tag("ends"))
    provider = pipeline.provider()
    faulty = AwsWriteFaults(end_every=3, endings=(RuntimeExited, TaskTimedOut), budget=4, seed=15)
    with pipeline.counting() as queue, faulty.on(pipeline.table_clients):
        never = provider.send(corpus.bodies)
        settled = pipeline.settle()
    result = pipeline.audit(corpus, provider)
    result.notes.update(**faulty.summary(), **_failures(queue))
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)
    # Each ended invocation had written part of its batch and acknowledged none of it: the whole batch
    # came back after the visibility timeout and was applied again, changing nothing already written.
    assert set(faulty.ended) == {"RuntimeExited", "TaskTimedOut"}, f"audit: {result}"
    assert queue["function_errors"] == sum(faulty.ended.values()), f"audit: {result}"
    assert faulty.half_written > 0, f"audit: {result}"


def _failures(queue: dict[str, int]) -> dict[str, int]:
    return {k: queue.get(k, 0) for k in ("records", "failures_reported", "function_errors")}


# ------------------------------------------------------------------------------ the provider's side


def test_the_same_postback_five_times_is_one_object_and_one_effect(pipeline):
    corpus = build_corpus(tag("five-times"))
    provider = pipeline.provider()
    never = provider.send(corpus.bodies)
    assert pipeline.settle()
    assert not never
    expected = expectation(corpus, retention_days=pipeline.retention_days)
    first = TableSnapshot(pipeline.table).items(expected.partitions)

    # Four more deliveries of each: for half of them the four side by side, so identical bodies are
    # ingested at the same moment in different containers; the rest scattered among the others.
    rng = random.Random(16)
    bodies = list(corpus.bodies)
    rng.shuffle(bodies)
    half = len(bodies) // 2
    together = [body for body in bodies[:half] for _ in range(4)]
    scattered = [body for body in bodies[half:] for _ in range(4)]
    rng.shuffle(scattered)
    with pipeline.counting() as queue:
        never = provider.send([*together, *scattered])
        settled = pipeline.settle()
    after_snapshot = TableSnapshot(pipeline.table)
    after = after_snapshot.items(expected.partitions)
    result = pipeline.audit(corpus, provider, snapshot=after_snapshot)
    archived = archive_versions(pipeline.s3, pipeline.bucket)
    changed = [key for key in first if comparable(first[key]) != comparable(after.get(key, {}))]
    versions = [len(archived.get(archive_key(body), [])) for body in corpus.bodies]
    result.notes.update(
        posts=sum(len(a) for a in provider.answers.values()),
        refused=dict(provider.refusals()),
        deliveries=queue["records"],
        changed=len(changed),
        versions=sum(versions),
    )
    assert settled, f"audit: {result}"
    assert not never, f"audit: {result}"
    assert_clean(result)
    accepted = [answers.count(200) for answers in provider.answers.values()]
    assert accepted == [5] * len(corpus), f"audit: {result}"
    assert set(after) == set(first), f"audit: {result}"
    assert changed == [], f"audit: {result}; changed: {changed[:5]}"
    # One object per postback (its key is its hash), each accepted post a version of the same bytes
    # (holds() in the audit checked every version).
    assert versions == [5] * len(corpus), f"audit: {result}"
    assert queue["records"] >= 4 * len(corpus), f"audit: {result}"


def test_delivery_reports_in_a_shuffled_order_end_as_in_order(pipeline):
    shuffled = build_corpus(tag("shuffled"))
    reference = build_corpus(tag("in-order"))
    waves = shuffled_reports(shuffled, seed=17)
    provider = pipeline.provider()
    # Wave by wave, each applied before the next is posted, so the arrival order is the one drawn:
    # a final report before its N101, an opt-out before the opt-in that preceded it.
    for number, wave in enumerate(waves):
        never = provider.send(wave)
        assert pipeline.settle(), f"wave {number} not applied"
        assert not never, f"wave {number} refused"
    apply_in_waves(ordered_reports(reference), table=pipeline.table, retention_days=pipeline.retention_days)
    reordered = [
        tracking_id
        for tracking_id, reports in shuffled.reports.items()
        if [body for wave in waves for body in wave if body in reports] != list(reports)
    ]
    snapshot = TableSnapshot(pipeline.table)
    result = pipeline.audit(shuffled, provider, snapshot=snapshot, alongside=[reference])
    views = message_views(snapshot, reference), message_views(snapshot, shuffled)
    differing = [tid for tid in views[0] if views[0][tid] != views[1].get(tid)]
    result.notes.update(reordered=len(reordered), messages=len(shuffled.reports), differing=len(differing))
    assert_clean(result)
    assert reordered, f"audit: {result}"
    assert differing == [], f"audit: {result}; differ from in order: {differing[:5]}"
    assert semantic_disagreements(reference, snapshot) == []
