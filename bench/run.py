"""`make bench`: every benchmark, each printing figures and ratios against a baseline from the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [
    ("ingest: warm latency and cold path", ["-m", "bench.bench_ingest"]),
    ("parser: bytes to typed event", ["bench/bench_parse.py"]),
    ("consumer: throughput and cold path", ["-m", "bench.bench_consumer"]),
    ("sender: goodput at the provider's throughput limit", ["-m", "bench.bench_sender", "400", "10", "8"]),
]


def main() -> int:
    failed = 0
    for title, args in BENCHMARKS:
        print(f"== {title}", flush=True)
        failed += subprocess.run([sys.executable, *args], cwd=ROOT, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
