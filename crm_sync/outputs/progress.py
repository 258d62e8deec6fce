"""A progress display for `--once` in a terminal: contacts scanned, submitted, written back."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

STAGES = ("scanned", "submitted", "written back")


class TerminalProgress:
    """One line per source and stage, drawn on stderr so stdout keeps only the report.

    While it is shown, rich redirects `sys.stderr` through its console, and the log writes to
    whatever `sys.stderr` is at each line (see `logs.py`): log lines are printed above the
    display instead of through it.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:>8.0f}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
            redirect_stderr=True,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._lock = threading.Lock()

    def advance(self, source: str, stage: str, n: int) -> None:
        with self._lock:
            key = (source, stage)
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(f"{source}: {stage}", total=None)
            self._progress.advance(self._tasks[key], n)

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
