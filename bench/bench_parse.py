"""Postback parser cost against the bare XML parsers it is built on.

    PYTHONPATH=layers/mmsbridge python bench/bench_parse.py [--json] [--repeat N] [--number N] [--samples DIR]

For every sample postback (tests/fixtures/provider/postbacks, lower/ and legacy/ included), each contender
parses the document `number` times per round, for `repeat` rounds, interleaved so drift hits all three alike.
A document's cost is its best round (best-of-N); the figure reported per contender is the median over
documents, in µs per parse. Contenders: `parse_postback` (everything: checks, parse, classification), bare
`defusedxml.ElementTree.fromstring(b, forbid_dtd=True)`, and the stdlib (C accelerated) `fromstring`.
Target: parse_us <= 1.3 x defused_us.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import xml.etree.ElementTree as StdlibET  # the stdlib baseline
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import defusedxml.ElementTree as DefusedET

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLES = ROOT / "tests" / "fixtures" / "provider"
RECEIVED_AT = datetime(2024, 3, 14, 15, 0, tzinfo=UTC)


def _parser() -> Callable[..., object]:
    """parse_postback from PYTHONPATH, or else from the layer in this checkout (as `make bench` runs it)."""
    sys.path.append(str(ROOT / "layers" / "mmsbridge"))
    from mmsbridge.postbacks.reader import parse_postback

    return parse_postback


def contenders() -> dict[str, Callable[[bytes], object]]:
    parse_postback = _parser()

    def parse(body: bytes) -> object:
        return parse_postback(body, received_at=RECEIVED_AT)

    def defused(body: bytes) -> object:
        return DefusedET.fromstring(body, forbid_dtd=True)

    def stdlib(body: bytes) -> object:
        return StdlibET.fromstring(body)  # baseline only, on the trusted sample files

    return {"parse": parse, "defused": defused, "stdlib": stdlib}


def _round(function: Callable[[bytes], object], body: bytes, number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        function(body)
    return (time.perf_counter_ns() - start) / number / 1000.0


def measure(
    documents: list[bytes], functions: dict[str, Callable[[bytes], object]], *, repeat: int, number: int
) -> dict[str, float]:
    best = {name: [float("inf")] * len(documents) for name in functions}
    for function in functions.values():  # warm-up: imports, caches
        for body in documents:
            _round(function, body, 20)
    for _ in range(repeat):
        for index, body in enumerate(documents):
            for name, function in functions.items():
                best[name][index] = min(best[name][index], _round(function, body, number))
    return {name: statistics.median(costs) for name, costs in best.items()}


def main(argv: list[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--json", action="store_true", help="print one JSON object")
    arguments.add_argument("--repeat", type=int, default=7, help="rounds per document (best-of-N)")
    arguments.add_argument("--number", type=int, default=200, help="parses per round")
    arguments.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    options = arguments.parse_args(argv)

    paths = sorted((options.samples / "postbacks").rglob("*.xml"))
    if not paths:
        print(f"no sample postbacks under {options.samples}", file=sys.stderr)
        return 2
    documents = [path.read_bytes() for path in paths]
    medians = measure(documents, contenders(), repeat=options.repeat, number=options.number)
    result = {
        "parse_us": round(medians["parse"], 2),
        "defused_us": round(medians["defused"], 2),
        "stdlib_us": round(medians["stdlib"], 2),
        "ratio_vs_defused": round(medians["parse"] / medians["defused"], 3),
        "ratio_vs_stdlib": round(medians["parse"] / medians["stdlib"], 3),
    }
    if options.json:
        print(json.dumps(result))
    else:
        print(
            f"{len(documents)} sample postbacks, best of {options.repeat} x {options.number}, median µs/doc"
        )
        print(f"  parse_postback          {result['parse_us']:8.2f} µs")
        print(f"  defusedxml fromstring   {result['defused_us']:8.2f} µs")
        print(f"  stdlib fromstring       {result['stdlib_us']:8.2f} µs")
        print(f"  parse / defusedxml      {result['ratio_vs_defused']:8.3f}  (target <= 1.3)")
        print(f"  parse / stdlib          {result['ratio_vs_stdlib']:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
