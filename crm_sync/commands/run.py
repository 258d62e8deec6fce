"""`crm-sync run`: the daemon. Scheduled cycles, the webhook receiver, health and metrics.

SIGTERM and SIGINT stop it gracefully (exit 0); a second signal is harmless. When in-flight
work outlives `schedule.shutdown_grace_seconds`, the process exits anyway: every step is
checkpointed in the store, so the next start carries on (as after a crash, never paying twice).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from crm_sync.commands.common import add_config_argument, load
from crm_sync.config import require_sources
from crm_sync.exit_codes import EXIT_OK
from crm_sync.logs import configure_logging, get_logger

if TYPE_CHECKING:
    from crm_sync.daemon.service import Daemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from crm_sync.daemon.service import Daemon
    from crm_sync.wiring import open_context

    configure_logging()
    config = load(args)
    require_sources(config)
    log = get_logger(component="run")
    with open_context(config, webhook=True) as ctx:
        daemon = Daemon(ctx)
        _install_signal_handlers(daemon)  # kept to the end: a late second signal stays harmless
        daemon.start()
        clean = daemon.wait()
        if not clean:
            # A job thread is stuck past the grace: do not let interpreter exit wait for it.
            log.warning("exiting_with_work_in_flight")
            sys.stderr.flush()
            os._exit(EXIT_OK)
    return EXIT_OK


def _install_signal_handlers(daemon: Daemon) -> None:
    """SIGTERM and SIGINT ask the daemon to stop."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        daemon.signals.put(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
