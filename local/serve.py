"""Shared by the local servers' entry points: run until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading


def until_stopped() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM (a test or a supervisor stops as cleanly as a person)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Both stop it, whatever the parent left them as: a process started with SIGINT ignored (a shell's
    # background job, some supervisors and test runners) would otherwise never see Ctrl-C.
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print("Ctrl-C stops.", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
