"""A plain-text progress bar for the command line: count, rate, ETA; quiet when not a tty."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws one line on a terminal; prints a line every few seconds otherwise."""

    def __init__(
        self, label: str, total: int = 0, unit: str = "it", stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def advance(self, note: str = "", step: int = 1) -> None:
        self.done += step
        self._draw(note)

    def bytes_callback(self, done: int, total: int) -> bool:
        """For downloads: (bytes done, bytes total) -> keep going."""
        self.total = max(total, 0) // 1_000_000
        self.done = done // 1_000_000
        self._draw("")
        return True

    def _draw(self, note: str) -> None:
        now = time.perf_counter()
        final = self.total and self.done >= self.total
        if not final and now - self._last_draw < (0.1 if self._tty else 5.0):
            return
        self._last_draw = now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} {self.unit}"
            if rate > 0:
                text += f", {rate:.2f} {self.unit}/s, ETA {(self.total - self.done) / rate:.0f} s"
        else:
            text += f" {self.unit}, {rate:.2f} {self.unit}/s"
        if note:
            text += f"  {note}"
        if self._tty:
            self.stream.write("\r" + text[:120].ljust(120))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn and self._tty:
            self.stream.write("\n")
            self.stream.flush()
