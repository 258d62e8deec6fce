"""`crm-sync --once`: one full cycle, every stage until nothing is left or the deadline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from crm_sync.commands.common import add_config_argument, config_path, load
from crm_sync.logs import configure_logging
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
    from crm_sync.progress import TerminalProgress

    with TerminalProgress() as progress:
        ctx.progress = progress
        yield


def run(args: argparse.Namespace) -> int:
    import time

    from crm_sync.after_run import after_failure, after_run
    from crm_sync.app import open_context
    from crm_sync.notify import Notifier
    from crm_sync.pipeline.cycle import run_cycle
    from crm_sync.pipeline.report import render_table

    as_json = bool(getattr(args, "json", False))
    interactive = sys.stdout.isatty() and not as_json
    # In a terminal: readable warnings and a progress bar; elsewhere: JSON log lines on stderr.
    configure_logging(json=not interactive, level="WARNING" if interactive else "INFO")
    config = load(args)
    started = time.monotonic()
    try:
        with open_context(config) as ctx:
            with _progress(ctx, interactive):
                report = run_cycle(
                    ctx,
                    dry_run=bool(getattr(args, "dry_run", False)),
                    deadline_seconds=getattr(args, "deadline", None),
                )
            notifier = Notifier(config.notify)
            after_run(
                ctx,
                report,
                time.monotonic() - started,
                notifier=notifier,
                push=True,
                config_path=config_path(args),
            )
    except Exception as exc:  # told to whoever listens, then reported by the CLI as before
        after_failure(config, f"{type(exc).__name__}: {exc}", config_path=config_path(args))
        raise
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write(render_table(report) + "\n")
    return report.exit_code
