"""`make security`'s audit of the locked dependencies: pip-audit on each lock, against OSV's database.

pip-audit reads a hashed lock as it is (`--disable-pip`: nothing is resolved, downloaded or installed) and
asks the vulnerability database about each pinned version. For each lock, one of:

- every package audited, no known vulnerability: a line saying so;
- a known vulnerability in any package: each one listed (package, version, id, fixed in), and the audit fails;
- the database unreachable (pip-audit's connection error, or every package skipped because the service
  answered for none of them, as PyPI's API does behind a closed network): one line saying the audit was
  skipped, why, and which locks went unaudited (this one and those after it, not tried); that passes,
  unless --required is given or an earlier lock failed;
- anything else (pip-audit failing on its own, a lock it cannot read, some packages audited and others
  skipped): what pip-audit said, and the audit fails.

Standard library only: it runs with the scanners' interpreter (.venv-scan), beside pip-audit.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PASSED, SKIPPED, FAILED = "passed", "skipped", "failed"
# How pip-audit (requests, urllib3) says that it could not reach the service.
UNREACHABLE = re.compile(
    r"ConnectionError|NameResolutionError|Failed to resolve|Name or service not known|"
    r"Temporary failure in name resolution|Max retries exceeded|Connect(?:ion)?Timeout|ReadTimeout|"
    r"Connection refused|Network is unreachable|Could not connect to|network may be blocking"
)
HOST = re.compile(r"host='([^']+)'")
FAILURES = [
    (
        re.compile(r"NameResolution|Failed to resolve|Name or service not known|name resolution"),
        "name not resolved",
    ),
    (re.compile(r"Connection refused"), "connection refused"),
    (re.compile(r"Network is unreachable"), "network unreachable"),
    (re.compile(r"Timeout|timed out"), "timed out"),
]
TIMEOUT_S = 600


@dataclass(frozen=True)
class Verdict:
    outcome: str  # PASSED, SKIPPED or FAILED
    lines: tuple[str, ...]


def judge(lock: str, returncode: int, report: dict | None, stderr: str) -> Verdict:
    """What one pip-audit run on `lock` means, from its exit code, its JSON report (None if it wrote none)
    and its standard error."""
    if report is None:
        if UNREACHABLE.search(stderr):
            return Verdict(SKIPPED, (f"the vulnerability database is unreachable ({_reason(stderr)})",))
        return Verdict(
            FAILED, (f"{lock}: pip-audit failed (exit {returncode}) without a report:", *_tail(stderr))
        )
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "version" in dep]
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    found = [
        f"  {dep['name']} {dep['version']}: {vuln['id']}"
        + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else " (no fix yet)")
        for dep in audited
        for vuln in dep.get("vulns", [])
    ]
    if found:
        return Verdict(
            FAILED,
            (
                f"{lock}: {len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'}:",
                *found,
                *(f"  {dep['name']}: not audited ({dep['skip_reason']})" for dep in skipped),
            ),
        )
    if skipped and not audited:
        return Verdict(
            SKIPPED,
            (
                f"the vulnerability database answered for none of {lock}'s {len(skipped)} packages "
                f"({skipped[0]['skip_reason']})",
            ),
        )
    if skipped:
        return Verdict(
            FAILED,
            (
                f"{lock}: {len(skipped)} of {len(dependencies)} packages not audited:",
                *(f"  {dep['name']}: {dep['skip_reason']}" for dep in skipped),
            ),
        )
    if returncode != 0:
        return Verdict(
            FAILED, (f"{lock}: pip-audit exited {returncode} with a clean report:", *_tail(stderr))
        )
    if not audited:
        return Verdict(FAILED, (f"{lock}: pip-audit found no package in it",))
    return Verdict(PASSED, (f"{lock}: {len(audited)} packages, no known vulnerabilities",))


def _reason(stderr: str) -> str:
    """A connection failure in a few words: the host and what went wrong, else its last line shortened."""
    host = HOST.search(stderr)
    kind = next((words for pattern, words in FAILURES if pattern.search(stderr)), None)
    if host and kind:
        return f"{host.group(1)}: {kind}"
    lines = [line.strip() for line in stderr.splitlines() if UNREACHABLE.search(line)]
    reason = lines[-1] if lines else "no connection"
    return reason if len(reason) <= 120 else reason[:117] + "..."


def _tail(stderr: str, count: int = 15) -> list[str]:
    return ["  " + line for line in stderr.strip().splitlines()[-count:]] or ["  (nothing on standard error)"]


def audit(pip_audit: str, lock: str, service: str, osv_url: str | None, ignore: list[str]) -> Verdict:
    """Runs pip-audit on one lock and judges the run."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "report.json"
        command = [
            pip_audit,
            "--requirement",
            lock,
            "--disable-pip",
            "--require-hashes",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(output),
            "--progress-spinner",
            "off",
            "--timeout",
            "20",
        ]
        command += ["--osv-url", osv_url] if osv_url else []
        for vuln_id in ignore:
            command += ["--ignore-vuln", vuln_id]
        try:
            # pip-audit as the Makefile names it, from an argument list (no shell).
            done = subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return Verdict(SKIPPED, (f"the vulnerability database did not answer within {TIMEOUT_S} s",))
        try:
            report = json.loads(output.read_text()) if output.is_file() and output.stat().st_size else None
        except json.JSONDecodeError:
            report = None
    return judge(lock, done.returncode, report, done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("locks", nargs="+", help="hashed requirements files")
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    parser.add_argument("--service", default="osv", choices=["osv", "pypi"])
    parser.add_argument("--osv-url", help="another OSV query endpoint (the tests' stand-in)")
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID", help="an accepted one")
    parser.add_argument(
        "--required",
        action="store_true",
        help="fail when the database cannot be reached, instead of skipping",
    )
    args = parser.parse_args(argv)
    failed = False
    for index, lock in enumerate(args.locks):
        verdict = audit(args.pip_audit, lock, args.service, args.osv_url, args.ignore_vuln)
        if verdict.outcome == SKIPPED:
            word = "FAILED" if args.required else "skipped"
            left = ", ".join(args.locks[index:])
            print(f"pip-audit {word}: {verdict.lines[0]}; not audited: {left}", file=sys.stderr)
            return 1 if args.required or failed else 0
        stream = sys.stderr if verdict.outcome == FAILED else sys.stdout
        print(
            "\n".join(f"pip-audit: {line}" if i == 0 else line for i, line in enumerate(verdict.lines)),
            file=stream,
        )
        failed |= verdict.outcome == FAILED
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
