"""A bounded load on the running local stack: concurrent clients, distinct postbacks, then the audit.

`make bench` runs the same load at 2,000 postbacks with its figures; here it runs smaller and asserts only
what must hold at any speed: everything acknowledged, nothing lost, nothing applied twice.
"""

from __future__ import annotations

import pytest

from bench.bench_load import audit, post_all, postbacks

pytestmark = pytest.mark.e2e

POSTBACKS = 300
CLIENTS = 8


def test_concurrent_postbacks_are_all_acknowledged_stored_and_applied_once(endpoints):
    bodies, tracking_ids = postbacks(POSTBACKS, seed=5)
    load = post_all(endpoints["postback_url"], bodies, CLIENTS)
    assert not load.unacknowledged, f"not acknowledged after retries: {load.summary()}"
    assert len(load.acknowledged) == POSTBACKS

    result = audit(endpoints, load, tracking_ids, timeout_s=120)
    counts = {**result.summary(), "answers": load.summary()["statuses"]}
    assert result.stored == POSTBACKS, counts
    assert not result.lost, (counts, result.lost[:5])
    assert not result.duplicated, (counts, result.duplicated[:5])
    assert not result.wrong_state, (counts, result.wrong_state[:5])
    assert result.applied == POSTBACKS, counts
