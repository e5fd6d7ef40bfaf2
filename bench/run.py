"""`make bench`: every benchmark, each with its baseline from the same run, then one report.

Each benchmark runs in its own process and prints one JSON object (`--json`); its progress goes to the
terminal as it runs. The figures become one table, printed and written with the raw results and a chart:

    bench/results/report.md    the table (Markdown), linking the chart
    bench/results/report.png   each ratio against its target
    bench/results/results.json what every benchmark printed

`make bench QUICK=1` (or `python bench/run.py --quick`) runs smaller sizes: the same figures, noisier.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402 - after the path is set, so `python bench/run.py` works too

RESULTS = ROOT / "bench" / "results"

# name, title, arguments (full run), arguments (quick run)
BENCHMARKS = [
    ("ingest", "ingest: warm latency and cold path", ["-m", "bench.bench_ingest"], ["--runs", "60"]),
    ("parse", "parser: bytes to typed event", ["-m", "bench.bench_parse"], []),
    ("consumer", "consumer: throughput and cold path", ["-m", "bench.bench_consumer"], ["--messages", "300"]),
    ("coldstart", "cold import with and without usable byte-code", ["-m", "bench.bench_coldstart"], []),
    (
        "events",
        "events: the publisher against PutEvents alone",
        ["-m", "bench.bench_events"],
        ["--messages", "150"],
    ),
    (
        "limits",
        "limits: one hot item's writes on moto",
        ["-m", "bench.bench_limits"],
        ["--seconds", "1.5"],
    ),
    (
        "requests",
        "requests per message: AWS calls, units and log bytes per postback kind, send outcome and event",
        ["-m", "bench.bench_requests"],
        ["--per-kind", "10"],
    ),
    (
        "sender",
        "sender: goodput at the provider's throughput limit",
        ["-m", "bench.bench_sender", "400", "10", "8"],
        ["-m", "bench.bench_sender", "150", "10", "8"],
    ),
    ("load", "load: concurrent postbacks on the local stack", ["-m", "bench.bench_load", "2000", "8"], None),
]


def arguments(full: list[str], quick: list[str] | None, is_quick: bool) -> list[str]:
    if not is_quick or quick is None:
        return full
    return quick if quick and quick[0] == "-m" else [*full, *quick]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("QUICK")))
    parser.add_argument(
        "--only", action="append", help="run only this benchmark (repeatable); the others' last figures stay"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        quick_load = ["-m", "bench.bench_load", "600", "8"]
        plan = [(n, t, arguments(f, quick_load if n == "load" else q, True)) for n, t, f, q in BENCHMARKS]
    else:
        plan = [(n, t, f) for n, t, f, _ in BENCHMARKS]
    if args.only:
        plan = [step for step in plan if step[0] in args.only]

    results: dict[str, dict] = {}
    previous = args.out / "results.json"
    if args.only and previous.exists():  # the others' figures stay as their last run measured them
        results = {k: v for k, v in json.loads(previous.read_text()).items() if k not in args.only}
    failures: list[str] = []
    started = time.monotonic()
    for name, title, command in plan:
        print(f"== {title}", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, *command, "--json"], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
        )
        lines = done.stdout.strip().splitlines()
        try:
            results[name] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"   {name} printed no result (exit {done.returncode})", file=sys.stderr)
            failures.append(name)

    rows = [row for name, data in results.items() for row in report.EXTRACTORS[name](data)]
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}, {'quick sizes' if args.quick else 'full sizes'}, in"
        f" {time.monotonic() - started:.0f} s, by `make bench`. Every baseline is measured in the same run."
    )
    if args.only:
        header += f" Re-run alone: {', '.join(args.only)}; the other rows are from the previous report's run."
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(report.markdown(rows, header=header, failures=failures))
    report.chart(rows, args.out / "report.png")
    print(report.table(rows))
    print(f"written: {args.out / 'report.md'}, {args.out / 'report.png'}, {args.out / 'results.json'}")
    missed = [f"{row.area}: {row.figure}" for row in rows if row.met is False]
    if missed:
        print("targets not met: " + "; ".join(missed))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
