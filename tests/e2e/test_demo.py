"""`python -m local.demo` (`make demo`) as a person runs it: its own local stack, the five example requests
through the whole loop, each request's timeline, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from local.stack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DELIVERED = ("order-1042-shipped", "spring-deals-ana", "welcome-13125550188")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], str]:
    log_dir = tmp_path_factory.mktemp("demo-logs")
    finished = subprocess.run(
        [sys.executable, "-m", "local.demo", "--log-dir", str(log_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    # One run id suffixes every request_id: the demo can run again against the same state table.
    suffix = re.search(r"request ids end in (-[0-9a-f]{6})", finished.stdout)
    assert suffix, finished.stdout + finished.stderr
    return finished, suffix.group(1)


def timeline(stdout: str, request_id: str) -> list[str]:
    """The demo's lines for one request: its title and the indented steps under it."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{request_id}: "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def test_the_demo_settles_and_exits_0(demo):
    finished, _ = demo
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stderr == ""  # the handlers' logs and the gateway's lines went to the log directory
    assert not any(line.startswith("{") for line in finished.stdout.splitlines())  # no JSON log lines
    assert re.search(
        r"^5 requests settled in [0-9.]+ s: 3 delivered, 1 rejected, 1 suppressed; "
        r"the provider accepted 3 sends \(0 duplicates\)",
        finished.stdout,
        re.MULTILINE,
    ), finished.stdout


@pytest.mark.parametrize("request_id", DELIVERED)
def test_each_sendable_request_is_accepted_sent_and_delivered(demo, request_id):
    finished, suffix = demo
    lines = timeline(finished.stdout, request_id + suffix)
    assert lines[0] == f"{request_id}{suffix}: DELIVERED"
    steps = [line.split()[1] for line in lines[1:]]
    assert steps == ["received", "ACCEPTED", "SENT", "DELIVERED"], lines
    assert re.search(r"ACCEPTED +tracking id \S+", lines[2]), lines


def test_the_invalid_number_is_rejected_with_the_reason_for_to(demo):
    finished, suffix = demo
    lines = timeline(finished.stdout, "order-1043-shipped" + suffix)
    assert lines[0] == f"order-1043-shipped{suffix}: REJECTED"
    assert re.search(r"REJECTED +to: must have 8-15 digits", lines[-1]), lines


def test_the_opted_out_number_is_suppressed(demo):
    finished, suffix = demo
    assert "opted out 13125550199" in finished.stdout
    lines = timeline(finished.stdout, "spring-deals-opted-out" + suffix)
    assert lines[0] == f"spring-deals-opted-out{suffix}: SUPPRESSED"
    assert re.search(r"SUPPRESSED +13125550199 is on the suppression list", lines[-1]), lines


def events_block(stdout: str, request_id: str) -> list[str]:
    """The demo's events for one request: the lines under `<request_id> events:`."""
    lines = stdout.splitlines()
    start = lines.index(f"{request_id} events:")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start + 1 : end]


@pytest.mark.parametrize(
    ("request_id", "settled", "final_state"),
    [
        *((request_id, "ACCEPTED", "DELIVERED") for request_id in DELIVERED),
        ("order-1043-shipped", "REJECTED", None),
        ("spring-deals-opted-out", "SUPPRESSED", None),
    ],
)
def test_each_request_is_followed_by_its_events(demo, request_id, settled, final_state):
    finished, suffix = demo
    lines = events_block(finished.stdout, request_id + suffix)
    assert any(f"Send Request Settled  {settled}" in line for line in lines), lines
    states = [line for line in lines if "Message State Changed" in line]
    if final_state is None:
        assert states == [], lines
    else:
        assert any(f"-> {final_state}" in line for line in states), lines
