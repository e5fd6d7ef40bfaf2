"""local.runtime.LocalFunction: the real handler in-process, in up to `max_containers` containers, each its
own import of the module with the function's environment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local import stack as local_stack
from local.runtime import LocalFunction, patched_environ
from local.sqs_mapping import DEFAULT_POLLER_LIMIT
from local.template.resolve import load_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_function(max_containers: int = 1, logical_id: str = "Fixture") -> LocalFunction:
    return LocalFunction(
        logical_id=logical_id,
        name=f"test-{logical_id}",
        code_uri=FIXTURES,
        handler="container_handler.lambda_handler",
        environment={"FIXTURE_SETTING": f"setting-of-{logical_id}"},
        layer_paths=[],
        memory_mb=128,
        timeout_s=10,
        region="us-east-1",
        account_id="123456789012",
        max_containers=max_containers,
    )


class Gauge:
    """Counts invocations in flight and remembers the most at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def enter(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        with self._lock:
            self.current -= 1


def invoke_together(function: LocalFunction, events: list[dict]) -> list[dict]:
    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(function.invoke, events))


def test_two_containers_run_two_invocations_at_once():
    function = make_function(max_containers=2)
    barrier = threading.Barrier(2)  # broken (an error) unless both invocations are in flight together
    results = invoke_together(function, [{"barrier": barrier}, {"barrier": barrier}])
    assert len({r["container"] for r in results}) == 2
    first, second = (module.RUNS[0] for module in function.modules)
    assert max(first[0], second[0]) < min(first[1], second[1])  # the intervals overlap


def test_one_container_runs_invocations_one_after_the_other():
    function = make_function(max_containers=1)
    results = invoke_together(function, [{"sleep_s": 0.2}, {"sleep_s": 0.2}])
    assert {r["container"] for r in results} == {function.module.CONTAINER_ID}
    (first, second) = sorted(function.module.RUNS)
    assert first[1] <= second[0]
    assert len(function.modules) == 1


def test_each_container_has_its_own_module_globals_and_the_functions_environment():
    function = make_function(max_containers=2)
    invoke_together(function, [{"sleep_s": 0.3}, {"sleep_s": 0.3}])
    first, second = function.modules
    assert first is function.module
    assert first is not second
    assert first.__name__ != second.__name__
    assert first.CONTAINER_ID != second.CONTAINER_ID
    assert (len(first.RUNS), len(second.RUNS)) == (1, 1)
    # The second container was imported lazily, on an invoking thread, with the function's environment.
    assert first.SETTING == second.SETTING == "setting-of-Fixture"


def test_serial_invocations_reuse_the_first_container():
    function = make_function(max_containers=4)
    results = [function.invoke({}) for _ in range(3)]
    assert [r["container"] for r in results] == [function.module.CONTAINER_ID] * 3
    assert [r["runs"] for r in results] == [1, 2, 3]
    assert len(function.modules) == 1  # no more containers than were ever needed at once


def test_containers_never_exceed_the_maximum():
    function = make_function(max_containers=3)
    gauge = Gauge()
    results = invoke_together(function, [{"sleep_s": 0.1, "gauge": gauge} for _ in range(9)])
    assert len(results) == 9
    assert gauge.peak == 3
    assert len(function.modules) == 3
    assert sum(len(module.RUNS) for module in function.modules) == 9


def test_an_invocation_does_not_hold_the_environment_lock():
    function = make_function(max_containers=1)
    release = threading.Event()
    entered = threading.Event()

    class Blocker:
        def enter(self) -> None:
            entered.set()
            release.wait(5)

        def leave(self) -> None:
            pass

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(function.invoke, {"gauge": Blocker()})
        assert entered.wait(5)
        patched = threading.Event()

        def patch() -> None:
            with patched_environ({"ANOTHER_FUNCTION": "importing"}):
                patched.set()

        other = threading.Thread(target=patch)
        other.start()
        try:
            assert patched.wait(2), "importing another function waited for a running invocation"
        finally:
            release.set()
            other.join(5)
        running.result(timeout=5)


def test_max_containers_must_be_positive():
    with pytest.raises(ValueError, match="max_containers"):
        make_function(max_containers=0)


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Concurrency:
    Type: Number
    Default: 3
Resources:
  Busy:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_uri}
      Handler: container_handler.lambda_handler
      Events:
        Few:
          Type: SQS
          Properties:
            Queue: !GetAtt FirstQueue.Arn
        Many:
          Type: SQS
          Properties:
            Queue: !GetAtt SecondQueue.Arn
            ScalingConfig:
              MaximumConcurrency: !Ref Concurrency
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_uri}
      Handler: container_handler.lambda_handler
      Events:
        One:
          Type: SQS
          Properties:
            Queue: !GetAtt FirstQueue.Arn
  FirstQueue:
    Type: AWS::SQS::Queue
  SecondQueue:
    Type: AWS::SQS::Queue
"""


@pytest.mark.parametrize(
    ("concurrency", "containers"), [("3", 3), (str(DEFAULT_POLLER_LIMIT + 10), DEFAULT_POLLER_LIMIT)]
)
def test_load_functions_gives_containers_for_the_busiest_mapping(tmp_path, concurrency, containers):
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(code_uri=FIXTURES))
    stack = load_stack(template, None, stack_name="containers", overrides={"Concurrency": concurrency})
    functions = local_stack.load_functions(stack, "http://127.0.0.1:1")
    assert functions["Busy"].max_containers == containers  # bounded like the pollers that call it
    assert functions["Plain"].max_containers == 1
    assert functions["Busy"].environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"


def test_an_api_function_gets_a_container_per_request_in_flight():
    stack = local_stack.load_local_stack("http://127.0.0.1:1")
    functions = local_stack.load_functions(stack, "http://127.0.0.1:1")
    assert functions["IngestFunction"].max_containers == local_stack.API_CONTAINERS > 1
    assert functions["StaleMessagesFunction"].max_containers == 1  # scheduled: one run at a time
