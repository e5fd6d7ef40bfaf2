"""`make security`'s pip-audit step (tools/audit_locks.py): a known vulnerability fails, a clean audit passes,
an unreachable database is one line and passes (fails with --required), anything else fails. The real
pip-audit (.venv-scan) runs against a stand-in for OSV's query API on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.locks import LAYER_LOCK, ROOT, read_lock
from tools import audit_locks
from tools.audit_locks import FAILED, PASSED, SKIPPED, judge

PIP_AUDIT = ROOT / ".venv-scan" / "bin" / "pip-audit"
LOCK = "layers/mmsbridge/requirements.txt"
CONNECTION_ERROR = (
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev', port=443): Max retries "
    "exceeded with url: /v1/query (Caused by NameResolutionError(\"Failed to resolve 'api.osv.dev'\"))"
)


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def clean(name: str, version: str = "1.0") -> dict:
    return {"name": name, "version": version, "vulns": []}


def vulnerable(name: str, vuln_id: str, fixed: tuple[str, ...] = ("2.0",)) -> dict:
    return {
        "name": name,
        "version": "1.0",
        "vulns": [{"id": vuln_id, "fix_versions": list(fixed), "aliases": [], "description": "x"}],
    }


def skipped(name: str) -> dict:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)",
    }


def test_a_clean_audit_passes():
    verdict = judge(LOCK, 0, report(clean("requests"), clean("idna")), "")
    assert verdict.outcome == PASSED
    assert verdict.lines == (f"{LOCK}: 2 packages, no known vulnerabilities",)


def test_a_known_vulnerability_fails_and_is_named():
    verdict = judge(LOCK, 1, report(clean("idna"), vulnerable("requests", "GHSA-aaaa-bbbb-cccc")), "")
    assert verdict.outcome == FAILED
    assert "  requests 1.0: GHSA-aaaa-bbbb-cccc (fixed in 2.0)" in verdict.lines


def test_a_vulnerability_fails_even_when_other_packages_went_unaudited():
    verdict = judge(LOCK, 1, report(skipped("idna"), vulnerable("requests", "PYSEC-1", fixed=())), "")
    assert verdict.outcome == FAILED
    assert "  requests 1.0: PYSEC-1 (no fix yet)" in verdict.lines
    assert any("idna: not audited" in line for line in verdict.lines)


def test_every_package_skipped_means_the_database_was_not_reached():
    verdict = judge(LOCK, 0, report(skipped("requests"), skipped("idna")), "")
    assert verdict.outcome == SKIPPED
    assert len(verdict.lines) == 1


def test_some_packages_skipped_fails():
    verdict = judge(LOCK, 0, report(clean("requests"), skipped("idna")), "")
    assert verdict.outcome == FAILED


@pytest.mark.parametrize(
    "stderr",
    [CONNECTION_ERROR, "ERROR:pip_audit._cli:Could not connect to OSV's vulnerability feed"],
    ids=["name-resolution", "timeout"],
)
def test_a_connection_error_skips_with_one_line(stderr):
    verdict = judge(LOCK, 1, None, "Traceback (most recent call last):\n  ...\n" + stderr)
    assert verdict.outcome == SKIPPED
    assert len(verdict.lines) == 1
    assert "unreachable" in verdict.lines[0]


@pytest.mark.parametrize(
    ("returncode", "audit_report", "stderr"),
    [
        (1, None, "ERROR:pip_audit._cli:requirement file is malformed"),
        (1, report(clean("requests")), "something went wrong"),
        (0, report(), ""),
    ],
    ids=["error-without-report", "error-with-clean-report", "empty-report"],
)
def test_anything_else_fails(returncode, audit_report, stderr):
    assert judge(LOCK, returncode, audit_report, stderr).outcome == FAILED


class StandInOSV(BaseHTTPRequestHandler):
    """OSV's POST /v1/query: the vulnerabilities `known` holds for the package asked about."""

    known: dict[str, list[dict]] = {}
    asked: list[str] = []

    def do_POST(self):
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = query["package"]["name"]
        type(self).asked.append(name)
        vulns = [
            {
                "id": vuln_id,
                "summary": "stand-in",
                "affected": [
                    {
                        "package": {"name": name, "ecosystem": "PyPI"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
                    }
                ],
            }
            for vuln_id in self.known.get(name, [])
        ]
        body = json.dumps({"vulns": vulns} if vulns else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def osv():
    if not PIP_AUDIT.exists():
        pytest.skip(f"no {PIP_AUDIT.relative_to(ROOT)}: `make setup` installs it")
    StandInOSV.known, StandInOSV.asked = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInOSV)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()
    server.server_close()


def run(capsys, url: str, *extra: str, lock: str = str(LAYER_LOCK)) -> tuple[int, str]:
    code = audit_locks.main(["--pip-audit", str(PIP_AUDIT), "--osv-url", url, *extra, lock])
    out, err = capsys.readouterr()
    return code, out + err


def test_pip_audit_passes_a_clean_lock_after_asking_about_every_package(osv, capsys):
    _, url = osv
    code, output = run(capsys, url)
    assert code == 0, output
    assert f"{len(read_lock(LAYER_LOCK))} packages, no known vulnerabilities" in output
    assert sorted(StandInOSV.asked) == sorted(read_lock(LAYER_LOCK))


def test_pip_audit_fails_on_a_known_vulnerability(osv, capsys):
    _, url = osv
    StandInOSV.known = {"urllib3": ["GHSA-test-0000-0001"]}
    code, output = run(capsys, url)
    assert code == 1, output
    assert "urllib3 2.8.0: GHSA-test-0000-0001 (fixed in 99.0)" in output
    code, output = run(capsys, url, "--ignore-vuln", "GHSA-test-0000-0001")
    assert code == 0, output


def test_pip_audit_skips_when_the_database_is_unreachable(osv, capsys):
    server, url = osv
    server.shutdown()
    server.server_close()  # nothing listens on the port any more
    code, output = run(capsys, url)
    assert code == 0, output
    assert len(output.strip().splitlines()) == 1, output
    assert output.startswith("pip-audit skipped: the vulnerability database is unreachable")
    code, output = run(capsys, url, "--required")
    assert code == 1, output
    assert output.startswith("pip-audit FAILED: the vulnerability database is unreachable")


def test_pip_audit_fails_on_an_unhashed_lock(osv, capsys, tmp_path):
    _, url = osv
    lock = tmp_path / "requirements.txt"
    lock.write_text("requests==2.34.2\n")
    code, output = run(capsys, url, lock=str(lock))
    assert code == 1, output
    assert "pip-audit failed" in output
