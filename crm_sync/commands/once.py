"""`crm-sync --once`: one full cycle, every stage until nothing is left or the deadline.

SIGTERM and SIGINT are handled like the daemon: `ctx.stopping` is set, no new POST starts, the
current step settles, the run is recorded `interrupted`, the report is printed and the process
exits 7. If the step outlives `schedule.shutdown_grace_seconds`, the run is recorded
`interrupted` anyway and the process exits 7 at once (every step is checkpointed in the store:
the next run carries on as after a crash).
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from crm_sync.commands.common import add_config_argument, config_path, load
from crm_sync.config import require_sources
from crm_sync.errors import RunFailed
from crm_sync.exit_codes import EXIT_INTERRUPTED
from crm_sync.logs import configure_logging, get_logger
from crm_sync.pipeline.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the run report as one JSON object on stdout",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,
        help="select and plan only: print what would be sent and its worst-case cost",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="stop starting new work and stop waiting after this many seconds (default: none)",
    )


@contextmanager
def _progress(ctx: Context, interactive: bool) -> Iterator[None]:
    if not interactive:
        yield
        return
    from crm_sync.outputs.progress import TerminalProgress

    with TerminalProgress() as progress:
        ctx.progress = progress
        yield


class StopOnSignal:
    """SIGTERM/SIGINT set `stopping`; past the grace, `on_grace_expired` ends the process.

    The handler only puts the signal's name on a queue (safe in a signal handler); a watcher
    thread does the rest, so no lock is ever taken inside the handler.
    """

    def __init__(self, stopping: threading.Event, grace_seconds: float) -> None:
        self.stopping = stopping
        self.grace = grace_seconds
        self.finished = threading.Event()
        self._signals: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.on_grace_expired: Any = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handler)
        threading.Thread(target=self._watch, name="stop-on-signal", daemon=True).start()

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.put(signal.Signals(signum).name)

    def _watch(self) -> None:
        name = self._signals.get()
        get_logger().warning("stop_requested", signal=name, grace_seconds=self.grace)
        self.stopping.set()
        threading.Thread(target=self._more_signals, daemon=True).start()
        if self.finished.wait(self.grace):
            return
        get_logger().error("shutdown_grace_expired", grace_seconds=self.grace)
        if self.on_grace_expired is not None:
            self.on_grace_expired()

    def _more_signals(self) -> None:
        while True:
            name = self._signals.get()
            get_logger().info("stop_already_requested", signal=name)


def run(args: argparse.Namespace) -> int:
    from crm_sync.outputs.after_run import after_failure
    from crm_sync.pipeline.cycle import run_cycle
    from crm_sync.wiring import build_clock, open_context

    as_json = bool(getattr(args, "json", False))
    interactive = sys.stdout.isatty() and not as_json
    # In a terminal: readable warnings and a progress bar; elsewhere: JSON log lines on stderr.
    configure_logging(json=not interactive, level="WARNING" if interactive else "INFO")
    config = load(args)
    require_sources(config)
    stopping = threading.Event()
    stop = StopOnSignal(stopping, config.schedule.shutdown_grace_seconds)
    stop.install()
    clock = build_clock()
    started = clock.monotonic()
    try:
        with open_context(config, clock=clock, stopping=stopping) as ctx:
            stop.on_grace_expired = lambda: _exit_after_grace(ctx, as_json)
            try:
                with _progress(ctx, interactive):
                    report = run_cycle(
                        ctx,
                        dry_run=bool(getattr(args, "dry_run", False)),
                        deadline_seconds=getattr(args, "deadline", None),
                    )
            except RunFailed as failed:
                stop.finished.set()
                if as_json or getattr(failed.report, "sources", None):
                    _print_report(failed.report, as_json, file=sys.stdout)
                _tell(ctx, failed.report, started, args, failed=failed)
                raise
            stop.finished.set()
            _print_report(report, as_json, file=sys.stdout)
            _tell(ctx, report, started, args)
    except RunFailed:
        raise
    except Exception as exc:  # no report at all: notified, then reported by the CLI as before
        after_failure(config, f"{type(exc).__name__}: {exc}", config_path=config_path(args))
        raise
    return report.exit_code


def _tell(
    ctx: Context, report: Any, started: float, args: argparse.Namespace, *, failed: Any = None
) -> None:
    """Push the run's metrics and send its notifications, with the code the process exits with."""
    import dataclasses

    from crm_sync.outputs.after_run import after_run
    from crm_sync.outputs.notify import Notifier

    if failed is not None:
        report = dataclasses.replace(report, exit_code=failed.exit_code)
    after_run(
        ctx,
        report,
        ctx.clock.monotonic() - started,
        notifier=Notifier(ctx.config.notify),
        push=True,
        config_path=config_path(args),
        failure=str(failed) if failed is not None else None,
    )


def _print_report(report: Any, as_json: bool, *, file: Any) -> None:
    from crm_sync.pipeline.report import render_table

    file.write((report.to_json() if as_json else render_table(report)) + "\n")
    file.flush()


RECORD_TIMEOUT_SECONDS = 3.0


def _record_interrupted(record: Any, reason: str) -> None:
    try:
        record.interrupt(reason)
    except Exception as exc:  # the store failed; the run is found abandoned later
        get_logger().warning("run_end_not_recorded", error=type(exc).__name__)


def _exit_after_grace(ctx: Context, as_json: bool) -> None:
    """The current step outlived the grace: record the run interrupted, report, exit 7 now."""
    from crm_sync.pipeline.run_record import active_run

    record = active_run(ctx.owner)
    reason = (
        "interrupted: the step in progress outlived the grace "
        f"({ctx.config.schedule.shutdown_grace_seconds} s); the next run carries on"
    )
    if record is not None:
        # The store may be what hangs: record the end if it answers soon, exit 7 regardless
        # (a run left `running` is marked abandoned by the next run or `status`).
        recorder = threading.Thread(target=_record_interrupted, args=(record, reason), daemon=True)
        recorder.start()
        recorder.join(RECORD_TIMEOUT_SECONDS)
        if record.report is not None:
            _print_report(record.report, as_json, file=sys.stdout)
    if record is None or record.report is None:
        sys.stdout.write(reason + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
