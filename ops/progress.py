"""A progress line on stderr: a redrawn bar on a terminal, otherwise one line per `every` items (logs).

Written here rather than with rich.progress: in a log it prints plain lines at a fixed step, and on a terminal
one line redrawn with a carriage return, without cursor control sequences."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_BAR = 30
_REDRAW_S = 0.1


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        every: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.clock = clock
        self.started = clock()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn_at = 0.0
        self._closed = False

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1) -> None:
        before, self.count = self.count, self.count + n
        if self.tty:
            if self.clock() - self._drawn_at >= _REDRAW_S:
                self._draw()
        elif self.count // self.every > before // self.every:
            self._line()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self._draw()
            self.stream.write("\n")
        elif self.count % self.every or self.count == 0:
            self._line()
        self.stream.flush()

    def _text(self) -> str:
        return f"{self.label} {self.count}/{self.total} ({self.rate:.1f}/s)"

    def _line(self) -> None:
        self.stream.write(self._text() + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        done = int(_BAR * self.count / self.total) if self.total else _BAR
        bar = "#" * done + "-" * (_BAR - done)
        self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total} ({self.rate:.1f}/s)")
        self.stream.flush()
        self._drawn_at = self.clock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
