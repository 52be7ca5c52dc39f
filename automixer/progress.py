"""Progress reporting for long work: a rich bar on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType


class Progress:
    """Count finished items of a long step; draw a bar on a TTY and log every `log_every_s` seconds."""

    def __init__(
        self,
        description: str,
        total: int,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        log_every_s: float = 10.0,
    ):
        self.description = description
        self.total = total
        self.done = 0
        self.logger = logger or logging.getLogger("automixer")
        self.log_every_s = log_every_s
        self._last_log = 0.0
        self._start = 0.0
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            cols = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
            self._bar = RichProgress("[progress.description]{task.description}", *cols, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int = 1, note: str = "") -> None:
        """Record `n` more finished items."""
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s or self.done >= self.total:
            self._last_log = now
            extra = f" ({note})" if note else ""
            self.logger.info(
                "%s: %d/%d done, %.0fs%s", self.description, self.done, self.total, now - self._start, extra
            )

    def __exit__(self, et: type | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
