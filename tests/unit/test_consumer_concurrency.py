"""The consumer's concurrency is the stack's to set (ConsumerMaxConcurrency), not fixed in the template:
the postback queue's mapping takes it, locally as on AWS (docs/scale.md: the consumer is the first limit a
busy postback stream reaches)."""

from __future__ import annotations

from local import stack as local_stack
from local.template.specs import SqsEvent


def consumer_mapping(**overrides: str) -> SqsEvent:
    stack = local_stack.load_local_stack("http://127.0.0.1:9", overrides=overrides or None)
    [event] = [e for e in stack.functions()["ConsumerFunction"].events if isinstance(e, SqsEvent)]
    return event


def test_the_postback_queue_mapping_takes_the_consumer_concurrency_parameter():
    assert consumer_mapping().maximum_concurrency == 5
    assert consumer_mapping(ConsumerMaxConcurrency="40").maximum_concurrency == 40
    assert consumer_mapping(ConsumerMaxConcurrency="40").batch_size == 10
