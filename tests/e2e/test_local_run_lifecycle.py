"""`make run` starts and stops as a person uses it: Ctrl-C prints one line, a taken port says which."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from local.process import StackProcess
from local.stack import ROOT


def test_ctrl_c_stops_the_pollers_before_moto_and_prints_one_line(tmp_path):
    stack = StackProcess(tmp_path).start()
    stack.stop()  # SIGINT to the process group, as a terminal's Ctrl-C
    assert stack.process.returncode == 0
    after_start = stack.log().split("Ctrl-C stops.\n", 1)[1]
    assert after_start.splitlines() == ["stopping the local stack"]


@pytest.mark.parametrize("option", ["--port", "--simulator-port", "--moto-port"])
def test_a_port_in_use_is_named_with_the_option_that_sets_it(tmp_path, option):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--port": "0", "--simulator-port": "0", "--moto-port": "0", option: str(port)}
        files = {"--endpoints-file": str(tmp_path / "endpoints.json"), "--log-dir": str(tmp_path / "logs")}
        arguments = [a for pair in (ports | files).items() for a in pair]
        finished = subprocess.run(
            [sys.executable, "-m", "local", "run", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    (line,) = [x for x in finished.stderr.splitlines() if x.startswith("local:")]
    assert f"port 127.0.0.1:{port} is already in use" in line
    assert f"{option} 0" in line
    assert not (tmp_path / "endpoints.json").exists()
