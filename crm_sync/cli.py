"""The `crm-sync` command line: parses arguments and hands each command to its module.

Commands live in `crm_sync/commands/<name>.py`, each with `add_arguments(parser)` and
`run(args) -> int`; they are imported only when chosen, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from crm_sync import __version__
from crm_sync.exit_codes import EXIT_AUTH, EXIT_CONFIG, EXIT_CREDITS, EXIT_OK, EXIT_PARTIAL

__all__ = ["EXIT_AUTH", "EXIT_CONFIG", "EXIT_CREDITS", "EXIT_OK", "EXIT_PARTIAL", "main"]

COMMANDS: dict[str, str] = {
    "run": "the daemon: scheduled cycles, webhook receiver, health and metrics",
    "once": "one full cycle, then exit (the same as `crm-sync --once`)",
    "check": "verify the state store, the schedule, the enrichment key and every source",
    "status": "batches by state, in-doubt batches (exit 6), recent runs, credits charged",
    "resolve": "settle an in_doubt batch by hand: --sent [--enrichment-id ID] or --not-sent",
    "replay": "write stored results that were not written (after fixing a mapped field)",
    "demo": "run one cycle against in-process emulators; needs no config and no network",
    "sandbox": "serve the local emulators of the enrichment API, HubSpot and Salesforce",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-sync",
        description="Find CRM contacts without email or phone, enrich them, write them back.",
    )
    parser.add_argument("--version", action="version", version=f"crm-sync {__version__}")
    parser.add_argument(
        "--once", action="store_true", help="run one full cycle and exit (for cron and CronJobs)"
    )
    _add_once_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        _command_module(name).add_arguments(command_parser)
    return parser


def _add_once_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `--once` that are accepted before any command, as `crm-sync --once --json`."""
    from crm_sync.commands import once

    once.add_arguments(parser)


def _command_module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"crm_sync.commands.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or ("once" if args.once else None)
    if command is None:
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(_command_module(command).run(args))
    except (Exception, KeyboardInterrupt) as exc:
        return _report_failure(exc)


def _report_failure(exc: BaseException) -> int:
    """One short message naming what failed and what to do; the traceback only at DEBUG."""
    from crm_sync.commands.common import current_state_url
    from crm_sync.failures import classify
    from crm_sync.logs import get_logger

    failure = classify(exc, state_url=current_state_url())
    if os.environ.get("CRM_SYNC_LOG_LEVEL", "").upper() == "DEBUG":
        get_logger().debug("command_failed", exit_code=failure.exit_code, exc_info=exc)
    print(failure.render(), file=sys.stderr)
    return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
