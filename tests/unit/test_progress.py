"""In a terminal, log lines are printed above the progress display, not through it."""

from __future__ import annotations

import io
import re

from rich.console import Console

from crm_sync.logs import configure_logging, get_logger
from crm_sync.outputs.progress import TerminalProgress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_log_lines_go_above_the_progress_display() -> None:
    """A warning logged while the display is live comes out whole, on a line of its own."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    configure_logging(json=False, level="WARNING")
    try:
        with TerminalProgress(console=console) as progress:
            progress.advance("hubspot", "scanned", 200)
            get_logger(source="hubspot").warning("write_refused", record="101", reason="CONFLICT")
            progress.advance("hubspot", "submitted", 100)
    finally:
        configure_logging(json=True, level="INFO")
    lines = [ANSI.sub("", part) for part in re.split(r"[\r\n]", screen.getvalue())]
    logged = [line for line in lines if "write_refused" in line]
    assert logged, screen.getvalue()
    for line in logged:
        assert "scanned" not in line
        assert line.lstrip().startswith("20"), line  # the timestamp starts the line
        assert "reason=CONFLICT" in line
