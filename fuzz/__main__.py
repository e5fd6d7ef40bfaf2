"""`make fuzz`: fuzz the three parsers of outside input, FUZZ_SECONDS per target and engine.

    python -m fuzz [--seconds N] [--engine both|hypothesis|atheris] [--workdir .local/fuzz]

First the hypothesis properties of tests/hostile/test_fuzz_properties.py, round after round for N seconds
each; then, if atheris is installed, a libFuzzer run of N seconds per target (fuzz/atheris_harness.py),
seeded from the provider fixtures (tests/fixtures/provider) and the example send requests, its corpus
kept in <workdir>/corpus/<target> between runs and any crashing input saved in <workdir>/artifacts/.
Everything runs in local processes with no network. Exit 1 if any target broke its contract, else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from fuzz import targets

ROOT = targets.ROOT
PROPERTIES = ROOT / "tests" / "hostile" / "test_fuzz_properties.py"
TARGETS = ("postback", "send-request", "provider-response")
GRACE_S = 120  # start-up, seed corpus and shutdown on top of the fuzzing time
DICT_ENTRY_MAX = 64  # libFuzzer ignores longer dictionary entries


@dataclass
class Result:
    target: str
    engine: str
    runs: str
    verdict: str
    ok: bool


def run_hypothesis(seconds: float) -> list[Result]:
    print(f"== hypothesis: {len(TARGETS)} properties, {seconds:g} s each", flush=True)
    env = {**os.environ, "FUZZ_SECONDS": str(seconds)}
    command = [sys.executable, "-m", "pytest", str(PROPERTIES), "-q", "-s", "-p", "no:cacheprovider"]
    counts: dict[str, str] = {}
    failed: set[str] = set()
    with subprocess.Popen(  # noqa: S603 - this interpreter running pytest on a file of this repository
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(len(TARGETS) * seconds + GRACE_S, process.kill)
        watchdog.start()
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                if found := re.search(r"hypothesis (\S+): (\d+) examples", line):
                    counts[found[1]] = found[2]
                if line.startswith("FAILED"):
                    failed.update(t for t in TARGETS if t.replace("-", "_") in line)
            code = process.wait()
        finally:
            watchdog.cancel()
    if code < 0:
        print("hypothesis: stopped, over its time budget", flush=True)
    if code != 0 and not failed:
        failed.update(TARGETS)  # pytest itself failed: count nothing as passed
    return [
        Result(
            target,
            "hypothesis",
            counts.get(target, "-"),
            "contract broken (see above)" if target in failed else "no failure",
            target not in failed,
        )
        for target in TARGETS
    ]


def dictionary(tokens: tuple[bytes, ...]) -> str:
    """libFuzzer's dictionary format: one quoted entry a line, other than printable ASCII as \\xNN."""
    lines = []
    for token in tokens:
        if len(token) <= DICT_ENTRY_MAX:
            quoted = "".join(
                chr(byte) if 0x20 <= byte <= 0x7E and byte not in b'"\\' else f"\\x{byte:02x}"
                for byte in token
            )
            lines.append(f'"{quoted}"')
    return "\n".join(lines) + "\n"


def run_atheris(target: str, seconds: float, workdir: Path) -> Result:
    from fuzz.atheris_harness import seeds  # imports atheris: only once it is known to be installed

    corpus = workdir / "corpus" / target
    artifacts = workdir / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for seed in seeds(target):
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324 - a file name, not security
    tokens = targets.JSON_TOKENS if target == "send-request" else targets.XML_TOKENS
    dict_file = workdir / f"{target}.dict"
    dict_file.write_text(dictionary(tokens))
    log_file = workdir / f"{target}.log"
    command = [
        sys.executable,
        "-m",
        "fuzz.atheris_harness",
        target,
        f"-max_total_time={max(1, round(seconds))}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-dict={dict_file}",
        f"-artifact_prefix={artifacts}/{target}-",
        "-print_final_stats=1",
        str(corpus),
    ]
    print(f"== atheris {target}: {seconds:g} s, corpus {corpus}", flush=True)
    with log_file.open("w") as log:
        try:
            code = subprocess.run(  # noqa: S603 - this interpreter running the harness of this repository
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=seconds + GRACE_S,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    output = log_file.read_text(errors="replace")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", output) or re.search(
        r"Done (\d+) runs", output
    )
    crashes = sorted(path.name for path in artifacts.glob(f"{target}-*"))
    if code == 0:
        verdict, ok = f"no failure (corpus {sum(1 for _ in corpus.iterdir())} inputs)", True
    elif code is None:
        verdict, ok = "did not stop in time", False
    else:
        print(output[-6000:], flush=True)
        verdict, ok = f"contract broken: {', '.join(crashes) or f'exit {code}'} (log {log_file})", False
    return Result(target, "atheris", runs[1] if runs else "-", verdict, ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS") or 60))
    parser.add_argument("--engine", choices=("both", "hypothesis", "atheris"), default="both")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".local" / "fuzz")
    args = parser.parse_args(argv)

    results: list[Result] = []
    if args.engine in ("both", "hypothesis"):
        results += run_hypothesis(args.seconds)
    if args.engine in ("both", "atheris"):
        if importlib.util.find_spec("atheris") is None:
            print("== atheris is not installed (see requirements-fuzz.txt): its part is skipped", flush=True)
        else:
            results += [run_atheris(target, args.seconds, args.workdir) for target in TARGETS]

    print("\ntarget             engine      runs        result")
    for result in results:
        print(f"{result.target:<18} {result.engine:<11} {result.runs:<11} {result.verdict}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
