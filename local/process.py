"""The local stack in its own process, as a user starts it (`python -m local run`): for tests and benches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from local.stack import ROOT


class StackProcess:
    """`python -m local run` on free ports, logging to `workdir/stack.log`; endpoints read once written."""

    def __init__(
        self,
        workdir: Path,
        *extra_args: str,
        start_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env`: variables added to this process's environment for the stack (the handlers see them too,
        as the functions' environment does not set them)."""
        self.workdir = workdir
        self.endpoints_file = workdir / "endpoints.json"
        self.log_path = workdir / "stack.log"
        self._extra_args = extra_args
        self._start_timeout_s = start_timeout_s
        self._env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, Any] = {}
        self._log: IO[bytes] | None = None

    def start(self) -> StackProcess:
        """Start; return once the endpoints file exists (RuntimeError with the log tail if it does not)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local",
                "run",
                "--port",
                "0",
                "--simulator-port",
                "0",
                "--endpoints-file",
                str(self.endpoints_file),
                "--log-dir",
                str(self.workdir / "logs"),
                *self._extra_args,
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,  # nothing to read; never the caller's (a test worker's channel)
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self._env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a process group of its own, as a terminal gives it
        )
        deadline = time.monotonic() + self._start_timeout_s
        while not self.endpoints_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local stack did not start:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        self.endpoints = json.loads(self.endpoints_file.read_text())
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ctrl-C, as a terminal sends it (to the whole process group); killed if it has not stopped within
        `timeout_s`."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> StackProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
