"""Helpers shared by the benchmarks: timing statistics and the local AWS they run against."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from local import stack as local_stack
from local.moto import MotoServer
from local.runtime import patched_environ

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(samples, 50) * 1000,
        "p95_ms": percentile(samples, 95) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
        "n": len(samples),
    }


def interleaved(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run the measures in turn, `runs` times, so machine noise falls on all of them alike."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for samples, measure in zip(results, measures, strict=True):
            samples.append(measure())
    return results


@contextmanager
def local_aws() -> Iterator[tuple[MotoServer, local_stack.LocalStack]]:
    """A moto server with the template's resources, and the process pointed at it."""
    with MotoServer() as moto:
        stack = local_stack.load_local_stack(moto.endpoint_url)
        local_stack.provision(stack, moto.endpoint_url)
        with patched_environ(local_stack.aws_environment(moto.endpoint_url, stack.region)):
            yield moto, stack


def fresh_interpreter(code: str, stdin: bytes, env: dict[str, str]) -> float:
    """Seconds for a new Python process to run `code` (a cold start: nothing imported, nothing cached)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], input=stdin, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cold_environment(moto: MotoServer, stack: local_stack.LocalStack, function: str) -> dict[str, str]:
    """The process environment a function has locally, for running it in a fresh interpreter."""
    spec = stack.functions()[function]
    env = {**os.environ, **local_stack.aws_environment(moto.endpoint_url, stack.region), **spec.environment}
    env.pop("PYTHONPATH", None)
    return env
